"""ThreadedSqliteStore: LangGraph's ``SqliteStore`` for asyncio code, one thread hop per write."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable

from langgraph.store.base import GetOp, Op, Result
from langgraph.store.sqlite import SqliteStore

from sleepagent.errors import WrongModeError

__all__ = ["ThreadedSqliteStore"]


class ThreadedSqliteStore(SqliteStore):
    """A ``SqliteStore`` for asyncio code: a write runs whole in a worker thread.

    ``AsyncSqliteStore`` hands every SQL statement of a batch (``BEGIN``, each
    query, ``COMMIT``) to its connection's thread and back. Each hand-over waits
    for the interpreter lock, and while the event loop is busy with other
    conversations that wait lasts up to the interpreter's switch interval
    (5 ms): with many conversations on one loop, a turn's two small batches cost
    milliseconds that way. Here a batch that writes is one hand-over; once
    started it runs to its end even if the awaiting task is cancelled, so it
    never leaves the connection inside a transaction.

    A batch of key reads (``GetOp`` only, as a turn's read is) needs no
    hand-over: with ``reader``, a second connection to the same file, it runs on
    the event loop's own thread. In WAL mode a read never waits for a writer,
    and a few key lookups take tens of microseconds, less than one hand-over.

    Args:
        conn: The connection for writes, opened with ``check_same_thread=False``
            and ``isolation_level=None``.
        reader: A connection to the same file for key reads on the event loop
            (same options); it is made read-only by :meth:`setup`.

    """

    def __init__(
        self, conn: sqlite3.Connection, *, reader: sqlite3.Connection | None = None
    ) -> None:
        super().__init__(conn)
        self._reader = None if reader is None else SqliteStore(reader)

    def setup(self) -> None:
        """Create or migrate the tables (idempotent), then open the reader for reads only."""
        super().setup()
        if self._reader is not None:
            self._reader.setup()  # only reads: the tables exist by now
            self._reader.conn.execute("PRAGMA query_only=1")

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in one transaction; refused on an event loop's own thread.

        Raises:
            WrongModeError: When called from inside a running event loop, where it
                would block every other task until the database answers.

        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return super().batch(ops)
        raise WrongModeError(
            f"{type(self).__name__} serves asyncio code: use the BlockStore methods whose "
            "names start with 'a' (aload, acommit, ...) or the store's abatch"
        )

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in one transaction: key reads on this thread, the rest in a worker."""
        ops = list(ops)
        if self._reader is not None and all(isinstance(op, GetOp) for op in ops):
            return self._reader.batch(ops)
        return await asyncio.to_thread(SqliteStore.batch, self, ops)
