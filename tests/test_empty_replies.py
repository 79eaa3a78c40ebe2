"""No empty replies: a chat reply with nothing to show is a typed error, a refusal is text.

The real openai client talks to the loopback server over HTTP, on each backend, sync and
async. A failed turn leaves the thread, its log and its pending work as before the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sleepagent import AsyncSleepTimeAgent, ModelCallError, SleepTimeAgent
from sleepagent.models import ModelOptions
from sleepagent.testing import (
    Completion,
    LoopbackOpenAI,
    LoopbackStep,
    malformed_tool_arguments,
    raw_call,
)
from tests.conftest import Driver, close_loop

UNUSABLE: dict[str, Callable[[], LoopbackStep]] = {
    "invalid-json-arguments": lambda: malformed_tool_arguments('{"label": "human", "new_'),
    "unknown-tool": lambda: Completion.calling(raw_call("launch_rockets", '{"count": 3}')),
    "null-arguments": lambda: malformed_tool_arguments("null"),
    "empty-message": lambda: Completion(""),
    "null-content": lambda: Completion(None),
}


@pytest.fixture
def server() -> Iterator[LoopbackOpenAI]:
    with LoopbackOpenAI() as server:
        yield server
    server.assert_exhausted()


@pytest.fixture
def agent(server: LoopbackOpenAI, db: Any, mode: str) -> Iterator[Driver]:
    options = ModelOptions(base_url=server.base_url, max_retries=0, timeout=10)
    kwargs: dict[str, Any] = {"model_options": options, "db": db, "scheduler": None}
    if mode == "sync":
        driver = Driver(SleepTimeAgent("openai:loop", **kwargs), None)
    else:
        loop = asyncio.new_event_loop()
        async_agent = AsyncSleepTimeAgent("openai:loop", **kwargs)
        loop.run_until_complete(async_agent.__aenter__())
        driver = Driver(async_agent, loop)
    yield driver
    driver.close()
    if driver.loop is not None:
        close_loop(driver.loop)


def thread_messages(agent: Driver, thread_id: str = "t1") -> list[str]:
    config: Any = {"configurable": {"thread_id": thread_id}}
    if agent.loop is None:
        state = agent.graph.get_state(config)
    else:
        state = agent.loop.run_until_complete(agent.graph.aget_state(config))
    return [str(message.content) for message in state.values.get("messages", [])]


@pytest.mark.parametrize("reply", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_reply_with_nothing_to_show_is_asked_again_then_fails_the_turn_and_logs_nothing(
    server, agent, reply
):
    server.extend([reply(), reply()])
    with pytest.raises(ModelCallError, match="no text") as raised:
        agent.chat("Hi, I'm Ada.", thread_id="t1")
    assert raised.value.phase == "chat" and isinstance(raised.value.cause, ValueError)
    assert len(server.requests) == 2, "one retry, then the error"
    assert agent.position("t1") is None, "nothing logged, nothing pending"
    assert thread_messages(agent) == [], "the thread is as before the turn"
    assert agent.history("human", thread_id="t1") == []


@pytest.mark.parametrize("reply", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_good_turn_after_a_failed_one_answers_and_logs_only_itself(server, agent, reply):
    server.extend([reply(), reply(), "Hello Ada!"])
    with pytest.raises(ModelCallError):
        agent.chat("Hi, I'm Ada.", thread_id="t1")
    assert agent.chat("Hi again, I'm Ada.", thread_id="t1").reply == "Hello Ada!"
    assert thread_messages(agent) == ["Hi again, I'm Ada.", "Hello Ada!"]
    position = agent.position("t1")
    assert position is not None and (position.head, position.pending) == (2, 2)


def test_a_reply_with_nothing_to_show_is_replaced_by_the_retrys_answer(server, agent):
    server.extend([UNUSABLE["invalid-json-arguments"](), Completion("Hello!", prompt_tokens=7)])
    assert agent.chat("Hi", thread_id="t1").reply == "Hello!"
    assert agent.usage(thread_id="t1")["chat"].calls == 2, "the discarded call is counted"


def test_a_refusal_is_the_reply_and_is_logged_like_any_answer(server, agent):
    server.extend([Completion.refusing("I can't help with that.")])
    assert agent.chat("Do something bad.", thread_id="t1").reply == "I can't help with that."
    assert thread_messages(agent) == ["Do something bad.", "I can't help with that."]
    position = agent.position("t1")
    assert position is not None and position.pending == 2
