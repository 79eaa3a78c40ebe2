"""A read-only view of a memory database: its scopes, threads, blocks and block history.

Every reader of a memory database goes through it: ``sleepagent memory`` and the
web memory inspector (:mod:`sleepagent.inspector.reader` is a view over it). It
works on any LangGraph ``BaseStore`` an agent writes to, through
:class:`~sleepagent.memory.blockstore.BlockStore`'s public reads and a listing of
the scopes' namespaces that :mod:`sleepagent.store.layout` builds and decodes; it
never writes. Every method has an async twin whose name starts with ``a``.

Example::

    with open_persistence("bot.db") as (_, store):
        for summary in Catalog(store).scopes():
            print(summary.scope.key, summary.pending, summary.usage["sleep"].total_tokens)
            if summary.running:
                print("  running since", summary.running.started_at)
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from langgraph.store.base import BaseStore, Op, Result

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import ActiveRun, BlockStore, HistoryEntry, ThreadPosition
from sleepagent.results import BlockDiff, FailedPage, RunRecord
from sleepagent.scope import Scope
from sleepagent.store import layout
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.usage import Phase, Usage

__all__ = ["Catalog", "HistoryStep", "ScopeSummary", "ThreadSummary"]


T = TypeVar("T")
_Plan = Generator[list[Op], list[Result], T]


def _no_usage() -> dict[Phase, Usage]:
    return {"chat": Usage(), "sleep": Usage()}


@dataclass(frozen=True)
class ThreadSummary:
    """One conversation: where its log stands and what it cost.

    Attributes:
        thread_id: The conversation.
        scope: Key of the memory scope the thread is used with (``user:ada``).
        head: Sequence number of the newest log entry.
        watermark: Sequence number of the last entry a sleep run processed.
        last_at: When the newest entry was logged (ISO 8601), if known.
        usage: Tokens spent on the thread, per phase.

    """

    thread_id: str
    scope: str | None
    head: int
    watermark: int
    last_at: str | None
    usage: Mapping[Phase, Usage] = field(default_factory=_no_usage)

    @property
    def pending(self) -> int:
        """Log entries no sleep run has processed yet."""
        return max(0, self.head - self.watermark)


@dataclass(frozen=True)
class ScopeSummary:
    """One memory scope: its stored blocks, its threads and its last sleep run.

    Attributes:
        scope: The scope.
        labels: Labels of the blocks stored for it (never-written blocks are not stored).
        updated_at: When a block of the scope was last written (ISO 8601).
        threads: Its conversations, least recently active first.
        last_run: Its latest sleep run, with how it ended, if any ran.
        failed_pages: Transcript pages sleep-time compute gave up on after retries.
        running: Its sleep run in flight (thread, reason, start), if one holds the
            scope's run lock now.

    """

    scope: Scope
    labels: tuple[str, ...]
    updated_at: str | None
    threads: tuple[ThreadSummary, ...]
    last_run: RunRecord | None
    failed_pages: tuple[FailedPage, ...] = ()
    running: ActiveRun | None = None

    @property
    def pending(self) -> int:
        """Log entries of its threads that no sleep run has processed yet."""
        return sum(thread.pending for thread in self.threads)

    @property
    def last_activity(self) -> str | None:
        """The latest of its last block write and its threads' last messages."""
        stamps = [self.updated_at, *(thread.last_at for thread in self.threads)]
        return max((stamp for stamp in stamps if stamp), default=None)

    @property
    def usage(self) -> dict[Phase, Usage]:
        """Tokens spent on its threads, per phase."""
        total = _no_usage()
        for thread in self.threads:
            for phase in total:
                total[phase] = total[phase] + thread.usage.get(phase, Usage())
        return total


@dataclass(frozen=True)
class HistoryStep:
    """One committed version of a block and how it differs from the one before.

    Attributes:
        entry: The version as history records it (who wrote it, when, why).
        diff: The change from the previous version (from ``""`` for the first).

    """

    entry: HistoryEntry
    diff: BlockDiff


