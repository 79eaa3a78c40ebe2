"""The test helpers of sleepagent.testing: the scripted model, replies, the event recorder."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from sleepagent.errors import ScriptExhaustedError
from sleepagent.scheduling import EventKind, SleepEvent
from sleepagent.sleep.tools import memory_tool_schemas
from sleepagent.testing import (
    EventRecorder,
    ScriptedChatModel,
    ai_tool_calls,
    finish,
    insert,
    rethink,
    said_in_facts_prompt,
    tool_call,
)


def test_plays_back_strings_in_order():
    model = ScriptedChatModel(["first", "second"])
    assert [model.invoke("hi").content for _ in range(2)] == ["first", "second"]


def test_plays_back_scripted_messages_with_their_tool_calls():
    call = tool_call("memory_insert", label="human", text="x")
    model = ScriptedChatModel([ai_tool_calls(call, content="thinking"), "done"])
    reply = model.invoke("hi")
    assert reply.content == "thinking"
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("memory_insert", {"label": "human", "text": "x"}, call["id"])
    ]
    assert model.invoke("again").content == "done"


def test_callable_steps_receive_the_prompt_messages():
    seen = []

    def step(messages):
        seen.append(list(messages))
        return f"echo: {messages[-1].content}"

    model = ScriptedChatModel([step])
    reply = model.invoke([SystemMessage("sys"), HumanMessage("ping")])
    assert reply.content == "echo: ping"
    assert [message.content for message in seen[0]] == ["sys", "ping"]


def test_callable_steps_may_return_messages():
    model = ScriptedChatModel([lambda messages: AIMessage(content=str(len(messages)))])
    assert model.invoke([HumanMessage("a"), HumanMessage("b")]).content == "2"


def test_calling_past_the_script_raises_script_exhausted():
    model = ScriptedChatModel(["only"])
    model.invoke("first")
    with pytest.raises(ScriptExhaustedError, match=r"called 2 times but scripted for 1.*'second'"):
        model.invoke("second")


def test_script_exhausted_is_an_assertion_error():
    with pytest.raises(AssertionError, match="scripted for 0"):
        ScriptedChatModel().invoke("hi")


def test_exhausted_message_shortens_a_long_last_message():
    with pytest.raises(ScriptExhaustedError) as caught:
        ScriptedChatModel().invoke("x" * 500)
    assert "x" * 117 + "..." in str(caught.value)
    assert "x" * 118 not in str(caught.value)


def test_assert_exhausted_fails_when_replies_are_left():
    model = ScriptedChatModel(["a", "b", "c"])
    model.invoke("hi")
    with pytest.raises(AssertionError, match="2 scripted replies were never requested"):
        model.assert_exhausted()


def test_assert_exhausted_passes_when_every_reply_was_used():
    model = ScriptedChatModel(["a"])
    model.invoke("hi")
    model.assert_exhausted()
    assert model.remaining == 0


def test_extend_adds_replies_at_the_end():
    model = ScriptedChatModel(["a"])
    model.extend(["b"])
    assert model.remaining == 2
    assert [model.invoke("hi").content for _ in range(2)] == ["a", "b"]


def test_calls_record_prompt_and_reply():
    model = ScriptedChatModel(["hello"])
    model.invoke([SystemMessage("be nice"), HumanMessage("hi")])
    (call,) = model.calls
    assert [message.content for message in call.messages] == ["be nice", "hi"]
    assert call.system == "be nice"
    assert call.reply.content == "hello"
    assert call.tools == ()


def test_system_is_empty_without_a_system_message():
    model = ScriptedChatModel(["hello"])
    model.invoke("hi")
    assert model.calls[0].system == ""


def test_bind_tools_records_the_bound_tool_names():
    model = ScriptedChatModel(["a", "b"])
    model.bind_tools(memory_tool_schemas()).invoke("hi")
    model.invoke("unbound")
    assert model.calls[0].tools == (
        "memory_replace",
        "memory_insert",
        "memory_rethink",
        "memory_finish",
    )
    assert model.calls[1].tools == ()


def test_bind_tools_accepts_python_functions():
    def lookup(query: str) -> str:
        """Look something up."""
        return query

    model = ScriptedChatModel(["a"])
    model.bind_tools([lookup]).invoke("hi")
    assert model.calls[0].tools == ("lookup",)


def test_replies_carry_estimated_usage():
    model = ScriptedChatModel(["abcdefgh"])
    reply = model.invoke("Hello world!")
    assert reply.usage_metadata == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}


def test_usage_is_deterministic():
    usages = []
    for _ in range(2):
        model = ScriptedChatModel(["a reply of some length", "x"])
        usages.append([model.invoke("same prompt " * 10).usage_metadata for _ in range(2)])
    assert usages[0] == usages[1]
    assert usages[0][0]["total_tokens"] > 0


def test_usage_counts_tool_call_arguments():
    plain = ScriptedChatModel([ai_tool_calls()]).invoke("hi").usage_metadata
    call = tool_call("memory_rethink", label="human", new_value="x" * 400)
    with_call = ScriptedChatModel([ai_tool_calls(call)]).invoke("hi").usage_metadata
    assert with_call["output_tokens"] > plain["output_tokens"] + 90


def test_scripted_usage_is_kept_and_the_script_is_not_mutated():
    usage = {"input_tokens": 7, "output_tokens": 11, "total_tokens": 18}
    scripted = AIMessage(content="x", usage_metadata=usage)
    bare = AIMessage(content="y")
    model = ScriptedChatModel([scripted, bare])
    assert model.invoke("hi").usage_metadata == usage
    assert model.invoke("hi").usage_metadata is not None
    assert bare.usage_metadata is None


async def test_ainvoke_plays_the_script():
    model = ScriptedChatModel(["async reply"])
    reply = await model.ainvoke("hi")
    assert reply.content == "async reply"
    assert model.remaining == 0


async def test_ainvoke_raises_when_exhausted():
    with pytest.raises(ScriptExhaustedError):
        await ScriptedChatModel().ainvoke("hi")


def test_concurrent_calls_each_get_a_distinct_reply():
    script = [f"reply {i}" for i in range(8)]
    model = ScriptedChatModel(script)
    start = threading.Barrier(8, timeout=10)
    replies: list[str] = []

    def call(i: int) -> None:
        start.wait()
        replies.append(str(model.invoke(f"prompt {i}").content))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(replies) == sorted(script)
    assert model.remaining == 0
    assert sorted(str(call.reply.content) for call in model.calls) == sorted(script)


def test_tool_call_ids_are_unique():
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: tool_call("memory_finish")["id"], range(2000)))
    assert len(set(ids)) == len(ids)
    assert all(ids)


def test_a_call_past_the_script_is_recorded_so_assert_exhausted_fails_later():
    from sleepagent.errors import ScriptExhaustedError

    model = ScriptedChatModel(["one"])
    model.invoke("a")
    with pytest.raises(ScriptExhaustedError):
        model.invoke("b")  # as a background job would, whose runner swallows it
    assert len(model.unexpected) == 1 and model.remaining == 0
    with pytest.raises(AssertionError, match="1 more times than scripted"):
        model.assert_exhausted()


# --- replies ---------------------------------------------------------------------------


def calls_of(reply: AIMessage) -> list[tuple[str, dict]]:
    return [(call["name"], call["args"]) for call in reply.tool_calls]


def test_finish_is_one_memory_finish_call_with_a_fresh_id_each_time():
    first, second = finish(), finish()
    assert calls_of(first) == [("memory_finish", {})]
    assert first.tool_calls[0]["id"] != second.tool_calls[0]["id"]


def test_rethink_rewrites_a_block_and_finishes_unless_told_not_to():
    assert calls_of(rethink("human", "Ada")) == [
        ("memory_rethink", {"label": "human", "new_value": "Ada"}),
        ("memory_finish", {}),
    ]
    assert calls_of(rethink("human", "Ada", finish=False)) == [
        ("memory_rethink", {"label": "human", "new_value": "Ada"})
    ]


def test_insert_names_a_line_only_when_given_one():
    assert calls_of(insert("human", "tea")) == [
        ("memory_insert", {"label": "human", "text": "tea"}),
        ("memory_finish", {}),
    ]
    assert calls_of(insert("human", "tea", line=0, finish=False)) == [
        ("memory_insert", {"label": "human", "text": "tea", "line": 0})
    ]


def test_the_replies_edit_memory_through_a_sleep_run(make_agent):
    agent, _, sleep = make_agent(
        chat=["ok", "ok", "ok"],
        sleep=[
            rethink("human", "Ada"),
            insert("human", "Likes tea"),
            insert("human", "Hi", line=0),
        ],
    )
    for text in ("I'm Ada", "I like tea", "hello"):
        agent.chat(text, thread_id="t1")
        agent.sleep(thread_id="t1")
    assert agent.memory(thread_id="t1")["human"].value == "Hi\nAda\nLikes tea"
    sleep.assert_exhausted()


# --- EventRecorder -----------------------------------------------------------------------


def event(kind: EventKind, thread_id: str = "t1") -> SleepEvent:
    return SleepEvent(
        kind=kind, thread_id=thread_id, scope=f"thread:{thread_id}", reason="idle", at=0
    )


def test_the_recorder_keeps_events_in_order_and_selects_by_kind_and_thread():
    recorder = EventRecorder()
    for kind, thread_id in [
        (EventKind.SCHEDULED, "t1"),
        (EventKind.STARTED, "t1"),
        (EventKind.STARTED, "t2"),
        (EventKind.FINISHED, "t1"),
    ]:
        recorder(event(kind, thread_id))
    assert [(e.kind, e.thread_id) for e in recorder.of(EventKind.STARTED, EventKind.FINISHED)] == [
        (EventKind.STARTED, "t1"),
        (EventKind.STARTED, "t2"),
        (EventKind.FINISHED, "t1"),
    ]
    assert [e.kind for e in recorder.of(thread_id="t1")] == [
        EventKind.SCHEDULED,
        EventKind.STARTED,
        EventKind.FINISHED,
    ]
    assert len(recorder.events) == 4
    recorder.clear()
    assert recorder.events == []


def test_the_recorder_records_what_an_agent_emits(make_agent):
    agent, _, _ = make_agent(chat=["ok"], sleep=[finish()])
    recorder = EventRecorder()
    agent.subscribe(recorder)
    agent.chat("hi", thread_id="t1")
    agent.sleep(thread_id="t1")
    assert [e.kind for e in recorder.events] == [EventKind.STARTED, EventKind.FINISHED]
    assert recorder.of(EventKind.FINISHED)[0].reason == "manual"


def test_wait_returns_once_events_arrive_from_another_thread():
    recorder = EventRecorder()
    recorder(event(EventKind.STARTED))  # events from before the wait count too
    later = threading.Timer(0.01, lambda: recorder(event(EventKind.STARTED)))
    later.start()
    try:
        assert recorder.wait(EventKind.STARTED, count=2, timeout=10)
    finally:
        later.join()


def test_wait_gives_up_after_its_timeout():
    recorder = EventRecorder()
    recorder(event(EventKind.STARTED, "t2"))
    assert not recorder.wait(EventKind.STARTED, thread_id="t1", timeout=0.01)
    assert not recorder.wait(EventKind.FINISHED, timeout=0)


def test_a_scripted_sleep_model_reads_the_messages_a_fact_pass_shows(make_agent):
    seen: list[list[str] | None] = []

    def list_facts(messages):
        seen.append(said_in_facts_prompt(messages))
        return "\n".join(f"- {line}" for line in seen[-1] or [])

    agent, _, _ = make_agent(["Hi Ada!"], [list_facts], library_defaults=True)
    agent.chat("I'm Ada.\nI live in Porto.", thread_id="t1")
    agent.sleep(thread_id="t1")

    assert seen == [["I'm Ada.", "I live in Porto."]]
    assert agent.memory(thread_id="t1")["human"].value == "I'm Ada.\nI live in Porto."
    assert said_in_facts_prompt([HumanMessage("Current memory blocks: ...")]) is None
    assert said_in_facts_prompt([]) is None
