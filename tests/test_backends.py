"""The commit backend chosen for each store, and what its locks hold."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store import durability
from sleepagent.store.keyedlocks import SharedLock
from sleepagent.store.locking import (
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    UnknownStoreBackend,
    arun_lock,
    backend_for,
    run_lock,
)
from sleepagent.store.persistence import open_async_persistence, open_persistence
from tests.conftest import POSTGRES_URL, empty_postgres

SCOPE = Scope("user", "ada")
AT = "2026-01-01T00:00:00+00:00"
needs_postgres = pytest.mark.skipif(POSTGRES_URL is None, reason="set SLEEPAGENT_TEST_POSTGRES_URL")


class MySqliteStore(SqliteStore):
    """A subclass keeps its parent's guarantees."""


class WrappedStore(BaseStore):
    """A BaseStore sleepagent does not know (delegates to an in-memory one)."""

    def __init__(self) -> None:
        self.inner = InMemoryStore()

    def batch(self, ops):
        return self.inner.batch(ops)

    async def abatch(self, ops):
        return await self.inner.abatch(ops)


def test_each_store_gets_its_backend_once_and_subclasses_count(tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / "a.db", check_same_thread=False, isolation_level=None)
    sub = MySqliteStore(conn)
    sub.setup()
    memory = InMemoryStore()
    assert isinstance(backend_for(memory), InMemoryBackend)
    assert isinstance(backend_for(sub), SqliteBackend)
    assert backend_for(sub) is backend_for(sub)
    assert BlockStore(sub, DEFAULT_BLOCKS)._backend is BlockStore(sub, DEFAULT_BLOCKS)._backend
    conn.close()


def test_an_unknown_store_says_once_that_it_is_exclusive_in_this_process_only(caplog):
    with caplog.at_level(logging.WARNING, logger="sleepagent.store.locking"):
        first, second = WrappedStore(), WrappedStore()
        assert isinstance(backend_for(first), UnknownStoreBackend)
        backend_for(second)
    warnings = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert len(warnings) <= 1  # once per class per process (an earlier test may have said it)
    blocks = BlockStore(first, DEFAULT_BLOCKS)
    staged, _ = StagedMemory.of(blocks.load(SCOPE)).stage(InsertEdit("human", "x"))
    assert blocks.commit(SCOPE, staged, run_id="r", phase="user", at=AT).committed


def test_the_run_lock_holds_across_two_stores_on_one_sqlite_file(tmp_path):
    with (
        open_persistence(tmp_path / "a.db") as (_, one),
        open_persistence(tmp_path / "a.db") as (
            _,
            two,
        ),
    ):
        with run_lock(one, SCOPE, wait=False) as held:
            assert held
            with run_lock(two, SCOPE, wait=False) as second:
                assert not second, "another store on the file sees the scope busy"
            with run_lock(two, Scope("user", "bob"), wait=False) as other_scope:
                assert other_scope
        with run_lock(two, SCOPE, wait=False) as held:
            assert held, "released on exit"


def test_a_waiting_run_lock_starts_when_the_holder_ends(tmp_path):
    with (
        open_persistence(tmp_path / "a.db") as (_, one),
        open_persistence(tmp_path / "a.db") as (
            _,
            two,
        ),
    ):
        order: list[str] = []
        with run_lock(one, SCOPE, wait=True):

            def wait_for_it() -> None:
                with run_lock(two, SCOPE, wait=True):
                    order.append("second")

            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            waiter.join(0.3)  # give it the chance to (wrongly) get in
            order.append("first ends")
        waiter.join(10)
        assert order == ["first ends", "second"]


