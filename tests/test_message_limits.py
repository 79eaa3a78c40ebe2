"""Over-long text is refused at every entry point, before any model call or write.

Each agent test runs on memory, SQLite and PostgreSQL, with the sync and the async agent.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from sleepagent import (
    AsyncSleepTimeAgent,
    ConfigurationError,
    MessageTooLongError,
    SleepAgentError,
    SleepConfig,
    SleepTimeAgent,
)
from sleepagent.graph.context import SleepContext
from sleepagent.memory.sizes import require_within_limit
from sleepagent.testing import ScriptedChatModel, finish

LIMIT = 50
SMALL = SleepConfig(max_message_chars=LIMIT, max_context_chars=2 * LIMIT)


def checkpoints(agent, thread_id: str) -> list[Any]:
    """Every checkpoint of the thread, newest first, read in the driver's mode."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    if agent.loop is None:
        return list(agent.graph.get_state_history(config))
    return agent.loop.run_until_complete(_collect(agent.graph.aget_state_history(config)))


async def _collect(iterator) -> list[Any]:
    return [item async for item in iterator]


def stored_before_and_after(agent, call) -> tuple[Any, Any]:
    """The thread's log position and checkpoints before ``call`` and after it raised."""
    before = (agent.positions().get("t1"), len(checkpoints(agent, "t1")))
    with pytest.raises(MessageTooLongError) as raised:
        call()
    after = (agent.positions().get("t1"), len(checkpoints(agent, "t1")))
    return (before, after), raised.value


def test_the_length_check_refuses_only_text_over_the_limit():
    require_within_limit("x" * 10, 10, what="the message", setting="max_message_chars")
    require_within_limit("x" * 10**6, None, what="the message", setting="max_message_chars")
    with pytest.raises(MessageTooLongError) as raised:
        require_within_limit("x" * 11, 10, what="the message", setting="max_message_chars")
    error = raised.value
    assert (error.length, error.limit, error.setting) == (11, 10, "max_message_chars")
    assert isinstance(error, SleepAgentError) and isinstance(error, ValueError)
    assert "11 characters" in str(error) and "SleepConfig.max_message_chars" in str(error)


def test_a_message_over_the_limit_is_refused_and_the_thread_log_and_pending_work_stay_as_before(
    make_agent,
):
    agent, chat, _ = make_agent(chat=["Noted."], config=SMALL)
    agent.chat("hello", thread_id="t1", user_id="ada")
    (before, after), error = stored_before_and_after(
        agent, lambda: agent.chat("x" * (LIMIT + 1), thread_id="t1", user_id="ada")
    )
    assert (error.length, error.limit) == (LIMIT + 1, LIMIT)
    assert after == before, "no log entry, no pending work, no checkpoint"
    assert before[0].head == 2 and before[0].pending == 2
    assert len(chat.calls) == 1, "the model was not called for the refused turn"


def test_a_first_message_over_the_limit_leaves_no_thread_at_all(make_agent):
    agent, chat, _ = make_agent(config=SMALL)
    (before, after), _ = stored_before_and_after(
        agent, lambda: agent.chat("x" * (LIMIT + 1), thread_id="t1")
    )
    assert before == after == (None, 0)
    assert chat.calls == []


def test_a_message_at_the_limit_is_answered(make_agent):
    agent, _, _ = make_agent(chat=["Noted."], config=SMALL)
    assert agent.chat("x" * LIMIT, thread_id="t1").reply == "Noted."


def test_the_limit_can_be_turned_off(make_agent):
    agent, _, _ = make_agent(chat=["Noted."], config=SleepConfig(max_message_chars=None))
    assert agent.chat("x" * 40_000, thread_id="t1").reply == "Noted."


def test_the_default_limit_refuses_a_megabyte_message(make_agent):
    agent, chat, _ = make_agent()
    with pytest.raises(MessageTooLongError, match="32,000"):
        agent.chat("x" * 1_000_000, thread_id="t1")
    assert chat.calls == [] and "t1" not in agent.positions()


def test_context_has_its_own_limit_and_over_it_nothing_is_stored(make_agent):
    agent, _, sleep = make_agent(config=SMALL)
    (before, after), error = stored_before_and_after(
        agent, lambda: agent.add_context("y" * (2 * LIMIT + 1), thread_id="t1")
    )
    assert error.setting == "max_context_chars" and error.limit == 2 * LIMIT
    assert before == after == (None, 0)
    assert sleep.calls == []


def test_context_longer_than_a_message_but_within_its_own_limit_is_taken(make_agent):
    agent, _, sleep = make_agent(sleep=[finish()], config=SMALL)
    agent.add_context("y" * (2 * LIMIT), thread_id="t1")
    assert len(sleep.calls) == 1
    assert agent.positions()["t1"].head == 1


def test_sync_chat_stream_refuses_a_long_message_before_the_model(db):
    chat = ScriptedChatModel([])
    with SleepTimeAgent(chat, db=db, scheduler=None, config=SMALL) as agent:
        with pytest.raises(MessageTooLongError):
            list(agent.chat_stream("x" * (LIMIT + 1), thread_id="t1"))
        assert chat.calls == [] and agent.blocks.position("t1") is None


async def test_async_chat_stream_refuses_a_long_message_before_the_model(db):
    chat = ScriptedChatModel([])
    async with AsyncSleepTimeAgent(chat, db=db, scheduler=None, config=SMALL) as agent:
        with pytest.raises(MessageTooLongError):
            async for _ in agent.chat_stream("x" * (LIMIT + 1), thread_id="t1"):
                pass
        assert chat.calls == [] and await agent.blocks.aposition("t1") is None


def test_a_graph_input_with_a_long_user_message_is_refused_before_the_model_and_the_log(
    make_agent,
):
    agent, chat, _ = make_agent(config=SMALL)
    config: Any = {"configurable": {"thread_id": "t1"}}
    payload = {"messages": [HumanMessage("x" * (LIMIT + 1))]}
    context = SleepContext(thread_id="t1", user_id="ada")
    with pytest.raises(MessageTooLongError):
        if agent.loop is None:
            agent.graph.invoke(payload, config, context=context)
        else:
            agent.loop.run_until_complete(agent.graph.ainvoke(payload, config, context=context))
    assert chat.calls == []
    assert "t1" not in agent.positions(), "nothing logged, nothing pending"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "32000"])
def test_a_limit_that_is_not_a_positive_integer_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="max_message_chars"):
        SleepConfig(max_message_chars=bad)
    with pytest.raises(ConfigurationError, match="max_context_chars"):
        SleepConfig(max_context_chars=bad)
