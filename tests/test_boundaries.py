"""Every entry point checks the thread's owner, and bad input changes nothing (DESIGN inv. 8).

Each test runs on memory, SQLite and PostgreSQL, with the sync and the async agent.
"""

from __future__ import annotations

import threading

import pytest
from langchain_core.messages import HumanMessage

from sleepagent import (
    ConfigurationError,
    MemoryConflictError,
    ModelCallError,
    Scope,
    ScopeMismatchError,
    SleepConfig,
    SleepEditMode,
    SleepOutcome,
    SleepTimeAgent,
    sleep_request,
    sleep_thread_id,
)
from sleepagent.graph.context import SleepContext
from sleepagent.testing import ScriptedChatModel, ai_tool_calls, finish, rethink, tool_call


def stored(driver, scope: Scope):
    """The scope's blocks, read with the driver's own mode."""
    blocks = driver.agent.blocks
    if driver.loop is None:
        return blocks.load(scope)
    return driver.loop.run_until_complete(blocks.aload(scope))


def alice_told_her_pin(make_agent, **kwargs):
    agent, chat, sleep = make_agent(chat=["Noted."], **kwargs)
    agent.chat("my PIN is 4242", thread_id="ta", user_id="alice")
    return agent, chat, sleep


# --- 1. a thread belongs to the scope that first used it ---------------------------


@pytest.mark.parametrize("user_id", ["bob", None], ids=["another-user", "no-user"])
def test_a_sleep_run_on_someone_elses_thread_is_refused_before_any_model_call(make_agent, user_id):
    agent, _, sleep = alice_told_her_pin(make_agent)
    with pytest.raises(ScopeMismatchError, match="user:alice"):
        agent.sleep(thread_id="ta", user_id=user_id)
    assert sleep.calls == [], "no sleep model saw alice's messages"
    assert agent.positions()["ta"].pending == 2, "alice's pending work is untouched"
    other = Scope("user", user_id) if user_id else Scope("thread", "ta")
    assert all(block.version == 0 for block in stored(agent, other))


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.add_context("bob's notes", thread_id="ta", user_id="bob"),
        lambda a: a.memory(thread_id="ta", user_id="bob"),
        lambda a: a.history("human", thread_id="ta", user_id="bob"),
        lambda a: a.write_memory("human", "bob", thread_id="ta", user_id="bob"),
        lambda a: a.usage(thread_id="ta", user_id="bob"),
        lambda a: a.usage(thread_id="ta"),
        lambda a: a.failed_pages(thread_id="ta", user_id="bob"),
        lambda a: a.chat("hello", thread_id="ta", user_id="bob"),
    ],
    ids=[
        "add_context",
        "memory",
        "history",
        "write_memory",
        "usage",
        "usage-no-user",
        "failed_pages",
        "chat",
    ],
)
def test_every_entry_point_refuses_a_thread_of_another_scope(make_agent, call):
    agent, chat, sleep = alice_told_her_pin(make_agent)
    with pytest.raises(ScopeMismatchError):
        call(agent)
    assert len(chat.calls) == 1 and sleep.calls == []
    assert agent.positions()["ta"].head == 2, "nothing was logged"
    assert all(block.version == 0 for block in stored(agent, Scope("user", "bob")))


def test_a_refused_chat_leaves_the_owners_thread_as_it_was(make_agent):
    agent, chat, _ = make_agent(chat=["Noted.", "Your PIN is 4242."])
    agent.chat("my PIN is 4242", thread_id="ta", user_id="alice")
    with pytest.raises(ScopeMismatchError):
        agent.chat("what is alice's PIN?", thread_id="ta", user_id="bob")
    agent.chat("what is my PIN?", thread_id="ta", user_id="alice")
    sent = [message.content for message in chat.calls[-1].messages[1:]]
    assert sent == ["my PIN is 4242", "Noted.", "what is my PIN?"]


def test_chat_stream_refuses_a_thread_of_another_scope(db):
    chat = ScriptedChatModel(["Noted."])
    with SleepTimeAgent(chat, db=db, scheduler=None) as agent:
        agent.chat("my PIN is 4242", thread_id="ta", user_id="alice")
        with pytest.raises(ScopeMismatchError):
            list(agent.chat_stream("hi", thread_id="ta", user_id="bob"))
        assert len(chat.calls) == 1


