"""The store layout has a version: older databases are migrated at open, newer ones refused.

Layout 2 adds pending markers, so start-up recovery reads pending work and nothing
else. ``tests/data/layout_v1.db`` and ``layout_v1_items.json`` were written by the
release before it (``tests/data/make_layout_v1.py``): three threads, two of them
with turns no sleep run covered.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from langgraph.store.base import PutOp

from sleepagent import LayoutVersionError, SleepTimeAgent
from sleepagent.store import layout
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import ManualScheduler, ScriptedChatModel, rethink
from tests.conftest import POSTGRES_URL, empty_postgres

DATA = Path(__file__).parent / "data"
V1_PENDING = {"t-ada": ("user:ada", 4), "t-bob": ("user:bob", 2)}


def layout_record(store) -> dict | None:
    item = store.get(layout.META_NS, layout.LAYOUT_KEY)
    return item.value if item else None


def every_item(store) -> list[tuple]:
    found = store.search(("sleepagent",), limit=100_000)
    return sorted((tuple(item.namespace), item.key, json.dumps(item.value)) for item in found)


@pytest.fixture
def v1_sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "v1.db"
    shutil.copy(DATA / "layout_v1.db", db)
    return db


@pytest.fixture(params=["sqlite", *(["postgres"] if POSTGRES_URL else [])])
def v1_db(request: pytest.FixtureRequest, v1_sqlite: Path) -> Path | str:
    """A layout-1 database: the release's own SQLite file, or its items loaded into PostgreSQL."""
    if request.param == "sqlite":
        return v1_sqlite
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    rows = json.loads((DATA / "layout_v1_items.json").read_text())
    with open_persistence(POSTGRES_URL) as (_, store):
        store.batch([PutOp(tuple(r["namespace"]), r["key"], r["value"]) for r in rows])
    return POSTGRES_URL


def test_a_layout_1_database_is_migrated_and_its_pending_threads_get_alarms(v1_db):
    scheduler = ManualScheduler()
    with SleepTimeAgent(ScriptedChatModel(), db=v1_db, scheduler=scheduler) as agent:
        record = layout_record(agent.blocks.store)
        assert record is not None
        assert (record["version"], record["migrated_from"]) == (layout.LAYOUT_VERSION, 1)
        found = {p.thread_id: (p.scope, p.pending) for p in agent.blocks.recovery_positions()}
        assert found == V1_PENDING
        assert sorted(job.thread_id for job in scheduler.pending) == ["t-ada", "t-bob"]


def test_a_migrated_database_works_as_before_and_a_run_clears_what_it_covered(v1_db):
    chat = ScriptedChatModel(["welcome back"])
    sleep = ScriptedChatModel(["- I'm Ada.\n- I like tea."])
    with SleepTimeAgent(chat, sleep_model=sleep, db=v1_db, scheduler=None) as agent:
        assert agent.memory(user_id="ada", thread_id="t-ada")["human"].value == ""
        assert agent.memory(user_id="bob", thread_id="t-bob")["human"].value == "Bob"
        assert agent.sleep(thread_id="t-ada", user_id="ada").changed == ("human",)
        assert set(p.thread_id for p in agent.blocks.recovery_positions()) == {"t-bob"}
        agent.chat("remember me?", thread_id="t-ada", user_id="ada")
    if isinstance(v1_db, Path):  # the release's checkpoints came with the SQLite file
        assert [m.content for m in chat.calls[0].messages[1:]] == [
            "I'm Ada",
            "hello Ada",
            "I like tea",
            "noted",
            "remember me?",
        ]


def test_migrating_twice_changes_nothing_the_first_time_did_not(v1_db):
    with SleepTimeAgent(ScriptedChatModel(), db=v1_db, scheduler=None) as agent:
        first = every_item(agent.blocks.store)
    with SleepTimeAgent(ScriptedChatModel(), db=v1_db, scheduler=None) as agent:
        assert every_item(agent.blocks.store) == first


def test_a_database_with_a_newer_layout_is_refused_and_left_as_it_was(v1_db):
    newer = {"version": layout.LAYOUT_VERSION + 1}
    with open_persistence(v1_db) as (_, store):
        store.put(layout.META_NS, layout.LAYOUT_KEY, newer)
        before = every_item(store)
    with pytest.raises(LayoutVersionError, match="newer sleepagent") as refused:
        SleepTimeAgent(ScriptedChatModel(), db=v1_db, scheduler=None)
    assert (refused.value.found, refused.value.supported) == (layout.LAYOUT_VERSION + 1, 2)
    with open_persistence(v1_db) as (_, store):  # closed on the way out: it opens again
        assert every_item(store) == before


def test_a_new_database_starts_at_the_current_layout(tmp_path):
    with SleepTimeAgent(ScriptedChatModel(), db=tmp_path / "new.db", scheduler=None) as agent:
        record = layout_record(agent.blocks.store)
    assert record is not None and record["version"] == layout.LAYOUT_VERSION


# --- pending markers, on every backend and mode ------------------------------------------


def test_each_append_leaves_a_marker_and_the_commit_that_covers_it_removes_it(make_agent):
    agent, _, _ = make_agent(chat=["hi", "ok", "yo"], sleep=[rethink("human", "Ada")])
    agent.chat("I'm Ada", thread_id="t1", user_id="ada")
    agent.chat("and I like tea", thread_id="t1", user_id="ada")
    agent.chat("hello", thread_id="t1x", user_id="ada")  # an id that extends t1's
    marked = agent.recovery()
    assert sorted(marked) == ["t1", "t1x"]
    assert (marked["t1"].scope, marked["t1"].watermark, marked["t1"].head) == ("user:ada", 0, 4)
    agent.sleep(thread_id="t1", user_id="ada")
    assert list(agent.recovery()) == ["t1x"]


def test_a_turn_during_a_run_keeps_its_marker_for_the_next_start(make_agent):
    agent, _, sleep = make_agent(chat=["hi", "noted"])

    def answer_while_the_user_writes_again(prompt):
        agent.chat("one more thing", thread_id="t1", user_id="ada")
        return rethink("human", "Ada")

    sleep.extend([answer_while_the_user_writes_again])
    agent.chat("I'm Ada", thread_id="t1", user_id="ada")
    agent.sleep(thread_id="t1", user_id="ada")
    left = agent.recovery()
    assert list(left) == ["t1"]
    assert (left["t1"].watermark, left["t1"].head) == (2, 4)
    assert agent.position("t1").watermark == 2


def test_forget_removes_the_threads_markers(make_agent):
    agent, _, _ = make_agent(chat=["hi", "hi"])
    agent.chat("hello", thread_id="a1", user_id="ada")
    agent.chat("hello", thread_id="m1", user_id="adam")
    agent.forget(user_id="ada")
    assert list(agent.recovery()) == ["m1"]
