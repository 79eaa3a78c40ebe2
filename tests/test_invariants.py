"""The user's turn never waits for sleep-time work (DESIGN invariant 1), and nothing is dropped."""

from __future__ import annotations

import asyncio
import threading

from sleepagent import AsyncSleepTimeAgent, SleepTimeAgent
from sleepagent.testing import ScriptedChatModel, ai_tool_calls, tool_call

WAIT_S = 10
OVERLAP_WINDOW_S = 1.0
"""How long a second run gets to show it overlaps; a correct one never does."""


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
        return ai_tool_calls(tool_call("memory_rethink", label="human", new_value="slept"))


def test_a_turn_is_answered_while_a_sleep_run_is_inside_its_model_call(db):
    blocked = BlockedSleepModel()
    chat = ScriptedChatModel(["first", "second"])
    sleep = ScriptedChatModel([blocked, ai_tool_calls(tool_call("memory_finish"))])
    with SleepTimeAgent(chat, sleep_model=sleep, db=db) as agent:
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
    sleep = ScriptedChatModel([blocked, ai_tool_calls(tool_call("memory_finish"))])
    async with AsyncSleepTimeAgent(chat, sleep_model=sleep, db=db) as agent:
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


def test_sleep_runs_of_one_scope_never_overlap(db):
    blocked = BlockedSleepModel()
    second_entered = threading.Event()

    def second_run(prompt):
        second_entered.set()
        return ai_tool_calls(tool_call("memory_finish"))

    def first_run(prompt):
        blocked(prompt)
        return ai_tool_calls(tool_call("memory_finish"))

    # Each run's model call is told apart by its transcript: t1's blocks, t2's returns at once.
    def by_thread(prompt):
        page = str(prompt[-1].content)
        return first_run(prompt) if "first-thread" in page else second_run(prompt)

    chat = ScriptedChatModel(["a", "b"])
    sleep = ScriptedChatModel([by_thread, by_thread])
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, scheduler=None) as agent:
        agent.chat("first-thread", thread_id="t1", user_id="ada")
        agent.chat("second-thread", thread_id="t2", user_id="ada")
        first = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        first.start()
        assert blocked.entered.wait(WAIT_S)
        second = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t2", "user_id": "ada"})
        second.start()
        # Without the scope's run lock the second run reaches its model call at once.
        overlapped = second_entered.wait(OVERLAP_WINDOW_S)
        blocked.release.set()
        first.join(WAIT_S)
        second.join(WAIT_S)
        assert not first.is_alive() and not second.is_alive()
    assert not overlapped, "a second run of the scope called its model while the first was in it"
    assert second_entered.is_set(), "the second run ran once the first had finished"
