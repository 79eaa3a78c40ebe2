"""sleepagent.integrations: platform keys, the per-conversation queue, and chat_node."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from sleepagent import AsyncSleepTimeAgent, ConfigurationError, SleepTimeAgent, WrongModeError
from sleepagent.integrations import (
    ChatKey,
    ConversationQueue,
    bot_db,
    chat_node,
    discord_key,
    is_slack_bot_event,
    merge_texts,
    runs_by,
    shared_thread_id,
    slack_key,
    slack_reply_thread,
    state_dir,
    strip_mentions,
)
from sleepagent.testing import ScriptedChatModel, memory_in_prompt

WAIT_S = 5.0

# --- chatkeys ---------------------------------------------------------------------


def test_a_slack_dm_is_one_conversation_of_its_user():
    event = {"user": "U1", "channel": "D9", "channel_type": "im", "ts": "1.2"}
    assert slack_key(event, team_id="T1") == ChatKey(
        place="slack:T1:D9", thread_id="slack:T1:D9", user_id="slack:T1:U1"
    )


def test_a_slack_channel_thread_is_one_place_with_one_agent_thread_per_person():
    ada = {"user": "UA", "channel": "C1", "ts": "2.0", "thread_ts": "1.0"}
    bob = {**ada, "user": "UB", "ts": "3.0"}
    keys = [slack_key(event, team_id="T1") for event in (ada, bob)]
    assert {key.place for key in keys} == {"slack:T1:C1:1.0"}
    assert [key.thread_id for key in keys] == [
        "slack:T1:C1:1.0:slack:T1:UA",
        "slack:T1:C1:1.0:slack:T1:UB",
    ]


def test_a_top_level_slack_message_starts_the_thread_it_is_answered_in():
    event = {"user": "U1", "channel": "C1", "ts": "5.5"}
    assert slack_key(event, team_id="T1").place == "slack:T1:C1:5.5"
    assert slack_reply_thread(event) == "5.5"


def test_a_slack_dm_is_answered_outside_threads_unless_it_is_in_one():
    assert slack_reply_thread({"channel": "D1", "channel_type": "im", "ts": "1.0"}) is None
    assert slack_reply_thread({"channel": "D1", "ts": "2.0", "thread_ts": "1.0"}) == "1.0"


def test_a_slack_event_without_identity_is_refused_with_what_is_missing():
    with pytest.raises(ConfigurationError, match="'user'"):
        slack_key({"channel": "C1", "ts": "1.0"}, team_id="T1")


@pytest.mark.parametrize(
    ("event", "ignored"),
    [
        ({"user": "U1", "text": "hi"}, False),
        ({"user": "U1", "subtype": "file_share"}, False),
        ({"user": "UBOT", "text": "my own reply"}, True),
        ({"user": "U2", "bot_id": "B2"}, True),
        ({"subtype": "bot_message", "bot_id": "B2"}, True),
        ({"user": "U1", "subtype": "message_changed"}, True),
        ({"user": "U1", "subtype": "channel_join"}, True),
        ({"text": "no user"}, True),
    ],
)
def test_slack_events_from_bots_or_not_from_a_person_are_ignored(event, ignored):
    assert is_slack_bot_event(event, bot_user_id="UBOT") is ignored


def test_a_discord_dm_is_one_conversation_and_a_server_channel_one_per_person():
    assert discord_key(channel_id=7, author_id=1, guild_id=None) == ChatKey(
        "discord:dm:7", "discord:dm:7", "discord:1"
    )
    assert discord_key(channel_id=7, author_id=1, guild_id=3) == ChatKey(
        "discord:3:7", "discord:3:7:discord:1", "discord:1"
    )


def test_a_shared_thread_without_a_user_stays_the_place():
    assert shared_thread_id("general", None) == "general"


def test_only_the_bots_own_mentions_are_stripped():
    assert strip_mentions("<@UBOT> ask <@U2> too", bot_user_id="UBOT") == "ask <@U2> too"
    assert strip_mentions("<@!900>  hello <@5>", bot_user_id=900) == "hello <@5>"
    assert strip_mentions("<@UBOT|bot> hi", bot_user_id="UBOT") == "hi"


def test_merged_messages_keep_their_order_and_drop_blank_ones():
    assert merge_texts(["first", "  ", "second"]) == "first\nsecond"


def test_runs_by_cuts_at_each_change_of_speaker():
    assert runs_by(["a1", "a2", "b1", "a3"], key=operator.itemgetter(0)) == [
        ["a1", "a2"],
        ["b1"],
        ["a3"],
    ]


# --- ConversationQueue --------------------------------------------------------------


class HeldHandler:
    """A batch handler that can be held inside a call."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str, items):
        self.entered.set()
        await asyncio.wait_for(self.release.wait(), WAIT_S)
        self.batches.append((key, list(items)))


async def test_items_put_while_busy_are_handled_next_as_one_batch():
    handler = HeldHandler()
    handler.release.clear()
    async with ConversationQueue(handler) as queue:
        queue.put("t1", "first")
        await asyncio.wait_for(handler.entered.wait(), WAIT_S)
        queue.put("t1", "second")
        queue.put("t1", "third")
        handler.release.set()
        await queue.join(WAIT_S)
    assert handler.batches == [("t1", ["first"]), ("t1", ["second", "third"])]


async def test_without_merge_items_are_handled_one_at_a_time_in_order():
    handler = HeldHandler()
    async with ConversationQueue(handler, merge=False) as queue:
        for item in ("a", "b", "c"):
            queue.put("t1", item)
        await queue.join(WAIT_S)
    assert handler.batches == [("t1", ["a"]), ("t1", ["b"]), ("t1", ["c"])]


