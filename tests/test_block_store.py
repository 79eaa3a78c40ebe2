"""BlockStore on real stores: commits under concurrency, history, positions."""

from __future__ import annotations

import asyncio
import threading

import pytest
from langgraph.store.memory import InMemoryStore

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope, WrongModeError
from sleepagent.memory.blocks import InsertEdit, RethinkEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store.persistence import open_async_persistence, open_persistence

AT = "2026-01-01T00:00:00+00:00"
SCOPE = Scope("user", "ada")


@pytest.fixture
def store(db):
    with open_persistence(db) as (_, store):
        yield store


def insert_line(blocks: BlockStore, text: str) -> None:
    staged, _ = StagedMemory.of(blocks.load(SCOPE)).stage(InsertEdit("human", text))
    outcome = blocks.commit(SCOPE, staged, run_id=text, phase="sleep", at=AT)
    assert outcome.conflicts == ()


def test_concurrent_writers_lose_no_committed_edit(store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    start = threading.Barrier(8, timeout=10)

    def writer(n: int) -> None:
        start.wait()
        for i in range(10):
            insert_line(blocks, f"writer {n} line {i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    human = blocks.load(SCOPE)[1]
    assert sorted(human.value.splitlines()) == sorted(
        f"writer {n} line {i}" for n in range(8) for i in range(10)
    )
    assert human.version == 80
    assert [entry.version for entry in blocks.history(SCOPE, "human")] == list(range(1, 81))


async def test_async_writers_lose_no_committed_edit(db):
    async with open_async_persistence(db) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)

        async def writer(n: int) -> None:
            for i in range(5):
                staged, _ = StagedMemory.of(await blocks.aload(SCOPE)).stage(
                    InsertEdit("human", f"{n}-{i}")
                )
                await asyncio.sleep(0)  # let the other writers read the same version
                await blocks.acommit(SCOPE, staged, run_id=f"{n}-{i}", phase="sleep", at=AT)

        await asyncio.gather(*(writer(n) for n in range(6)))
        human = (await blocks.aload(SCOPE))[1]
        assert len(human.value.splitlines()) == 30
        assert human.version == 30


def test_a_commit_without_partial_writes_nothing_on_conflict(store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    staged = StagedMemory.of(blocks.load(SCOPE))
    insert_line(blocks, "someone else")
    staged, _ = staged.stage(RethinkEdit("human", "mine"))
    staged, _ = staged.stage(RethinkEdit("learned_context", "also mine"))
    outcome = blocks.commit(SCOPE, staged, run_id="r", phase="sleep", at=AT, allow_partial=False)
    assert not outcome.committed
    assert [conflict.label for conflict in outcome.conflicts] == ["human"]
    assert blocks.load(SCOPE)[2].version == 0


def test_stored_blocks_keep_declared_order_and_extras_follow(store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    insert_line(blocks, "x")
    labels = [block.label for block in blocks.load(SCOPE)]
    assert labels == ["persona", "human", "learned_context"]


def test_pending_threads_are_those_with_entries_past_the_watermark(store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    thread_scope = Scope("thread", "t1")
    entries = blocks.append(
        thread_scope, "t1", [("user", "hi", None), ("assistant", "yo", None)], at=AT
    )
    blocks.append(Scope("thread", "t2"), "t2", [("user", "hello", None)], at=AT)
    staged = StagedMemory.of(blocks.load(thread_scope))
    blocks.commit(
        thread_scope,
        staged,
        run_id="r",
        phase="sleep",
        at=AT,
        thread_id="t1",
        watermark=entries[-1],
    )
    assert [position.thread_id for position in blocks.pending_threads()] == ["t2"]


def test_sync_methods_on_an_async_store_fail_loudly_inside_the_event_loop(tmp_path):
    async def misuse() -> None:
        async with open_async_persistence(tmp_path / "a.db") as (_, store):
            with pytest.raises(WrongModeError, match="aload"):
                BlockStore(store, DEFAULT_BLOCKS).load(SCOPE)

    asyncio.run(misuse())


def test_an_in_memory_store_works_from_both_worlds():
    blocks = BlockStore(InMemoryStore(), DEFAULT_BLOCKS)
    insert_line(blocks, "sync")
    assert asyncio.run(blocks.aload(SCOPE))[1].value == "sync"
