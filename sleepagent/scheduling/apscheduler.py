"""APScheduler 3.x behind the IdleScheduler protocol (the only module that imports it).

Every thread's alarm lives in one :class:`~sleepagent.scheduling.alarmheap.AlarmHeap`;
APScheduler holds a single date-triggered job, armed for the earliest due time. A
turn that pushes its own thread's deadline back (the usual case) touches only the
heap; APScheduler is asked to move its job only when the earliest alarm moves
earlier. APScheduler's own job store stays in memory: the store is the source of
truth for pending work, and a restarted process recovers from it.

The scheduler owns the cap on concurrent sleep runs (``max_concurrent`` of
:meth:`~sleepagent.scheduling.IdleScheduler.start`), in both variants: due jobs go
to a pool of that many threads, or to that many tasks at once on the loop. A job
past the cap waits here, before it claims its scope.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor as _ThreadPool
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

from sleepagent.scheduling.alarmheap import AlarmHeap
from sleepagent.scheduling.base import JobRunner, SleepJob

__all__ = ["AsyncIOIdleScheduler", "BackgroundIdleScheduler"]

logger = logging.getLogger(__name__)

_ALARM_JOB_ID = "sleepagent:alarm"
_EARLY_S = 0.001
"""A job due within this of the timer's firing runs now (the timer rounds to microseconds)."""

_JOB_DEFAULTS: dict[str, Any] = {
    # A timer late because the machine was busy must still fire, however late.
    "misfire_grace_time": None,
    "coalesce": True,
    # Re-arming the timer while its previous firing still hands out jobs must not be refused.
    "max_instances": 1_000_000,
}


class _APSchedulerAlarms:
    """What the thread-pool and asyncio variants share: the heap and the one timer."""

    def __init__(self) -> None:
        self._scheduler: BaseScheduler | None = None
        self._alarms = AlarmHeap()
        self._arm_lock = threading.Lock()
        self._armed_for: float | None = None

    def now(self) -> float:
        """Wall-clock time."""
        return time.time()

    def _build(self) -> BaseScheduler:
        raise NotImplementedError

    def _fire(self) -> Any:
        raise NotImplementedError

    def _start_timer(self) -> None:
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already started; use one per agent")
        self._scheduler = self._build()
        self._scheduler.start()

    def set(self, job: SleepJob) -> None:
        """(Re)set the thread's alarm."""
        if self._scheduler is None:
            return
        if self._alarms.set(job):
            self._arm()

    def cancel(self, thread_id: str) -> None:
        """Remove the thread's alarm, if set (the timer, if armed for it, finds nothing)."""
        self._alarms.cancel(thread_id)

    def _arm(self) -> None:
        """Point the timer at the earliest alarm, unless it already fires at or before it."""
        due = self._alarms.next_due()
        with self._arm_lock:
            scheduler = self._scheduler
            if due is None or scheduler is None:
                return
            if self._armed_for is not None and self._armed_for <= due:
                return
            self._armed_for = due
            scheduler.add_job(
                self._fire,
                trigger=DateTrigger(run_date=datetime.fromtimestamp(due, UTC), timezone=UTC),
                id=_ALARM_JOB_ID,
                name="sleepagent: due sleep jobs",
                replace_existing=True,
            )

    def _take_due(self) -> list[SleepJob]:
        """The jobs due now; the timer is then re-armed for the next one."""
        with self._arm_lock:
            self._armed_for = None
        due = self._alarms.pop_due(self.now() + _EARLY_S)
        self._arm()
        return due

    def _stop_timer(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        self._alarms.clear()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)


class BackgroundIdleScheduler(_APSchedulerAlarms):
    """A ``BackgroundScheduler`` timer, jobs in a thread pool. For ``SleepTimeAgent``."""

    def __init__(self) -> None:
        super().__init__()
        self._runner: JobRunner | None = None
        self._pool: _ThreadPool | None = None

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Start the timer; due jobs run ``runner`` in ``max_concurrent`` threads."""
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already started; use one per agent")
        self._runner = runner
        self._pool = _ThreadPool(max_workers=max_concurrent, thread_name_prefix="sleepagent-run")
        self._start_timer()

    def _fire(self) -> None:
        # On APScheduler's thread: hand every due job to the pool, where it waits for a slot.
        for job in self._take_due():
            pool = self._pool
            if pool is None:
                return  # closing: the work stays pending in the store
            try:
                pool.submit(self._run, job)
            except RuntimeError:
                return  # the pool shut down between the check and the submit: closing

    def _run(self, job: SleepJob) -> None:
        assert self._runner is not None
        try:
            self._runner(job)
        except Exception:
            # The runner reports its own failures; this is a bug, said as APScheduler would.
            logger.exception("a sleep job raised")

    def close(self) -> None:
        """Stop at once: alarms and jobs waiting for a slot are dropped, running jobs finish."""
        pool, self._pool = self._pool, None
        self._stop_timer()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _build(self) -> BaseScheduler:
        return BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults=_JOB_DEFAULTS,
            timezone=UTC,
            daemon=True,
        )


class AsyncIOIdleScheduler(_APSchedulerAlarms):
    """An ``AsyncIOScheduler`` timer on the running loop. For ``AsyncSleepTimeAgent``.

    Jobs run as tasks on the loop, at most ``max_concurrent`` at once (a semaphore
    keeps the cap). The tasks are this adapter's, not APScheduler's: its asyncio
    executor cancels every job task it still runs when it shuts down, so the timer's
    job only starts the tasks and returns. A run in flight when the agent closes then
    finishes, as in the thread pool (the agent waits for it up to ``CLOSE_WAIT_S``),
    instead of losing its model call.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: JobRunner | None = None
        self._slots: asyncio.Semaphore | None = None

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Start the timer on the running loop; ``max_concurrent`` due jobs run at once."""
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already started; use one per agent")
        self._runner = runner
        self._slots = asyncio.Semaphore(max_concurrent)
        self._start_timer()

    async def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        for job in self._take_due():
            task = loop.create_task(self._bounded(job))
            self._tasks.add(task)  # a task nobody references may be collected mid-run
            task.add_done_callback(self._finished)

    async def _bounded(self, job: SleepJob) -> None:
        assert self._runner is not None and self._slots is not None
        async with self._slots:
            if self._scheduler is None:
                return  # closed while this job waited for a slot: the work stays pending
            outcome = self._runner(job)
            if inspect.isawaitable(outcome):
                await outcome

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The runner reports its own failures; this is a bug, said as APScheduler would.
            logger.error("a sleep job raised", exc_info=task.exception())

    def close(self) -> None:
        """Stop at once: pending alarms are dropped, running jobs finish on their own."""
        self._stop_timer()

    def _build(self) -> BaseScheduler:
        return AsyncIOScheduler(
            executors={"default": AsyncIOExecutor()},
            job_defaults=_JOB_DEFAULTS,
            timezone=UTC,
        )
