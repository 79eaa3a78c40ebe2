"""The graph used directly, as a LangGraph user or LangGraph Server would."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import RemoveMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.store.memory import InMemoryStore

from sleepagent import (
    BlockStore,
    ConfigurationError,
    ScopePolicy,
    SleepConfig,
    SleepContext,
    build_graph,
    sleep_request,
    sleep_thread_id,
)
from sleepagent.graph.build import RECURSION_LIMIT
from sleepagent.models import resolve_model
from sleepagent.scheduling.server import ServerIdleScheduler
from sleepagent.scope import Scope, resolve_scope
from sleepagent.testing import ScriptedChatModel

ROOT = Path(__file__).resolve().parent.parent


class RecordingHandler(BaseCallbackHandler):
    """Records how each chat model call was labelled."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_chat_model_start(
        self, serialized, messages, *, run_id, tags=None, metadata=None, **kwargs
    ):
        self.calls.append(
            {"name": kwargs.get("name"), "tags": tags or [], "metadata": metadata or {}}
        )


def compiled(chat, sleep, **kwargs):
    graph = build_graph(chat, sleep_model=sleep, **kwargs)
    return graph.compile(checkpointer=InMemorySaver(), store=InMemoryStore())


def test_the_graph_has_the_agent_and_sleep_nodes():
    graph = build_graph(ScriptedChatModel())
    assert {"agent", "agent_tools", "sleep", "sleep_tools", "sleep_commit"} <= set(graph.nodes)


def test_a_message_runs_the_agent_and_a_sleep_request_runs_the_sleep_agent():
    chat = ScriptedChatModel(["hi Ada"])
    sleep = ScriptedChatModel(["- I'm Ada."])  # the fact pass's list
    graph = compiled(chat, sleep)
    context = SleepContext(thread_id="t1", user_id="ada")
    limits = {"recursion_limit": RECURSION_LIMIT}

    state = graph.invoke(
        {"messages": [("user", "I'm Ada")]}, {"configurable": {"thread_id": "t1"}}, context=context
    )
    assert state["messages"][-1].content == "hi Ada"

    sleep_config = {"configurable": {"thread_id": sleep_thread_id(Scope("user", "ada"))}, **limits}
    state = graph.invoke(sleep_request(reason="idle"), sleep_config, context=context)
    assert state["sleep_result"]["reason"] == "idle"
    assert state["sleep_result"]["diffs"][0]["after"] == "I'm Ada."
    assert state["sleep_request"] is None
    assert len(chat.calls) == 1 and len(sleep.calls) == 1


def test_without_a_context_the_run_uses_its_own_thread_as_identity():
    chat = ScriptedChatModel(["hello"])
    graph = compiled(chat, ScriptedChatModel())
    graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "plain"}})
    positions = {p.thread_id: p for p in BlockStore(graph.store, ()).positions()}
    assert positions["plain"].scope == "thread:plain"


def logged(graph, thread_id: str) -> list[tuple[str, str]]:
    scope = Scope("thread", thread_id)
    _, entries, _, _ = BlockStore(graph.store, ()).read_page(
        scope, thread_id, max_messages=100, max_chars=100_000
    )
    return [(entry.role, entry.text) for entry in entries]


def test_each_message_of_a_graph_input_is_logged_once_in_order():
    graph = compiled(ScriptedChatModel(["one", "two"]), ScriptedChatModel())
    config = {"configurable": {"thread_id": "t1"}}
    graph.invoke({"messages": [("user", "a"), ("user", "b")]}, config)
    graph.invoke({"messages": [("user", "c")]}, config)
    assert logged(graph, "t1") == [
        ("user", "a"),
        ("user", "b"),
        ("assistant", "one"),
        ("user", "c"),
        ("assistant", "two"),
    ]


