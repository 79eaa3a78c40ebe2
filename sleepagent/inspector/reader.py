"""The inspector's views, read through :class:`~sleepagent.store.catalog.Catalog`.

Which scopes exist, their threads, blocks, history, runs and failed pages all
come from the catalog, the one reader of a memory database (the store layout is
known in :mod:`sleepagent.store.layout` only); this module only assembles them
into :mod:`sleepagent.inspector.views`. Nothing here writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from langgraph.store.base import BaseStore

from sleepagent.inspector import views
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.scope import Scope
from sleepagent.store.catalog import Catalog, ThreadSummary

__all__ = ["RUNS_SHOWN", "InspectorReader"]

RUNS_SHOWN = 100
"""Sleep runs shown per scope, newest first."""


class InspectorReader:
    """Builds the inspector's views from a LangGraph store.

    Args:
        store: The store the agent writes (SQLite, PostgreSQL or LangGraph Server's).
        declared: The agent's declared blocks, so unwritten ones show with their
            defaults and limits; empty shows what is stored, as stored.

    """

    def __init__(self, store: BaseStore, declared: Sequence[MemoryBlock] = ()) -> None:
        self.catalog = Catalog(store)
        self.declared = tuple(declared)

    async def overview(self) -> views.Overview:
        """The scope list, with the most recent runs over every scope."""
        threads = await self.catalog.athreads()
        scopes = await self.catalog.aknown_scopes(threads)
        details = await asyncio.gather(*(self._detail(scope, threads) for scope in scopes))
        return views.overview(
            (detail.summary for detail in details),
            (run for detail in details for run in detail.runs),
        )

    async def scope(self, key: str) -> views.ScopeDetail:
        """Everything about one scope.

        Raises:
            ValueError: If ``key`` is not ``thread:<id>`` or ``user:<id>``.

        """
        scope = Scope.parse(key)
        return await self._detail(scope, await self.catalog.athreads(scope=scope))

    async def _detail(self, scope: Scope, threads: Sequence[ThreadSummary]) -> views.ScopeDetail:
        catalog = self.catalog
        blocks = await catalog.ablocks(scope, declared=self.declared)
        histories = {
            block.label: [step.entry for step in await catalog.ahistory(scope, block.label)]
            for block in blocks
        }
        records = await catalog.aruns(scope, limit=RUNS_SHOWN)
        failed = [views.FailedPageView.of(page) for page in await catalog.afailed_pages(scope)]
        runs = [views.RunView.of(record) for record in records]
        running = await catalog.arunning(scope)
        timeline = views.timeline(histories, records)
        thread_views = views.thread_views([t for t in threads if t.scope == scope.key])
        return views.ScopeDetail(
            summary=views.summarize(scope.key, thread_views, timeline, runs, failed, running),
            blocks=tuple(views.BlockView.of(block) for block in blocks),
            timeline=timeline,
            threads=thread_views,
            runs=tuple(runs),
            failed=tuple(failed),
        )