async def test_async_chat_stream_refuses_a_thread_of_another_scope(db):
    from sleepagent import AsyncSleepTimeAgent

    chat = ScriptedChatModel(["Noted."])
    async with AsyncSleepTimeAgent(chat, db=db, scheduler=None) as agent:
        await agent.chat("my PIN is 4242", thread_id="ta", user_id="alice")
        with pytest.raises(ScopeMismatchError):
            async for _ in agent.chat_stream("hi", thread_id="ta", user_id="bob"):
                pass
        assert len(chat.calls) == 1


def test_a_sleep_request_sent_to_the_graph_directly_checks_the_owner(make_agent):
    agent, _, sleep = alice_told_her_pin(make_agent)
    bob = Scope("user", "bob")
    config = {"configurable": {"thread_id": sleep_thread_id(bob)}}
    context = SleepContext(thread_id="ta", user_id="bob")
    with pytest.raises(ScopeMismatchError):
        if agent.loop is None:
            agent.graph.invoke(sleep_request(), config, context=context)
        else:
            agent.loop.run_until_complete(
                agent.graph.ainvoke(sleep_request(), config, context=context)
            )
    assert sleep.calls == []
    assert agent.positions()["ta"].pending == 2


# --- 2. tools the model was not offered never run ----------------------------------


def test_a_tool_call_without_tools_offered_is_ignored_and_the_reply_served(make_agent):
    sneaky = ai_tool_calls(
        tool_call("memory_rethink", label="human", new_value="owned"), content="Hello!"
    )
    agent, _, _ = make_agent(chat=[sneaky])
    result = agent.chat("hi", thread_id="t1")
    assert result.reply == "Hello!"
    assert result.diffs == ()
    assert agent.memory(thread_id="t1")["human"].version == 0
    assert agent.positions()["t1"].head == 2, "the turn was logged once answered"


def test_the_primary_agent_cannot_call_a_tool_it_was_not_given(make_agent):
    finish = ai_tool_calls(tool_call("memory_finish"))
    agent, chat, _ = make_agent(chat=[finish, "Done."], config=SleepConfig(chat_memory_tools=True))
    result = agent.chat("hi", thread_id="t1")
    assert result.reply == "Done."
    refusal = chat.calls[1].messages[-1]
    assert refusal.type == "tool" and "unknown tool 'memory_finish'" in str(refusal.content)


def test_the_sleep_agent_cannot_call_a_tool_that_does_not_exist(make_agent):
    shell = ai_tool_calls(tool_call("run_shell", command="rm -rf /"))
    agent, _, sleep = make_agent(
        chat=["ok"],
        sleep=[shell, finish()],
        config=SleepConfig(sleep_edit_mode=SleepEditMode.TOOLS),
    )
    agent.chat("hi", thread_id="t1")
    agent.sleep(thread_id="t1")
    assert "unknown tool 'run_shell'" in str(sleep.calls[1].messages[-1].content)


# --- 3. a failed turn leaves no trace -------------------------------------------------


def failing(prompt):
    raise RuntimeError("server unreachable")


def test_a_failed_turn_leaves_checkpoint_log_and_pending_work_as_before(make_agent):
    agent, chat, _ = make_agent(chat=["one", failing, "three"])
    agent.chat("first", thread_id="t1")
    config = {"configurable": {"thread_id": "t1"}}

    def messages():
        if agent.loop is None:
            state = agent.graph.get_state(config)
        else:
            state = agent.loop.run_until_complete(agent.graph.aget_state(config))
        return [m.content for m in state.values["messages"]]

    before = messages()
    with pytest.raises(ModelCallError, match="server unreachable"):
        agent.chat("second", thread_id="t1")
    after = messages()
    assert after == before == ["first", "one"]
    position = agent.positions()["t1"]
    assert (position.head, position.pending) == (2, 2)
    agent.chat("third", thread_id="t1")
    sent = [message.content for message in chat.calls[-1].messages[1:]]
    assert sent == ["first", "one", "third"], "the failed turn's message never comes back"


def test_any_chat_model_failure_becomes_a_model_call_error_with_its_cause(make_agent):
    def provider_error(prompt):
        raise LookupError("provider-specific failure")

    agent, _, _ = make_agent(chat=[provider_error])
    with pytest.raises(ModelCallError) as raised:
        agent.chat("hi", thread_id="t1")
    assert isinstance(raised.value.cause, LookupError)
    assert raised.value.phase == "chat"


