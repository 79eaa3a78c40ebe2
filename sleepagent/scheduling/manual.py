"""A scheduler on virtual time, for tests and simulations: nothing waits for real."""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Awaitable, Generator

from sleepagent._twins import async_twin
from sleepagent.errors import WrongModeError
from sleepagent.scheduling.base import JobRunner, SleepJob

__all__ = ["ManualClock", "ManualScheduler"]


class ManualClock:
    """A clock that moves only when told to.

    Args:
        start: The starting time, in POSIX seconds.

    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current virtual time."""
        with self._lock:
            return self._now

    def set(self, when: float) -> None:
        """Move to ``when``; the clock never goes back.

        Raises:
            ValueError: If ``when`` is earlier than now.

        """
        with self._lock:
            if when < self._now:
                raise ValueError(f"a ManualClock never goes back ({when} < {self._now})")
            self._now = when


class ManualScheduler:
    """An :class:`~sleepagent.scheduling.IdleScheduler` driven by :meth:`advance`.

    Due jobs run inline, one at a time, in due order (then in the order their
    alarms were set), with the clock set to each job's due time while it runs.

    Args:
        clock: The virtual clock; a new one by default.

    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self._alarms: dict[str, tuple[float, int, SleepJob]] = {}
        self._order = itertools.count()
        self._runner: JobRunner | None = None
        self._lock = threading.Lock()
        self._closed = False

    def now(self) -> float:
        """The virtual time."""
        return self.clock.now()

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Remember ``runner``; jobs run one at a time, so ``max_concurrent`` has no effect."""
        self._runner = runner

    def set(self, job: SleepJob) -> None:
        """Set the alarm of the job's thread, replacing an earlier one."""
        with self._lock:
            if not self._closed:
                self._alarms[job.thread_id] = (job.due_at, next(self._order), job)

    def cancel(self, thread_id: str) -> None:
        """Remove a thread's alarm."""
        with self._lock:
            self._alarms.pop(thread_id, None)

    def close(self) -> None:
        """Drop every alarm; later ones are ignored."""
        with self._lock:
            self._closed = True
            self._alarms.clear()

    @property
    def pending(self) -> list[SleepJob]:
        """The alarms set, earliest first."""
        with self._lock:
            return [job for _, _, job in sorted(self._alarms.values(), key=lambda a: a[:2])]

    def next_due(self) -> float | None:
        """When the earliest alarm is due, if any."""
        pending = self.pending
        return pending[0].due_at if pending else None

    def _pop_due(self, until: float) -> SleepJob | None:
        with self._lock:
            if not self._alarms:
                return None
            due, _, job = min(self._alarms.values(), key=lambda alarm: alarm[:2])
            if due > until:
                return None
            del self._alarms[job.thread_id]
            return job

    def advance(self, seconds: float) -> list[SleepJob]:
        """Move time forward by ``seconds``, running every job that falls due on the way.

        Jobs set while running (retries, deferred runs) run too if they fall
        due before the end. Returns the jobs run, in order.

        Raises:
            WrongModeError: If the runner is a coroutine function (use :meth:`aadvance`).

        """
        steps = self._run_due(seconds)
        try:
            outcome = next(steps)
        except StopIteration as done:
            ran: list[SleepJob] = done.value
            return ran
        steps.close()
        if inspect.iscoroutine(outcome):
            outcome.close()
        raise WrongModeError("this scheduler runs an async agent: use 'await aadvance(...)'")

    @async_twin(advance)
    async def aadvance(self, seconds: float) -> list[SleepJob]:
        """Async :meth:`advance`, for an :class:`~sleepagent.AsyncSleepTimeAgent`."""
        steps = self._run_due(seconds)
        while True:
            try:
                outcome = next(steps)
            except StopIteration as done:
                ran: list[SleepJob] = done.value
                return ran
            await outcome

    def _run_due(self, seconds: float) -> Generator[Awaitable[object], None, list[SleepJob]]:
        """Run the jobs due within ``seconds``, in order, moving the clock to each.

        A runner that returns an awaitable (an async agent's) has it yielded: the
        async shell awaits it, the sync one refuses. Returns the jobs run.
        """
        target = self.now() + seconds
        ran: list[SleepJob] = []
        while (job := self._pop_due(target)) is not None:
            self.clock.set(max(self.now(), job.due_at))
            outcome = self._require_runner()(job)
            if inspect.isawaitable(outcome):
                yield outcome
            ran.append(job)
        self.clock.set(max(self.now(), target))
        return ran

    def _require_runner(self) -> JobRunner:
        if self._runner is None:
            raise RuntimeError("the scheduler was not started: pass it to an agent first")
        return self._runner
