"""What the inspector shows, as plain data built by pure functions.

The reader (:mod:`sleepagent.inspector.reader`) fetches store records through the
catalog; the functions here turn them into view models the templates render and
the JSON endpoints return. Nothing here does I/O, so every decision (what is pending,
which version a diff starts from, what a scope's last run was) is tested on
plain values.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import ActiveRun, HistoryEntry
from sleepagent.results import FailedPage, RunRecord
from sleepagent.store.catalog import ThreadSummary
from sleepagent.usage import Phase, Usage

__all__ = [
    "BlockView",
    "ConflictView",
    "DiffLine",
    "FailedPageView",
    "Overview",
    "PhaseTotals",
    "RunView",
    "ScopeDetail",
    "ScopeSummary",
    "ThreadView",
    "VersionView",
    "diff_lines",
    "revision",
    "to_json",
]

LineKind = Literal["add", "del", "hunk", "same"]


@dataclass(frozen=True)
class PhaseTotals:
    """Token totals of the two phases.

    Attributes:
        chat: Tokens the primary agent spent (test time).
        sleep: Tokens the sleep-time agent spent.
        chat_calls: Primary model calls.
        sleep_calls: Sleep-time model calls.

    """

    chat: int = 0
    sleep: int = 0
    chat_calls: int = 0
    sleep_calls: int = 0

    @classmethod
    def of(cls, usages: Iterable[Mapping[Phase, Usage]]) -> PhaseTotals:
        """Sum per-thread usage records."""
        chat, sleep = Usage(), Usage()
        for usage in usages:
            chat += usage["chat"]
            sleep += usage["sleep"]
        return cls(chat.total_tokens, sleep.total_tokens, chat.calls, sleep.calls)

    @property
    def total(self) -> int:
        """Both phases together."""
        return self.chat + self.sleep


@dataclass(frozen=True)
class ThreadView:
    """One conversation of a scope.

    Attributes:
        thread_id: The conversation.
        head: Newest log entry.
        watermark: Last entry a sleep run processed.
        pending: Entries no sleep run has read yet.
        last_at: When the newest entry was logged.
        usage: Tokens per phase spent on this thread.

    """

    thread_id: str
    head: int
    watermark: int
    pending: int
    last_at: str | None
    usage: PhaseTotals


@dataclass(frozen=True)
class ScopeSummary:
    """One row of the scope list.

    Attributes:
        key: ``user:<id>`` or ``thread:<id>``.
        kind: ``user`` or ``thread``.
        id: The user or thread id.
        threads: How many conversations wrote to this scope.
        pending: Log entries no sleep run has processed, over its threads.
        last_activity: Newest log entry of its threads.
        last_run: When a sleep run last committed to its blocks.
        last_run_reason: Why that run ran.
        versions: Block versions committed so far.
        usage: Tokens per phase over its threads.
        last_outcome: How the last sleep run ended, when run records exist.
        failed_pages: Transcript pages whose sleep runs keep failing.
        running_since: When the scope's sleep run in flight started, if one runs now.
        running_reason: Why that run runs.

    """

    key: str
    kind: str
    id: str
    threads: int
    pending: int
    last_activity: str | None
    last_run: str | None
    last_run_reason: str | None
    versions: int
    usage: PhaseTotals
    last_outcome: str | None = None
    failed_pages: int = 0
    running_since: str | None = None
    running_reason: str | None = None


@dataclass(frozen=True)
class Overview:
    """The scope list.

    Attributes:
        scopes: One summary per scope, most recently active first.
        usage: Tokens per phase over every thread.
        pending: Pending log entries over every thread.
        failed_pages: Failed transcript pages over every scope.
        runs: The most recent sleep runs over every scope, newest first.

    """

    scopes: tuple[ScopeSummary, ...]
    usage: PhaseTotals
    pending: int
    failed_pages: int = 0
    runs: tuple[RunView, ...] = ()


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff.

    Attributes:
        kind: ``add``, ``del``, ``hunk`` (a ``@@`` header) or ``same``.
        text: The line, without its newline.

    """

    kind: LineKind
    text: str


@dataclass(frozen=True)
class BlockView:
    """A block as it is now.

    Attributes:
        label: The block.
        value: Its text.
        chars: Characters used.
        limit: Character limit.
        read_only: Whether edits are refused.
        version: Committed version (0: never written).
        updated_at: When it was last written.
        description: What the block is for.

    """

    label: str
    value: str
    chars: int
    limit: int
    read_only: bool
    version: int
    updated_at: str | None
    description: str

    @property
    def fill(self) -> float:
        """Share of the limit in use, 0 to 1."""
        return min(1.0, self.chars / self.limit) if self.limit else 1.0

    @classmethod
    def of(cls, block: MemoryBlock) -> BlockView:
        """View of a stored block."""
        return cls(
            label=block.label,
            value=block.value,
            chars=len(block.value),
            limit=block.limit,
            read_only=block.read_only,
            version=block.version,
            updated_at=block.updated_at.isoformat() if block.updated_at else None,
            description=block.description,
        )


