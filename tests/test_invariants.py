"""The user's turn never waits for sleep-time work (DESIGN invariant 1), and nothing is dropped."""

from __future__ import annotations

import asyncio
import threading

from sleepagent import AsyncSleepTimeAgent, Scope, SleepTimeAgent
from sleepagent.scheduling import EventKind
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.testing import EventRecorder, ScriptedChatModel, finish, rethink
from tests.conftest import machinery

WAIT_S = 10
SCOPE = Scope("user", "ada")


class BlockedSleepModel:
    """A sleep-time model call that stays in flight until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.in_call = False

    def __call__(self, prompt):
        self.in_call = True
        self.entered.set()
        released = self.release.wait(WAIT_S)
        self.in_call = False
        assert released, "the test never released the sleep run"
        return rethink("human", "slept", finish=False)


def test_a_turn_is_answered_while_a_sleep_run_is_inside_its_model_call(db):
    blocked = BlockedSleepModel()
    chat = ScriptedChatModel(["first", "second"])
    sleep = ScriptedChatModel([blocked, finish()])
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, config=machinery()) as agent:
        agent.chat("one", thread_id="t1")
        results = []
        worker = threading.Thread(target=lambda: results.append(agent.sleep(thread_id="t1")))
        worker.start()
        assert blocked.entered.wait(WAIT_S)

        reply = agent.chat("two", thread_id="t1")

        assert blocked.in_call, "the turn finished only after the sleep run's model call"
        assert reply.reply == "second"
        blocked.release.set()
        worker.join(WAIT_S)
        assert not worker.is_alive()
        assert results[0].watermark == 2
        position = {p.thread_id: p for p in agent.blocks.positions()}["t1"]
        assert (position.head, position.watermark) == (4, 2), "the turn during the run is pending"
        assert agent.memory(thread_id="t1")["human"].value == "slept"


async def test_an_async_turn_is_answered_while_a_sleep_run_is_inside_its_model_call(db):
    blocked = BlockedSleepModel()
    chat = ScriptedChatModel(["first", "second"])
    sleep = ScriptedChatModel([blocked, finish()])
    async with AsyncSleepTimeAgent(chat, sleep_model=sleep, db=db, config=machinery()) as agent:
        await agent.chat("one", thread_id="t1")
        running = asyncio.create_task(agent.sleep(thread_id="t1"))
        assert await asyncio.to_thread(blocked.entered.wait, WAIT_S)

        reply = await asyncio.wait_for(agent.chat("two", thread_id="t1"), WAIT_S)

        assert blocked.in_call, "the turn finished only after the sleep run's model call"
        assert reply.reply == "second"
        blocked.release.set()
        result = await asyncio.wait_for(running, WAIT_S)
        assert result.watermark == 2
        positions = {p.thread_id: p for p in await agent.blocks.apositions()}
        assert positions["t1"].pending == 2


class OrderedSteps:
    """Sleep-model steps that log when each run's model call begins and ends.

    The run of ``first-thread`` stays inside its call until the test releases it;
    any other returns at once.
    """

    def __init__(self) -> None:
        self.log: list[str] = []
        self.first = BlockedSleepModel()

    def __call__(self, prompt):
        run = "t1" if "first-thread" in str(prompt[-1].content) else "t2"
        self.log.append(f"{run} in")
        if run == "t1":
            self.first(prompt)
        self.log.append(f"{run} out")
        return finish()


def second_run_kinds(events: EventRecorder) -> list[EventKind]:
    return [event.kind for event in events.of(EventKind.WAITING, EventKind.STARTED, thread_id="t2")]


def test_a_second_run_of_a_scope_waits_for_the_first_to_end(db):
    steps = OrderedSteps()
    events = EventRecorder()
    chat = ScriptedChatModel(["a", "b"])
    sleep = ScriptedChatModel([steps, steps])
    with SleepTimeAgent(
        chat, sleep_model=sleep, db=db, scheduler=None, config=machinery()
    ) as agent:
        agent.subscribe(events)
        agent.chat("first-thread", thread_id="t1", user_id="ada")
        agent.chat("second-thread", thread_id="t2", user_id="ada")
        first = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        first.start()
        assert steps.first.entered.wait(WAIT_S)
        second = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t2", "user_id": "ada"})
        second.start()
        try:
            # The second run finds the scope's run lock taken and says so; without it, it starts.
            assert events.wait(EventKind.WAITING, EventKind.STARTED, thread_id="t2", timeout=WAIT_S)
            assert second_run_kinds(events) == [EventKind.WAITING], "the second run did not wait"
            assert steps.log == ["t1 in"], "the first run holds the scope, inside its model call"
            with run_lock(agent.blocks.store, SCOPE, wait=False) as free:
                assert not free, "the scope's run lock is taken"
        finally:
            steps.first.release.set()
        first.join(WAIT_S)
        second.join(WAIT_S)
        assert not first.is_alive() and not second.is_alive()
    assert second_run_kinds(events) == [EventKind.WAITING, EventKind.STARTED]
    assert steps.log == ["t1 in", "t1 out", "t2 in", "t2 out"]


async def test_an_async_second_run_of_a_scope_waits_for_the_first_to_end(db):
    steps = OrderedSteps()
    events = EventRecorder()
    chat = ScriptedChatModel(["a", "b"])
    sleep = ScriptedChatModel([steps, steps])
    async with AsyncSleepTimeAgent(
        chat, sleep_model=sleep, db=db, scheduler=None, config=machinery()
    ) as agent:
        agent.subscribe(events)
        await agent.chat("first-thread", thread_id="t1", user_id="ada")
        await agent.chat("second-thread", thread_id="t2", user_id="ada")
        first = asyncio.create_task(agent.sleep(thread_id="t1", user_id="ada"))
        assert await asyncio.to_thread(steps.first.entered.wait, WAIT_S)
        second = asyncio.create_task(agent.sleep(thread_id="t2", user_id="ada"))
        try:
            waited = await asyncio.to_thread(
                events.wait, EventKind.WAITING, EventKind.STARTED, thread_id="t2", timeout=WAIT_S
            )
            assert waited and second_run_kinds(events) == [EventKind.WAITING], "it did not wait"
            assert steps.log == ["t1 in"], "the first run holds the scope, inside its model call"
            async with arun_lock(agent.blocks.store, SCOPE, wait=False) as free:
                assert not free, "the scope's run lock is taken"
        finally:
            steps.first.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)
    assert second_run_kinds(events) == [EventKind.WAITING, EventKind.STARTED]
    assert steps.log == ["t1 in", "t1 out", "t2 in", "t2 out"]
