"""Opening the checkpointer and the store an agent owns.

Default: SQLite, both on one file (two connections, WAL journal so the
conversation and the sleep side can write without blocking each other for
long). ``None`` keeps everything in memory, for tests and throwaway sessions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from os import PathLike

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

__all__ = ["DbPath", "open_async_persistence", "open_persistence"]

DbPath = str | PathLike[str] | None
"""A SQLite file path, or ``None`` for in-memory persistence."""

_BUSY_TIMEOUT_S = 30.0


@contextmanager
def open_persistence(db: DbPath) -> Iterator[tuple[BaseCheckpointSaver[str], BaseStore]]:
    """A checkpointer and a store for synchronous use; closed on exit."""
    if db is None:
        yield InMemorySaver(), InMemoryStore()
        return
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.store.sqlite import SqliteStore

    saver_conn = _connect(db)
    store_conn = _connect(db, autocommit=True)
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
    if db is None:
        yield InMemorySaver(), InMemoryStore()
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    _connect(db).close()  # create the file and switch it to WAL once, synchronously
    async with (
        aiosqlite.connect(str(db), timeout=_BUSY_TIMEOUT_S) as saver_conn,
        aiosqlite.connect(str(db), timeout=_BUSY_TIMEOUT_S, isolation_level=None) as store_conn,
    ):
        saver = AsyncSqliteSaver(saver_conn)
        store = AsyncSqliteStore(store_conn)
        await saver.setup()
        await store.setup()
        yield saver, store


def _connect(db: str | PathLike[str], *, autocommit: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(db),
        check_same_thread=False,
        timeout=_BUSY_TIMEOUT_S,
        isolation_level=None if autocommit else "DEFERRED",
    )
    conn.execute("PRAGMA journal_mode=WAL")
    return conn
