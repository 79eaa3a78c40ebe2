"""Bookkeeping between turns and sleep runs: alarms, one run per scope, retries.

The coordinator never calls a model or the store; the agent does, and tells
the coordinator what happened. That keeps this logic the same for the sync and
async agents, and testable on virtual time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sleepagent.config import SleepConfig
from sleepagent.memory.blockstore import ThreadPosition
from sleepagent.scheduling.base import IdleScheduler, SleepJob
from sleepagent.scheduling.events import EventKind, SleepEvents, event_for
from sleepagent.scheduling.policy import (
    Reason,
    ThreadActivity,
    backoff_delay,
    due_after_turn,
    recovery_due,
)
from sleepagent.scope import Scope

__all__ = ["Claim", "SleepCoordinator"]


@dataclass(frozen=True)
class Claim:
    """A scope reserved for one scheduled run.

    Attributes:
        job: The job being run.
        scope: The memory scope it writes.
        turns: Uncovered turns of the thread when the run started.
        started_at: When the run started.

    """

    job: SleepJob
    scope: Scope
    turns: int
    started_at: float


class SleepCoordinator:
    """Turns user turns into alarms, and alarms into at most one run per scope.

    Args:
        config: Trigger and retry settings.
        scheduler: The alarm clock.
        events: Where events go.
        scope_of: The memory scope of ``(thread_id, user_id)``.

    """

    def __init__(
        self,
        config: SleepConfig,
        scheduler: IdleScheduler,
        events: SleepEvents,
        scope_of: Callable[[str, str | None], Scope],
    ) -> None:
        self._config = config
        self._scheduler = scheduler
        self._events = events
        self._scope_of = scope_of
        self._lock = threading.Lock()
        self._activity: dict[str, ThreadActivity] = {}
        self._running: dict[str, Claim] = {}
        self._deferred: dict[str, dict[str, SleepJob]] = {}

    def now(self) -> float:
        """The scheduler's time."""
        return self._scheduler.now()

    def _set(self, job: SleepJob) -> None:
        self._scheduler.set(job)
        self._emit(EventKind.SCHEDULED, job)

    def _emit(self, kind: EventKind, job: SleepJob, **details: Any) -> None:
        if not self._events.wanted(kind):
            return
        scope = self._scope_of(job.thread_id, job.user_id)
        self._events.emit(event_for(kind, job, scope, at=self.now(), **details))

    # --- turns and start-up ----------------------------------------------------

    def on_turn(self, thread_id: str, user_id: str | None) -> SleepJob:
        """Record a turn and (re)set the thread's alarm. Costs no I/O."""
        now = self.now()
        with self._lock:
            known = self._activity.get(thread_id)
            activity = known.with_turn(now) if known else ThreadActivity(now, now, 1)
            self._activity[thread_id] = activity
        due, reason = due_after_turn(activity, self._config)
        job = SleepJob(thread_id, user_id, due, reason)
        self._set(job)
        return job

    def recover(self, positions: Iterable[ThreadPosition]) -> list[SleepJob]:
        """Set alarms for work a previous process left pending."""
        now = self.now()
        jobs = []
        for position in positions:
            if not position.pending or position.scope is None:
                continue
            scope = Scope.parse(position.scope)
            user_id = scope.id if scope.kind == "user" else None
            last = _timestamp(position.last_at)
            with self._lock:
                turns = max(1, position.pending // 2)
                self._activity.setdefault(
                    position.thread_id, ThreadActivity(last or now, last or now, turns)
                )
            job = SleepJob(
                position.thread_id,
                user_id,
                recovery_due(last, now, self._config),
                Reason.RECOVERY,
            )
            self._set(job)
            jobs.append(job)
        return jobs

    # --- scheduled runs --------------------------------------------------------

    def claim(self, job: SleepJob) -> Claim | None:
        """Reserve the job's scope, or defer the job if a run of that scope is in flight.

        A deferred job is reported as ``waiting`` and set again, due at once,
        when that run ends.
        """
        scope = self._scope_of(job.thread_id, job.user_id)
        claim: Claim | None = None
        with self._lock:
            if scope.key in self._running:
                self._deferred.setdefault(scope.key, {})[job.thread_id] = job
            else:
                activity = self._activity.get(job.thread_id)
                claim = Claim(job, scope, activity.turns if activity else 0, self.now())
                self._running[scope.key] = claim
        if claim is None:
            self._emit(EventKind.WAITING, job)  # outside the lock: subscribers may call back
        return claim

    def release(
        self,
        claim: Claim,
        *,
        covered: bool,
        error: BaseException | None = None,
        postpone: bool = False,
        retry: bool = True,
    ) -> None:
        """End a scheduled run: account for what it covered, retry on error, resume deferred jobs.

        Args:
            claim: What :meth:`claim` returned.
            covered: Whether the thread's turns up to the run's start are now covered.
            error: What the run raised, if it failed.
            postpone: The scope was busy in another process: set the job again
                after ``retry_backoff_seconds``, without counting an attempt.
            retry: False when the failed work was given up (recorded as a failed
                page), so no retry is set.

        """
        now = self.now()
        with self._lock:
            del self._running[claim.scope.key]
            deferred = self._deferred.pop(claim.scope.key, {})
            if covered:
                self._cover(claim)
        if error is not None:
            delay = backoff_delay(claim.job.attempt, self._config) if retry else None
            again = claim.job.retry(now + delay) if delay is not None else None
            self._emit(
                EventKind.FAILED,
                claim.job,
                error=f"{type(error).__name__}: {error}",
                will_retry=again is not None,
                duration=now - claim.started_at,
            )
            if again is not None:
                self._set(again)
        if postpone:
            self._set(replace(claim.job, due_at=now + self._config.retry_backoff_seconds))
        for job in deferred.values():
            self._set(replace(job, due_at=now))

    def _cover(self, claim: Claim) -> None:
        thread_id = claim.job.thread_id
        activity = self._activity.get(thread_id)
        if activity is None:
            return
        remaining = activity.turns - claim.turns
        if remaining <= 0:
            del self._activity[thread_id]
        else:
            # Turns that came during the run: count their wait from the run's start.
            self._activity[thread_id] = ThreadActivity(
                claim.started_at, activity.last_turn_at, remaining
            )

    def forget(self, thread_ids: Iterable[str]) -> None:
        """Drop every alarm, count and deferred job of these threads: their data is gone.

        A run of their scope already claimed ends on its own (it finds nothing to read).
        """
        thread_ids = set(thread_ids)
        with self._lock:
            for thread_id in thread_ids:
                self._activity.pop(thread_id, None)
            for deferred in self._deferred.values():
                for thread_id in thread_ids & deferred.keys():
                    del deferred[thread_id]
        for thread_id in thread_ids:
            self._scheduler.cancel(thread_id)

    def covered_manually(self, thread_id: str, *, pending_left: int) -> None:
        """A ``sleep()`` call covered the thread; drop its alarm if nothing is left."""
        if pending_left:
            return
        with self._lock:
            self._activity.pop(thread_id, None)
        self._scheduler.cancel(thread_id)


def _timestamp(iso_time: str | None) -> float | None:
    return datetime.fromisoformat(iso_time).timestamp() if iso_time else None
