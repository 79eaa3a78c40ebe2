"""The IdleScheduler protocol: the alarm clock that starts sleep runs.

The store is the source of truth for pending work; a scheduler only decides
*when* to look at it. It keeps at most one alarm per thread: setting a new one
replaces the old (each turn pushes the idle deadline back), and when an alarm
is due the scheduler hands its :class:`SleepJob` to the runner it was started
with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from sleepagent.scheduling.policy import Reason

__all__ = ["IdleScheduler", "JobRunner", "SleepJob"]


@dataclass(frozen=True)
class SleepJob:
    """A sleep run the scheduler should start when it is due.

    Attributes:
        thread_id: The conversation whose new messages the run reads.
        user_id: The user, for a user memory scope.
        due_at: When to start (POSIX seconds on the scheduler's clock).
        reason: Why it runs.
        attempt: 1 for the first try, then 2, 3, ... for retries after a failure.

    """

    thread_id: str
    user_id: str | None
    due_at: float
    reason: Reason
    attempt: int = 1

    def retry(self, due_at: float) -> SleepJob:
        """The next attempt of this job."""
        return replace(self, due_at=due_at, attempt=self.attempt + 1)


JobRunner = Callable[[SleepJob], Awaitable[None] | None]
"""What a scheduler calls for a due job: a function, or a coroutine function for asyncio."""


@runtime_checkable
class IdleScheduler(Protocol):
    """An alarm clock for sleep jobs, one alarm per thread."""

    def now(self) -> float:
        """The scheduler's current time, in POSIX seconds."""
        ...

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Begin calling ``runner`` for due jobs, at most ``max_concurrent`` at once.

        The scheduler is the one owner of that cap: the agent runs whatever it is handed.
        """
        ...

    def set(self, job: SleepJob) -> None:
        """Set the alarm of ``job.thread_id`` to ``job``, replacing any earlier one."""
        ...

    def cancel(self, thread_id: str) -> None:
        """Remove the alarm of a thread, if it has one."""
        ...

    def close(self) -> None:
        """Stop promptly: pending alarms are dropped (the store still has the work)."""
        ...
