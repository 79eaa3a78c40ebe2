"""Cancelling async commits, sleep runs and turns never leaves a lock taken or a
connection inside a transaction (DESIGN invariant 10), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sleepagent import DEFAULT_BLOCKS, AsyncSleepTimeAgent, BlockStore, Scope
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store.locking import arun_lock, backend_for
from sleepagent.store.persistence import open_async_persistence
from sleepagent.testing import ScriptedChatModel, insert
from tests.conftest import POSTGRES_URL, empty_postgres, machinery

AT = "2026-01-01T00:00:00+00:00"
SCOPE = Scope("user", "ada")
WAIT_S = 10


@pytest.fixture(params=["sqlite", *(["postgres"] if POSTGRES_URL else [])])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        empty_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return str(tmp_path / "agent.db")


async def commit_line(blocks: BlockStore, text: str) -> None:
    staged, _ = StagedMemory.of(await blocks.aload(SCOPE)).stage(InsertEdit("human", text))
    await blocks.acommit(SCOPE, staged, run_id=text, phase="sleep", at=AT)


async def lines(blocks: BlockStore) -> list[str]:
    return (await blocks.aload(SCOPE))[1].value.splitlines()


async def settle() -> None:
    """Let a new task run up to its first real wait (no I/O happens before a lock wait)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_commit_cancelled_while_waiting_for_the_lock_leaves_it_free(database):
    async with (
        open_async_persistence(database) as (_, store),
        open_async_persistence(database) as (_, other),
    ):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        for holder in (store, other):  # this process's lock, then the database's
            async with backend_for(holder).atransaction(SCOPE):
                cancelled = asyncio.create_task(commit_line(blocks, "cancelled"))
                await settle()
                queued = asyncio.create_task(
                    commit_line(blocks, "queued")
                )  # behind the cancelled one
                await settle()
                cancelled.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
            await asyncio.wait_for(queued, WAIT_S)
            await asyncio.wait_for(commit_line(BlockStore(other, DEFAULT_BLOCKS), "other"), WAIT_S)
        assert await lines(blocks) == ["queued", "other", "queued", "other"]


async def test_a_commit_cancelled_at_any_point_writes_all_or_nothing_and_frees_everything(
    database,
):
    async with open_async_persistence(database) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        written = 0
        for delay in range(60):
            task = asyncio.create_task(commit_line(blocks, f"line {delay}"))
            for _ in range(delay):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                written += 1
            except asyncio.CancelledError:
                pass
            now = (await blocks.aload(SCOPE))[1]
            history = await blocks.ahistory(SCOPE, "human")
            assert [entry.version for entry in history] == list(range(1, now.version + 1))
            assert now.value.splitlines() == [e.value.splitlines()[-1] for e in history]
            await asyncio.wait_for(commit_line(blocks, "next"), WAIT_S)  # the lock is free
            if getattr(store.conn, "in_transaction", False):
                pytest.fail("the SQLite connection was left inside a transaction")
        assert written < 60, "no cancellation landed inside a commit"


async def test_a_batch_cancelled_at_its_begin_leaves_the_sqlite_connection_usable(tmp_path):
    """LangGraph's AsyncSqliteStore sends BEGIN outside its try/finally.

    The agent's own async store is a ThreadedSqliteStore now; an AsyncSqliteStore you pass
    in must stay safe too.
    """
    import aiosqlite
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    async with aiosqlite.connect(str(tmp_path / "a.db"), isolation_level=None) as conn:
        store = AsyncSqliteStore(conn)
        await store.setup()
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        at_begin = asyncio.Event()
        execute = store.conn.execute

        def spy(sql, *args, **kwargs):
            if sql == "BEGIN":
                at_begin.set()
            return execute(sql, *args, **kwargs)

        store.conn.execute = spy
        task = asyncio.create_task(commit_line(blocks, "cancelled at BEGIN"))
        await asyncio.wait_for(at_begin.wait(), WAIT_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.conn.execute = execute
        await asyncio.wait_for(commit_line(blocks, "next"), WAIT_S)
        assert not store.conn.in_transaction
        assert await lines(blocks) == ["next"]


def sleep_script(count: int) -> ScriptedChatModel:
    # A line of its own per call: the same line again would be dropped as a repeat.
    return ScriptedChatModel([insert("human", f"slept {n}") for n in range(count)])


async def test_a_sleep_run_cancelled_while_waiting_for_its_scope_leaves_it_free(database):
    async with (
        AsyncSleepTimeAgent(
            ScriptedChatModel(["ok"]),
            sleep_model=sleep_script(1),
            db=database,
            scheduler=None,
            config=machinery(),
        ) as agent,
        open_async_persistence(database) as (_, other),
    ):
        await agent.chat("hi", thread_id="t1", user_id="ada")
        for holder in (agent.blocks.store, other):
            async with arun_lock(holder, SCOPE, wait=True):
                waiting = asyncio.create_task(agent.sleep(thread_id="t1", user_id="ada"))
                await settle()
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
        result = await asyncio.wait_for(agent.sleep(thread_id="t1", user_id="ada"), WAIT_S)
        assert result.messages_processed == 2
        async with arun_lock(other, SCOPE, wait=False) as held:
            assert held, "the run lock is free again for another store on the database"


async def test_a_sleep_run_or_turn_cancelled_at_any_point_leaves_the_next_ones_working(database):
    runs = 40
    async with AsyncSleepTimeAgent(
        ScriptedChatModel(["ok"] * (runs + 1)),
        sleep_model=sleep_script(runs + 1),
        db=database,
        scheduler=None,
        config=machinery(),
    ) as agent:
        for delay in range(0, runs, 2):
            turn = asyncio.create_task(agent.chat(f"turn {delay}", thread_id="t1", user_id="ada"))
            for _ in range(delay):
                await asyncio.sleep(0)
            turn.cancel()
            await asyncio.gather(turn, return_exceptions=True)
            run = asyncio.create_task(agent.sleep(thread_id="t1", user_id="ada"))
            for _ in range(delay):
                await asyncio.sleep(0)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        await asyncio.wait_for(agent.chat("last", thread_id="t1", user_id="ada"), WAIT_S)
        await asyncio.wait_for(agent.sleep(thread_id="t1", user_id="ada"), WAIT_S)
        position = await agent.blocks.aposition("t1")
        assert position is not None and position.pending == 0
        async with arun_lock(agent.blocks.store, SCOPE, wait=False) as held:
            assert held
