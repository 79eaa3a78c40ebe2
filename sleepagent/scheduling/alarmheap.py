"""Every thread's alarm in one heap of due times, so a real timer needs only one job.

APScheduler adds a job in about 50 µs (it checks the callable's signature, builds
a trigger, locks its job store); one job per thread made every turn pay that, and
a process starting with 100,000 pending threads spend 5 s setting alarms. Here
setting an alarm is a dictionary write and a heap push (about 1 µs), and the
scheduler keeps a single timer armed for :meth:`AlarmHeap.next_due`.

Replacing an alarm leaves the old heap entry in place; it is skipped when it comes
up (the thread's current job is another object) and swept out when stale entries
outnumber live ones. Pure apart from its lock: no clock, no I/O.
"""

from __future__ import annotations

import heapq
import itertools
import threading

from sleepagent.scheduling.base import SleepJob

__all__ = ["AlarmHeap"]

_COMPACT_SLACK = 64
"""Stale entries tolerated beyond the live ones before the heap is rebuilt."""


class AlarmHeap:
    """At most one due job per thread, earliest first. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, SleepJob] = {}
        # (due_at, tie-breaker, job): the counter keeps the order of equal due times
        # and stops comparisons from reaching the jobs.
        self._heap: list[tuple[float, int, SleepJob]] = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def set(self, job: SleepJob) -> bool:
        """Make ``job`` its thread's alarm; True when it is now the earliest alarm."""
        with self._lock:
            self._jobs[job.thread_id] = job
            heapq.heappush(self._heap, (job.due_at, next(self._counter), job))
            if len(self._heap) > 2 * len(self._jobs) + _COMPACT_SLACK:
                self._compact()
            # On top of the heap means earliest, unless a stale entry sits above it: then
            # False, and the timer, armed at or before that stale time, fires, finds
            # nothing due and re-arms for the true earliest.
            return self._heap[0][2] is job

    def cancel(self, thread_id: str) -> None:
        """Remove the thread's alarm, if it has one."""
        with self._lock:
            self._jobs.pop(thread_id, None)

    def next_due(self) -> float | None:
        """When the earliest alarm is due, or None with no alarm set."""
        with self._lock:
            earliest = self._earliest()
            return earliest.due_at if earliest is not None else None

    def pop_due(self, now: float) -> list[SleepJob]:
        """Remove and return every alarm due at ``now`` or before, earliest first."""
        due: list[SleepJob] = []
        with self._lock:
            while (earliest := self._earliest()) is not None and earliest.due_at <= now:
                heapq.heappop(self._heap)
                del self._jobs[earliest.thread_id]
                due.append(earliest)
        return due

    def clear(self) -> None:
        """Drop every alarm."""
        with self._lock:
            self._jobs.clear()
            self._heap.clear()

    def _earliest(self) -> SleepJob | None:
        # Caller holds the lock. Stale entries on top are dropped on the way.
        heap = self._heap
        while heap:
            job = heap[0][2]
            if self._jobs.get(job.thread_id) is job:
                return job
            heapq.heappop(heap)
        return None

    def _compact(self) -> None:
        self._heap = [(job.due_at, next(self._counter), job) for job in self._jobs.values()]
        heapq.heapify(self._heap)
