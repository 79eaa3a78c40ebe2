"""What the facade returns: chat results, sleep results, block diffs and conflicts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sleepagent.usage import Usage

__all__ = ["BlockDiff", "ChatResult", "Conflict", "SleepResult"]


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
        """The change as a unified diff."""
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"{self.label}@v{self.version_before}",
            tofile=f"{self.label}@v{self.version_after}",
            n=context_lines,
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

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

    @property
    def skipped(self) -> bool:
        """True when there was nothing new to read, so no model was called."""
        return self.messages_processed == 0

    @property
    def changed(self) -> tuple[str, ...]:
        """Labels of the blocks that changed."""
        return tuple(dict.fromkeys(diff.label for diff in self.diffs))