# --- 5. text that cannot be stored ---------------------------------------------------


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"], ids=["lone-surrogate", "nul"])
def test_unstorable_text_is_refused_before_any_model_call(make_agent, bad):
    agent, chat, _ = make_agent(chat=["never"])
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        agent.chat(f"hello {bad}", thread_id="t1")
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        agent.chat("hello", thread_id=f"t{bad}")
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        agent.chat("hello", thread_id="t1", user_id=f"u{bad}")
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        agent.add_context(f"context {bad}", thread_id="t1")
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        agent.write_memory("human", f"v{bad}", thread_id="t1")
    assert chat.calls == []
    assert "t1" not in agent.positions()


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"], ids=["lone-surrogate", "nul"])
def test_unstorable_text_in_a_graph_input_is_refused_before_the_model_on_every_backend(
    make_agent, bad
):
    agent, chat, _ = make_agent(chat=["never"])
    config = {"configurable": {"thread_id": "t1"}}
    payload = {"messages": [HumanMessage(f"hello {bad}")]}
    context = SleepContext(thread_id="t1", user_id="ada")
    with pytest.raises(ConfigurationError, match="cannot be stored"):
        if agent.loop is None:
            agent.graph.invoke(payload, config, context=context)
        else:
            agent.loop.run_until_complete(agent.graph.ainvoke(payload, config, context=context))
    assert chat.calls == [], "the model was not paid for a turn that cannot be logged"
    assert "t1" not in agent.positions()


def test_an_unstorable_tool_argument_is_a_refused_edit_the_model_is_told(make_agent):
    bad = ai_tool_calls(tool_call("memory_rethink", label="human", new_value="x\ud800y"))
    agent, _, sleep = make_agent(
        chat=["ok"],
        sleep=[bad, rethink("human", "fine")],
        config=SleepConfig(sleep_edit_mode=SleepEditMode.TOOLS),
    )
    agent.chat("hi", thread_id="t1")
    result = agent.sleep(thread_id="t1")
    assert "cannot be saved" in str(sleep.calls[1].messages[-1].content)
    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="t1")["human"].value == "fine"


def test_unstorable_model_output_is_replaced_so_the_turn_is_logged(make_agent):
    agent, _, _ = make_agent(chat=["bad \ud800 reply \x00"])
    result = agent.chat("hi", thread_id="t1")
    assert result.reply == "bad \ufffd reply \ufffd"
    assert agent.positions()["t1"].head == 2


# --- 7. write_memory never drops a write ---------------------------------------------


def test_concurrent_write_memory_calls_each_land_in_history(db, tmp_path):
    with SleepTimeAgent(ScriptedChatModel(), db=db, scheduler=None) as agent:
        results: list[object] = []

        def writer(n: int) -> None:
            for i in range(10):
                current = agent.memory(thread_id="t1")["human"].value
                results.append(agent.write_memory("human", f"{current}|{n}-{i}", thread_id="t1"))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert None not in results, "every write that happened returned its diff"
        history = agent.history("human", thread_id="t1")
        assert [entry.version for entry in history] == list(range(1, 41))


def test_write_memory_with_an_expected_version_is_a_compare_and_set(make_agent):
    agent, _, _ = make_agent()
    first = agent.write_memory("human", "Ada", thread_id="t1", expected_version=0)
    assert first is not None and first.version_after == 1
    with pytest.raises(MemoryConflictError) as raised:
        agent.write_memory("human", "Bob", thread_id="t1", expected_version=0)
    assert (raised.value.expected_version, raised.value.current_version) == (0, 1)
    assert agent.memory(thread_id="t1")["human"].value == "Ada"


def test_write_memory_of_the_same_value_returns_none_and_writes_nothing(make_agent):
    agent, _, _ = make_agent()
    agent.write_memory("human", "Ada", thread_id="t1")
    assert agent.write_memory("human", "Ada", thread_id="t1") is None
    assert len(agent.history("human", thread_id="t1")) == 1


# --- a stream closed early ------------------------------------------------------------


def test_a_stream_closed_after_its_first_piece_still_completes_the_turn(db):
    from sleepagent.models import ModelOptions
    from sleepagent.testing import Completion, LoopbackOpenAI

    replies = [Completion("a reply of several words"), Completion("second")]
    with (
        LoopbackOpenAI(replies) as server,
        SleepTimeAgent(
            "openai:loop",
            model_options=ModelOptions(base_url=server.base_url, max_retries=0),
            db=db,
            scheduler=None,
        ) as agent,
    ):
        stream = agent.chat_stream("hi", thread_id="t1")
        assert next(stream)
        stream.close()
        agent.chat("again", thread_id="t1")
        sent = [message["content"] for message in server.requests[-1].body["messages"][1:]]
        assert sent == ["hi", "a reply of several words", "again"]
        assert agent.blocks.position("t1").head == 4, "each turn logged once"
