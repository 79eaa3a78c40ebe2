"""A read-only view of a memory database: its scopes, threads, blocks and block history.

For tools that inspect what sleep-time compute did (``sleepagent memory``, a web
memory inspector). It works on any LangGraph ``BaseStore`` an agent writes to,
through :class:`~sleepagent.memory.blockstore.BlockStore`'s public reads and the store's
own ``list_namespaces``; it never writes. Every method has an async twin whose
name starts with ``a``.

Example::

    with open_persistence("bot.db") as (_, store):
        for summary in Catalog(store).scopes():
            print(summary.scope.key, summary.pending, summary.usage["sleep"].total_tokens)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from langgraph.store.base import BaseStore

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import ROOT, BlockStore, HistoryEntry, ThreadPosition
from sleepagent.results import BlockDiff, FailedPage, RunRecord
from sleepagent.scope import Scope
from sleepagent.usage import Phase, Usage

__all__ = ["Catalog", "HistoryStep", "ScopeSummary", "ThreadSummary"]

_PAGE = 100
_SCOPE_DEPTH = 4  # (ROOT, "scopes", kind, id)


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

    """

    scope: Scope
    labels: tuple[str, ...]
    updated_at: str | None
    threads: tuple[ThreadSummary, ...]
    last_run: RunRecord | None
    failed_pages: tuple[FailedPage, ...] = ()

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

    def threads(self) -> list[ThreadSummary]:
        """Every thread that logged a message, least recently active first."""
        positions = self._blocks.positions()
        return [_thread(p, self._blocks.usage(p.thread_id)) for p in positions]

    def scopes(self) -> list[ScopeSummary]:
        """Every memory scope with stored blocks or threads, most recently active first."""
        threads = self.threads()
        keys = _scope_keys(self._scope_namespaces(), threads)
        return _ordered([self._summary(Scope.parse(key), threads) for key in keys])

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

    def _summary(self, scope: Scope, threads: Sequence[ThreadSummary]) -> ScopeSummary:
        blocks = self._blocks.load(scope)
        runs = self._blocks.runs(scope, limit=1)
        failed = self._blocks.failed_pages(scope)
        return _scope_summary(scope, blocks, threads, runs, failed)

    def _scope_namespaces(self) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        while True:
            page = self.store.list_namespaces(
                prefix=(ROOT, "scopes"), max_depth=_SCOPE_DEPTH, limit=_PAGE, offset=len(found)
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found

    # --- async -----------------------------------------------------------------

    async def athreads(self) -> list[ThreadSummary]:
        """Async :meth:`threads`."""
        positions = await self._blocks.apositions()
        return [_thread(p, await self._blocks.ausage(p.thread_id)) for p in positions]

    async def ascopes(self) -> list[ScopeSummary]:
        """Async :meth:`scopes`."""
        threads = await self.athreads()
        keys = _scope_keys(await self._ascope_namespaces(), threads)
        return _ordered([await self._asummary(Scope.parse(key), threads) for key in keys])

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

    async def _asummary(self, scope: Scope, threads: Sequence[ThreadSummary]) -> ScopeSummary:
        blocks = await self._blocks.aload(scope)
        runs = await self._blocks.aruns(scope, limit=1)
        failed = await self._blocks.afailed_pages(scope)
        return _scope_summary(scope, blocks, threads, runs, failed)

    async def _ascope_namespaces(self) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        while True:
            page = await self.store.alist_namespaces(
                prefix=(ROOT, "scopes"), max_depth=_SCOPE_DEPTH, limit=_PAGE, offset=len(found)
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found


# --- pure assembly ----------------------------------------------------------------


def _thread(position: ThreadPosition, usage: Mapping[Phase, Usage]) -> ThreadSummary:
    return ThreadSummary(
        thread_id=position.thread_id,
        scope=position.scope,
        head=position.head,
        watermark=position.watermark,
        last_at=position.last_at,
        usage=dict(usage),
    )


def _scope_keys(
    namespaces: Iterable[tuple[str, ...]], threads: Iterable[ThreadSummary]
) -> list[str]:
    """Scope keys from the store's namespaces and from the threads bound to a scope."""
    keys = {
        f"{namespace[2]}:{unquote(namespace[3])}"
        for namespace in namespaces
        if len(namespace) >= _SCOPE_DEPTH and namespace[2] in ("thread", "user")
    }
    keys.update(thread.scope for thread in threads if thread.scope)
    return sorted(keys)


def _scope_summary(
    scope: Scope,
    blocks: Sequence[MemoryBlock],
    threads: Sequence[ThreadSummary],
    runs: Sequence[RunRecord],
    failed: Sequence[FailedPage],
) -> ScopeSummary:
    stamps = [block.updated_at.isoformat() for block in blocks if block.updated_at]
    return ScopeSummary(
        scope=scope,
        labels=tuple(block.label for block in blocks),
        updated_at=max(stamps, default=None),
        threads=tuple(thread for thread in threads if thread.scope == scope.key),
        last_run=runs[0] if runs else None,
        failed_pages=tuple(failed),
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
