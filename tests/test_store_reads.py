"""What reads cost: history() in pages (limit / before), blocks read by key on the turn path."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import GetOp, Op, Result, SearchOp
from langgraph.store.memory import InMemoryStore

from sleepagent import DEFAULT_BLOCKS, BlockStore, ConfigurationError, MemoryBlock, Scope
from sleepagent.memory.blocks import RethinkEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store.catalog import Catalog

AT = "2026-01-01T00:00:00+00:00"


def versions(entries) -> list[int]:
    return [entry.version for entry in entries]


def write_versions(agent, count: int) -> None:
    for i in range(1, count + 1):
        agent.write_memory("human", f"v{i}", thread_id="t1")


def test_a_page_is_the_newest_versions_before_the_given_one_oldest_first(make_agent):
    agent, *_ = make_agent()
    write_versions(agent, 7)
    assert versions(agent.history("human", thread_id="t1")) == [1, 2, 3, 4, 5, 6, 7]
    assert versions(agent.history("human", thread_id="t1", limit=3)) == [5, 6, 7]
    assert versions(agent.history("human", thread_id="t1", limit=3, before=5)) == [2, 3, 4]
    assert versions(agent.history("human", thread_id="t1", limit=3, before=2)) == [1]
    assert versions(agent.history("human", thread_id="t1", limit=3, before=1)) == []
    assert versions(agent.history("human", thread_id="t1", before=4)) == [1, 2, 3]
    assert versions(agent.history("human", thread_id="t1", limit=50)) == [1, 2, 3, 4, 5, 6, 7]
    assert versions(agent.history("human", thread_id="t1", limit=2, before=99)) == [6, 7]
    assert [e.value for e in agent.history("human", thread_id="t1", limit=1)] == ["v7"]
    assert agent.history("persona", thread_id="t1", limit=3) == []


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_a_page_size_or_bound_that_is_not_a_positive_integer_is_refused(make_agent, bad):
    agent, *_ = make_agent()
    with pytest.raises(ConfigurationError, match="positive integer"):
        agent.history("human", thread_id="t1", limit=bad)
    with pytest.raises(ConfigurationError, match="positive integer"):
        agent.history("human", thread_id="t1", before=bad)


def test_a_catalog_page_diffs_its_first_version_against_the_one_before(make_agent):
    agent, *_ = make_agent()
    write_versions(agent, 5)
    catalog = Catalog(agent.agent.blocks.store)
    scope = Scope("thread", "t1")
    if agent.loop is None:
        steps = catalog.history(scope, "human", limit=2, before=5)
    else:
        steps = agent.loop.run_until_complete(catalog.ahistory(scope, "human", limit=2, before=5))
    assert [(s.diff.version_before, s.diff.before, s.entry.version) for s in steps] == [
        (2, "v2", 3),
        (3, "v3", 4),
    ]


class CountingStore(InMemoryStore):
    """Records every op, so a test can see how much a read asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.batches = 0

    def batch(self, ops: Any) -> list[Result]:
        ops = list(ops)
        self.ops.extend(ops)
        self.batches += 1
        return super().batch(ops)


def test_a_page_reads_only_its_own_versions_however_long_the_history():
    store = CountingStore()
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    scope = Scope("thread", "t1")
    for i in range(60):
        staged, _ = StagedMemory.of(blocks.load(scope)).stage(RethinkEdit("human", f"v{i}"))
        blocks.commit(scope, staged, run_id=f"r{i}", phase="user", at=AT)
    store.ops.clear()
    store.batches = 0
    page = blocks.history(scope, "human", limit=5, before=30)
    assert versions(page) == [25, 26, 27, 28, 29]
    assert not any(isinstance(op, SearchOp) for op in store.ops)
    assert sum(isinstance(op, GetOp) for op in store.ops) == 6  # the block and 5 versions
    assert store.batches == 1  # a page before a known version is one round trip
    store.ops.clear()
    assert versions(blocks.history(scope, "human", limit=3)) == [58, 59, 60]
    assert sum(isinstance(op, GetOp) for op in store.ops) == 4
    assert not any(isinstance(op, SearchOp) for op in store.ops)


# --- the turn and the sleep page read blocks by key ------------------------------------


