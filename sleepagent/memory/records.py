"""What the memory store hands back: block versions, thread positions, commit outcomes.

Plain frozen data, kept apart from :class:`~sleepagent.memory.blockstore.BlockStore`'s
operations; :mod:`sleepagent.memory.blockstore` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.transcript import LogEntry
from sleepagent.results import BlockDiff, Conflict, FailedPage
from sleepagent.usage import Usage

__all__ = [
    "ActiveRun",
    "CommitOptions",
    "CommitOutcome",
    "HistoryEntry",
    "PageAttempt",
    "ThreadPosition",
    "TurnRead",
]


@dataclass(frozen=True)
class HistoryEntry:
    """One committed version of a block.

    Attributes:
        label: The block.
        version: The version this entry created.
        value: The block's value at that version.
        run_id: The run that committed it.
        phase: ``sleep``, ``chat`` or ``user`` (written directly through the API).
        thread_id: The conversation the run was about, if any.
        at: Commit time (ISO 8601).
        reason: Why a sleep run ran (``idle``, ``max_wait``, ``manual``, ...).

    """

    label: str
    version: int
    value: str
    run_id: str
    phase: str
    thread_id: str | None
    at: str
    reason: str | None = None


@dataclass(frozen=True)
class TurnRead:
    """What a chat turn reads in its one store batch.

    Attributes:
        blocks: The scope's blocks in render order.
        head: Sequence number of the newest log entry (0 when the log is empty).
        logged_until: Id of the newest graph message the log holds, if any.
        chat_usage: The thread's chat usage so far.
        contexts: Raw context texts of the scope (only when asked for).
        logged_ids: Ids of every message the log's last turn logged (its user
            messages and its reply), oldest first.

    """

    blocks: list[MemoryBlock]
    head: int
    logged_until: str | None
    chat_usage: Usage
    contexts: list[str]
    logged_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThreadPosition:
    """Where a thread's log stands.

    Attributes:
        thread_id: The conversation.
        head: Sequence number of the newest log entry (0 when empty).
        watermark: Sequence number of the last entry a sleep run processed.
        scope: Key of the memory scope the thread was last used with.
        last_at: When the newest entry was logged (ISO 8601), if any.

    """

    thread_id: str
    head: int
    watermark: int
    scope: str | None
    last_at: str | None

    @property
    def pending(self) -> int:
        """Entries no sleep run has processed yet."""
        return max(0, self.head - self.watermark)


@dataclass(frozen=True)
class ActiveRun:
    """A sleep run that took its scope's run lock and has not ended (as it wrote at its start).

    Attributes:
        thread_id: The conversation it reads.
        reason: Why it runs (``idle``, ``manual``, ...).
        started_at: When it took the run lock (ISO 8601).

    """

    thread_id: str
    reason: str
    started_at: str

    def to_dict(self) -> dict[str, str]:
        """Plain-data form, as kept in the store."""
        return {"thread_id": self.thread_id, "reason": self.reason, "started_at": self.started_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActiveRun:
        """Inverse of :meth:`to_dict`."""
        return cls(
            thread_id=str(data["thread_id"]),
            reason=str(data["reason"]),
            started_at=str(data["started_at"]),
        )


@dataclass(frozen=True)
class PageAttempt:
    """A sleep run's attempt at one transcript page, for failure accounting at commit.

    Attributes:
        first: First log entry of the page.
        last: Last log entry of the page.
        failure: Why the page was not processed (None: it was).
        limit: Attempts after which a page that keeps failing is given up as failed.
        retry: The page is a failed page re-run on purpose (its record is
            cleared on success; the watermark is not touched).

    """

    first: int
    last: int
    failure: str | None = None
    limit: int = 1
    retry: bool = False


class CommitOptions(TypedDict, total=False):
    """Optional arguments of :meth:`BlockStore.commit`."""

    thread_id: str | None
    """The conversation the run was about."""
    allow_partial: bool
    """On conflict, still write the labels that merge cleanly (default); False writes nothing."""
    reason: str | None
    """Why the run ran, kept in block history and the watermark."""
    watermark: LogEntry | None
    """Advance the thread's watermark to this entry in the same batch."""
    sleep_usage: Usage | None
    """Add this to the thread's sleep usage in the same batch."""
    page: PageAttempt | None
    """The sleep page this commit ends; with a failure, the watermark moves only
    when the page is given up (and recorded as failed)."""


@dataclass(frozen=True)
class CommitOutcome:
    """Result of :meth:`BlockStore.commit`.

    Attributes:
        committed: Whether anything was written (blocks, watermark or usage).
        diffs: Blocks written, with before and after.
        conflicts: Labels whose edits did not apply to the current value.
        blocks: The scope's blocks after the commit.
        attempts: Failed attempts at the page so far, this one included (0 when
            the page was processed or no page was given).
        failed_page: The page, when this commit gave it up as failed.

    """

    committed: bool
    diffs: tuple[BlockDiff, ...]
    conflicts: tuple[Conflict, ...]
    blocks: tuple[MemoryBlock, ...]
    attempts: int = 0
    failed_page: FailedPage | None = None