async def test_a_redelivered_item_is_queued_once():
    handler = HeldHandler()
    async with ConversationQueue(handler) as queue:
        assert queue.put("t1", "hello", item_id="m1")
        assert not queue.put("t1", "hello", item_id="m1")
        await queue.join(WAIT_S)
    assert handler.batches == [("t1", ["hello"])]


async def test_only_the_most_recent_item_ids_are_remembered():
    handler = HeldHandler()
    async with ConversationQueue(handler, merge=False, remember=1) as queue:
        for item_id in ("m1", "m2", "m1"):
            queue.put("t1", item_id, item_id=item_id)
        await queue.join(WAIT_S)
    assert [items for _, items in handler.batches] == [["m1"], ["m2"], ["m1"]]


async def test_one_busy_conversation_does_not_hold_up_another():
    slow = HeldHandler()
    slow.release.clear()
    done = asyncio.Event()

    async def handle(key, items):
        if key == "slow":
            await slow(key, items)
        else:
            done.set()

    async with ConversationQueue(handle) as queue:
        queue.put("slow", "x")
        queue.put("fast", "y")
        await asyncio.wait_for(done.wait(), WAIT_S)
        assert queue.waiting("slow") == 0 and queue.busy
        slow.release.set()


async def test_a_failed_batch_is_reported_and_the_conversation_goes_on():
    failures, handled = [], []

    async def handle(key, items):
        if items == ["boom"]:
            raise RuntimeError("model down")
        handled.extend(items)

    queue = ConversationQueue(handle, merge=False, on_error=lambda *f: failures.append(f))
    queue.put("t1", "boom")
    queue.put("t1", "fine")
    await queue.join(WAIT_S)
    await queue.aclose()
    assert [(key, list(items), str(error)) for key, items, error in failures] == [
        ("t1", ["boom"], "model down")
    ]
    assert handled == ["fine"]


async def test_closing_returns_what_was_not_handled_in_time_and_refuses_more():
    handler = HeldHandler()
    handler.release.clear()
    queue = ConversationQueue(handler)
    queue.put("t1", "in hand")
    await asyncio.wait_for(handler.entered.wait(), WAIT_S)
    queue.put("t1", "waiting")
    assert await queue.aclose(timeout=0.01) == [("t1", "waiting")]
    with pytest.raises(ConfigurationError, match="closed"):
        queue.put("t1", "late")


async def test_join_is_bounded():
    handler = HeldHandler()
    handler.release.clear()
    queue = ConversationQueue(handler)
    queue.put("t1", "stuck")
    with pytest.raises(TimeoutError):
        await queue.join(0.01)
    handler.release.set()
    await queue.aclose()


# --- chat_node ------------------------------------------------------------------------


class AppState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    user_id: str
    audit: Annotated[list[str], operator.add]


def remembering(messages):
    return f"{messages[-1].content} (memory: {memory_in_prompt(messages)['human'] or 'empty'})"


def their_graph(agent):
    graph = StateGraph(AppState)
    graph.add_node("audit", lambda state: {"audit": [state["messages"][-1].content]})
    graph.add_node("assistant", chat_node(agent))
    graph.add_edge(START, "audit")
    graph.add_edge("audit", "assistant")
    return graph.compile(checkpointer=InMemorySaver())


def test_chat_node_answers_inside_an_existing_graph_with_its_thread_and_user():
    with SleepTimeAgent(ScriptedChatModel([remembering] * 2), db=None, scheduler=None) as agent:
        agent.write_memory("human", "Ada likes tea", thread_id="x", user_id="ada")
        app = their_graph(agent)
        config = {"configurable": {"thread_id": "t1"}}
        state = app.invoke({"messages": [HumanMessage("hi")], "user_id": "ada"}, config)
        assert state["messages"][-1] == AIMessage(
            "hi (memory: Ada likes tea)", id=state["messages"][-1].id
        )
        assert state["audit"] == ["hi"], "the user's own node ran too"
        assert agent.blocks.position("t1").head == 2, "the turn was logged for sleep-time compute"


async def test_chat_node_uses_an_async_agent_with_ainvoke():
    async with AsyncSleepTimeAgent(
        ScriptedChatModel([remembering]), db=None, scheduler=None
    ) as agent:
        app = their_graph(agent)
        config = {"configurable": {"thread_id": "t1", "user_id": "bob"}}
        state = await app.ainvoke({"messages": [HumanMessage("hello")]}, config)
    assert state["messages"][-1].content == "hello (memory: empty)"


def test_chat_node_without_a_thread_id_says_how_to_pass_one():
    with SleepTimeAgent(ScriptedChatModel(), db=None, scheduler=None) as agent:
        graph = StateGraph(AppState)
        graph.add_node("assistant", chat_node(agent))
        graph.add_edge(START, "assistant")
        with pytest.raises(ConfigurationError, match="thread_id"):
            graph.compile().invoke({"messages": [HumanMessage("hi")]})


def test_chat_node_with_an_async_agent_refuses_a_sync_run():
    agent = AsyncSleepTimeAgent(ScriptedChatModel(), db=None, scheduler=None)
    with pytest.raises(WrongModeError, match="ainvoke"):
        their_graph(agent).invoke(
            {"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "t1"}}
        )


def test_a_bots_database_is_sleepagent_db_when_set_else_in_the_state_folder(tmp_path):
    assert bot_db("bot", {"SLEEPAGENT_DB": "postgresql://db/x"}) == "postgresql://db/x"
    state = tmp_path / "state"
    assert bot_db("bot", {"XDG_STATE_HOME": str(state)}) == str(state / "sleepagent" / "bot.db")
    assert (state / "sleepagent").is_dir(), "its folder is created"
    assert state_dir({"XDG_STATE_HOME": ""}) == Path.home() / ".local" / "state" / "sleepagent"
