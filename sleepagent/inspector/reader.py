"""Read-only queries the inspector makes, through BlockStore's public methods.

Scopes are found from the store's own namespace listing (every scope that has
blocks or history) and from the threads' log heads (a scope whose threads
talked but never got a sleep run yet). Nothing here writes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from langgraph.store.base import BaseStore

from sleepagent.inspector import views
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import ROOT, BlockStore, HistoryEntry, ThreadPosition
from sleepagent.scope import Scope
from sleepagent.usage import Phase, Usage

__all__ = ["InspectorReader", "decode_label"]

_SCOPES_PREFIX = (ROOT, "scopes")
_PAGE = 100
RUNS_SHOWN = 100
"""Sleep runs shown per scope, newest first."""
_ENCODED = re.compile(r"%(25|2E|00)")
_DECODED = {"25": "%", "2E": ".", "00": "\x00"}


def decode_label(text: str) -> str:
    """Inverse of :func:`sleepagent.scope.encode_label`."""
    return _ENCODED.sub(lambda found: _DECODED[found.group(1)], text)


class InspectorReader:
    """Builds the inspector's views from a LangGraph store.

    Args:
        store: The store the agent writes (SQLite, PostgreSQL or LangGraph Server's).
        declared: The agent's declared blocks, so unwritten ones show with their
            defaults and limits; empty shows what is stored, as stored.

    """

    def __init__(self, store: BaseStore, declared: Sequence[MemoryBlock] = ()) -> None:
        self.blocks = BlockStore(store, declared)
        self.store = store

    async def scope_keys(self) -> list[str]:
        """Every scope with blocks, history or a thread, as ``kind:id`` keys."""
        keys: set[str] = set()
        offset = 0
        while True:
            found = await self.store.alist_namespaces(
                prefix=_SCOPES_PREFIX, max_depth=4, limit=_PAGE, offset=offset
            )
            for namespace in found:
                if len(namespace) == 4 and namespace[2] in ("thread", "user"):
                    keys.add(f"{namespace[2]}:{decode_label(namespace[3])}")
            if len(found) < _PAGE:
                break
            offset += _PAGE
        return sorted(keys)

    async def overview(self) -> views.Overview:
        """The scope list, with the most recent runs over every scope."""
        positions = await self.blocks.apositions()
        usages = await self._usages(positions)
        keys = set(await self.scope_keys())
        keys.update(position.scope for position in positions if position.scope)
        details = await asyncio.gather(
            *(self._detail(key, positions, usages) for key in sorted(keys))
        )
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
        positions = await self.blocks.apositions()
        usages = await self._usages([p for p in positions if p.scope == scope.key])
        return await self._detail(scope.key, positions, usages)

    async def _detail(
        self,
        key: str,
        positions: Sequence[ThreadPosition],
        usages: dict[str, dict[Phase, Usage]],
    ) -> views.ScopeDetail:
        scope = Scope.parse(key)
        blocks = await self.blocks.aload(scope)
        histories: dict[str, list[HistoryEntry]] = {}
        for block in blocks:
            histories[block.label] = await self.blocks.ahistory(scope, block.label)
        records = await self.blocks.aruns(scope, limit=RUNS_SHOWN)
        failed = [views.FailedPageView.of(page) for page in await self.blocks.afailed_pages(scope)]
        runs = [views.RunView.of(record) for record in records]
        timeline = views.timeline(histories, records)
        threads = views.thread_views([p for p in positions if p.scope == key], usages)
        return views.ScopeDetail(
            summary=views.summarize(key, threads, timeline, runs, failed),
            blocks=tuple(views.BlockView.of(block) for block in blocks),
            timeline=timeline,
            threads=threads,
            runs=tuple(runs),
            failed=tuple(failed),
        )

    async def _usages(self, positions: Sequence[ThreadPosition]) -> dict[str, dict[Phase, Usage]]:
        found = await asyncio.gather(*(self.blocks.ausage(p.thread_id) for p in positions))
        return {position.thread_id: usage for position, usage in zip(positions, found, strict=True)}
