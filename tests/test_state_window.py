"""The chat thread's graph state keeps a window of recent messages; the log keeps them all."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from sleepagent import ConfigurationError, ModelCallError, SleepConfig
from sleepagent.chat.primary import window_removals
from sleepagent.testing import ai_tool_calls, finish, tool_call


def state_messages(agent, thread_id: str = "t1") -> list[str]:
    config = {"configurable": {"thread_id": thread_id}}
    if agent.loop is None:
        state = agent.graph.get_state(config)
    else:
        state = agent.loop.run_until_complete(agent.graph.aget_state(config))
    return [str(message.content) for message in state.values["messages"]]


def failing(prompt):
    raise RuntimeError("server unreachable")


def test_the_state_keeps_only_the_newest_messages_and_the_log_keeps_every_turn(make_agent):
    config = SleepConfig(state_messages=4, history_messages=2)
    agent, chat, sleep = make_agent(
        chat=[f"reply {i}" for i in range(6)], sleep=[finish()], config=config
    )
    for i in range(6):
        agent.chat(f"message {i}", thread_id="t1")
    assert state_messages(agent) == ["message 4", "reply 4", "message 5", "reply 5"]
    assert agent.positions()["t1"].head == 12
    agent.sleep(thread_id="t1")
    transcript = str(sleep.calls[0].messages[-1].content)
    assert "message 0" in transcript and "reply 5" in transcript


def test_the_model_still_sees_its_history_window(make_agent):
    config = SleepConfig(state_messages=4, history_messages=3)
    agent, chat, _ = make_agent(chat=["one", "two", "three"], config=config)
    for text in ("first", "second", "third"):
        agent.chat(text, thread_id="t1")
    assert [m.content for m in chat.calls[2].messages[1:]] == ["second", "two", "third"]
    assert [m.content for m in chat.calls[1].messages[1:]] == ["first", "one", "second"]


def test_without_a_window_the_state_keeps_everything(make_agent):
    config = SleepConfig(state_messages=None)
    agent, _, _ = make_agent(chat=[f"r{i}" for i in range(5)], config=config)
    for i in range(5):
        agent.chat(f"m{i}", thread_id="t1")
    assert len(state_messages(agent)) == 10


def test_a_failed_turn_on_a_full_window_leaves_the_window_as_it_was(make_agent):
    config = SleepConfig(state_messages=2, history_messages=2)
    agent, _, _ = make_agent(chat=["one", "two", failing, "four"], config=config)
    agent.chat("first", thread_id="t1")
    agent.chat("second", thread_id="t1")
    before = state_messages(agent)
    with pytest.raises(ModelCallError):
        agent.chat("third", thread_id="t1")
    assert state_messages(agent) == before == ["second", "two"]
    assert agent.positions()["t1"].head == 4
    agent.chat("fourth", thread_id="t1")
    assert state_messages(agent) == ["fourth", "four"]


def test_a_memory_tool_round_is_never_cut_from_its_turn(make_agent):
    config = SleepConfig(state_messages=2, history_messages=2, chat_memory_tools=True)
    call = ai_tool_calls(tool_call("memory_insert", label="human", new_text="Ada"))
    agent, _, _ = make_agent(chat=["hello", call, "noted"], config=config)
    agent.chat("hi", thread_id="t1")
    agent.chat("I'm Ada", thread_id="t1")
    kept = state_messages(agent)
    assert kept[0] == "I'm Ada" and kept[-1] == "noted" and len(kept) == 4


def test_window_removals_cut_at_a_user_message():
    messages = [
        HumanMessage("a", id="h1"),
        AIMessage("b", id="a1"),
        HumanMessage("c", id="h2"),
        AIMessage("", id="a2", tool_calls=[{"name": "memory_insert", "args": {}, "id": "c1"}]),
        ToolMessage("done", tool_call_id="c1", id="t1"),
        AIMessage("d", id="a3"),
    ]
    assert [m.id for m in window_removals(messages, 3)] == ["h1", "a1"]
    assert [m.id for m in window_removals(messages, 5)] == ["h1", "a1"]
    assert window_removals(messages, 6) == []
    assert window_removals(messages, None) == []


def test_a_window_smaller_than_the_model_history_is_refused():
    with pytest.raises(ConfigurationError, match="state_messages"):
        SleepConfig(state_messages=10, history_messages=40)
    SleepConfig(state_messages=10, history_messages=None)
