"""Importing earlier history into a thread: on every backend, sync and async."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from sleepagent import (
    BlockStore,
    ConfigurationError,
    ImportedMessage,
    MessageRecordError,
    MessageTooLongError,
    ScopeMismatchError,
    SleepConfig,
    SleepOutcome,
)
from sleepagent.memory.imported import read_messages
from sleepagent.memory.render import render_transcript_page
from sleepagent.memory.transcript import LogEntry
from sleepagent.scheduling import EventKind
from sleepagent.sleep.consolidation import PageEvidence, ungrounded_words
from sleepagent.testing import EventRecorder, ManualScheduler, finish, rethink

HISTORY = [
    {"speaker": "Ines", "text": "I adopted a cat last weekend.", "timestamp": "3 March"},
    {"speaker": "Tomas", "text": "That is great news!"},
    {"role": "assistant", "text": "Noted."},
]


def state_texts(agent, thread_id: str = "t1") -> list[str]:
    config = {"configurable": {"thread_id": thread_id}}
    if agent.loop is None:
        state = agent.graph.get_state(config)
    else:
        state = agent.loop.run_until_complete(agent.graph.aget_state(config))
    return [str(message.content) for message in state.values.get("messages", [])]


def checkpoints(agent, thread_id: str = "t1") -> int:
    config = {"configurable": {"thread_id": thread_id}}
    if agent.loop is None:
        return len(list(agent.graph.get_state_history(config)))

    async def count() -> int:
        return len([state async for state in agent.graph.aget_state_history(config)])

    return agent.loop.run_until_complete(count())


def sleep_prompt(sleep) -> str:
    return str(sleep.calls[0].messages[-1].content)


# --- the API, on every backend and mode ---------------------------------------------


def test_imported_messages_are_logged_and_left_pending_without_a_model_call(make_agent):
    agent, chat, sleep = make_agent()
    result = agent.import_messages(HISTORY, thread_id="t1", user_id="u1")
    assert (result.messages, result.first_seq, result.last_seq) == (3, 1, 3)
    assert (result.scope, result.sleep) == ("user:u1", None)
    position = agent.positions()["t1"]
    assert (position.head, position.watermark, position.pending) == (3, 0, 3)
    assert chat.calls == [] and sleep.calls == []


def test_a_later_chat_turn_sees_the_imported_history_and_logs_only_itself(make_agent):
    agent, chat, _ = make_agent(chat=["She adopted a cat."])
    agent.import_messages(HISTORY, thread_id="t1", user_id="u1")
    agent.chat("What did Ines do?", thread_id="t1", user_id="u1")
    sent = [str(message.content) for message in chat.calls[0].messages[1:]]
    assert sent == [
        "Ines: I adopted a cat last weekend.",
        "Tomas: That is great news!",
        "Noted.",
        "What did Ines do?",
    ]
    assert agent.positions()["t1"].head == 5, "the imported messages were logged once"


def test_import_with_sleep_runs_sleep_time_compute_over_them_at_once(make_agent):
    agent, _, sleep = make_agent(sleep=[rethink("human", "Ines: adopted a cat.")])
    result = agent.import_messages(
        HISTORY, thread_id="t1", user_id="u1", session_date="10:15 am on 3 March, 2024", sleep=True
    )
    assert result.sleep is not None
    assert (result.sleep.reason, result.sleep.outcome) == ("import", SleepOutcome.EDITED)
    assert result.sleep.messages_processed == 3
    assert agent.positions()["t1"].pending == 0
    prompt = sleep_prompt(sleep)
    assert '<message n="1" role="user" speaker="Ines" said_at="3 March">' in prompt
    assert 'speaker="Tomas" said_at="10:15 am on 3 March, 2024">' in prompt
    assert "Record each fact under the name of the person it is about" in prompt


def test_import_sets_the_idle_timer_like_a_chat_turn(make_agent):
    scheduler = ManualScheduler()
    agent, _, sleep = make_agent(
        sleep=[finish()], config=SleepConfig(idle_seconds=30), scheduler=scheduler
    )
    events = EventRecorder()
    agent.subscribe(events)
    agent.import_messages(HISTORY, thread_id="t1")
    agent.advance(29)
    assert sleep.calls == []
    agent.advance(1)
    assert [event.reason for event in events.of(EventKind.STARTED)] == ["idle"]
    assert agent.positions()["t1"].pending == 0


def test_a_bad_record_is_named_by_its_index_and_nothing_is_written(make_agent):
    agent, _, _ = make_agent()
    records = [*HISTORY, {"role": "system", "text": "You are a pirate."}]
    with pytest.raises(MessageRecordError) as raised:
        agent.import_messages(records, thread_id="t1")
    assert raised.value.index == 3
    assert "message 3: role 'system'" in str(raised.value)
    assert "nothing was imported" in str(raised.value)
    assert "t1" not in agent.positions()
    assert checkpoints(agent) == 0


def test_a_message_over_the_size_limit_is_refused_as_a_chat_message_would_be(make_agent):
    agent, _, _ = make_agent(config=SleepConfig(max_message_chars=20))
    records = [{"text": "fine"}, {"text": "x" * 21}]
    with pytest.raises(MessageRecordError) as raised:
        agent.import_messages(records, thread_id="t1")
    assert raised.value.index == 1
    assert isinstance(raised.value.__cause__, MessageTooLongError)
    assert "t1" not in agent.positions()
    assert checkpoints(agent) == 0


def test_text_no_backend_can_store_is_refused_as_a_chat_message_would_be(make_agent):
    agent, _, _ = make_agent()
    records = [{"text": "fine"}, {"text": "bad \x00 byte"}]
    with pytest.raises(MessageRecordError) as raised:
        agent.import_messages(records, thread_id="t1")
    assert raised.value.index == 1
    assert "NUL" in raised.value.reason
    assert "t1" not in agent.positions()


def test_import_on_another_scopes_thread_is_refused_before_anything_is_written(make_agent):
    agent, _, _ = make_agent(chat=["Hello!"])
    agent.chat("Hi", thread_id="t1", user_id="ada")
    written = checkpoints(agent)
    with pytest.raises(ScopeMismatchError):
        agent.import_messages(HISTORY, thread_id="t1", user_id="bob")
    assert agent.positions()["t1"].head == 2
    assert checkpoints(agent) == written, "not even a checkpoint written and taken back"


def test_a_long_history_enters_the_state_window_and_the_whole_log(make_agent):
    config = SleepConfig(state_messages=4, history_messages=2)
    agent, chat, _ = make_agent(chat=["reply 0"], config=config)
    agent.chat("message 0", thread_id="t1")
    agent.import_messages([{"text": f"old {i}"} for i in range(10)], thread_id="t1")
    assert state_texts(agent) == ["old 6", "old 7", "old 8", "old 9"]
    assert agent.positions()["t1"].head == 12


def test_a_failed_log_write_takes_the_messages_back_out_of_the_checkpoint(make_agent, monkeypatch):
    agent, _, _ = make_agent(chat=["Hello!"])
    agent.chat("Hi", thread_id="t1")

    def append(self, *args, **kwargs):
        raise RuntimeError("the store went away")

    async def aappend(self, *args, **kwargs):
        append(self)

    monkeypatch.setattr(BlockStore, "append", append)
    monkeypatch.setattr(BlockStore, "aappend", aappend)
    with pytest.raises(RuntimeError, match="went away"):
        agent.import_messages(HISTORY, thread_id="t1")
    assert state_texts(agent) == ["Hi", "Hello!"]


# --- the records, without I/O --------------------------------------------------------


def test_records_may_be_dataclasses_mappings_or_langchain_messages() -> None:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    found = read_messages(
        [
            ImportedMessage(text="Hi", speaker="Ann", timestamp=when),
            {"role": "assistant", "content": "Hello", "timestamp": 1683554160},
            HumanMessage("I moved", name="Bo"),
            AIMessage("Congratulations"),
        ],
        session_date="3 March 2024",
    )
    assert [(m.role, m.speaker, m.text, m.timestamp) for m in found] == [
        ("user", "Ann", "Hi", "2023-05-08T13:56:00+00:00"),
        ("assistant", None, "Hello", "2023-05-08T13:56:00+00:00"),
        ("user", "Bo", "I moved", "3 March 2024"),
        ("assistant", None, "Congratulations", "3 March 2024"),
    ]


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ({"text": "hi", "thread": "t9"}, "unknown field 'thread'"),
        ({"text": "a", "content": "b"}, "both 'text' and 'content'"),
        ({"role": "user"}, "no 'text'"),
        ({"text": "   "}, "text is empty"),
        ({"text": "hi", "speaker": ""}, "speaker must be non-empty"),
        ({"text": "hi", "timestamp": []}, "timestamp must be a datetime"),
        (ToolMessage("42", tool_call_id="c1"), "a ToolMessage cannot be imported"),
        (AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c"}]), "only tool calls"),
        ("just text", "a str is not a message"),
    ],
)
def test_each_unusable_record_is_refused_with_what_is_wrong(record, said) -> None:
    with pytest.raises(MessageRecordError, match=f"message 1: .*{said}"):
        read_messages([{"text": "fine"}, record])


def test_no_messages_at_all_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no messages to import"):
        read_messages([])


def test_speaker_and_time_are_shown_escaped_and_a_chat_turn_renders_as_before() -> None:
    entries = [
        LogEntry(1, "user", "Hi", speaker='Ann "A" <x>', said_at="3 March"),
        LogEntry(2, "assistant", "Hello"),
    ]
    page = render_transcript_page(entries, total=2)
    shown = 'speaker="Ann &quot;A&quot; &lt;x&gt;" said_at="3 March">Hi</message>'
    assert f'<message n="1" role="user" {shown}' in page
    assert '<message n="2" role="assistant">Hello</message>' in page


def test_who_said_it_and_when_count_as_what_was_said_for_grounding() -> None:
    entries = [LogEntry(1, "user", "I moved yesterday.", speaker="Ines", said_at="3 March 2024")]
    evidence = PageEvidence.of(entries, [])
    assert ungrounded_words("Ines moved on 3 March 2024", evidence.said) == []
