"""Who runs a due job: the scheduler caps how many run at once; a closing agent runs none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sleepagent import AsyncSleepTimeAgent, SleepTimeAgent
from sleepagent.scheduling.apscheduler import AsyncIOIdleScheduler
from sleepagent.scheduling.base import JobRunner, SleepJob
from sleepagent.scheduling.events import EventKind
from sleepagent.scheduling.manual import ManualClock
from sleepagent.scheduling.policy import Reason
from sleepagent.testing import ScriptedChatModel

WAIT_S = 10.0


async def test_the_asyncio_scheduler_lets_at_most_max_concurrent_jobs_run_at_once():
    running: set[str] = set()
    most = 0
    entered: list[str] = []
    changed = asyncio.Condition()
    release = {f"t{n}": asyncio.Event() for n in range(5)}

    async def runner(job: SleepJob) -> None:
        nonlocal most
        async with changed:
            running.add(job.thread_id)
            entered.append(job.thread_id)
            most = max(most, len(running))
            changed.notify_all()
        await release[job.thread_id].wait()
        async with changed:
            running.discard(job.thread_id)
            changed.notify_all()

    async def until(predicate) -> None:
        async with changed:
            await asyncio.wait_for(changed.wait_for(predicate), WAIT_S)

    scheduler = AsyncIOIdleScheduler()
    scheduler.start(runner, max_concurrent=2)
    try:
        for thread_id in release:
            scheduler.set(SleepJob(thread_id, None, scheduler.now(), Reason.IDLE))
        for count in range(2, 6):
            await until(lambda count=count: len(entered) >= count)
            release[entered[count - 2]].set()  # one of the two running ends: one more enters
        for event in release.values():
            event.set()
        await until(lambda: not running)
    finally:
        scheduler.close()
    assert sorted(entered) == sorted(release)
    assert most == 2


class HeldAlarms:
    """An idle scheduler that keeps the runner and its alarms and never fires on its own."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.runner: JobRunner | None = None
        self.jobs: list[SleepJob] = []

    def now(self) -> float:
        return self.clock.now()

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        self.runner = runner

    def set(self, job: SleepJob) -> None:
        self.jobs.append(job)

    def cancel(self, thread_id: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_job_handed_over_after_the_agent_closed_does_nothing_and_its_work_stays_pending(
    tmp_path: Path, mode: str
):
    db = tmp_path / "agent.db"
    alarms = HeldAlarms()
    events: list[EventKind] = []
    model = ScriptedChatModel(["hello"])
    if mode == "sync":
        agent = SleepTimeAgent(model, db=db, scheduler=alarms)
        agent.subscribe(lambda event: events.append(event.kind))
        agent.chat("hi", thread_id="t1")
        agent.close()
        assert alarms.runner is not None
        assert alarms.runner(alarms.jobs[-1]) is None
    else:

        async def scenario() -> None:
            agent = AsyncSleepTimeAgent(model, db=db, scheduler=alarms)
            async with agent:
                agent.subscribe(lambda event: events.append(event.kind))
                await agent.chat("hi", thread_id="t1")
            assert alarms.runner is not None
            await alarms.runner(alarms.jobs[-1])

        asyncio.run(scenario())
    assert events == [EventKind.SCHEDULED]
    with SleepTimeAgent(ScriptedChatModel([]), db=db, scheduler=None) as again:
        position = again.blocks.position("t1")
    assert position is not None and position.pending == 2
