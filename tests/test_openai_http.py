"""The agent over real HTTP: the openai client against the loopback server, unpatched."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from sleepagent import (
    AsyncSleepTimeAgent,
    SleepConfig,
    SleepEditMode,
    SleepTimeAgent,
    UserFacts,
)
from sleepagent.errors import ModelCallError
from sleepagent.models import ModelOptions
from sleepagent.scheduling.events import EventKind
from sleepagent.testing import (
    Completion,
    LoopbackOpenAI,
    rate_limited,
    raw_call,
    server_error,
    slow,
    truncated,
    wire_call,
)
from sleepagent.usage import Usage

LEARN = Completion.calling(
    wire_call("memory_rethink", label="human", new_value="Name: Ada."),
    wire_call("memory_insert", label="human", text="Vegetarian, lives in Lisbon."),
    wire_call("memory_finish"),
)


@pytest.fixture
def server():
    with LoopbackOpenAI() as server:
        yield server
    server.assert_exhausted()


@pytest.fixture
def connect(server):
    """Open agents whose two models talk to the loopback server."""
    agents: list[SleepTimeAgent] = []

    def make(config: SleepConfig | None = None, **options) -> SleepTimeAgent:
        options = {"timeout": 5.0, "max_retries": 0, **options}
        agent = SleepTimeAgent(
            "openai:loop-chat",
            sleep_model="openai:loop-sleep",
            model_options=ModelOptions(base_url=server.base_url, **options),
            # Tool calls on the wire are the subject here: every page gets the edit round.
            config=config or SleepConfig(user_facts=UserFacts.EDIT),
            db=None,
            scheduler=None,
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


def assert_memory_untouched(agent: SleepTimeAgent, thread_id: str) -> None:
    assert all(block.version == 0 for block in agent.memory(thread_id=thread_id).values())


# --- a full turn and a full run ---------------------------------------------------


def test_a_chat_turn_goes_over_http_and_returns_the_reply(server, connect):
    server.extend(["Hello Ada!"])
    result = connect().chat("Hi, I'm Ada.", thread_id="t1")
    assert result.reply == "Hello Ada!"
    sent = server.requests[0]
    assert (sent.body["model"], sent.stream, sent.tools) == ("loop-chat", False, ())
    assert [m["role"] for m in sent.messages] == ["system", "user"]


def test_the_budget_knobs_reach_the_server(server, connect):
    server.extend(["ok"])
    agent = connect(max_tokens=64, temperature=0.2, reasoning_effort="low")
    agent.chat("Hi", thread_id="t1")
    body = server.requests[0].body
    # langchain-openai sends max_tokens under its current name.
    assert body["max_completion_tokens"] == 64
    assert (body["temperature"], body["reasoning_effort"]) == (0.2, "low")


def test_a_sleep_run_applies_several_tool_calls_from_one_reply(server, connect):
    server.extend(["Hello Ada!", LEARN])
    agent = connect()
    agent.chat("Hi, I'm Ada. I'm vegetarian and live in Lisbon.", thread_id="t1")
    result = agent.sleep(thread_id="t1")
    human = agent.memory(thread_id="t1")["human"]
    assert human.value == "Name: Ada.\nVegetarian, lives in Lisbon."
    assert [diff.label for diff in result.diffs] == ["human"]
    sleep_request = server.requests[1]
    assert sleep_request.body["model"] == "loop-sleep"
    assert {"memory_rethink", "memory_insert", "memory_finish"} <= set(sleep_request.tools)


def test_usage_per_phase_is_what_the_server_reported(server, connect):
    server.extend(
        [
            Completion("Hi!", prompt_tokens=120, completion_tokens=9, cached_tokens=64),
            Completion.calling(
                wire_call("memory_finish"),
                prompt_tokens=300,
                completion_tokens=40,
                reasoning_tokens=25,
            ),
        ]
    )
    agent = connect()
    agent.chat("Hi", thread_id="t1")
    agent.sleep(thread_id="t1")
    assert agent.usage(thread_id="t1") == {
        "chat": Usage(input_tokens=120, output_tokens=9, cached_tokens=64, calls=1),
        "sleep": Usage(input_tokens=300, output_tokens=40, reasoning_tokens=25, calls=1),
    }


# --- streaming -------------------------------------------------------------------


def test_a_streamed_turn_yields_the_reply_in_pieces(server, connect):
    server.extend(["Lisbon has great vegetarian food."])
    pieces = list(connect().chat_stream("Dinner idea?", thread_id="t1"))
    assert len(pieces) > 1
    assert "".join(pieces) == "Lisbon has great vegetarian food."


def test_a_streamed_turn_asks_for_usage_and_counts_it(server, connect):
    server.extend([Completion("Sure.", prompt_tokens=80, completion_tokens=3, cached_tokens=32)])
    agent = connect()
    list(agent.chat_stream("Hi", thread_id="t1"))
    sent = server.requests[0]
    assert sent.stream and sent.body["stream_options"] == {"include_usage": True}
    assert agent.usage(thread_id="t1")["chat"] == Usage(
        input_tokens=80, output_tokens=3, cached_tokens=32, calls=1
    )


def test_a_streamed_turn_is_logged_for_the_sleep_time_agent(server, connect):
    server.extend(["Noted."])
    agent = connect()
    list(agent.chat_stream("I'm vegetarian", thread_id="t1"))
    position = agent.blocks.position("t1")
    assert position is not None and position.pending == 2


def test_the_async_agent_streams_over_http(server):
    server.extend(["Hello from asyncio."])

    async def run() -> list[str]:
        options = ModelOptions(base_url=server.base_url, max_retries=0, timeout=5)
        agent = AsyncSleepTimeAgent(
            "openai:loop-chat", model_options=options, db=None, scheduler=None
        )
        async with agent:
            return [piece async for piece in agent.chat_stream("Hi", thread_id="t1")]

    assert "".join(asyncio.run(run())) == "Hello from asyncio."


# --- faults: bounded retries, then a typed error --------------------------------


def test_a_rate_limited_turn_succeeds_after_a_retry(server, connect):
    server.extend([rate_limited(retry_after=0.01), "Hello!"])
    assert connect(max_retries=2).chat("Hi", thread_id="t1").reply == "Hello!"
    assert len(server.requests) == 2


def test_a_server_error_is_retried_and_the_turn_succeeds(server, connect):
    server.extend([server_error(), "Hello!"])
    assert connect(max_retries=1).chat("Hi", thread_id="t1").reply == "Hello!"


def test_a_turn_that_keeps_failing_raises_model_call_error_after_the_retry_bound(server, connect):
    server.extend([server_error(), server_error()])
    agent = connect(max_retries=1)
    with pytest.raises(ModelCallError, match="chat model call failed") as caught:
        agent.chat("Hi", thread_id="t1")
    assert caught.value.phase == "chat"
    assert isinstance(caught.value.cause, openai.InternalServerError)
    assert len(server.requests) == 2


def test_a_failed_turn_logs_nothing_and_leaves_memory_intact(server, connect):
    server.extend([rate_limited()])
    agent = connect()
    with pytest.raises(ModelCallError):
        agent.chat("Hi", thread_id="t1")
    assert agent.blocks.position("t1") is None
    assert_memory_untouched(agent, "t1")


def test_a_reply_slower_than_the_timeout_fails_the_turn_with_a_timeout(server, connect):
    server.extend([slow("too late")])
    agent = connect(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ModelCallError) as caught:
        agent.chat("Hi", thread_id="t1")
    assert isinstance(caught.value.cause, openai.APITimeoutError)
    assert time.monotonic() - started < 5
    assert_memory_untouched(agent, "t1")


def test_a_slow_reply_is_retried_and_the_retry_answers(server, connect):
    server.extend([slow("too late"), "on time"])
    assert connect(timeout=0.2, max_retries=1).chat("Hi", thread_id="t1").reply == "on time"


def test_a_truncated_body_fails_the_turn_with_a_connection_error(server, connect):
    server.extend([truncated("Hello, this reply is cut")])
    agent = connect()
    with pytest.raises(ModelCallError) as caught:
        agent.chat("Hi", thread_id="t1")
    assert isinstance(caught.value.cause, openai.APIConnectionError)
    assert agent.blocks.position("t1") is None


def test_a_truncated_body_is_retried_and_the_retry_answers(server, connect):
    server.extend([truncated(), "whole"])
    assert connect(max_retries=1).chat("Hi", thread_id="t1").reply == "whole"


@pytest.mark.sleep_failures_expected
def test_a_failed_sleep_run_commits_nothing_and_reports_the_failure(server, connect):
    server.extend(["Hello!", rate_limited()])
    agent = connect()
    agent.chat("I'm vegetarian", thread_id="t1")
    events = []
    agent.subscribe(events.append)
    with pytest.raises(ModelCallError) as caught:
        agent.sleep(thread_id="t1")
    assert caught.value.phase == "sleep"
    assert_memory_untouched(agent, "t1")
    position = agent.blocks.position("t1")
    assert position is not None and (position.watermark, position.pending) == (0, 2)
    assert [event.kind for event in events] == [EventKind.STARTED, EventKind.FAILED]


def test_invalid_tool_arguments_reach_the_model_as_a_tool_error_and_never_the_blocks(
    server, connect
):
    broken = Completion.calling(raw_call("memory_rethink", '{"label": "human", "new_value": '))
    fixed = Completion.calling(
        wire_call("memory_rethink", label="human", new_value="Vegetarian."),
        wire_call("memory_finish"),
    )
    server.extend(["Hello!", broken, fixed])
    agent = connect(
        config=SleepConfig(sleep_edit_mode=SleepEditMode.TOOLS, user_facts=UserFacts.EDIT)
    )
    agent.chat("I'm vegetarian", thread_id="t1")
    agent.sleep(thread_id="t1")
    tool_replies = [m for m in server.requests[2].messages if m["role"] == "tool"]
    assert "not valid JSON" in tool_replies[0]["content"]
    assert [entry.value for entry in agent.history("human", thread_id="t1")][-1] == "Vegetarian."
    assert agent.memory(thread_id="t1")["human"].version == 1


def test_an_unexpected_request_fails_the_turn_and_is_recorded():
    with LoopbackOpenAI() as server:
        options = ModelOptions(base_url=server.base_url, max_retries=0)
        agent = SleepTimeAgent("openai:m", model_options=options, db=None, scheduler=None)
        with agent, pytest.raises(ModelCallError) as caught:
            agent.chat("Hi", thread_id="t1")
    assert isinstance(caught.value.cause, openai.BadRequestError)
    assert len(server.unexpected) == 1
    with pytest.raises(AssertionError, match="1 unexpected requests"):
        server.assert_exhausted()