class Catalog:
    """Read-only queries over the memory an agent keeps in a LangGraph store.

    Args:
        store: The store the agent writes to (in-memory, SQLite, PostgreSQL, ...).

    """

    def __init__(self, store: BaseStore) -> None:
        self.store = store
        # No declared blocks: only what is stored is reported.
        self._blocks = BlockStore(store, ())

    # --- sync ------------------------------------------------------------------

    def threads(self, *, scope: Scope | None = None) -> list[ThreadSummary]:
        """Every thread that logged a message, least recently active first.

        Args:
            scope: Only the threads used with this memory scope.

        """
        positions = _of_scope(self._blocks.positions(), scope)
        return [_thread(p, self._blocks.usage(p.thread_id)) for p in positions]

    def known_scopes(self, threads: Iterable[ThreadSummary] | None = None) -> list[Scope]:
        """Every memory scope with anything stored or a thread, ordered by key.

        Args:
            threads: What :meth:`threads` returned, when the caller has it
                already (a scope whose threads talked but never had a sleep run
                is known from its threads only); read again when omitted.

        """
        listed = self._run(_listed_scopes_plan())
        return _known(listed, self.threads() if threads is None else threads)

    def scopes(self) -> list[ScopeSummary]:
        """Every memory scope with stored blocks or threads, most recently active first."""
        threads = self.threads()
        scopes = self.known_scopes(threads)
        return _ordered([self._summary(scope, threads) for scope in scopes])

    def scope(self, scope: Scope) -> ScopeSummary | None:
        """The summary of one scope, or ``None`` when the store knows nothing of it."""
        summary = self._summary(scope, self.threads())
        return summary if summary.labels or summary.threads else None

    def blocks(self, scope: Scope, *, declared: Sequence[MemoryBlock] = ()) -> list[MemoryBlock]:
        """The scope's stored blocks; with ``declared``, an agent's blocks overlaid on them.

        Args:
            scope: The memory scope.
            declared: The blocks an agent declares (``SleepConfig.blocks``): listed
                first and in order, with their defaults where nothing is stored.

        """
        return BlockStore(self.store, declared).load(scope)

    def history(
        self, scope: Scope, label: str, *, limit: int | None = None, before: int | None = None
    ) -> list[HistoryStep]:
        """Committed versions of a block, oldest first, each with its diff.

        ``limit`` and ``before`` read one page, as :meth:`BlockStore.history`
        does (one version more is read, for the first step's diff).
        """
        wider = None if limit is None else limit + 1
        return _page_steps(self._blocks.history(scope, label, limit=wider, before=before), limit)

    def runs(self, scope: Scope, *, limit: int = 50) -> list[RunRecord]:
        """The scope's most recent sleep runs, newest first, with how each ended."""
        return self._blocks.runs(scope, limit=limit)

    def failed_pages(self, scope: Scope) -> list[FailedPage]:
        """Transcript pages of the scope that sleep-time compute gave up on after retries."""
        return self._blocks.failed_pages(scope)

    def running(self, scope: Scope) -> ActiveRun | None:
        """The scope's sleep run in flight, in any process on the database, or ``None``.

        A run writes what it does when it takes the scope's run lock and clears it
        when it ends; a run killed before it could clear it left a free lock, so the
        lock is tried (and let go at once) to tell the two apart. Trying never
        waits: a scheduled run that finds it held at that instant is set again later.
        """
        active = self._blocks.active_run(scope)
        if active is None:
            return None
        with run_lock(self.store, scope, wait=False) as free:
            return None if free else active

    def _summary(self, scope: Scope, threads: Sequence[ThreadSummary]) -> ScopeSummary:
        blocks = self._blocks.load(scope)
        runs = self._blocks.runs(scope, limit=1)
        failed = self._blocks.failed_pages(scope)
        running = self.running(scope)
        return _scope_summary(scope, blocks, threads, runs, failed, running)

    def _run(self, plan: _Plan[T]) -> T:
        try:
            ops = next(plan)
            while True:
                ops = plan.send(self.store.batch(ops))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # --- async -----------------------------------------------------------------

    async def athreads(self, *, scope: Scope | None = None) -> list[ThreadSummary]:
        """Async :meth:`threads` (the threads' usage is read concurrently)."""
        positions = _of_scope(await self._blocks.apositions(), scope)
        usages = await asyncio.gather(*(self._blocks.ausage(p.thread_id) for p in positions))
        return [_thread(p, usage) for p, usage in zip(positions, usages, strict=True)]

    async def aknown_scopes(self, threads: Iterable[ThreadSummary] | None = None) -> list[Scope]:
        """Async :meth:`known_scopes`."""
        listed = await self._arun(_listed_scopes_plan())
        return _known(listed, await self.athreads() if threads is None else threads)

    async def ascopes(self) -> list[ScopeSummary]:
        """Async :meth:`scopes`."""
        threads = await self.athreads()
        scopes = await self.aknown_scopes(threads)
        return _ordered([await self._asummary(scope, threads) for scope in scopes])

    async def ascope(self, scope: Scope) -> ScopeSummary | None:
        """Async :meth:`scope`."""
        summary = await self._asummary(scope, await self.athreads())
        return summary if summary.labels or summary.threads else None

    async def ablocks(
        self, scope: Scope, *, declared: Sequence[MemoryBlock] = ()
    ) -> list[MemoryBlock]:
        """Async :meth:`blocks`."""
        return await BlockStore(self.store, declared).aload(scope)

    async def ahistory(
        self, scope: Scope, label: str, *, limit: int | None = None, before: int | None = None
    ) -> list[HistoryStep]:
        """Async :meth:`history`."""
        wider = None if limit is None else limit + 1
        entries = await self._blocks.ahistory(scope, label, limit=wider, before=before)
        return _page_steps(entries, limit)

    async def aruns(self, scope: Scope, *, limit: int = 50) -> list[RunRecord]:
        """Async :meth:`runs`."""
        return await self._blocks.aruns(scope, limit=limit)

    async def afailed_pages(self, scope: Scope) -> list[FailedPage]:
        """Async :meth:`failed_pages`."""
        return await self._blocks.afailed_pages(scope)

    async def arunning(self, scope: Scope) -> ActiveRun | None:
        """Async :meth:`running`."""
        active = await self._blocks.aactive_run(scope)
        if active is None:
            return None
        async with arun_lock(self.store, scope, wait=False) as free:
            return None if free else active

    async def _asummary(self, scope: Scope, threads: Sequence[ThreadSummary]) -> ScopeSummary:
        blocks = await self._blocks.aload(scope)
        runs = await self._blocks.aruns(scope, limit=1)
        failed = await self._blocks.afailed_pages(scope)
        running = await self.arunning(scope)
        return _scope_summary(scope, blocks, threads, runs, failed, running)

    async def _arun(self, plan: _Plan[T]) -> T:
        try:
            ops = next(plan)
            while True:
                ops = plan.send(await self.store.abatch(ops))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