async def test_shared_lock_is_held_alike_by_threads_and_tasks():
    lock = SharedLock()
    assert lock.acquire()
    assert not await lock.aacquire(blocking=False)
    waiting = asyncio.create_task(lock.aacquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    await asyncio.to_thread(lock.release)
    assert await asyncio.wait_for(waiting, 5)
    assert not lock.acquire(blocking=False)
    lock.release()


async def test_a_cancelled_task_waiter_never_keeps_the_shared_lock():
    lock = SharedLock()
    assert lock.acquire()
    waiting = asyncio.create_task(lock.aacquire())
    await asyncio.sleep(0)
    lock.release()  # handed to the waiter...
    waiting.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert lock.acquire(blocking=False), "the cancelled waiter passed the lock on"


@needs_postgres
def test_postgres_commits_and_runs_use_the_stores_pool_not_new_connections():
    import psycopg

    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    with open_persistence(POSTGRES_URL) as (_, store):
        assert isinstance(backend_for(store), PostgresBackend)
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        blocks.load(SCOPE)
        before = store.conn.get_stats().get("connections_num", 0)  # type: ignore[attr-defined]
        for i in range(20):
            staged, _ = StagedMemory.of(blocks.load(SCOPE)).stage(InsertEdit("human", f"{i}"))
            blocks.commit(SCOPE, staged, run_id=str(i), phase="user", at=AT)
            with run_lock(store, SCOPE, wait=False) as held:
                assert held
        after = store.conn.get_stats().get("connections_num", 0)  # type: ignore[attr-defined]
        assert after - before <= 2, "at most the pool's own growth, not one per commit or run"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        free = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", ("sleepagent-run:user:ada",)
        ).fetchone()
        assert free == (True,), "the session lock went back unlocked with its connection"


@needs_postgres
@pytest.mark.parametrize("pooled", [True, False])
async def test_postgres_run_locks_exclude_two_stores_on_one_database(pooled):
    from langgraph.store.postgres import AsyncPostgresStore

    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    pool = {"pool_config": {"min_size": 1, "max_size": 4}} if pooled else {}
    async with (
        open_async_persistence(POSTGRES_URL) as (_, one),
        AsyncPostgresStore.from_conn_string(POSTGRES_URL, **pool) as two,
    ):
        async with arun_lock(one, SCOPE, wait=False) as held:
            assert held
            async with arun_lock(two, SCOPE, wait=False) as second:
                assert not second
        async with arun_lock(two, SCOPE, wait=True) as held:
            assert held
        blocks = BlockStore(two, DEFAULT_BLOCKS)
        staged, _ = StagedMemory.of(await blocks.aload(SCOPE)).stage(InsertEdit("human", "x"))
        assert (await blocks.acommit(SCOPE, staged, run_id="r", phase="user", at=AT)).committed


def test_a_backend_does_not_keep_its_store_alive():
    import gc
    import weakref

    store = InMemoryStore()
    backend_for(store)
    gone = weakref.ref(store)
    del store
    gc.collect()
    assert gone() is None


# --- durability of SQLite commits --------------------------------------------------


def commit_once(blocks: BlockStore, text: str) -> None:
    staged, _ = StagedMemory.of(blocks.load(SCOPE)).stage(InsertEdit("human", text))
    blocks.commit(SCOPE, staged, run_id="r", phase="user", at=AT)


async def acommit_once(blocks: BlockStore, text: str) -> None:
    staged, _ = StagedMemory.of(await blocks.aload(SCOPE)).stage(InsertEdit("human", text))
    await blocks.acommit(SCOPE, staged, run_id="r", phase="user", at=AT)


def test_a_commit_syncs_the_wal_itself_when_the_store_connection_does_not(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(durability, "sync_wal", lambda path: synced.append(str(path)))
    database = tmp_path / "a.db"
    with open_persistence(database) as (_, store):
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        blocks.append(SCOPE, "t1", [("user", "hi", None)], at=AT)
        assert synced == []  # a turn's log write rides on the checkpoint's sync
        commit_once(blocks, "Ada")
        assert synced == [f"{database.resolve()}-wal"]


async def test_an_async_commit_syncs_the_wal_itself_too(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(durability, "sync_wal", lambda path: synced.append(str(path)))
    database = tmp_path / "a.db"
    async with open_async_persistence(database) as (_, store):
        await acommit_once(BlockStore(store, DEFAULT_BLOCKS), "Ada")
    assert synced == [f"{database.resolve()}-wal"]


def test_a_store_connection_that_syncs_every_commit_gets_no_second_sync(tmp_path, monkeypatch):
    import sqlite3

    synced: list[str] = []
    monkeypatch.setattr(durability, "sync_wal", lambda path: synced.append(str(path)))
    conn = sqlite3.connect(tmp_path / "b.db", check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    store = SqliteStore(conn)
    store.setup()
    commit_once(BlockStore(store, DEFAULT_BLOCKS), "Ada")
    assert synced == []
    conn.close()
