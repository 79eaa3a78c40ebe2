"""What makes a block commit's read-check-write exclusive, per memory scope.

``BaseStore`` has no compare-and-set, so a commit reads the current blocks,
merges, and writes while holding a lock for the scope:

- In one process, a ``threading.Lock`` per (store, scope), shared by sync and
  async callers.
- On PostgreSQL, additionally a database transaction holding a transaction-level
  advisory lock on the scope, so commits from several processes on one store
  serialise, and the commit's reads and writes are one transaction. The commit
  runs against a sync ``PostgresStore`` bound to that transaction's connection
  (for an async store, in a worker thread on a connection of its own).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from langgraph.store.base import BaseStore

from sleepagent.errors import ConfigurationError, WrongModeError
from sleepagent.scope import Scope

__all__ = [
    "acommit_lock",
    "arun_lock",
    "run_lock",
    "commit_transaction",
    "is_async_postgres",
    "postgres_commit_transaction",
    "postgres_conninfo",
]

_ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"

_locks: weakref.WeakKeyDictionary[BaseStore, dict[str, threading.Lock]] = (
    weakref.WeakKeyDictionary()
)
_locks_guard = threading.Lock()


def _scope_lock(store: BaseStore, scope: Scope) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(store, {}).setdefault(scope.key, threading.Lock())


def _lock_name(scope: Scope) -> str:
    return f"sleepagent:{scope.key}"


@contextmanager
def commit_transaction(store: BaseStore, scope: Scope) -> Iterator[BaseStore]:
    """Hold the scope's commit lock; yield the store the commit must use.

    Raises:
        WrongModeError: For an async PostgreSQL store (use the async commit).

    """
    if is_async_postgres(store):
        raise WrongModeError("AsyncPostgresStore: commit with BlockStore.acommit from async code")
    with _scope_lock(store, scope):
        if type(store).__module__ == "langgraph.store.postgres.base":
            with _postgres_transaction(store, scope) as bound:
                yield bound
        else:
            yield store


@asynccontextmanager
async def acommit_lock(store: BaseStore, scope: Scope) -> AsyncIterator[None]:
    """Hold the scope's in-process commit lock from async code.

    The same threading lock as the sync path, so sync and async writers in one
    process exclude each other; a contended acquire waits in a worker thread
    instead of blocking the event loop.
    """
    lock = _scope_lock(store, scope)
    if not lock.acquire(blocking=False):
        await asyncio.to_thread(lock.acquire)
    try:
        yield
    finally:
        lock.release()


def is_async_postgres(store: BaseStore) -> bool:
    """Whether ``store`` is LangGraph's ``AsyncPostgresStore``."""
    return type(store).__module__ == "langgraph.store.postgres.aio"


async def postgres_conninfo(store: Any) -> str:
    """Connection string of an async PostgreSQL store, password included."""
    from psycopg.conninfo import make_conninfo
    from psycopg_pool import AsyncConnectionPool

    if isinstance(store.conn, AsyncConnectionPool):
        async with store.conn.connection() as conn:
            return make_conninfo(conn.info.dsn, password=conn.info.password)
    return make_conninfo(store.conn.info.dsn, password=store.conn.info.password)


def _sync_conninfo(store: Any) -> str:
    """Connection string of a sync PostgreSQL store, password included."""
    from psycopg.conninfo import make_conninfo
    from psycopg_pool import ConnectionPool

    if isinstance(store.conn, ConnectionPool):
        with store.conn.connection() as conn:
            return make_conninfo(conn.info.dsn, password=conn.info.password)
    return make_conninfo(store.conn.info.dsn, password=store.conn.info.password)


@contextmanager
def postgres_commit_transaction(conninfo: str, scope: Scope) -> Iterator[BaseStore]:
    """A sync store bound to a new transaction holding the scope's advisory lock.

    For async PostgreSQL stores: their commit runs this in a worker thread, on
    a connection of its own, so the async store's connections are untouched.
    """
    import psycopg
    from langgraph.store.postgres import PostgresStore
    from psycopg.rows import dict_row

    with (
        psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn,
        conn.transaction(),
    ):
        conn.execute(_ADVISORY_LOCK, (_lock_name(scope),))
        yield PostgresStore(conn)


@contextmanager
def _postgres_transaction(store: Any, scope: Scope) -> Iterator[BaseStore]:
    from langgraph.store.postgres import PostgresStore
    from psycopg_pool import ConnectionPool

    if store.pipe is not None:
        raise ConfigurationError(
            "a PostgresStore in pipeline mode cannot run sleepagent's commit transaction: "
            "open it with a connection pool (pool_config=...) or a plain connection"
        )
    if isinstance(store.conn, ConnectionPool):
        # A connection of its own: the store's other users go on meanwhile.
        with store.conn.connection() as conn, conn.transaction():
            conn.execute(_ADVISORY_LOCK, (_lock_name(scope),))
            yield PostgresStore(conn)
    else:
        # One shared connection: keep the store's other users off it until commit.
        with store.lock, store.conn.transaction():
            store.conn.execute(_ADVISORY_LOCK, (_lock_name(scope),))
            yield PostgresStore(store.conn)


# --- one sleep run per scope across processes ----------------------------------------

_TRY_RUN_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_WAIT_RUN_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"


def _run_lock_name(scope: Scope) -> str:
    return f"sleepagent-run:{scope.key}"


@contextmanager
def run_lock(store: BaseStore, scope: Scope, *, wait: bool) -> Iterator[bool]:
    """Hold the scope's sleep-run lock across processes; yields whether it is held.

    On PostgreSQL a session advisory lock, on a connection of its own that
    lives as long as the run (closing it releases the lock, even if the
    process dies). Elsewhere there is only one process, whose own lock per
    scope already serialises runs, so this yields True at once.

    Args:
        store: The agent's store.
        scope: The memory scope.
        wait: Wait for the lock (a run asked for by hand), or give up at once
            (a scheduled run, which is set again later).

    """
    if type(store).__module__ != "langgraph.store.postgres.base":
        yield True
        return
    import psycopg

    conninfo = _sync_conninfo(store)
    query = _WAIT_RUN_LOCK if wait else _TRY_RUN_LOCK
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(query, (_run_lock_name(scope),)).fetchone()
        yield _held(row, wait)


@asynccontextmanager
async def arun_lock(store: BaseStore, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
    """Async :func:`run_lock` (for ``AsyncPostgresStore``)."""
    if not is_async_postgres(store):
        yield True
        return
    import psycopg

    conninfo = await postgres_conninfo(store)
    query = _WAIT_RUN_LOCK if wait else _TRY_RUN_LOCK
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cursor = await conn.execute(query, (_run_lock_name(scope),))
        yield _held(await cursor.fetchone(), wait)


def _held(row: Any, wait: bool) -> bool:
    # pg_advisory_lock returns nothing once it has waited; pg_try_advisory_lock a boolean.
    return True if wait else bool(row[0])