@dataclass(frozen=True)
class ConflictView:
    """Edits a run dropped.

    Attributes:
        label: The block.
        reason: Why they no longer applied.

    """

    label: str
    reason: str


@dataclass(frozen=True)
class RunView:
    """One sleep run.

    Attributes:
        run_id: The run.
        scope: Key of the memory scope it wrote.
        thread_id: The conversation it read.
        reason: Why it ran.
        outcome: How it ended.
        started_at: Start time.
        finished_at: End time.
        duration: Seconds it took.
        messages: Transcript entries it read.
        pages: Transcript pages it processed.
        steps: Sleep-time model calls.
        tokens: Tokens the sleep-time model spent.
        changed: Labels of the blocks it changed.
        conflicts: Edits it dropped.
        error: What went wrong, for a failed run.

    """

    run_id: str
    scope: str
    thread_id: str | None
    reason: str
    outcome: str
    started_at: str
    finished_at: str
    duration: float
    messages: int
    pages: int
    steps: int
    tokens: int
    changed: tuple[str, ...] = ()
    conflicts: tuple[ConflictView, ...] = ()
    error: str | None = None

    @classmethod
    def of(cls, record: RunRecord) -> RunView:
        """View of a stored run record."""
        return cls(
            run_id=record.run_id,
            scope=record.scope,
            thread_id=record.thread_id,
            reason=record.reason,
            outcome=record.outcome.value,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration=record.duration,
            messages=record.messages,
            pages=record.pages,
            steps=record.steps,
            tokens=record.usage.total_tokens,
            changed=tuple(dict.fromkeys(diff.label for diff in record.diffs)),
            conflicts=tuple(ConflictView(c.label, c.reason) for c in record.conflicts),
            error=record.error,
        )


@dataclass(frozen=True)
class FailedPageView:
    """A transcript page whose sleep runs keep failing.

    Attributes:
        thread_id: The conversation.
        span: Which log entries (``first-last``).
        attempts: Runs that failed on it.
        error: The last error.
        at: When it last failed.

    """

    thread_id: str
    span: str
    attempts: int
    error: str
    at: str | None

    @classmethod
    def of(cls, page: FailedPage) -> FailedPageView:
        """View of a stored failed page."""
        span = f"{page.first_seq}-{page.last_seq}" if page.last_seq != page.first_seq else ""
        return cls(
            page.thread_id, span or str(page.first_seq), page.attempts, page.error, page.failed_at
        )


@dataclass(frozen=True)
class VersionView:
    """One committed version of a block, with the change that made it.

    Attributes:
        label: The block.
        version: The version this commit created.
        at: Commit time.
        phase: ``sleep``, ``chat`` or ``user``.
        run_id: The run that committed it.
        reason: Why that run ran.
        thread_id: The conversation the run read.
        value: The block's value at this version.
        diff: Unified diff from the previous version.
        added: Lines added.
        removed: Lines removed.
        run: The run that committed it, when run records exist.

    """

    label: str
    version: int
    at: str
    phase: str
    run_id: str
    reason: str | None
    thread_id: str | None
    value: str
    diff: tuple[DiffLine, ...]
    added: int
    removed: int
    run: RunView | None = None


@dataclass(frozen=True)
class ScopeDetail:
    """Everything the page shows about one scope.

    Attributes:
        summary: The scope's row of the scope list.
        blocks: Current blocks, in render order.
        timeline: Every committed version of every block, newest first.
        threads: Its conversations, most recently active first.
        runs: Its sleep runs, newest first.
        failed: Its failed transcript pages.

    """

    summary: ScopeSummary
    blocks: tuple[BlockView, ...]
    timeline: tuple[VersionView, ...]
    threads: tuple[ThreadView, ...] = ()
    runs: tuple[RunView, ...] = ()
    failed: tuple[FailedPageView, ...] = ()

    @property
    def known(self) -> bool:
        """Whether the store holds anything of this scope: a thread, a write, a run, a failed page.

        Declared blocks shown with their defaults do not count: they are the
        agent's, not the database's.
        """
        written = any(block.version for block in self.blocks)
        return bool(self.threads or self.timeline or self.runs or self.failed or written)

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels that appear in the timeline, in block order."""
        seen = {version.label for version in self.timeline}
        return tuple(block.label for block in self.blocks if block.label in seen)


def diff_lines(before: str, after: str) -> tuple[DiffLine, ...]:
    """The change from ``before`` to ``after`` as classified unified-diff lines."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), n=2, lineterm="", fromfile="a", tofile="b"
    )
    out: list[DiffLine] = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind: LineKind = "same"
        if line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        out.append(DiffLine(kind, line))
    return tuple(out)