def commit_value(blocks: BlockStore, scope: Scope, label: str, value: str) -> None:
    staged, _ = StagedMemory.of(blocks.load(scope)).stage(RethinkEdit(label, value))
    blocks.commit(scope, staged, run_id="r", phase="user", at=AT)


def test_a_turn_reads_blocks_by_key_with_no_search():
    store = CountingStore()
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    scope = Scope("thread", "t1")
    commit_value(blocks, scope, "human", "Ada")
    store.ops.clear()
    store.batches = 0
    found = blocks.read_turn(scope, "t1").blocks
    assert {b.label: b.value for b in found}["human"] == "Ada"
    assert not any(isinstance(op, SearchOp) for op in store.ops)
    assert store.batches == 1
    _, entries, _, _ = blocks.read_page(scope, "t1", max_messages=10, max_chars=1000)
    assert not any(isinstance(op, SearchOp) for op in store.ops)


def test_a_stored_block_no_longer_declared_is_still_read_by_the_turn():
    store = InMemoryStore()
    scope = Scope("thread", "t1")
    extra = MemoryBlock(label="notes", description="", value="")
    commit_value(BlockStore(store, [*DEFAULT_BLOCKS, extra]), scope, "notes", "kept")
    found = BlockStore(store, DEFAULT_BLOCKS).read_turn(scope, "t1").blocks
    assert [b.label for b in found][-1] == "notes" and found[-1].value == "kept"
    assert [b.label for b in found] == [
        b.label for b in BlockStore(store, DEFAULT_BLOCKS).load(scope)
    ]


def test_blocks_written_before_the_label_list_existed_are_read_by_search_until_a_commit():
    store = CountingStore()
    scope = Scope("thread", "t1")
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    commit_value(blocks, scope, "human", "Ada")
    store.delete((*BlockStore.scope_namespace(scope), "blocks"), "#labels")  # an older database
    found = blocks.read_turn(scope, "t1").blocks
    assert {b.label: b.value for b in found}["human"] == "Ada"
    commit_value(blocks, scope, "persona", "helpful")
    store.ops.clear()
    found = blocks.read_turn(scope, "t1").blocks
    assert {b.label: b.value for b in found}["persona"] == "helpful"
    assert not any(isinstance(op, SearchOp) for op in store.ops)


# --- ThreadedSqliteStore ----------------------------------------------------------------


async def test_the_threaded_store_serves_async_code_and_refuses_sync_calls_on_the_loop(tmp_path):
    import asyncio
    import sqlite3

    from langgraph.store.base import PutOp

    from sleepagent import WrongModeError
    from sleepagent.store.threaded import ThreadedSqliteStore

    conn = sqlite3.connect(tmp_path / "t.db", check_same_thread=False, isolation_level=None)
    store = ThreadedSqliteStore(conn)
    await asyncio.to_thread(store.setup)
    await store.abatch([PutOp(("a",), "k", {"v": 1})])
    assert (await store.aget(("a",), "k")).value == {"v": 1}
    with pytest.raises(WrongModeError, match="abatch"):
        store.get(("a",), "k")
    assert await asyncio.to_thread(store.get, ("a",), "k") is not None  # fine off the loop
    conn.close()


async def test_key_reads_run_on_the_loop_over_a_read_only_connection_and_see_every_write(
    tmp_path,
):
    import asyncio
    import sqlite3
    import threading

    from langgraph.store.base import PutOp

    from sleepagent.store.threaded import ThreadedSqliteStore

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "t.db", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    writer, reader = connect(), connect()
    store = ThreadedSqliteStore(writer, reader=reader)
    await asyncio.to_thread(store.setup)
    threads: list[str] = []
    reader.set_trace_callback(lambda _: threads.append(threading.current_thread().name))
    writer.set_trace_callback(lambda _: threads.append(f"writer:{threading.current_thread().name}"))

    await store.abatch([PutOp(("a",), "k", {"v": 1})])
    assert threads and all(name.startswith("writer:") for name in threads)
    assert all(name != f"writer:{threading.current_thread().name}" for name in threads)

    threads.clear()
    (item,) = await store.abatch([GetOp(("a",), "k")])
    assert item is not None and item.value == {"v": 1}  # the writer's commit is seen at once
    assert threads and set(threads) == {threading.current_thread().name}  # no hand-over

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM store")
    writer.close()
    reader.close()