def test_a_turn_the_thread_dropped_after_logging_is_not_logged_again_with_the_next():
    # As when a reply stream fails after the turn was logged: the log keeps the turn,
    # the thread goes back to its messages before it. The next turn logs only itself.
    graph = compiled(ScriptedChatModel(["one", "two", "three"]), ScriptedChatModel())
    config = {"configurable": {"thread_id": "t1"}}
    graph.invoke({"messages": [("user", "a")]}, config)
    before = graph.get_state(config).values["messages"]
    graph.invoke({"messages": [("user", "b")]}, config)
    graph.update_state(config, {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *before]})
    graph.invoke({"messages": [("user", "c")]}, config)
    assert logged(graph, "t1") == [
        ("user", "a"),
        ("assistant", "one"),
        ("user", "b"),
        ("assistant", "two"),
        ("user", "c"),
        ("assistant", "three"),
    ]


def test_a_turn_killed_after_its_log_write_is_not_logged_again_by_the_next_turns():
    # A process killed after the agent node logged its turn and before LangGraph wrote
    # the node's checkpoint leaves the thread holding the turn's input only (LangGraph
    # checkpoints a run's input before its first node) and the log the whole turn.
    graph = compiled(ScriptedChatModel(["one", "two", "three", "four"]), ScriptedChatModel())
    config = {"configurable": {"thread_id": "t1"}}

    def killed_before_its_checkpoint(text: str) -> None:
        graph.invoke({"messages": [("user", text)]}, config)
        unanswered = graph.get_state(config).values["messages"][:-1]
        graph.update_state(
            config, {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *unanswered]}
        )

    graph.invoke({"messages": [("user", "a")]}, config)
    killed_before_its_checkpoint("b")
    killed_before_its_checkpoint("c")  # killed again, on the very next turn
    graph.invoke({"messages": [("user", "d")]}, config)
    assert logged(graph, "t1") == [
        ("user", "a"),
        ("assistant", "one"),
        ("user", "b"),
        ("assistant", "two"),
        ("user", "c"),
        ("assistant", "three"),
        ("user", "d"),
        ("assistant", "four"),
    ]


def test_after_context_is_logged_the_next_turn_logs_its_whole_input_and_nothing_older():
    graph = compiled(ScriptedChatModel(["one", "two"]), ScriptedChatModel())
    config = {"configurable": {"thread_id": "t1"}}
    graph.invoke({"messages": [("user", "a")]}, config)
    context = [("context", "the bakery problem", None)]
    BlockStore(graph.store, ()).append(Scope("thread", "t1"), "t1", context, at="now")
    graph.invoke({"messages": [("assistant", "welcome back"), ("user", "b")]}, config)
    assert logged(graph, "t1") == [
        ("user", "a"),
        ("assistant", "one"),
        ("context", "the bakery problem"),
        ("assistant", "welcome back"),
        ("user", "b"),
        ("assistant", "two"),
    ]


def test_each_phase_is_labelled_for_tracing():
    handler = RecordingHandler()
    chat = ScriptedChatModel(["hi"])
    sleep = ScriptedChatModel(["NOTHING NEW"])
    graph = compiled(chat, sleep)
    context = SleepContext(thread_id="t1")
    graph.invoke(
        {"messages": [("user", "hi")]},
        {"configurable": {"thread_id": "t1"}, "callbacks": [handler]},
        context=context,
    )
    graph.invoke(
        sleep_request(),
        {
            "configurable": {"thread_id": "s"},
            "callbacks": [handler],
            "recursion_limit": RECURSION_LIMIT,
        },
        context=context,
    )
    chat_call, sleep_call = handler.calls
    assert chat_call["name"] == "sleepagent:chat"
    assert "sleepagent:chat" in chat_call["tags"]
    assert chat_call["metadata"]["sleepagent_phase"] == "chat"
    assert chat_call["metadata"]["memory_scope"] == "thread:t1"
    assert sleep_call["name"] == "sleepagent:sleep-facts"  # the fact pass, a sleep-phase call
    assert sleep_call["metadata"]["sleepagent_phase"] == "sleep"
    assert sleep_call["metadata"]["thread_id"] == "t1"


