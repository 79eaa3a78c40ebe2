"""forget removes everything stored for a user or a thread, and nothing else; export returns it.

Every test runs on each backend and in both modes. "Everything stored" is read
straight from the store and the checkpointer (every item, every checkpoint),
not through the code under test.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

import sleepagent.agent.flows as flows
from sleepagent import ConfigurationError, Forgotten, ScopeMismatchError, ScopePolicy, SleepConfig
from sleepagent.graph.companion import sleep_thread_id
from sleepagent.scope import Scope
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.store.recallindex import recall_index_for
from sleepagent.testing import ManualScheduler
from sleepagent.testing.replies import finish, insert
from tests.conftest import POSTGRES_URL, Driver

WAIT_S = 30

ADA = ("t", "t-2")
"""Ada's threads ("t" is a prefix of Adam's "tt": the ids must not be confused)."""
ADAM = ("tt", "t-2x")
SOLO = "t-3"
"""A conversation with no user: its own (thread) scope."""

Key = tuple[Any, ...]


def recall_rows(driver: Driver) -> dict[Key, str]:
    """Every row of the recall index, read from the database beside the store's tables.

    SQLite through the store's own connection (under its lock), PostgreSQL on a
    connection of its own, memory from the in-process index's dictionary.
    """
    store = driver.agent.blocks.store
    columns = "scope, thread_id, seq, role, body, speaker, said_at, logged_at, message_id"
    sql = f"SELECT {columns} FROM sleepagent_recall"
    if isinstance(store, InMemoryStore):
        index: Any = recall_index_for(store)
        rows = [
            tuple(row.to_dict().values())
            for held in index._scopes.values()
            for row, _ in held.values()
        ]
    elif _is_postgres(store):
        import psycopg

        assert POSTGRES_URL is not None

        with psycopg.connect(POSTGRES_URL) as conn:
            exists = conn.execute("SELECT to_regclass('sleepagent_recall')").fetchone()
            rows = [tuple(row) for row in conn.execute(sql)] if exists and exists[0] else []
    else:
        with store.lock:  # type: ignore[attr-defined]
            conn = store.conn  # type: ignore[attr-defined]
            listed = conn.execute("SELECT name FROM sqlite_master WHERE name = 'sleepagent_recall'")
            rows = list(conn.execute(sql)) if listed.fetchall() else []
    return {("recall", row[0], row[1], row[2]): json.dumps(row) for row in rows}


def _is_postgres(store: Any) -> bool:
    return type(store).__module__.startswith("langgraph.store.postgres")


def snapshot(driver: Driver) -> dict[Key, str]:
    """Every store item, checkpoint and recall row on the database, by where it is kept."""
    store, saver = driver.agent.blocks.store, driver.agent.checkpointer

    async def read_async() -> tuple[list[Any], list[Any]]:
        items = await store.asearch(("sleepagent",), limit=100_000)
        return items, [found async for found in saver.alist(None)]

    if driver.loop is None:
        items, checkpoints = store.search(("sleepagent",), limit=100_000), list(saver.list(None))
    else:
        items, checkpoints = driver.loop.run_until_complete(read_async())
    found: dict[Key, str] = {}
    for item in items:
        found[("item", *item.namespace, item.key)] = json.dumps(
            [item.value, str(item.updated_at)], sort_keys=True
        )
    for checkpoint in checkpoints:
        configurable = checkpoint.config["configurable"]
        key = ("checkpoint", configurable["thread_id"], configurable["checkpoint_id"])
        found[key] = repr((checkpoint.checkpoint, checkpoint.metadata, checkpoint.pending_writes))
    found.update(recall_rows(driver))
    return found


def owned_by(key: Key, *, threads: Sequence[str], scope: Scope | None) -> bool:
    """Whether ``key`` is kept for one of ``threads`` or for ``scope`` (with its runs' thread)."""
    if key[0] == "checkpoint":
        companion = sleep_thread_id(scope) if scope is not None else None
        return key[1] in threads or key[1] == companion
    if key[0] == "recall":
        return key[2] in threads or (scope is not None and key[1] == scope.key)
    namespace = key[1:-1]
    if namespace[1] in ("threads", "logs"):
        return namespace[2] in threads
    return scope is not None and namespace[1:4] == ("scopes", scope.kind, scope.id)


def converse(agent: Driver) -> None:
    """Ada (two threads, a raw context), Adam (two threads) and a thread of no user."""
    agent.chat("I am Ada and I like tea.", thread_id="t", user_id="ada")
    agent.chat("I am Adam and I like coffee.", thread_id="tt", user_id="adam")
    agent.sleep(thread_id="t", user_id="ada")
    agent.sleep(thread_id="tt", user_id="adam")
    agent.chat("Still Ada, on another thread.", thread_id="t-2", user_id="ada")
    agent.add_context("Ada's garden has 4 rows of 6 tulips.", thread_id="t-2", user_id="ada")
    agent.chat("Still Adam, on another thread.", thread_id="t-2x", user_id="adam")
    agent.chat("Nobody in particular here.", thread_id=SOLO)
    agent.sleep(thread_id=SOLO)


CHAT = ["hello Ada", "hello Adam", "hello again Ada", "hello again Adam", "hello"]
SLEEP = [insert("human", "Ada likes tea."), insert("human", "Adam likes coffee."), finish()]
SLEEP += [insert("human", "Someone passed by.")]


RECALL = SleepConfig(recall_messages=3)
"""Recall on, so each sleep run indexes the messages it reads."""


@pytest.fixture
def agent(make_agent):
    driver, _, _ = make_agent(CHAT, SLEEP, config=RECALL)
    converse(driver)
    assert any(key[0] == "recall" for key in snapshot(driver)), "recall rows to forget"
    return driver


def test_forgetting_a_user_removes_their_memory_threads_and_checkpoints_and_nothing_else(agent):
    before = snapshot(agent)
    ada = Scope("user", "ada")
    hers = {key for key in before if owned_by(key, threads=ADA, scope=ada)}
    assert any(key[0] == "checkpoint" for key in hers) and any(key[0] == "item" for key in hers)

    forgotten = agent.forget(user_id="ada")

    after = snapshot(agent)
    assert after == {key: value for key, value in before.items() if key not in hers}
    assert any(key[0] == "recall" for key in hers)
    items = sum(1 for key in hers if key[0] in ("item", "recall"))
    assert forgotten == Forgotten("user:ada", ADA, whole_scope=True, items=items)
    assert agent.memory(thread_id="t", user_id="ada")["human"].version == 0
    assert agent.memory(thread_id="tt", user_id="adam")["human"].value == "Adam likes coffee."


def test_forgetting_a_users_thread_keeps_their_memory_and_their_other_threads(agent):
    before = snapshot(agent)
    thread = {key for key in before if owned_by(key, threads=["t-2"], scope=None)}
    assert any(key[0] == "recall" for key in thread), "t-2's page was read by a run"
    contexts = {key for key in before if key[0] == "item" and key[-2] == "contexts"}
    assert len(contexts) == 1, "the raw context was given on t-2"

    forgotten = agent.forget(thread_id="t-2", user_id="ada")

    assert snapshot(agent) == {
        key: value for key, value in before.items() if key not in thread | contexts
    }
    assert forgotten.threads == ("t-2",) and not forgotten.whole_scope
    assert agent.memory(thread_id="t", user_id="ada")["human"].value == "Ada likes tea."


def test_forgetting_a_thread_of_no_user_removes_its_memory_with_it(agent):
    before = snapshot(agent)
    solo = Scope("thread", SOLO)
    its = {key for key in before if owned_by(key, threads=[SOLO], scope=solo)}
    assert any(key[1:4] == ("sleepagent", "scopes", "thread") for key in its)

    forgotten = agent.forget(thread_id=SOLO)

    assert snapshot(agent) == {key: value for key, value in before.items() if key not in its}
    assert forgotten.whole_scope and forgotten.scope == "thread:t-3"


def test_forgetting_is_refused_for_a_thread_of_another_user_and_changes_nothing(agent):
    before = snapshot(agent)
    with pytest.raises(ScopeMismatchError):
        agent.forget(thread_id="tt", user_id="ada")
    with pytest.raises(ScopeMismatchError):
        agent.export(thread_id="tt", user_id="ada")
    assert snapshot(agent) == before


def test_forgetting_asks_whose_data(make_agent):
    agent, _, _ = make_agent()
    with pytest.raises(ConfigurationError, match="whose data"):
        agent.forget()
    per_thread, _, _ = make_agent(config=SleepConfig(scope=ScopePolicy.THREAD))
    with pytest.raises(ConfigurationError, match="thread_id"):
        per_thread.forget(user_id="ada")


def test_forgetting_twice_removes_nothing_more(agent):
    agent.forget(user_id="ada")
    before = snapshot(agent)
    assert agent.forget(user_id="ada") == Forgotten("user:ada", (), whole_scope=True, items=0)
    assert snapshot(agent) == before


def test_an_export_holds_what_forget_removes_and_is_json(agent):
    document = json.loads(json.dumps(agent.export(user_id="ada")))

    assert document["format"] == "sleepagent-export/1" and document["scope"] == "user:ada"
    assert document["memory"]["blocks"]["human"]["value"] == "Ada likes tea."
    assert [entry["value"] for entry in document["memory"]["history"]["human"]] == [
        "Ada likes tea."
    ]
    assert sorted(document["threads"]) == list(ADA)
    first = document["threads"]["t"]
    assert [entry["text"] for entry in first["log"]] == ["I am Ada and I like tea.", "hello Ada"]
    assert [message["data"]["content"] for message in first["messages"]] == [
        "I am Ada and I like tea.",
        "hello Ada",
    ]
    assert [row["text"] for row in first["recall"]] == ["I am Ada and I like tea.", "hello Ada"]
    assert {row["scope"] for row in first["recall"]} == {"user:ada"}
    second = document["threads"]["t-2"]
    assert [context["text"] for context in second["contexts"]] == [
        "Ada's garden has 4 rows of 6 tulips."
    ]
    assert "Adam" not in json.dumps(document)

    agent.forget(user_id="ada")
    emptied = agent.export(user_id="ada")
    assert emptied["threads"] == {} and emptied["memory"]["blocks"] == {}


def test_an_export_of_one_thread_leaves_out_the_users_memory(agent):
    document = agent.export(thread_id="t-2", user_id="ada")
    assert "memory" not in document and list(document["threads"]) == ["t-2"]


FORGET_WAITS = threading.Event()
"""Set when a caller starts waiting for a scope's run lock (only forget waits, in these tests)."""


def watched_run_lock(store: Any, scope: Scope, *, wait: bool) -> Any:
    if wait:
        FORGET_WAITS.set()
    return run_lock(store, scope, wait=wait)


def awatched_run_lock(store: Any, scope: Scope, *, wait: bool) -> Any:
    """The async twin the flows' driver looks up next to :func:`watched_run_lock`."""
    if wait:
        FORGET_WAITS.set()
    return arun_lock(store, scope, wait=wait)


def test_a_sleep_run_in_flight_during_forget_writes_nothing_back(make_agent, monkeypatch):
    """The run is inside its model call when forget is asked; its edit must not survive.

    The step hands forget to another thread (or task) and waits until forget
    has either finished or stopped at the scope's run lock; only then does the
    run go on to commit its edit.
    """
    FORGET_WAITS.clear()
    monkeypatch.setattr(flows, "run_lock", watched_run_lock)
    forgetting: list[Future[Any]] = []

    def step(prompt: Any) -> Any:
        forgetting.append(start(lambda: driver.agent.forget(user_id="ada")))
        done_or_waiting = threading.Event()
        forgetting[0].add_done_callback(lambda _: done_or_waiting.set())
        threading.Thread(
            target=lambda: FORGET_WAITS.wait(WAIT_S) and done_or_waiting.set(), daemon=True
        ).start()
        assert done_or_waiting.wait(WAIT_S), "forget neither ran nor waited"
        return insert("human", "Ada likes tea.")

    driver, _, _ = make_agent(["hello Ada"], [step])

    def start(forget: Any) -> Future[Any]:
        if driver.loop is None:
            future: Future[Any] = Future()
            threading.Thread(target=lambda: future.set_result(forget()), daemon=True).start()
            return future
        return asyncio.run_coroutine_threadsafe(_awaited(forget()), driver.loop)

    driver.chat("I am Ada and I like tea.", thread_id="t", user_id="ada")
    driver.sleep(thread_id="t", user_id="ada")
    if driver.loop is not None:
        driver.loop.run_until_complete(asyncio.wrap_future(forgetting[0]))
    forgotten = forgetting[0].result(timeout=WAIT_S)

    assert forgotten.threads == ("t",)
    ada = Scope("user", "ada")
    assert [key for key in snapshot(driver) if owned_by(key, threads=["t"], scope=ada)] == []


async def _awaited(value: Any) -> Any:
    return await value


def test_a_forgotten_thread_has_no_idle_timer_left(make_agent):
    clock = ManualScheduler()
    agent, _, sleep_model = make_agent(["hello Ada"], [], scheduler=clock)
    agent.chat("I am Ada.", thread_id="t", user_id="ada")
    assert len(clock.pending) == 1

    agent.forget(user_id="ada")

    assert clock.pending == []
    assert agent.advance(3600) == [] and sleep_model.calls == []


def test_a_restart_after_forget_schedules_nothing_for_the_forgotten_user(make_agent, db):
    if db is None:
        pytest.skip("in-memory persistence does not outlive the agent")
    agent, _, _ = make_agent(["hello Ada", "hello Adam"], [])
    agent.chat("I am Ada.", thread_id="t", user_id="ada")
    agent.chat("I am Adam.", thread_id="tt", user_id="adam")
    agent.forget(user_id="ada")
    agent.close()

    clock = ManualScheduler()
    reopened, _, _ = make_agent([], [], scheduler=clock)
    assert [job.thread_id for job in clock.pending] == ["tt"]
    assert [position.thread_id for position in reopened.positions().values()] == ["tt"]


def test_the_database_file_holds_no_forgotten_text_after_a_vacuum(make_agent, db):
    """On SQLite the words themselves are gone from the file, not only unreachable."""
    if not isinstance(db, Path):
        pytest.skip("a SQLite file is read here")
    agent, _, _ = make_agent(
        ["ok", "ok"], [insert("human", "Zanzibar-7 is Ada's codeword.")], config=RECALL
    )
    agent.chat("My codeword is Zanzibar-7.", thread_id="t", user_id="ada")
    agent.sleep(thread_id="t", user_id="ada")
    agent.chat("What was my codeword?", thread_id="t", user_id="ada")  # recall searched it
    assert any("codeword" in value for value in recall_rows(agent).values())
    agent.forget(user_id="ada")
    agent.close()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    conn.close()
    # Recall's full-text index keeps its terms case-folded: look for those too.
    assert b"zanzibar" not in Path(db).read_bytes().lower()
