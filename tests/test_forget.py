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

import sleepagent.agent.flows as flows
from sleepagent import ConfigurationError, Forgotten, ScopeMismatchError, ScopePolicy, SleepConfig
from sleepagent.graph.companion import sleep_thread_id
from sleepagent.scope import Scope
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.testing import ManualScheduler
from sleepagent.testing.replies import finish, insert
from tests.conftest import Driver

WAIT_S = 30

ADA = ("t", "t-2")
"""Ada's threads ("t" is a prefix of Adam's "tt": the ids must not be confused)."""
ADAM = ("tt", "t-2x")
SOLO = "t-3"
"""A conversation with no user: its own (thread) scope."""

Key = tuple[Any, ...]


def snapshot(driver: Driver) -> dict[Key, str]:
    """Every store item and every checkpoint on the database, by where it is kept."""
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
    return found


def owned_by(key: Key, *, threads: Sequence[str], scope: Scope | None) -> bool:
    """Whether ``key`` is kept for one of ``threads`` or for ``scope`` (with its runs' thread)."""
    if key[0] == "checkpoint":
        companion = sleep_thread_id(scope) if scope is not None else None
        return key[1] in threads or key[1] == companion
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


@pytest.fixture
def agent(make_agent):
    driver, _, _ = make_agent(CHAT, SLEEP)
    converse(driver)
    return driver


def test_forgetting_a_user_removes_their_memory_threads_and_checkpoints_and_nothing_else(agent):
    before = snapshot(agent)
    ada = Scope("user", "ada")
    hers = {key for key in before if owned_by(key, threads=ADA, scope=ada)}
    assert any(key[0] == "checkpoint" for key in hers) and any(key[0] == "item" for key in hers)

    forgotten = agent.forget(user_id="ada")

    after = snapshot(agent)
    assert after == {key: value for key, value in before.items() if key not in hers}
    items = sum(1 for key in hers if key[0] == "item")
    assert forgotten == Forgotten("user:ada", ADA, whole_scope=True, items=items)
    assert agent.memory(thread_id="t", user_id="ada")["human"].version == 0
    assert agent.memory(thread_id="tt", user_id="adam")["human"].value == "Adam likes coffee."


def test_forgetting_a_users_thread_keeps_their_memory_and_their_other_threads(agent):
    before = snapshot(agent)
    thread = {key for key in before if owned_by(key, threads=["t-2"], scope=None)}
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
    agent, _, _ = make_agent(["ok"], [insert("human", "Zanzibar-7 is Ada's codeword.")])
    agent.chat("My codeword is Zanzibar-7.", thread_id="t", user_id="ada")
    agent.sleep(thread_id="t", user_id="ada")
    agent.forget(user_id="ada")
    agent.close()
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    conn.close()
    assert b"Zanzibar" not in Path(db).read_bytes()