def test_the_server_entry_point_builds_a_graph(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    spec = importlib.util.spec_from_file_location(
        "sleepagent_graph", ROOT / "graphs" / "sleepagent_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = module.make_graph()
    assert "sleep" in graph.get_graph().nodes
    assert graph.checkpointer is None


def test_a_model_spec_without_credentials_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        resolve_model("openai:gpt-4o-mini")


def test_an_unknown_model_spec_is_refused():
    with pytest.raises(ConfigurationError, match="openai:<model>"):
        resolve_model("mystery-model")


def test_scope_policy_decides_who_owns_memory():
    assert resolve_scope(ScopePolicy.AUTO, thread_id="t", user_id=None) == Scope("thread", "t")
    assert resolve_scope(ScopePolicy.AUTO, thread_id="t", user_id="u") == Scope("user", "u")
    assert resolve_scope(ScopePolicy.THREAD, thread_id="t", user_id="u") == Scope("thread", "t")
    with pytest.raises(ConfigurationError, match="user_id"):
        resolve_scope(ScopePolicy.USER, thread_id="t", user_id=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_sleep_steps", 0),
        ("page_messages", -1),
        ("history_messages", 0),
        ("max_commit_retries", -1),
    ],
)
def test_bad_configuration_is_refused_on_construction(field, value):
    with pytest.raises(ConfigurationError, match=field):
        SleepConfig(**{field: value})


def test_configuration_refuses_a_policy_given_as_a_string():
    with pytest.raises(ConfigurationError, match="ScopePolicy"):
        SleepConfig(scope="user")


def test_a_timer_started_run_with_too_few_new_messages_is_skipped_in_the_graph():
    chat = ScriptedChatModel(["hi"])
    sleep = ScriptedChatModel(["NOTHING NEW"])
    graph = compiled(chat, sleep, config=SleepConfig(min_new_messages=4))
    context = SleepContext(thread_id="t1")
    graph.invoke(
        {"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t1"}}, context=context
    )
    limits = {"configurable": {"thread_id": "s"}, "recursion_limit": RECURSION_LIMIT}

    skipped = graph.invoke(sleep_request(reason="idle"), limits, context=context)
    assert skipped["sleep_result"]["messages_processed"] == 0
    assert sleep.calls == [], "no model call for 2 new messages under min_new_messages=4"

    manual = graph.invoke(sleep_request(reason="manual"), limits, context=context)
    assert manual["sleep_result"]["messages_processed"] == 2


class RecordingRuns:
    """Stands in for ``langgraph_sdk``'s ``client.runs``: records the delayed runs created."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create(self, thread_id, assistant_id, **options):
        self.created.append({"thread_id": thread_id, "assistant_id": assistant_id, **options})
        return {"run_id": f"run-{len(self.created)}"}


class RecordingClient:
    def __init__(self) -> None:
        self.runs = RecordingRuns()


async def test_on_the_server_each_turn_sets_a_delayed_run_with_rollback_and_max_wait():
    client = RecordingClient()
    scheduler = ServerIdleScheduler("sleepagent", client=client)
    config = SleepConfig(idle_seconds=30, max_wait_turns=2)
    graph = build_graph(
        ScriptedChatModel(["one", "two"]), config=config, server_scheduler=scheduler
    )
    compiled_graph = graph.compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    turn = {"configurable": {"thread_id": "t1"}}
    context = SleepContext(thread_id="t1", user_id="ada")

    await compiled_graph.ainvoke({"messages": [("user", "hi")]}, turn, context=context)
    await compiled_graph.ainvoke({"messages": [("user", "again")]}, turn, context=context)

    first, second = client.runs.created
    assert first["thread_id"] == sleep_thread_id(Scope("user", "ada"))
    assert first["multitask_strategy"] == "rollback"
    assert first["input"] == sleep_request(reason="idle")
    assert first["context"] == {"thread_id": "t1", "user_id": "ada"}
    assert first["after_seconds"] == 30
    assert second["input"] == sleep_request(reason="max_wait")
    assert second["after_seconds"] == 0, "the second turn reached max_wait_turns"


def test_a_server_scheduler_with_another_scope_policy_is_refused():
    from sleepagent import ConfigurationError, ScopePolicy, SleepConfig
    from sleepagent.scheduling.server import ServerIdleScheduler

    with pytest.raises(ConfigurationError, match="ServerIdleScheduler"):
        build_graph(
            ScriptedChatModel(),
            config=SleepConfig(scope=ScopePolicy.THREAD),
            server_scheduler=ServerIdleScheduler("sleepagent"),
        )