def thread_views(threads: Sequence[ThreadSummary]) -> tuple[ThreadView, ...]:
    """Views of threads, most recently active first."""
    views = [
        ThreadView(
            thread_id=thread.thread_id,
            head=thread.head,
            watermark=thread.watermark,
            pending=thread.pending,
            last_at=thread.last_at,
            usage=PhaseTotals.of([thread.usage]),
        )
        for thread in threads
    ]
    return tuple(sorted(views, key=lambda view: view.last_at or "", reverse=True))


def timeline(
    histories: Mapping[str, Sequence[HistoryEntry]], runs: Sequence[RunRecord] = ()
) -> tuple[VersionView, ...]:
    """Every version of every block, newest first, each diffed against the version before.

    A version's run (when its record is kept) gives its outcome and tokens, and
    the value the block had before that commit: for a first version that is the
    declared default, which block history itself does not keep (without a
    record the first version is diffed against the empty text).
    """
    views_by_id = {run.run_id: RunView.of(run) for run in runs}
    before_of = {
        (diff.label, diff.version_after): diff.before for run in runs for diff in run.diffs
    }
    versions: list[VersionView] = []
    for label, entries in histories.items():
        previous = ""
        for entry in sorted(entries, key=lambda entry: entry.version):
            previous = before_of.get((label, entry.version), previous)
            diff = diff_lines(previous, entry.value)
            versions.append(
                VersionView(
                    label=label,
                    version=entry.version,
                    at=entry.at,
                    phase=entry.phase,
                    run_id=entry.run_id,
                    reason=entry.reason,
                    thread_id=entry.thread_id,
                    value=entry.value,
                    diff=diff,
                    added=sum(line.kind == "add" for line in diff),
                    removed=sum(line.kind == "del" for line in diff),
                    run=views_by_id.get(entry.run_id),
                )
            )
            previous = entry.value
    return tuple(sorted(versions, key=lambda view: (view.at, view.label), reverse=True))


def summarize(
    key: str,
    threads: Sequence[ThreadView],
    versions: Sequence[VersionView],
    runs: Sequence[RunView] = (),
    failed: Sequence[FailedPageView] = (),
    running: ActiveRun | None = None,
) -> ScopeSummary:
    """A scope's row of the scope list, from its threads, block versions, runs and failures.

    The last run is the newest run record; without records (a store written
    before runs were recorded), the newest version a sleep run committed.
    """
    kind, _, scope_id = key.partition(":")
    newest = max(runs, key=lambda run: run.finished_at, default=None)
    sleep_versions = [version for version in versions if version.phase == "sleep"]
    last = max(sleep_versions, key=lambda version: version.at, default=None)
    last_run: str | None = None
    last_reason: str | None = None
    last_outcome: str | None = None
    if newest is not None:
        last_run, last_reason, last_outcome = newest.finished_at, newest.reason, newest.outcome
    elif last is not None:
        last_run, last_reason = last.at, last.reason
    return ScopeSummary(
        key=key,
        kind=kind,
        id=scope_id,
        threads=len(threads),
        pending=sum(thread.pending for thread in threads),
        last_activity=max((t.last_at for t in threads if t.last_at), default=None),
        last_run=last_run,
        last_run_reason=last_reason,
        versions=len(versions),
        usage=_add_totals(thread.usage for thread in threads),
        last_outcome=last_outcome,
        failed_pages=len(failed),
        running_since=running.started_at if running else None,
        running_reason=running.reason if running else None,
    )


def overview(
    summaries: Iterable[ScopeSummary], runs: Iterable[RunView] = (), *, recent: int = 500
) -> Overview:
    """The scope list, most recently active first (a scope with pending work before).

    ``runs`` are the scopes' runs; the ``recent`` newest are kept.
    """
    ordered = sorted(
        summaries,
        key=lambda s: (s.pending > 0, max(s.last_activity or "", s.last_run or ""), s.key),
        reverse=True,
    )
    return Overview(
        scopes=tuple(ordered),
        usage=_add_totals(summary.usage for summary in ordered),
        pending=sum(summary.pending for summary in ordered),
        failed_pages=sum(summary.failed_pages for summary in ordered),
        runs=tuple(sorted(runs, key=lambda run: run.finished_at, reverse=True)[:recent]),
    )


def to_json(view: Any) -> Any:
    """Plain JSON data of a view model."""
    return asdict(view)


def revision(view: Any) -> str:
    """A short digest of a view: equal digests, equal pages (the live refresh compares them)."""
    text = json.dumps(to_json(view), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _add_totals(totals: Iterable[PhaseTotals]) -> PhaseTotals:
    chat = sleep = chat_calls = sleep_calls = 0
    for item in totals:
        chat += item.chat
        sleep += item.sleep
        chat_calls += item.chat_calls
        sleep_calls += item.sleep_calls
    return PhaseTotals(chat, sleep, chat_calls, sleep_calls)
