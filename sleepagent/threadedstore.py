"""ThreadedSqliteStore: LangGraph's ``SqliteStore`` for asyncio code, one thread hop per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from langgraph.store.base import Op, Result
from langgraph.store.sqlite import SqliteStore

from sleepagent.errors import WrongModeError

__all__ = ["ThreadedSqliteStore"]


class ThreadedSqliteStore(SqliteStore):
    """A ``SqliteStore`` for asyncio code: each batch runs whole in a worker thread.

    ``AsyncSqliteStore`` hands every SQL statement of a batch (``BEGIN``, each
    query, ``COMMIT``) to its connection's thread and back, and each hand-over
    waits for the event loop and the interpreter lock: with many conversations
    on one loop, a turn's two small batches cost milliseconds of waiting that
    way. Here a batch is one hand-over. Once started it runs to its end even if
    the awaiting task is cancelled, so it never leaves the connection inside a
    transaction. Build it on a ``sqlite3`` connection opened with
    ``check_same_thread=False`` and ``isolation_level=None``.
    """

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
        """Run ``ops`` in one transaction, in a worker thread."""
        return await asyncio.to_thread(SqliteStore.batch, self, list(ops))
