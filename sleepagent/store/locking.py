"""Run exclusion: why two sleep runs of one memory scope never overlap; and the commit backends.

Five layers keep one sleep run per scope (invariants 3 and 9). A scheduled run
passes layers 1 to 4 in order; a run asked for by hand (``sleep()``,
``add_context()``, ``retry_failed()``) passes layers 2 to 4 and waits at each,
where a scheduled run gives up at layers 3 and 4 (``ScopeBusyError``) and is set
again after ``retry_backoff_seconds``. A run on LangGraph Server passes layer 5
only. The same table is in docs/DESIGN.md ("Run exclusion").

.. list-table::
   :header-rows: 1
   :widths: 22 28 26 24

   * - Layer
     - What it guarantees
     - Without it
     - The test that pins it
   * - 1. The coordinator's claim: ``SleepCoordinator._running``
       (scheduling/coordinator.py)
     - In process, per agent, scheduled runs only: a job that falls due while
       its scope runs is deferred, then set again due at once when that run ends.
     - The job goes on to the locks below and waits there holding a scheduler
       worker; on virtual time (due jobs run inline) it deadlocks on layer 2.
     - ``test_a_job_due_while_its_scope_is_busy_waits_for_that_run``
       (tests/test_scheduling.py; hangs without it)
   * - 2. The agent's scope lock: ``_scope_locks`` in ``_sleep``
       (agent/facades.py)
     - In process, per agent: every run of the scope, by hand or scheduled,
       waits for the one in flight.
     - Runs stay exclusive (layer 3), but a scheduled run that meets a run asked
       for by hand in the same agent is set again after the backoff instead of
       waiting for it.
     - None: no test fails with it removed (it decides waiting, not exclusion).
   * - 3. The store's in-process lock: ``CommitBackend._local``, one per store
       object (:func:`backend_for`)
     - In process, per store object: every agent and ``BlockStore`` on it,
       threads and tasks alike; waiters queue here, so one per process waits
       on layer 4. The only lock between agents on an ``InMemoryStore``, an
       unknown store, or a PostgreSQL store on one connection (advisory locks
       are re-entrant within a session).
     - Two agents on one in-memory store run one scope at once.
     - ``test_a_scheduled_run_is_set_again_while_another_agent_on_the_same_store_runs_its_scope``
       (tests/test_run_exclusion.py)
   * - 4. The database's lock: ``flock`` on ``<db>.sleepagent-locks/run-<hash>.lock``
       (SQLite); session ``pg_advisory_lock`` on a pooled connection (PostgreSQL)
     - Per database: across processes, and across store objects on one
       database in one process. The OS, or the session's end, drops it when
       its process dies.
     - Two processes, or two stores on one file, run one scope at once: a
       turn is read by two runs.
     - ``test_two_processes_on_one_database_cover_every_turn_exactly_once``,
       ``test_two_agents_on_one_database_cover_every_turn_exactly_once``,
       ``test_a_scheduled_run_is_set_again_while_another_agent_runs_its_scope``
       (tests/test_processes.py); ``test_the_run_lock_holds_across_two_stores_on_one_sqlite_file``,
       ``test_postgres_run_locks_exclude_two_stores_on_one_database``
       (tests/test_backends.py); a dead holder frees it:
       ``test_a_process_killed_holding_the_run_and_commit_locks_releases_both``
   * - 5. LangGraph Server's thread queue: delayed runs on the scope's companion
       sleep thread with ``multitask_strategy="rollback"`` (scheduling/server.py)
     - On LangGraph Server, on any worker: one run at a time per sleep thread,
       so per scope; a newer turn's run replaces a pending (or running) one.
       Server runs take no run lock of layers 1 to 4.
     - Nothing else keeps two server runs of a scope apart: both would read
       the same pages past the watermark.
     - ``test_two_turns_inside_the_idle_window_give_one_sleep_run_whose_memory_the_next_turn_uses``
       (tests/test_langgraph_server.py)

Commits are exclusive apart from runs: a block commit holds a lock of its own
for the scope, in layers 3 and 4 (the in-process lock, then a ``flock`` on
``commit-<hash>.lock`` or ``pg_advisory_xact_lock`` inside the commit's
transaction), for its read-merge-write only. So a commit is atomic and
version-checked (invariant 2) for every writer: runs, ``write_memory`` and the
primary agent's edits alike.

The commit backends
-------------------

``BaseStore`` has no compare-and-set, so a block commit reads the current
blocks, merges the run's edits and writes, holding a lock for the scope; and a
sleep run holds a second lock for the scope while it runs. One backend is
chosen per store, once (:func:`backend_for`), by ``isinstance`` against
LangGraph's classes (subclasses count), imported only when present:

=================  ===================================  =====================================
store              in one process                       across processes
=================  ===================================  =====================================
``InMemoryStore``  a lock per (store, scope), shared    nothing to share: the store lives in
                   by threads and tasks                 one process
``SqliteStore``,   the same, so agents on one store     an exclusive ``flock`` on a lock file
``AsyncSqlite-``   queue without blocking threads       per scope beside the database (one for
``Store``                                               commits, one for runs), held for the
                                                        read-merge-write and for the run; the
                                                        OS drops it when a process dies. Two
                                                        stores on one file in one process
                                                        exclude each other the same way.
``PostgresStore``, the same                             the commit is one transaction that
``AsyncPostgres-``                                      first takes ``pg_advisory_xact_lock``
``Store``                                               on the scope; a run holds a session
                                                        advisory lock on a connection of the
                                                        store's pool (dies with the process)
any other store    the in-process locks only            none: say so in your deployment (a
                   (logged once per store class)        LangGraph Server queue runs one run
                                                        per sleep thread)
=================  ===================================  =====================================

Async callers never leave a lock taken or a connection mid-transaction when
cancelled: waiting for a lock is cancellable, and a cancelled waiter never
ends up holding it (no task waits in a worker thread); a store batch on
``AsyncSqliteStore`` runs to completion once started (that store begins its
transaction outside its own ``try``/``finally``, so a batch cancelled there
would leave the shared connection inside a transaction); releases run to
completion.

The few store attributes LangGraph gives no public route to (the SQL
connection a store was built on, to find the database file or the pool; the
lock that guards a single shared PostgreSQL connection) are read in
:class:`_StoreParts` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, Op, Result

from sleepagent.errors import ConfigurationError, WrongModeError
from sleepagent.scope import Scope
from sleepagent.store import durability
from sleepagent.store.keyedlocks import SharedKeyedLocks, run_to_completion

__all__ = [
    "CommitBackend",
    "InMemoryBackend",
    "PostgresBackend",
    "SqliteBackend",
    "UnknownStoreBackend",
    "arun_lock",
    "backend_for",
    "run_lock",
]

logger = logging.getLogger(__name__)

_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_TRY_SESSION_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_SESSION_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
_SESSION_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
_FLOCK_POLL_FIRST_S, _FLOCK_POLL_MAX_S = 0.001, 0.1
"""How an async waiter retries a busy SQLite lock file (see _aheld_file)."""
_POLL_FIRST_S, _POLL_MAX_S = 0.05, 1.0
"""Waiting for a run lock on a single shared PostgreSQL connection polls (see _shared_run_lock)."""


def _commit_key(scope: Scope) -> str:
    return f"sleepagent:{scope.key}"


def _run_key(scope: Scope) -> str:
    return f"sleepagent-run:{scope.key}"


class CommitBackend:
    """Exclusive sections per memory scope on one store; see the module docstring.

    The base class is the in-process part every backend has: one lock per
    scope and purpose, shared by threads and asyncio tasks. Subclasses add
    what holds across processes.
    """

    guarantee = "in this process only"
    """What the backend guarantees, in words."""

    def __init__(self, store: BaseStore) -> None:
        # Weak: backends are cached per store in a WeakKeyDictionary, whose values
        # must not keep their keys alive.
        self._store = weakref.ref(store)
        self._local = SharedKeyedLocks()

    @property
    def store(self) -> BaseStore:
        """The store this backend serves."""
        store = self._store()
        if store is None:
            raise ConfigurationError("this commit backend's store no longer exists")
        return store

    # --- commits ---------------------------------------------------------------

    @contextmanager
    def transaction(self, scope: Scope) -> Iterator[BaseStore]:
        """Hold the scope's commit lock; yield the store the commit reads and writes."""
        with self._local.hold(_commit_key(scope)), self._sync_commit(scope) as store:
            yield store

    @asynccontextmanager
    async def atransaction(self, scope: Scope) -> AsyncIterator[BaseStore]:
        """Async :meth:`transaction`; entering it may be cancelled at any point."""
        async with self._local.ahold(_commit_key(scope)), self._async_commit(scope) as store:
            yield store

    @contextmanager
    def _sync_commit(self, scope: Scope) -> Iterator[BaseStore]:
        yield self.store

    @asynccontextmanager
    async def _async_commit(self, scope: Scope) -> AsyncIterator[BaseStore]:
        yield self.store

    async def abatch(self, store: BaseStore, ops: Sequence[Op]) -> list[Result]:
        """Run one batch of ops from async code (overridden where cancellation is unsafe)."""
        return await store.abatch(ops)

    # --- sleep runs --------------------------------------------------------------

    @contextmanager
    def run_lock(self, scope: Scope, *, wait: bool) -> Iterator[bool]:
        """Hold the scope's sleep-run lock; yields whether it is held (see :func:`run_lock`)."""
        with self._local.hold(_run_key(scope), blocking=wait) as held:
            if not held:
                yield False
                return
            with self._sync_run(scope, wait=wait) as held:
                yield held

    @asynccontextmanager
    async def arun_lock(self, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
        """Async :meth:`run_lock`."""
        async with self._local.ahold(_run_key(scope), blocking=wait) as held:
            if not held:
                yield False
                return
            async with self._async_run(scope, wait=wait) as held:
                yield held

    @contextmanager
    def _sync_run(self, scope: Scope, *, wait: bool) -> Iterator[bool]:
        yield True

    @asynccontextmanager
    async def _async_run(self, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
        yield True


class InMemoryBackend(CommitBackend):
    """``InMemoryStore``: the store lives in one process, so the in-process locks are all."""

    guarantee = "in this process (the store cannot be shared with another)"


class UnknownStoreBackend(CommitBackend):
    """A store sleepagent does not know: exclusive in this process only."""


# --- SQLite --------------------------------------------------------------------


class SqliteBackend(CommitBackend):
    """``SqliteStore`` / ``AsyncSqliteStore``: in-process locks, then a file lock per scope.

    Why a file lock and not a write transaction (``BEGIN IMMEDIATE``) around
    the read: LangGraph's SQLite stores open a transaction of their own in
    every batch, so the read and the write of a commit cannot share one
    without re-implementing the store's SQL. An exclusive ``flock`` held
    from before the read until after the write makes the read-merge-write
    exclusive among all sleepagent writers of the file (blocks and history
    have no other writers), is released by the OS when a process dies, and
    excludes two connections in one process as well. A database in memory
    (``:memory:``) is private to its connection: the in-process locks are enough.
    """

    guarantee = "in this process and across processes on one database file (flock)"

    def __init__(self, store: BaseStore) -> None:
        super().__init__(store)
        self._lock_dir: Path | bool | None = False  # False: not looked up yet
        self._unsynced_wal: Path | None = None

    def _locks_dir(self, database: str) -> Path | None:
        if not database:
            return None
        directory = Path(f"{database}.sleepagent-locks")
        directory.mkdir(exist_ok=True)
        return directory

    def _sync_dir(self) -> Path | None:
        if self._lock_dir is False:
            from langgraph.store.sqlite import AsyncSqliteStore

            if isinstance(self.store, AsyncSqliteStore):
                raise WrongModeError(
                    f"{type(self.store).__name__} is an async store: commit with "
                    "BlockStore.acommit from async code"
                )
            database = _StoreParts.sqlite_file(self.store)
            level = _StoreParts.sqlite_synchronous(self.store)
            self._unsynced_wal = durability.wal_to_sync(database, level)
            self._lock_dir = self._locks_dir(database)
        return self._lock_dir  # type: ignore[return-value]

    async def _async_dir(self) -> Path | None:
        if self._lock_dir is False:
            from langgraph.store.sqlite import AsyncSqliteStore

            if isinstance(self.store, AsyncSqliteStore):
                database = await _StoreParts.asqlite_file(self.store)
                level = await _StoreParts.asqlite_synchronous(self.store)
            else:  # a SqliteStore used from async code (ThreadedSqliteStore)
                database = await asyncio.to_thread(_StoreParts.sqlite_file, self.store)
                level = await asyncio.to_thread(_StoreParts.sqlite_synchronous, self.store)
            self._unsynced_wal = durability.wal_to_sync(database, level)
            self._lock_dir = self._locks_dir(database)
        return self._lock_dir  # type: ignore[return-value]

    @staticmethod
    def _path(directory: Path, purpose: str, scope: Scope) -> Path:
        digest = hashlib.sha256(scope.key.encode()).hexdigest()[:32]
        return directory / f"{purpose}-{digest}.lock"

    @contextmanager
    def _sync_commit(self, scope: Scope) -> Iterator[BaseStore]:
        directory = self._sync_dir()
        if directory is None:
            yield self.store
            return
        with _held_file(self._path(directory, "commit", scope), wait=True):
            yield self.store
            if self._unsynced_wal is not None:  # see sleepagent.store.durability
                durability.sync_wal(self._unsynced_wal)

    @asynccontextmanager
    async def _async_commit(self, scope: Scope) -> AsyncIterator[BaseStore]:
        directory = await self._async_dir()
        if directory is None:
            yield self.store
            return
        async with _aheld_file(self._path(directory, "commit", scope), wait=True):
            yield self.store
            if self._unsynced_wal is not None:  # see sleepagent.store.durability
                await run_to_completion(asyncio.to_thread(durability.sync_wal, self._unsynced_wal))

    async def abatch(self, store: BaseStore, ops: Sequence[Op]) -> list[Result]:
        """Run the batch to its end even if the caller is cancelled (see the module docstring)."""
        return await run_to_completion(store.abatch(ops))

    @contextmanager
    def _sync_run(self, scope: Scope, *, wait: bool) -> Iterator[bool]:
        directory = self._sync_dir()
        if directory is None:
            yield True
            return
        with _held_file(self._path(directory, "run", scope), wait=wait) as held:
            yield held

    @asynccontextmanager
    async def _async_run(self, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
        directory = await self._async_dir()
        if directory is None:
            yield True
            return
        async with _aheld_file(self._path(directory, "run", scope), wait=wait) as held:
            yield held


def _open_locked(path: Path, *, wait: bool) -> int | None:
    """A descriptor of ``path`` holding an exclusive flock, or None when busy and not waiting."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def _held_file(path: Path, *, wait: bool) -> Iterator[bool]:
    fd = _open_locked(path, wait=wait)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


@asynccontextmanager
async def _aheld_file(path: Path, *, wait: bool) -> AsyncIterator[bool]:
    """:func:`_held_file` for async code: a busy lock is polled, not waited for in a thread.

    ``flock`` has no async or timed form. A blocking ``flock`` in a worker
    thread cannot be called off when its task is cancelled: the thread would
    take the lock later for nobody, and keep the process from exiting while
    another process holds it. So a task retries the non-blocking form with a
    growing pause; in-process waiters queue on the in-process lock before
    this, so one task per process and scope polls.
    """
    fd = _open_locked(path, wait=False)
    delay = _FLOCK_POLL_FIRST_S
    while fd is None and wait:
        await asyncio.sleep(delay)
        delay = min(2 * delay, _FLOCK_POLL_MAX_S)
        fd = _open_locked(path, wait=False)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


# --- PostgreSQL ------------------------------------------------------------------


class PostgresBackend(CommitBackend):
    """``PostgresStore`` / ``AsyncPostgresStore``: advisory locks on the store's connections.

    A commit takes a connection from the store's pool (or, for a store on one
    connection, that connection, keeping the store's other users off it) and
    runs one transaction that first takes ``pg_advisory_xact_lock`` on the
    scope, then reads, merges and writes through a store bound to that
    connection. A sleep run holds a session advisory lock on a pooled
    connection for as long as it runs and unlocks it before the connection
    goes back to the pool; if the process dies the session ends and the lock
    with it. So each run in flight uses one pool connection.
    """

    guarantee = "in this process and across processes on one database (advisory locks)"

    def __init__(self, store: BaseStore) -> None:
        super().__init__(store)
        if _StoreParts.pg_pipeline(store):
            raise ConfigurationError(
                "a PostgreSQL store in pipeline mode cannot run sleepagent's commit "
                "transaction: open it with a connection pool (pool_config=...) or a plain "
                "connection"
            )
        from langgraph.store.postgres import AsyncPostgresStore

        self._async = isinstance(store, AsyncPostgresStore)

    def _check_sync(self) -> None:
        if self._async:
            raise WrongModeError(
                "AsyncPostgresStore: commit with BlockStore.acommit from async code"
            )

    @contextmanager
    def _sync_commit(self, scope: Scope) -> Iterator[BaseStore]:
        from langgraph.store.postgres import PostgresStore

        self._check_sync()
        with _StoreParts.pg_connection(self.store) as conn, conn.transaction():
            conn.execute(_XACT_LOCK, (_commit_key(scope),))
            yield PostgresStore(conn)

    @asynccontextmanager
    async def _async_commit(self, scope: Scope) -> AsyncIterator[BaseStore]:
        from langgraph.store.postgres import AsyncPostgresStore

        if not self._async:  # a sync PostgresStore used from async code: hold it the sync way
            with self._sync_commit(scope) as store:
                yield store
            return
        async with _StoreParts.apg_connection(self.store) as conn:
            try:
                async with conn.transaction():
                    await conn.execute(_XACT_LOCK, (_commit_key(scope),))
                    yield AsyncPostgresStore(conn)
            finally:
                await _idle_or_closed(conn)

    @contextmanager
    def _sync_run(self, scope: Scope, *, wait: bool) -> Iterator[bool]:
        self._check_sync()
        key = (_run_key(scope),)
        if not _StoreParts.pg_pooled(self.store):
            with _shared_run_lock(self.store, key, wait=wait) as held:
                yield held
            return
        with _StoreParts.pg_connection(self.store) as conn:
            try:
                row = conn.execute(_SESSION_LOCK if wait else _TRY_SESSION_LOCK, key).fetchone()
            except BaseException:
                conn.close()  # whether the lock was granted is unknown: end the session
                raise
            held = _granted(row, wait)
            try:
                yield held
            finally:
                if held:
                    _unlock_or_close(conn, key)

    @asynccontextmanager
    async def _async_run(self, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
        if not self._async:
            with self._sync_run(scope, wait=wait) as held:
                yield held
            return
        key = (_run_key(scope),)
        if not _StoreParts.pg_pooled(self.store):
            async with _ashared_run_lock(self.store, key, wait=wait) as held:
                yield held
            return
        async with _StoreParts.apg_connection(self.store) as conn:
            try:
                cursor = await conn.execute(_SESSION_LOCK if wait else _TRY_SESSION_LOCK, key)
                row = await cursor.fetchone()
            except BaseException:
                # Cancelled or failed while asking: whether the lock was granted is
                # unknown, so end the session (the pool replaces the connection).
                await run_to_completion(conn.close())
                raise
            held = _granted(row, wait)
            try:
                yield held
            finally:
                if held:
                    await run_to_completion(_aunlock_or_close(conn, key))


def _granted(row: Any, wait: bool) -> bool:
    # pg_advisory_lock returns nothing once it has waited; pg_try_advisory_lock a boolean.
    return True if wait else bool(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def _unlock_or_close(conn: Any, key: tuple[str]) -> None:
    try:
        conn.execute(_SESSION_UNLOCK, key)
    except Exception:
        conn.close()  # a session lock must never go back to the pool
        raise


async def _aunlock_or_close(conn: Any, key: tuple[str]) -> None:
    try:
        await conn.execute(_SESSION_UNLOCK, key)
    except Exception:
        await conn.close()
        raise


async def _idle_or_closed(conn: Any) -> None:
    """Never hand back a connection inside a transaction (a cancelled rollback can leave one)."""
    from psycopg.pq import TransactionStatus

    if conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
        return
    try:
        await run_to_completion(conn.rollback())
    except Exception:
        await run_to_completion(conn.close())


@contextmanager
def _shared_run_lock(store: BaseStore, key: tuple[str], *, wait: bool) -> Iterator[bool]:
    """A session lock on a store's single shared connection.

    That connection serves every other call of the store too, so waiting in
    ``pg_advisory_lock`` on it would stall them all: a waiting run polls
    ``pg_try_advisory_lock`` instead (open the store with a pool to avoid this).
    """
    import time

    def try_lock() -> bool:
        with _StoreParts.pg_connection(store) as conn:
            return _granted(conn.execute(_TRY_SESSION_LOCK, key).fetchone(), wait=False)

    delay = _POLL_FIRST_S
    held = try_lock()
    while wait and not held:
        time.sleep(delay)
        delay = min(2 * delay, _POLL_MAX_S)
        held = try_lock()
    try:
        yield held
    finally:
        if held:
            with _StoreParts.pg_connection(store) as conn:
                conn.execute(_SESSION_UNLOCK, key)


@asynccontextmanager
async def _ashared_run_lock(
    store: BaseStore, key: tuple[str], *, wait: bool
) -> AsyncIterator[bool]:
    """Async :func:`_shared_run_lock`."""

    async def try_lock() -> bool:
        async with _StoreParts.apg_connection(store) as conn:
            cursor = await conn.execute(_TRY_SESSION_LOCK, key)
            return _granted(await cursor.fetchone(), wait=False)

    async def unlock() -> None:
        async with _StoreParts.apg_connection(store) as conn:
            await conn.execute(_SESSION_UNLOCK, key)

    async def take() -> bool:
        try:
            return await try_lock()
        except BaseException:
            # Cancelled while asking: the lock may have been granted. Unlocking a
            # lock this session does not hold is a no-op, and no other run of this
            # scope shares the session (the in-process lock is held).
            await run_to_completion(unlock())
            raise

    delay = _POLL_FIRST_S
    held = await take()
    while wait and not held:
        await asyncio.sleep(delay)
        delay = min(2 * delay, _POLL_MAX_S)
        held = await take()
    try:
        yield held
    finally:
        if held:
            await run_to_completion(unlock())


# --- the one place that reads store attributes LangGraph gives no public route to ----


class _StoreParts:
    """The SQL connection under LangGraph's SQL stores, read in this one place.

    LangGraph's stores keep the connection (or pool) they were built with as
    ``conn``, and a store on one shared connection guards it with ``lock``;
    neither has a public accessor. sleepagent needs the connection for four
    things only: recall's own tables beside the store's (through the store's
    connection and lock, so nothing else opens the file: invariant 14), the
    SQLite file's path (``PRAGMA database_list``), a pooled
    PostgreSQL connection for a commit transaction or a run lock (through
    ``psycopg_pool``'s public ``connection()``), and, for a PostgreSQL store
    on a single connection, that connection while the store's lock keeps its
    other users off it.
    """

    @staticmethod
    def sqlite_file(store: Any) -> str:
        rows = store.conn.execute("PRAGMA database_list").fetchall()
        return _main_file(rows)

    @staticmethod
    async def asqlite_file(store: Any) -> str:
        cursor = await run_to_completion(store.conn.execute("PRAGMA database_list"))
        return _main_file(await run_to_completion(cursor.fetchall()))

    @staticmethod
    def sqlite_synchronous(store: Any) -> int:
        return int(store.conn.execute("PRAGMA synchronous").fetchone()[0])

    @staticmethod
    async def asqlite_synchronous(store: Any) -> int:
        cursor = await run_to_completion(store.conn.execute("PRAGMA synchronous"))
        return int((await run_to_completion(cursor.fetchone()))[0])

    @staticmethod
    @contextmanager
    def sqlite_connection(store: Any) -> Iterator[Any]:
        """A ``SqliteStore``'s connection, holding the store's lock (recall's own tables)."""
        with store.lock:
            yield store.conn

    @staticmethod
    def sqlite_is_async(store: Any) -> bool:
        from langgraph.store.sqlite import AsyncSqliteStore

        return isinstance(store, AsyncSqliteStore)

    @staticmethod
    def asqlite_connection(store: Any) -> AbstractAsyncContextManager[Any]:
        """An ``AsyncSqliteStore``'s aiosqlite connection, holding the store's lock."""
        return _locked(store.lock, store.conn)

    @staticmethod
    def pg_is_async(store: Any) -> bool:
        from langgraph.store.postgres import AsyncPostgresStore

        return isinstance(store, AsyncPostgresStore)

    @staticmethod
    def pg_pipeline(store: Any) -> bool:
        return getattr(store, "pipe", None) is not None

    @staticmethod
    def pg_pooled(store: Any) -> bool:
        from psycopg_pool import AsyncConnectionPool, ConnectionPool

        return isinstance(store.conn, ConnectionPool | AsyncConnectionPool)

    @staticmethod
    @contextmanager
    def pg_connection(store: Any) -> Iterator[Any]:
        from psycopg_pool import ConnectionPool

        if isinstance(store.conn, ConnectionPool):
            with store.conn.connection() as conn:
                yield conn
        else:
            with store.lock:
                yield store.conn

    @staticmethod
    def apg_connection(store: Any) -> AbstractAsyncContextManager[Any]:
        from psycopg_pool import AsyncConnectionPool

        if isinstance(store.conn, AsyncConnectionPool):
            return store.conn.connection()
        return _locked(store.lock, store.conn)


@asynccontextmanager
async def _locked(lock: asyncio.Lock, conn: Any) -> AsyncIterator[Any]:
    async with lock:
        yield conn


def _main_file(rows: Sequence[Any]) -> str:
    for row in rows:
        if row[1] == "main":
            return os.path.realpath(row[2]) if row[2] else ""
    return ""


# --- choosing a backend ----------------------------------------------------------

_chosen: weakref.WeakKeyDictionary[BaseStore, CommitBackend] = weakref.WeakKeyDictionary()
_chosen_guard = threading.Lock()
_warned: set[type] = set()


def backend_for(store: BaseStore) -> CommitBackend:
    """The commit backend of ``store``, chosen on first use and kept for the store's life.

    Every :class:`~sleepagent.memory.blockstore.BlockStore` on one store object shares it,
    so their in-process locks are the same.
    """
    with _chosen_guard:
        try:
            backend = _chosen.get(store)
        except TypeError:  # a store that cannot be weakly referenced: not shared
            return _choose(store)
        if backend is None:
            backend = _choose(store)
            _chosen[store] = backend
        return backend


def _choose(store: BaseStore) -> CommitBackend:
    from langgraph.store.memory import InMemoryStore

    if isinstance(store, InMemoryStore):
        return InMemoryBackend(store)
    try:
        from langgraph.store.sqlite import AsyncSqliteStore, SqliteStore
    except ImportError:
        pass
    else:
        if isinstance(store, SqliteStore | AsyncSqliteStore):
            return SqliteBackend(store)
    try:
        from langgraph.store.postgres import AsyncPostgresStore, PostgresStore
    except ImportError:
        pass
    else:
        if isinstance(store, PostgresStore | AsyncPostgresStore):
            return PostgresBackend(store)
    if type(store) not in _warned:
        _warned.add(type(store))
        logger.warning(
            "sleepagent does not know the store %s: memory commits and sleep runs are "
            "exclusive within this process only. Across processes use SqliteStore or "
            "PostgresStore, or a runtime that runs one sleep run per scope (LangGraph Server)",
            type(store).__qualname__,
        )
    return UnknownStoreBackend(store)


@contextmanager
def run_lock(store: BaseStore, scope: Scope, *, wait: bool) -> Iterator[bool]:
    """Hold the scope's sleep-run lock on ``store``'s database; yields whether it is held.

    Args:
        store: The agent's store.
        scope: The memory scope.
        wait: Wait for the lock (a run asked for by hand), or give up at once
            (a scheduled run, which is set again later).

    """
    with backend_for(store).run_lock(scope, wait=wait) as held:
        yield held


@asynccontextmanager
async def arun_lock(store: BaseStore, scope: Scope, *, wait: bool) -> AsyncIterator[bool]:
    """Async :func:`run_lock`; cancelling a wait never leaves the lock taken."""
    async with backend_for(store).arun_lock(scope, wait=wait) as held:
        yield held
