"""Opening the checkpointer and the store an agent owns.

Default: SQLite, both on one file (two connections, WAL journal so the
conversation and the sleep side can write without blocking each other for
long). The asyncio agent's store is a
:class:`~sleepagent.store.threaded.ThreadedSqliteStore`: a write runs whole in
a worker thread, one hand-over per batch where ``AsyncSqliteStore`` makes one
per SQL statement, and key reads run on the event loop over a third,
read-only connection. A ``postgresql://`` URL uses PostgreSQL (``PostgresSaver`` and a
pooled ``PostgresStore``; install the ``postgres`` extra). ``None`` keeps
everything in memory, for tests and throwaway sessions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from os import PathLike

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from sleepagent.errors import ConfigurationError
from sleepagent.store import durability
from sleepagent.store.dburl import check_db

__all__ = [
    "DbPath",
    "is_postgres_url",
    "open_async_persistence",
    "open_persistence",
]

DbPath = str | PathLike[str] | None
"""A SQLite file path, a ``postgresql://`` URL, or ``None`` for in-memory persistence."""

_BUSY_TIMEOUT_S = 30.0
_STORE_POOL = {"min_size": 1, "max_size": 40}
"""Store connections, opened as needed: each sleep run in flight holds one for its run lock
(up to ``max_concurrent_sleeps``, 32 by default), each commit one for its transaction, and
turns share the rest."""


def is_postgres_url(db: DbPath) -> bool:
    """Whether ``db`` names a PostgreSQL database."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


@contextmanager
def open_persistence(db: DbPath) -> Iterator[tuple[BaseCheckpointSaver[str], BaseStore]]:
    """A checkpointer and a store for synchronous use; closed on exit."""
    db = check_db(db)
    if db is None:
        yield InMemorySaver(), InMemoryStore()
        return
    if is_postgres_url(db):
        with _open_postgres(str(db)) as opened:
            yield opened
        return
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.store.sqlite import SqliteStore

    saver_conn = _connect(db)
    store_conn = _connect(db, store=True)
    try:
        saver = SqliteSaver(saver_conn)
        store = SqliteStore(store_conn)
        saver.setup()
        store.setup()
        yield saver, store
    finally:
        saver_conn.close()
        store_conn.close()


@asynccontextmanager
async def open_async_persistence(
    db: DbPath,
) -> AsyncIterator[tuple[BaseCheckpointSaver[str], BaseStore]]:
    """A checkpointer and a store for asyncio use; closed on exit."""
    db = await asyncio.to_thread(check_db, db)
    if db is None:
        yield InMemorySaver(), InMemoryStore()
        return
    if is_postgres_url(db):
        async with _open_async_postgres(str(db)) as opened:
            yield opened
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from sleepagent.store.threaded import ThreadedSqliteStore

    store_conn = await asyncio.to_thread(_connect, db, store=True)  # also sets WAL
    reader_conn = await asyncio.to_thread(_connect, db, store=True)
    try:
        async with aiosqlite.connect(str(db), timeout=_BUSY_TIMEOUT_S) as saver_conn:
            saver = AsyncSqliteSaver(saver_conn)
            store = ThreadedSqliteStore(store_conn, reader=reader_conn)
            await saver.setup()
            await asyncio.to_thread(store.setup)
            yield saver, store
    finally:
        await asyncio.to_thread(store_conn.close)
        await asyncio.to_thread(reader_conn.close)


@contextmanager
def _open_postgres(url: str) -> Iterator[tuple[BaseCheckpointSaver[str], BaseStore]]:
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.store.postgres import PostgresStore
    except ImportError as missing:
        raise ConfigurationError(_NO_POSTGRES) from missing
    with (
        PostgresSaver.from_conn_string(url) as saver,
        PostgresStore.from_conn_string(url, pool_config=dict(_STORE_POOL)) as store,  # type: ignore[arg-type]
    ):
        with _setup_lock(url):
            saver.setup()
            store.setup()
        yield saver, store


@asynccontextmanager
async def _open_async_postgres(
    url: str,
) -> AsyncIterator[tuple[BaseCheckpointSaver[str], BaseStore]]:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore
    except ImportError as missing:
        raise ConfigurationError(_NO_POSTGRES) from missing
    async with (
        AsyncPostgresSaver.from_conn_string(url) as saver,
        AsyncPostgresStore.from_conn_string(url, pool_config=dict(_STORE_POOL)) as store,  # type: ignore[arg-type]
    ):
        async with _asetup_lock(url):
            await saver.setup()
            await store.setup()
        yield saver, store


_SETUP_LOCK = "SELECT pg_advisory_lock(hashtextextended('sleepagent:setup', 0))"


@contextmanager
def _setup_lock(url: str) -> Iterator[None]:
    """Serialise schema set-up across processes.

    LangGraph's ``setup()`` reads the applied migrations, then inserts the
    missing ones: workers starting together on a fresh database race there
    (a duplicate-key error in one of them). Closing the connection releases it.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_SETUP_LOCK)
        yield


@asynccontextmanager
async def _asetup_lock(url: str) -> AsyncIterator[None]:
    """Async :func:`_setup_lock`."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(_SETUP_LOCK)
        yield


_NO_POSTGRES = (
    "PostgreSQL support is not installed: pip install 'sleepagent[postgres]' "
    "(langgraph-checkpoint-postgres and psycopg)"
)


def _connect(db: str | PathLike[str], *, store: bool = False) -> sqlite3.Connection:
    """A connection to ``db`` in WAL mode; ``store=True``: the store's (autocommit).

    How durable each connection's writes are is decided in
    :mod:`sleepagent.store.durability`.
    """
    conn = sqlite3.connect(
        str(db),
        check_same_thread=False,
        timeout=_BUSY_TIMEOUT_S,
        isolation_level=None if store else "DEFERRED",
    )
    conn.execute("PRAGMA journal_mode=WAL")
    if store:
        durability.relax_store_sync(conn)
    return conn
