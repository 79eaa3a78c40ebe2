"""Every piece of the agents' orchestration, written once as flows.

A flow (see :mod:`sleepagent._twins`) puts the decisions of
:class:`~sleepagent.agent.base.AgentBase` in order and yields each I/O call
(the graph, the store, a lock); the sync facade drives it with
:func:`~sleepagent._twins.run`, the async one with :func:`~sleepagent._twins.arun`.
So a turn, a sleep run, a scheduled job and its failure count, opening and
closing are each one generator here, and the facades are one line per method.

:meth:`AgentFlows._boundary` wraps every flow a facade drives: the one place
where a database driver's error becomes a :class:`~sleepagent.errors.StorageError`.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from langchain_core.messages import HumanMessage, messages_to_dict
from langchain_core.runnables import RunnableConfig

from sleepagent._gcpause import collector_paused
from sleepagent._twins import Flow, StreamClosed, call, emit, holding, iterate, shielded, within
from sleepagent.agent.base import CLOSE_WAIT_S, AgentBase, JobEnding
from sleepagent.errors import ConfigurationError, ScopeBusyError, SleepAgentError, StorageError
from sleepagent.graph.companion import sleep_thread_id
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import ActiveRun, HistoryEntry
from sleepagent.memory.erasure import Holdings, export_document
from sleepagent.memory.imported import MessageLike, Timestamp
from sleepagent.memory.recall import rows_of
from sleepagent.memory.storable import require_storable
from sleepagent.memory.transcript import LogEntry
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    FailedPage,
    Forgotten,
    ImportResult,
    SleepResult,
)
from sleepagent.scheduling.base import SleepJob
from sleepagent.scheduling.policy import Reason
from sleepagent.scope import Scope
from sleepagent.store.dburl import parse_db
from sleepagent.store.locking import run_lock
from sleepagent.store.recallindex import recall_index_for
from sleepagent.usage import Phase, Usage

__all__ = ["AgentFlows"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AgentFlows(AgentBase):
    """The flows both facades drive; each public method of a facade runs one of them."""

    # --- the public API's boundary -----------------------------------------------

    def _boundary(self, flow: Flow[T]) -> Flow[T]:
        """``flow``, with a database driver's error raised as :class:`StorageError`.

        ``sqlite3`` and ``psycopg`` errors escape LangGraph's savers and stores
        untyped (LangGraph's SQLite store wraps some in a ``ValueError``); here
        they become a typed error that names the database, chained (``from``)
        to what was raised.
        """
        try:
            return (yield from flow)
        except Exception as error:
            cause = _driver_error(error)
            if cause is None:
                raise
            target = self._target()
            said = _first_line(cause)
            if isinstance(self._db, str):
                said = said.replace(self._db, target)  # never a password in a message
            raise StorageError(
                f"the database {target} failed: {type(cause).__name__}: {said}. "
                "Check that it is reachable, writable and not damaged, and that nothing "
                "else changed its tables",
                target=target,
            ) from error

    def _target(self) -> str:
        """The database, for messages: a path, a URL without its password, or the store given."""
        if self._given is not None:
            return f"{type(self._given[1]).__name__} (passed as store=)"
        try:
            return str(parse_db(self._db))
        except ConfigurationError:
            return "given as db="

    # --- opening and closing -------------------------------------------------------

    def _open_flow(self) -> Flow[None]:
        saver, store = self._given or (yield from call(self._open_persistence))
        self._attach(saver, store)
        try:
            # Before anything reads the store: an older layout is brought up to date, a
            # newer one is refused (store/migrations.py).
            yield from call(self.blocks.migrate, self._now())
            if self.config.uses_recall_index:
                yield from call(recall_index_for(store).setup)  # not left for the first turn
        except BaseException:
            self._blocks = None
            yield from call(self._close_persistence)
            raise
        if self._scheduler is not None and self._coordinator is not None:
            self._scheduler.start(self._run_job, max_concurrent=self.config.max_concurrent_sleeps)
            with collector_paused():  # a bulk read: see sleepagent/_gcpause.py
                pending = yield from call(self.blocks.recovery_positions)
                self._coordinator.recover(pending)

    def _close_flow(self) -> Flow[None]:
        if self._scheduler is not None:
            self._scheduler.close()
        self._turns.close()  # a run waiting for turns goes on now, and ends sooner
        late = yield from call(self._runs.drain, CLOSE_WAIT_S)
        if late:
            logger.warning("closing with %d sleep runs still in flight", late)
        self._graph = None
        self._blocks = None
        yield from call(self._close_persistence)

    def _owner(self, thread_id: str, user_id: str | None) -> Flow[Scope]:
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        yield from call(self.blocks.check_owner, scope, thread_id)
        return scope

    # --- chat --------------------------------------------------------------------------

    def _chat_flow(
        self, message: str, thread_id: str, user_id: str | None, caller: RunnableConfig | None
    ) -> Flow[ChatResult]:
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, caller)

        def turn() -> Flow[dict[str, Any]]:
            try:
                state: dict[str, Any] = yield from call(
                    graph.invoke, payload, run_config, context=context
                )
            except BaseException:
                yield from shielded(self._undo_flow(run_config, human))
                raise
            return state

        state = yield from self._counted_turn(holding(self._thread_locks.get(thread_id), turn()))
        self._turn_done(thread_id, user_id)
        return self._chat_result(state, human, context)

    def _chat_stream_flow(
        self, message: str, thread_id: str, user_id: str | None, caller: RunnableConfig | None
    ) -> Flow[None]:
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, caller)

        def turn() -> Flow[None]:
            stream = yield from call(
                graph.stream, payload, run_config, context=context, stream_mode="messages"
            )
            try:
                while (item := (yield from iterate(stream))) is not None:
                    if text := self._streamed_text(item):
                        yield from emit(text)
            except StreamClosed:
                while (yield from iterate(stream)) is not None:
                    pass  # closed early: finish the turn without handing out the rest
                self._turn_done(thread_id, user_id)
                raise
            except BaseException:
                yield from shielded(self._undo_flow(run_config, human))
                raise

        yield from self._counted_turn(holding(self._thread_locks.get(thread_id), turn()))
        self._turn_done(thread_id, user_id)

    def _counted_turn(self, turn: Flow[T]) -> Flow[T]:
        """``turn``, counted in flight from its start to its end, however it ends.

        Sleep runs give way to the turns counted (``turn_precedence_seconds``);
        the turn itself never waits for them.
        """
        self._turns.enter()
        try:
            return (yield from turn)
        finally:
            self._turns.leave()

    def _undo_flow(self, run_config: RunnableConfig, human: HumanMessage) -> Flow[None]:
        snapshot = yield from call(self.graph.get_state, run_config)
        undo = self._undo(snapshot.values, human)
        if undo is not None:
            yield from call(self.graph.update_state, run_config, undo)

    # --- import ----------------------------------------------------------------------

    def _import_flow(
        self,
        records: Iterable[MessageLike],
        thread_id: str,
        user_id: str | None,
        session_date: Timestamp | None,
        sleep: bool,
        config: RunnableConfig | None,
    ) -> Flow[ImportResult]:
        graph = self.graph
        imported, texts, run_config = self._import_call(
            records, thread_id, user_id, session_date, config
        )
        scope = self.scope(thread_id=thread_id, user_id=user_id)

        def write() -> Flow[list[LogEntry]]:
            # Refused before the first write, like a chat turn (invariant 8).
            yield from call(self.blocks.check_owner, scope, thread_id)
            snapshot = yield from call(graph.get_state, run_config)
            update, undo = self._import_update(snapshot.values, imported)
            yield from call(graph.update_state, run_config, update, as_node="agent")
            try:
                entries: list[LogEntry] = yield from call(
                    self.blocks.append, scope, thread_id, texts, at=self._now()
                )
            except BaseException:
                # The log is one batch: written whole or not at all. Take the
                # messages back out of the checkpoint too, as a failed turn is.
                yield from shielded(self._restore_flow(run_config, undo))
                raise
            if self.config.recall_messages:
                # Imported history is recallable at once, sleep run or not. Should
                # this fail, the messages stay imported, and the sleep runs that
                # read them index them.
                rows = rows_of(scope, thread_id, entries)
                yield from call(recall_index_for(self.blocks.store).add, rows)
            return entries

        entries = yield from holding(self._thread_locks.get(thread_id), write())
        ran = None
        if sleep:
            job = self._job(thread_id, user_id, Reason.IMPORT)
            ran = yield from self._sleep_by_hand(job, config)
        else:
            self._turn_done(thread_id, user_id)
        return self._import_result(entries, thread_id, user_id, ran)

    def _restore_flow(self, run_config: RunnableConfig, undo: dict[str, Any]) -> Flow[None]:
        yield from call(self.graph.update_state, run_config, undo, as_node="agent")

    # --- sleep -----------------------------------------------------------------------

    def _add_context_flow(
        self, text: str, thread_id: str, user_id: str | None, config: RunnableConfig | None
    ) -> Flow[SleepResult]:
        entry = self._context_entry(text, thread_id, user_id)
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        append = call(
            self.blocks.append, scope, thread_id, entry, at=self._now(), context_text=text
        )
        yield from holding(self._thread_locks.get(thread_id), append)
        job = self._job(thread_id, user_id, Reason.CONTEXT)
        return (yield from self._sleep_by_hand(job, config))

    def _retry_failed_flow(
        self, thread_id: str, user_id: str | None, config: RunnableConfig | None
    ) -> Flow[list[SleepResult]]:
        results = []
        for page in (yield from self._failed_pages_flow(thread_id, user_id)):
            job = self._job(thread_id, user_id, Reason.MANUAL)
            results.append(
                (yield from self._sleep_flow(job, by_hand=True, config=config, span=page))
            )
        return results

    def _sleep_by_hand(self, job: SleepJob, config: RunnableConfig | None) -> Flow[SleepResult]:
        result = yield from self._sleep_flow(job, by_hand=True, config=config)
        if self._coordinator is not None:
            position = yield from call(self.blocks.position, job.thread_id)
            pending = position.pending if position else 0
            self._coordinator.covered_manually(job.thread_id, pending_left=pending)
        return result

    def _sleep_flow(
        self,
        job: SleepJob,
        *,
        by_hand: bool,
        config: RunnableConfig | None = None,
        span: FailedPage | None = None,
    ) -> Flow[SleepResult]:
        """Run ``job`` holding its scope, in this agent and across agents and processes.

        A run asked for by hand waits for the scope; a scheduled one raises
        ScopeBusyError at once, and is set again later.
        """
        graph = self.graph
        payload, run_config, context = self._sleep_call(job, config, span)
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        yield from call(self.blocks.check_owner, scope, job.thread_id)

        def graph_run() -> Flow[tuple[dict[str, Any], float]]:
            started = self._started(job)
            # Readers of the database (memory list, the inspector) show the run in
            # flight from this marker; a run killed before it clears it is told apart
            # by its free run lock.
            active = ActiveRun(job.thread_id, str(job.reason.value), self._now())
            yield from call(self.blocks.mark_running, scope, active)
            try:
                state: dict[str, Any] = yield from call(
                    graph.invoke, payload, run_config, context=context, durability="exit"
                )
            except Exception as error:
                if by_hand:  # scheduled runs are reported by the coordinator, with their retry
                    self._failed_by_hand(job, error, started)
                yield from call(self.blocks.mark_running, scope, None)
                raise
            yield from call(self.blocks.mark_running, scope, None)
            return state, started

        def in_scope() -> Flow[tuple[dict[str, Any], float]]:
            return (yield from holding(self._scope_locks.get(scope.key), graph_run()))

        state, started = yield from self._holding_scope(job, scope, in_scope, by_hand=by_hand)
        result = self._sleep_result(state)
        self._finished(job, result, started)
        return result

    def _holding_scope(
        self, job: SleepJob, scope: Scope, body: Callable[[], Flow[T]], *, by_hand: bool
    ) -> Flow[T]:
        """Run ``body`` holding the scope's run lock, in this process and across processes.

        The lock is tried first without waiting. A busy scope raises
        ScopeBusyError for a scheduled run (it is set again later, and must not
        hold a worker); a run asked for by hand emits ``waiting``, then waits.
        """
        busy = object()

        def first_try(held: bool) -> Flow[Any]:
            if not held:
                return busy
            return (yield from body())

        outcome = yield from within(first_try, run_lock, self.blocks.store, scope, wait=False)
        if outcome is not busy:
            return cast(T, outcome)
        if not by_hand:
            raise ScopeBusyError(scope.key)
        self._waiting(job)

        def waited(held: bool) -> Flow[T]:
            return (yield from body())

        return (yield from within(waited, run_lock, self.blocks.store, scope, wait=True))

    # --- scheduled jobs ------------------------------------------------------------------

    def _job_flow(self, job: SleepJob) -> Flow[None]:
        """A due job: claim its scope, run if there is enough to do, report how it ended."""
        assert self._coordinator is not None
        if not self._runs.enter():
            return  # the agent is closing: the work stays pending in the store
        try:
            claim = self._coordinator.claim(job)
            if claim is None:
                return
            ending = JobEnding()
            try:
                position = yield from call(self.blocks.position, job.thread_id)
                ran = None
                if self._should_run(job, position):
                    ran = yield from self._sleep_flow(job, by_hand=False)
                ending = self._ending_of(position, ran)
            except Exception as failure:
                ending = self._ending_of_error(failure)
                if ending.error is not None:
                    yield from self._count_failure(job, failure, ending)
            finally:
                self._release(claim, ending)
        finally:
            self._runs.leave()

    def _count_failure(self, job: SleepJob, failure: Exception, ending: JobEnding) -> Flow[None]:
        try:
            scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
            counted = yield from call(
                self.blocks.record_failure, scope, job.thread_id, **self._failure_args(failure)
            )
        except Exception:
            logger.exception("could not count the failed attempt of %s", job.thread_id)
            return
        self._counted(job, counted, ending)

    # --- memory --------------------------------------------------------------------------

    def _failed_pages_flow(self, thread_id: str, user_id: str | None) -> Flow[list[FailedPage]]:
        scope = yield from self._owner(thread_id, user_id)
        return (yield from call(self.blocks.failed_pages, scope, thread_id=thread_id))

    def _memory_flow(self, thread_id: str, user_id: str | None) -> Flow[dict[str, MemoryBlock]]:
        scope = yield from self._owner(thread_id, user_id)
        blocks = yield from call(self.blocks.load, scope)
        return {block.label: block for block in blocks}

    def _write_memory_flow(
        self,
        label: str,
        value: str,
        thread_id: str,
        user_id: str | None,
        expected_version: int | None,
    ) -> Flow[BlockDiff | None]:
        require_storable(value, what="the block value")
        scope = yield from self._owner(thread_id, user_id)
        outcome = yield from call(
            self.blocks.write,
            scope,
            label,
            value,
            expected_version=expected_version,
            **self._write_args(thread_id),
        )
        return self._written(outcome)

    def _history_flow(
        self,
        label: str,
        thread_id: str,
        user_id: str | None,
        limit: int | None,
        before: int | None,
    ) -> Flow[list[HistoryEntry]]:
        scope = yield from self._owner(thread_id, user_id)
        return (yield from call(self.blocks.history, scope, label, limit=limit, before=before))

    def _usage_flow(self, thread_id: str, user_id: str | None) -> Flow[dict[Phase, Usage]]:
        yield from self._owner(thread_id, user_id)
        return (yield from call(self.blocks.usage, thread_id))

    # --- forget and export -------------------------------------------------------------

    def _forget_flow(self, user_id: str | None, thread_id: str | None) -> Flow[Forgotten]:
        """Remove everything stored for a thread or a scope (DESIGN invariant 15).

        It holds the scope's run lock, waiting for a run in flight to end, so no
        sleep run of the scope (in any process on the database) can write back
        what is being removed; then this agent's turn lock of each thread, so
        none of its turns is halfway; then the commit lock, while the store's
        records go. Checkpoints go before the store's records: the threads are
        found by their log heads, so a forget cut short is finished by asking again.
        """
        scope, thread = self._erasure_target(user_id, thread_id)
        if thread is not None:
            yield from call(self.blocks.check_owner, scope, thread)

        def locked(held: bool) -> Flow[Forgotten]:
            found = yield from call(self.blocks.holdings, scope, thread)
            return (yield from self._holding_threads(found.threads, self._erase_flow(found)))

        return (yield from within(locked, run_lock, self.blocks.store, scope, wait=True))

    def _holding_threads(self, threads: Sequence[str], body: Flow[T]) -> Flow[T]:
        """Run ``body`` holding the turn lock of each thread, taken in sorted order."""
        if not threads:
            return (yield from body)
        first, *rest = sorted(threads)
        lock = self._thread_locks.get(first)
        return (yield from holding(lock, self._holding_threads(rest, body)))

    def _erase_flow(self, found: Holdings) -> Flow[Forgotten]:
        checkpointed = list(found.threads)
        if found.whole_scope:
            checkpointed.append(sleep_thread_id(found.scope))  # the runs' working state
        for thread in checkpointed:
            yield from call(self.checkpointer.delete_thread, thread)
        # Recall rows before the store's records: those hold the thread heads a
        # forget cut short is found again by.
        recall = recall_index_for(self.blocks.store)
        threads = None if found.whole_scope else list(found.threads)
        removed = yield from call(recall.erase, found.scope.key, threads)
        removed += yield from call(self.blocks.erase, found)
        if self._coordinator is not None:
            self._coordinator.forget(found.threads)
        return Forgotten(found.scope.key, found.threads, found.whole_scope, removed)

    def _export_flow(self, user_id: str | None, thread_id: str | None) -> Flow[dict[str, Any]]:
        scope, thread = self._erasure_target(user_id, thread_id)
        if thread is not None:
            yield from call(self.blocks.check_owner, scope, thread)
        found = yield from call(self.blocks.holdings, scope, thread)
        threads = None if found.whole_scope else list(found.threads)
        recall = recall_index_for(self.blocks.store)
        recalled = yield from call(recall.rows, scope.key, threads)
        messages = {}
        for each in found.threads:
            config = self._config(each, "sleepagent:export", None)
            snapshot = yield from call(self.graph.get_state, config)
            messages[each] = messages_to_dict(snapshot.values.get("messages") or [])
        return export_document(found, messages, exported_at=self._now(), recall=recalled)


def _driver_error(error: BaseException) -> BaseException | None:
    """The ``sqlite3`` or ``psycopg`` error ``error`` is, or was raised from; else None."""
    psycopg = sys.modules.get("psycopg")  # not imported: none of its errors can exist
    found: BaseException | None = error
    while found is not None and not isinstance(found, SleepAgentError):
        if isinstance(found, sqlite3.Error):  # aiosqlite raises these too
            return found
        if psycopg is not None and isinstance(found, psycopg.Error):
            return found  # type: ignore[no-any-return]
        found = found.__cause__
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__