# --- the scope listing, written once for both drivers ----------------------------


def _listed_scopes_plan() -> _Plan[set[Scope]]:
    """Every scope with a namespace in the store (blocks, history, contexts, runs, ...)."""
    found: set[Scope] = set()
    offset = 0
    while True:
        (page,) = yield [layout.list_scopes_op(offset)]
        namespaces = layout.namespaces(page)
        found.update(scope for scope in map(layout.scope_of, namespaces) if scope is not None)
        if len(namespaces) < layout.SCOPE_LIST_PAGE:
            return found
        offset += len(namespaces)


# --- pure assembly ----------------------------------------------------------------


def _of_scope(positions: list[ThreadPosition], scope: Scope | None) -> list[ThreadPosition]:
    return positions if scope is None else [p for p in positions if p.scope == scope.key]


def _thread(position: ThreadPosition, usage: Mapping[Phase, Usage]) -> ThreadSummary:
    return ThreadSummary(
        thread_id=position.thread_id,
        scope=position.scope,
        head=position.head,
        watermark=position.watermark,
        last_at=position.last_at,
        usage=dict(usage),
    )


def _known(listed: Iterable[Scope], threads: Iterable[ThreadSummary]) -> list[Scope]:
    """Scopes from the store's namespaces and from the threads bound to a scope, by key."""
    scopes = set(listed)
    scopes.update(Scope.parse(thread.scope) for thread in threads if thread.scope)
    return sorted(scopes, key=lambda scope: scope.key)


def _scope_summary(
    scope: Scope,
    blocks: Sequence[MemoryBlock],
    threads: Sequence[ThreadSummary],
    runs: Sequence[RunRecord],
    failed: Sequence[FailedPage],
    running: ActiveRun | None = None,
) -> ScopeSummary:
    stamps = [block.updated_at.isoformat() for block in blocks if block.updated_at]
    return ScopeSummary(
        scope=scope,
        labels=tuple(block.label for block in blocks),
        updated_at=max(stamps, default=None),
        threads=tuple(thread for thread in threads if thread.scope == scope.key),
        last_run=runs[0] if runs else None,
        failed_pages=tuple(failed),
        running=running,
    )


def _ordered(summaries: list[ScopeSummary]) -> list[ScopeSummary]:
    return sorted(summaries, key=lambda s: (s.last_activity or "", s.scope.key), reverse=True)


def _page_steps(entries: Sequence[HistoryEntry], limit: int | None) -> list[HistoryStep]:
    """Steps of a page read one version wider: that first version only gives the first diff."""
    if limit is None or len(entries) <= limit:
        return _steps(entries)
    return _steps(entries[1:], prior=entries[0])


def _steps(entries: Sequence[HistoryEntry], prior: HistoryEntry | None = None) -> list[HistoryStep]:
    steps = []
    before, version_before = ("", 0) if prior is None else (prior.value, prior.version)
    for entry in entries:
        diff = BlockDiff(
            label=entry.label,
            before=before,
            after=entry.value,
            version_before=version_before,
            version_after=entry.version,
        )
        steps.append(HistoryStep(entry=entry, diff=diff))
        before, version_before = entry.value, entry.version
    return steps
