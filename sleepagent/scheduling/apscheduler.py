"""APScheduler 3.x behind the IdleScheduler protocol (the only module that imports it).

One date-triggered job per thread, with the thread id as job id, replaced on
every turn. APScheduler's own job store stays in memory: the store is the
source of truth for pending work, and a restarted process recovers from it.

The scheduler owns the cap on concurrent sleep runs (``max_concurrent`` of
:meth:`~sleepagent.scheduling.IdleScheduler.start`), in both variants: the
thread pool has that many workers, and the asyncio variant lets that many job
tasks run at once. A job past the cap waits here, before it claims its scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

from sleepagent.scheduling.base import JobRunner, SleepJob

__all__ = ["AsyncIOIdleScheduler", "BackgroundIdleScheduler"]

logger = logging.getLogger(__name__)

_JOB_DEFAULTS: dict[str, Any] = {
    # A job late because the pool was busy must still run, however late.
    "misfire_grace_time": None,
    "coalesce": True,
    # Replacing the alarm of a thread whose previous run is still executing must
    # not be refused; one run per scope is enforced by the agent, not here.
    "max_instances": 1_000_000,
}


class _APSchedulerAlarms:
    """What the thread-pool and asyncio variants share."""

    def __init__(self) -> None:
        self._scheduler: BaseScheduler | None = None
        self._runner: JobRunner | None = None

    def now(self) -> float:
        """Wall-clock time."""
        return time.time()

    def _build(self, max_concurrent: int) -> BaseScheduler:
        raise NotImplementedError

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Start APScheduler; due jobs run ``runner``, at most ``max_concurrent`` at once."""
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already started; use one per agent")
        self._runner = runner
        self._scheduler = self._build(max_concurrent)
        self._scheduler.start()

    def set(self, job: SleepJob) -> None:
        """(Re)set the thread's alarm."""
        if self._scheduler is None or self._runner is None:
            return
        self._scheduler.add_job(
            self._runner,
            trigger=DateTrigger(run_date=datetime.fromtimestamp(job.due_at, UTC), timezone=UTC),
            args=[job],
            id=job.thread_id,
            name=f"sleep:{job.thread_id}",
            replace_existing=True,
        )

    def cancel(self, thread_id: str) -> None:
        """Remove the thread's alarm, if set."""
        if self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):  # no alarm set: nothing to cancel
            self._scheduler.remove_job(thread_id)

    def close(self) -> None:
        """Stop at once: pending alarms are dropped, running jobs finish on their own."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)


class BackgroundIdleScheduler(_APSchedulerAlarms):
    """APScheduler's ``BackgroundScheduler``: runs jobs in a thread pool. For ``SleepTimeAgent``."""

    def _build(self, max_concurrent: int) -> BaseScheduler:
        return BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max_concurrent)},
            job_defaults=_JOB_DEFAULTS,
            timezone=UTC,
            daemon=True,
        )


class AsyncIOIdleScheduler(_APSchedulerAlarms):
    """APScheduler's ``AsyncIOScheduler`` on the running loop. For ``AsyncSleepTimeAgent``.

    Jobs run as tasks on the loop, at most ``max_concurrent`` at once (APScheduler's
    asyncio executor has no limit of its own, so a semaphore keeps it). The tasks are
    this adapter's, not the executor's: APScheduler's job only starts one and returns,
    because its asyncio executor cancels every job task it still runs when it shuts
    down. A run in flight when the agent closes then finishes, as in the thread pool
    (the agent waits for it up to ``CLOSE_WAIT_S``), instead of losing its model call
    and being logged by APScheduler as a crashed job.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Start APScheduler; due jobs run ``runner``, at most ``max_concurrent`` at once."""
        slots = asyncio.Semaphore(max_concurrent)

        async def bounded(job: SleepJob) -> None:
            async with slots:
                outcome = runner(job)
                if inspect.isawaitable(outcome):
                    await outcome

        async def launch(job: SleepJob) -> None:
            task = asyncio.get_running_loop().create_task(bounded(job))
            self._tasks.add(task)  # a task nobody references may be collected mid-run
            task.add_done_callback(self._finished)

        super().start(launch, max_concurrent=max_concurrent)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The runner reports its own failures; this is a bug, said as APScheduler would.
            logger.error("a sleep job raised", exc_info=task.exception())

    def _build(self, max_concurrent: int) -> BaseScheduler:
        return AsyncIOScheduler(
            executors={"default": AsyncIOExecutor()},
            job_defaults=_JOB_DEFAULTS,
            timezone=UTC,
        )
