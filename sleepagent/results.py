"""What the facade returns: chat results, sleep results, block diffs and conflicts."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sleepagent.usage import Usage

__all__ = [
    "BlockDiff",
    "ChatResult",
    "Conflict",
    "FailedPage",
    "Forgotten",
    "ImportResult",
    "RunRecord",
    "SleepOutcome",
    "SleepResult",
]


class SleepOutcome(enum.Enum):
    """How a sleep run (or one transcript page of it) ended.

    Only ``EDITED``, ``UNCHANGED`` and ``CONFLICTED`` count the page as
    processed (the watermark moves past it). The others mean the model made no
    usable edit without saying it had nothing to add: the page stays pending,
    the attempt is counted, and after ``SleepConfig.sleep_retries`` further
    attempts the page is recorded as failed (see :class:`FailedPage`) and the
    watermark moves on, so later messages are still processed.
    """

    EDITED = "edited"
    """At least one edit was committed."""
    UNCHANGED = "unchanged"
    """The model called ``memory_finish`` without changing anything: nothing worth keeping."""
    CONFLICTED = "conflicted"
    """Every accepted edit was dropped because memory changed under it (reported as conflicts)."""
    NO_TOOL_CALL = "no_tool_call"
    """The model answered in plain text without any memory tool call."""
    ONLY_REFUSED = "only_refused_edits"
    """Every edit the model tried was refused (limit, read-only, unknown block, bad arguments)."""
    MALFORMED = "malformed_text"
    """In the text format, the reply held no usable block, even after one repair round."""
    STEP_BUDGET = "step_budget_spent"
    """The step budget ran out before any edit was accepted or ``memory_finish`` was called."""
    NOTHING_NEW = "nothing_new"
    """There was nothing new to read; no model was called."""

    @property
    def processed(self) -> bool:
        """Whether a page with this outcome counts as processed (the watermark moves past it)."""
        return self in _PROCESSED


_PROCESSED = frozenset({SleepOutcome.EDITED, SleepOutcome.UNCHANGED, SleepOutcome.CONFLICTED})


@dataclass(frozen=True)
class BlockDiff:
    """How one block changed in a commit.

    Attributes:
        label: The block.
        before: Value before the commit.
        after: Value after the commit.
        version_before: Version before the commit (0 for a never-written block).
        version_after: Version the commit created.
        reapplied: Whether the edits were re-applied on a version the run had not seen.

    """

    label: str
    before: str
    after: str
    version_before: int
    version_after: int
    reapplied: bool = False

    def unified(self, context_lines: int = 3) -> str:
        """The change as a unified diff, one line per line of text, each ending in a newline.

        Lines are compared without their line ends: a value's last line has none,
        and a line added after it must not show that unchanged line as removed
        and added again.
        """
        lines = difflib.unified_diff(
            self.before.splitlines(),
            self.after.splitlines(),
            fromfile=f"{self.label}@v{self.version_before}",
            tofile=f"{self.label}@v{self.version_after}",
            n=context_lines,
            lineterm="",
        )
        return "".join(f"{line}\n" for line in lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "label": self.label,
            "before": self.before,
            "after": self.after,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "reapplied": self.reapplied,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockDiff:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class Conflict:
    """Edits dropped because the block changed under them and they no longer applied.

    Attributes:
        label: The block.
        reason: Why the edits could not be re-applied.
        dropped: The dropped edits, as plain data.
        seen_version: The version the run had read.
        current_version: The version it found at commit time.

    """

    label: str
    reason: str
    dropped: tuple[dict[str, Any], ...]
    seen_version: int
    current_version: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "label": self.label,
            "reason": self.reason,
            "dropped": list(self.dropped),
            "seen_version": self.seen_version,
            "current_version": self.current_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conflict:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "dropped": tuple(data["dropped"])})


@dataclass(frozen=True)
class ChatResult:
    """The primary agent's answer to one user turn.

    Attributes:
        reply: The reply text.
        usage: Tokens spent on this turn (phase ``chat``).
        thread_id: The conversation.
        scope: Key of the memory scope the turn read, e.g. ``user:alice``.
        diffs: Memory changes made by the primary agent itself (only with ``chat_memory_tools``).

    """

    reply: str
    usage: Usage
    thread_id: str
    scope: str
    diffs: tuple[BlockDiff, ...] = ()


@dataclass(frozen=True)
class SleepResult:
    """What one sleep run did.

    Attributes:
        run_id: Unique id of the run; block history records it.
        thread_id: The conversation whose transcript was read.
        scope: Key of the memory scope whose blocks were written.
        reason: Why it ran (``manual``, ``context``, ``idle``, ...).
        diffs: One entry per block the run changed, in commit order.
        conflicts: Edits that were finally dropped (see DESIGN invariant 2).
        usage: Tokens the sleep-time model spent.
        messages_processed: Transcript entries read by this run.
        pages: Transcript pages processed (one commit each).
        steps: Sleep-time model calls made.
        watermark: Log position the thread's watermark now stands at.
        outcome: How the run ended (see :class:`SleepOutcome`); for a run over
            several pages, the first page that was not processed decides, else
            ``EDITED`` when any page was edited.
        failed_pages: Pages this run gave up on and recorded as failed.
        covered: False when the run ended on a page it left pending (an outcome
            that does not count as processed); that page is tried again later.
        text_fallback: The sleep model answered a tool prompt with no tool call
            (``SleepEditMode.AUTO``), so this run and the agent's next
            ``text_fallback_runs`` runs write memory in the text format.
        reasoning: The text of each reasoning-pass sample, in the order they
            were made (``sleep_samples`` per page that had a pass): what the
            model worked out before the learned context was written.
            :func:`sleepagent.sleep.thinking.agreed_lines` of any of them gives
            the lines they would have written.

    """

    run_id: str
    thread_id: str
    scope: str
    reason: str
    diffs: tuple[BlockDiff, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    usage: Usage = field(default_factory=Usage)
    messages_processed: int = 0
    pages: int = 0
    steps: int = 0
    watermark: int = 0
    outcome: SleepOutcome = SleepOutcome.NOTHING_NEW
    failed_pages: tuple[FailedPage, ...] = ()
    covered: bool = True
    text_fallback: bool = False
    reasoning: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        """True when there was nothing new to read, so no model was called."""
        return self.messages_processed == 0

    @property
    def changed(self) -> tuple[str, ...]:
        """Labels of the blocks that changed."""
        return tuple(dict.fromkeys(diff.label for diff in self.diffs))


@dataclass(frozen=True)
class ImportResult:
    """What ``import_messages`` wrote.

    Attributes:
        thread_id: The conversation the messages were logged to.
        scope: Key of the memory scope the thread belongs to.
        messages: Messages logged.
        first_seq: Log position of the first of them.
        last_seq: Log position of the last of them (the thread's new head).
        sleep: The sleep run made over them at once (``sleep=True``), else ``None``:
            the idle timer covers them like a chat turn.

    """

    thread_id: str
    scope: str
    messages: int
    first_seq: int
    last_seq: int
    sleep: SleepResult | None = None


@dataclass(frozen=True)
class FailedPage:
    """A transcript page that sleep-time compute gave up on after its retries.

    The timer no longer retries it; later messages are processed as usual.
    Re-run it on purpose with ``retry_failed()`` on the agent.

    Attributes:
        thread_id: The conversation.
        scope: Key of the memory scope.
        first_seq: First log entry of the page.
        last_seq: Last log entry of the page.
        error: What went wrong the last time (an outcome or an exception).
        attempts: Attempts made.
        failed_at: When it was recorded (ISO 8601).

    """

    thread_id: str
    scope: str
    first_seq: int
    last_seq: int
    error: str
    attempts: int
    failed_at: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "thread_id": self.thread_id,
            "scope": self.scope,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailedPage:
        """Inverse of :meth:`to_dict`."""
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Forgotten:
    """What a ``forget`` call removed.

    Attributes:
        scope: Key of the memory scope (``user:ada``, ``thread:t1``).
        threads: The conversations whose transcript log, records (watermark,
            pending work, usage) and checkpoints were removed, sorted.
        whole_scope: True when the scope's memory went too: blocks, their
            history, raw contexts, runs and failed pages.
        items: Records removed from the store, recall rows included (checkpoints
            not counted).

    """

    scope: str
    threads: tuple[str, ...]
    whole_scope: bool
    items: int


@dataclass(frozen=True)
class RunRecord:
    """A sleep run as kept in the store, for inspection after the fact.

    Attributes:
        run_id: The run.
        scope: Key of the memory scope.
        thread_id: The conversation it read.
        reason: Why it ran.
        outcome: How it ended (so far, while it is still running).
        started_at: When its first page was read (ISO 8601).
        finished_at: When its last commit happened (ISO 8601).
        messages: Transcript entries covered.
        pages: Pages committed.
        steps: Sleep-time model calls.
        usage: Tokens spent.
        diffs: Blocks changed.
        conflicts: Edits dropped.
        error: Why the run's last page failed, if it did.

    """

    run_id: str
    scope: str
    thread_id: str
    reason: str
    outcome: SleepOutcome
    started_at: str
    finished_at: str
    messages: int = 0
    pages: int = 0
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    diffs: tuple[BlockDiff, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    error: str | None = None

    @property
    def duration(self) -> float:
        """Seconds from the first page read to the last commit."""
        from datetime import datetime

        start = datetime.fromisoformat(self.started_at)
        return (datetime.fromisoformat(self.finished_at) - start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as kept in the store."""
        return {
            "run_id": self.run_id,
            "scope": self.scope,
            "thread_id": self.thread_id,
            "reason": self.reason,
            "outcome": self.outcome.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "messages": self.messages,
            "pages": self.pages,
            "steps": self.steps,
            "usage": self.usage.to_dict(),
            "diffs": [diff.to_dict() for diff in self.diffs],
            "conflicts": [conflict.to_dict() for conflict in self.conflicts],
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            run_id=data["run_id"],
            scope=data["scope"],
            thread_id=data["thread_id"],
            reason=data["reason"],
            outcome=SleepOutcome(data["outcome"]),
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            messages=data.get("messages", 0),
            pages=data.get("pages", 0),
            steps=data.get("steps", 0),
            usage=Usage.from_dict(data.get("usage")),
            diffs=tuple(BlockDiff.from_dict(diff) for diff in data.get("diffs", ())),
            conflicts=tuple(Conflict.from_dict(item) for item in data.get("conflicts", ())),
            error=data.get("error"),
        )
