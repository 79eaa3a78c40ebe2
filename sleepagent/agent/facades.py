"""SleepTimeAgent and AsyncSleepTimeAgent: the graph with its persistence and idle timer.

Both own their checkpointer, store and scheduler (unless you pass your own)
and close them on exit. They differ only in how they call the graph and the
store; what they decide is in :mod:`sleepagent.agent.base`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, NoReturn, Self

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from sleepagent.agent.base import CLOSE_WAIT_S, AgentBase, JobEnding
from sleepagent.errors import ScopeBusyError, WrongModeError
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import HistoryEntry
from sleepagent.memory.storable import require_storable
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    FailedPage,
    SleepResult,
)
from sleepagent.scheduling.apscheduler import AsyncIOIdleScheduler, BackgroundIdleScheduler
from sleepagent.scheduling.base import IdleScheduler, SleepJob
from sleepagent.scheduling.policy import Reason
from sleepagent.scope import Scope
from sleepagent.store.keyedlocks import AsyncKeyedLocks, KeyedLocks
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.store.persistence import open_async_persistence, open_persistence
from sleepagent.usage import Phase, Usage

__all__ = ["AsyncSleepTimeAgent", "SleepTimeAgent"]

logger = logging.getLogger(__name__)


class SleepTimeAgent(AgentBase):
    """A chatbot agent with sleep-time compute, for synchronous code.

    Args:
        model: The primary agent's chat model, or a spec such as ``"openai:gpt-4o-mini"``.
        sleep_model: The sleep-time agent's model (a cheaper or stronger one);
            defaults to ``model``.
        config: Behaviour settings.
        db: SQLite file for conversations and memory, a ``postgresql://`` URL,
            or ``None`` to keep them in memory.
        checkpointer: Use this LangGraph checkpointer instead of ``db`` (not closed by the agent).
        store: Use this LangGraph store instead of ``db`` (not closed by the agent).
        scheduler: The idle timer: ``"auto"`` (APScheduler in a background
            thread), your own, or ``None`` to run sleep-time compute only by hand.
        clock: Source of the current POSIX time.
        model_options: Server, key, budget knobs, timeout and retries for a spec
            string ``model`` (see :class:`~sleepagent.models.ModelOptions`).
        sleep_model_options: The same for the sleep-time model; defaults to ``model_options``.

    Every method that names a thread checks that the thread belongs to the
    memory scope of the identity given (``thread_id``, ``user_id``) before it
    calls a model or writes, and raises :class:`~sleepagent.ScopeMismatchError`
    otherwise. Use it as a context manager, or call :meth:`close`::

        with SleepTimeAgent("openai:gpt-4o-mini") as agent:
            print(agent.chat("Hi, I'm Ada.", thread_id="t1").reply)
            agent.sleep(thread_id="t1")

    """

    def _default_scheduler(self) -> IdleScheduler:
        return BackgroundIdleScheduler()

    def _setup(self) -> None:
        self._stack = ExitStack()
        self._thread_locks = KeyedLocks()
        self._scope_locks = KeyedLocks()
        self._in_flight = 0
        self._idle = threading.Condition()
        saver, store = self._given or self._stack.enter_context(open_persistence(self._db))
        self._attach(saver, store)
        if self._scheduler is not None and self._coordinator is not None:
            self._scheduler.start(self._run_job, max_concurrent=self.config.max_concurrent_sleeps)
            self._coordinator.recover(self.blocks.pending_threads())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> NoReturn:
        raise WrongModeError(
            "SleepTimeAgent is synchronous: use AsyncSleepTimeAgent with 'async with'"
        )

    def close(self) -> None:
        """Stop the idle timer and close what the agent opened. Idempotent.

        Pending alarms are dropped (the store keeps the work for the next
        start); runs in flight get up to ``CLOSE_WAIT_S`` seconds to finish.
        """
        if self._scheduler is not None:
            self._scheduler.close()
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=CLOSE_WAIT_S):
                logger.warning("closing with %d sleep runs still in flight", self._in_flight)
        self._graph = None
        self._blocks = None
        self._stack.close()

    def _owner(self, thread_id: str, user_id: str | None) -> Scope:
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        self.blocks.check_owner(scope, thread_id)
        return scope

    # --- chat ------------------------------------------------------------------

    def chat(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> ChatResult:
        """Answer one user message.

        Turns on one thread are answered in order; this never waits for a
        sleep run.

        Args:
            message: The user's text.
            thread_id: The conversation.
            user_id: The user, when memory follows them across threads.
            config: A LangChain ``RunnableConfig`` (callbacks, tags, metadata,
                run_name) merged into the turn's own.

        Raises:
            ConfigurationError: For an empty message, or text or ids no backend can store.
            ScopeMismatchError: When the thread belongs to another memory scope.
            ModelCallError: When the model call failed; the thread, its log and
                the pending work are exactly as before the turn.

        """
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, config)
        with self._thread_locks.hold(thread_id):
            try:
                state = graph.invoke(payload, run_config, context=context)
            except BaseException:
                self._undo_turn(run_config, human)
                raise
        self._turn_done(thread_id, user_id)
        return self._chat_result(state, human, context)

    def chat_stream(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> Iterator[str]:
        """Answer one user message, yielding the reply's text as it arrives.

        Otherwise the same as :meth:`chat`: the turn is logged and the idle
        timer reset once the reply is complete. Closing the iterator early
        still completes the turn (the rest of the reply is generated, not
        yielded), so the thread and its log stay consistent; the thread's next
        turn waits until then. An exception (a failed model call, Ctrl-C) takes
        the turn back out of the thread, as with :meth:`chat`.

        Raises:
            ScopeMismatchError: When the thread belongs to another memory scope.
            ModelCallError: When the model call failed.

        """
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, config)
        with self._thread_locks.hold(thread_id):
            stream = graph.stream(payload, run_config, context=context, stream_mode="messages")
            try:
                for item in stream:
                    if text := self._streamed_text(item):
                        yield text
            except GeneratorExit:
                for _ in stream:  # closed early: finish the turn without yielding
                    pass
                self._turn_done(thread_id, user_id)
                raise
            except BaseException:
                self._undo_turn(run_config, human)
                raise
        self._turn_done(thread_id, user_id)

    def _undo_turn(self, run_config: RunnableConfig, human: HumanMessage) -> None:
        undo = self._undo(self.graph.get_state(run_config).values, human)
        if undo is not None:
            self.graph.update_state(run_config, undo)

    # --- sleep -----------------------------------------------------------------

    def sleep(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        """Run sleep-time compute on the thread's new messages now.

        Waits for a sleep run of the same memory scope that is already running
        (in this process or, on SQLite and PostgreSQL, in another). Makes no
        model call when there is nothing new.

        Raises:
            ScopeMismatchError: When the thread belongs to another memory scope.
            ModelCallError: When a model call failed; pages already committed stay.

        """
        return self._sleep_by_hand(self._job(thread_id, user_id, Reason.MANUAL), config)

    def add_context(
        self,
        text: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        """Give the agent context before any question, and run sleep-time compute on it.

        The paper's setting: later questions are answered from the learned
        context (and from ``text`` itself when ``show_raw_context`` is set).

        Raises:
            ConfigurationError: For empty text, or text no backend can store.
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        entry = self._context_entry(text, thread_id, user_id)
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        with self._thread_locks.hold(thread_id):
            self.blocks.append(scope, thread_id, entry, at=self._now(), context_text=text)
        return self._sleep_by_hand(self._job(thread_id, user_id, Reason.CONTEXT), config)

    def failed_pages(self, *, thread_id: str, user_id: str | None = None) -> list[FailedPage]:
        """Pages of the thread that sleep-time compute gave up on after their retries."""
        scope = self._owner(thread_id, user_id)
        return self.blocks.failed_pages(scope, thread_id=thread_id)

    def retry_failed(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> list[SleepResult]:
        """Run sleep-time compute again on each failed page of the thread, on purpose.

        A page that succeeds leaves the failed list; one that fails again stays,
        with its attempt counted. The watermark is not moved.
        """
        results = []
        for page in self.failed_pages(thread_id=thread_id, user_id=user_id):
            job = self._job(thread_id, user_id, Reason.MANUAL)
            results.append(self._sleep(job, by_hand=True, config=config, span=page))
        return results

    def _sleep_by_hand(self, job: SleepJob, config: RunnableConfig | None) -> SleepResult:
        result = self._sleep(job, by_hand=True, config=config)
        if self._coordinator is not None:
            position = self.blocks.position(job.thread_id)
            pending = position.pending if position else 0
            self._coordinator.covered_manually(job.thread_id, pending_left=pending)
        return result

    def _sleep(
        self,
        job: SleepJob,
        *,
        by_hand: bool,
        config: RunnableConfig | None = None,
        span: FailedPage | None = None,
    ) -> SleepResult:
        """Run ``job`` holding its scope, in this process and across processes.

        A run asked for by hand waits for the scope; a scheduled one raises
        ScopeBusyError at once, and is set again later.
        """
        graph = self.graph
        payload, run_config, context = self._sleep_call(job, config, span)
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        self.blocks.check_owner(scope, job.thread_id)
        with self._holding_scope(job, scope, by_hand=by_hand), self._scope_locks.hold(scope.key):
            started = self._started(job)
            try:
                state = graph.invoke(payload, run_config, context=context, durability="exit")
            except Exception as error:
                if by_hand:  # scheduled runs are reported by the coordinator, with their retry
                    self._failed_by_hand(job, error, started)
                raise
        result = self._sleep_result(state)
        self._finished(job, result, started)
        return result

    @contextmanager
    def _holding_scope(self, job: SleepJob, scope: Scope, *, by_hand: bool) -> Iterator[None]:
        """Hold the scope's run lock; a busy scope raises ScopeBusyError, or is waited for.

        Only a run asked for by hand waits, and it emits ``waiting`` first.
        """
        with run_lock(self.blocks.store, scope, wait=False) as held:
            if held:
                yield
                return
        if not by_hand:
            raise ScopeBusyError(scope.key)
        self._waiting(job)
        with run_lock(self.blocks.store, scope, wait=True):
            yield

    def _run_job(self, job: SleepJob) -> None:
        """Run a due job (called by the scheduler); never raises."""
        assert self._coordinator is not None
        claim = self._coordinator.claim(job)
        if claim is None:
            return
        with self._idle:
            self._in_flight += 1
        ending = JobEnding()
        try:
            position = self.blocks.position(job.thread_id)
            ran = self._sleep(job, by_hand=False) if self._should_run(job, position) else None
            ending = self._ending_of(position, ran)
        except Exception as failure:
            ending = self._ending_of_error(failure)
            if ending.error is not None:
                self._count_failure(job, failure, ending)
        finally:
            self._release(claim, ending)
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _count_failure(self, job: SleepJob, failure: Exception, ending: JobEnding) -> None:
        try:
            scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
            counted = self.blocks.record_failure(
                scope, job.thread_id, **self._failure_args(failure)
            )
        except Exception:
            logger.exception("could not count the failed attempt of %s", job.thread_id)
            return
        self._counted(job, counted, ending)

    # --- memory ----------------------------------------------------------------

    def memory(self, *, thread_id: str, user_id: str | None = None) -> dict[str, MemoryBlock]:
        """The blocks of the scope, by label, in render order.

        Raises:
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        blocks = self.blocks.load(self._owner(thread_id, user_id))
        return {block.label: block for block in blocks}

    def write_memory(
        self,
        label: str,
        value: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        expected_version: int | None = None,
    ) -> BlockDiff | None:
        """Set a block's value directly, through the same version-checked commit.

        Without ``expected_version`` the value is written on whatever version the
        block has when the commit lock is held, so no write is ever dropped; with
        it, the write is a compare-and-set.

        Returns:
            The change, or ``None`` when the block already held exactly ``value``.

        Raises:
            ConfigurationError: For a value no backend can store.
            MemoryConflictError: With ``expected_version``, when the block is at another.
            MemoryEditError: For an unknown or read-only label, or a value over the limit.
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        require_storable(value, what="the block value")
        scope = self._owner(thread_id, user_id)
        outcome = self.blocks.write(
            scope, label, value, expected_version=expected_version, **self._write_args(thread_id)
        )
        return self._written(outcome)

    def history(
        self,
        label: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[HistoryEntry]:
        """Committed versions of a block, oldest first: all, or a page of them.

        With ``limit``, the newest ``limit`` versions older than ``before`` (all
        versions when ``before`` is not given); a page costs the same however long
        the history is. Pass the first version of a page as ``before`` to read the
        page before it.
        """
        return self.blocks.history(
            self._owner(thread_id, user_id), label, limit=limit, before=before
        )

    def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        """Token usage totals of a thread, per phase."""
        self._owner(thread_id, user_id)
        return self.blocks.usage(thread_id)


class AsyncSleepTimeAgent(AgentBase):
    """The asyncio twin of :class:`SleepTimeAgent`; open it with ``async with``.

    Takes the same arguments. Every method is a coroutine::

        async with AsyncSleepTimeAgent("openai:gpt-4o-mini") as agent:
            result = await agent.chat("Hi, I'm Ada.", thread_id="t1")
    """

    def _default_scheduler(self) -> IdleScheduler:
        return AsyncIOIdleScheduler()

    def _setup(self) -> None:
        # Connections and the scheduler start in __aenter__, inside the event loop.
        self._stack = AsyncExitStack()
        self._thread_locks = AsyncKeyedLocks()
        self._scope_locks = AsyncKeyedLocks()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Self:
        if self._given is not None:
            saver, store = self._given
        else:
            opened = open_async_persistence(self._db)
            saver, store = await self._stack.enter_async_context(opened)
        self._attach(saver, store)
        if self._scheduler is not None and self._coordinator is not None:
            self._slots = asyncio.Semaphore(self.config.max_concurrent_sleeps)
            self._scheduler.start(self._run_job, max_concurrent=self.config.max_concurrent_sleeps)
            self._coordinator.recover(await self.blocks.apending_threads())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> NoReturn:
        raise WrongModeError(
            "AsyncSleepTimeAgent is for asyncio: use 'async with', or SleepTimeAgent"
        )

    async def aclose(self) -> None:
        """Async :meth:`SleepTimeAgent.close`."""
        if self._scheduler is not None:
            self._scheduler.close()
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=CLOSE_WAIT_S)
            if late:
                logger.warning("closing with %d sleep runs still in flight", len(late))
        self._graph = None
        self._blocks = None
        await self._stack.aclose()

    async def _owner(self, thread_id: str, user_id: str | None) -> Scope:
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        await self.blocks.acheck_owner(scope, thread_id)
        return scope

    async def chat(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> ChatResult:
        """Async :meth:`SleepTimeAgent.chat`."""
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, config)
        async with self._thread_locks.hold(thread_id):
            try:
                state = await graph.ainvoke(payload, run_config, context=context)
            except BaseException:
                await asyncio.shield(self._undo_turn(run_config, human))
                raise
        self._turn_done(thread_id, user_id)
        return self._chat_result(state, human, context)

    async def chat_stream(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[str]:
        """Async :meth:`SleepTimeAgent.chat_stream`."""
        graph = self.graph
        payload, run_config, context, human = self._chat_call(message, thread_id, user_id, config)
        async with self._thread_locks.hold(thread_id):
            stream = graph.astream(payload, run_config, context=context, stream_mode="messages")
            try:
                async for item in stream:
                    if text := self._streamed_text(item):
                        yield text
            except GeneratorExit:
                async for _ in stream:  # closed early: finish the turn without yielding
                    pass
                self._turn_done(thread_id, user_id)
                raise
            except BaseException:
                await asyncio.shield(self._undo_turn(run_config, human))
                raise
        self._turn_done(thread_id, user_id)

    async def _undo_turn(self, run_config: RunnableConfig, human: HumanMessage) -> None:
        """Async :meth:`SleepTimeAgent._undo_turn`."""
        undo = self._undo((await self.graph.aget_state(run_config)).values, human)
        if undo is not None:
            await self.graph.aupdate_state(run_config, undo)

    async def sleep(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        """Async :meth:`SleepTimeAgent.sleep`."""
        return await self._sleep_by_hand(self._job(thread_id, user_id, Reason.MANUAL), config)

    async def add_context(
        self,
        text: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        """Async :meth:`SleepTimeAgent.add_context`."""
        entry = self._context_entry(text, thread_id, user_id)
        scope = self.scope(thread_id=thread_id, user_id=user_id)
        async with self._thread_locks.hold(thread_id):
            await self.blocks.aappend(scope, thread_id, entry, at=self._now(), context_text=text)
        return await self._sleep_by_hand(self._job(thread_id, user_id, Reason.CONTEXT), config)

    async def failed_pages(self, *, thread_id: str, user_id: str | None = None) -> list[FailedPage]:
        """Async :meth:`SleepTimeAgent.failed_pages`."""
        scope = await self._owner(thread_id, user_id)
        return await self.blocks.afailed_pages(scope, thread_id=thread_id)

    async def retry_failed(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> list[SleepResult]:
        """Async :meth:`SleepTimeAgent.retry_failed`."""
        results = []
        for page in await self.failed_pages(thread_id=thread_id, user_id=user_id):
            job = self._job(thread_id, user_id, Reason.MANUAL)
            results.append(await self._sleep(job, by_hand=True, config=config, span=page))
        return results

    async def _sleep_by_hand(self, job: SleepJob, config: RunnableConfig | None) -> SleepResult:
        result = await self._sleep(job, by_hand=True, config=config)
        if self._coordinator is not None:
            position = await self.blocks.aposition(job.thread_id)
            pending = position.pending if position else 0
            self._coordinator.covered_manually(job.thread_id, pending_left=pending)
        return result

    async def _sleep(
        self,
        job: SleepJob,
        *,
        by_hand: bool,
        config: RunnableConfig | None = None,
        span: FailedPage | None = None,
    ) -> SleepResult:
        """Async :meth:`SleepTimeAgent._sleep`."""
        graph = self.graph
        payload, run_config, context = self._sleep_call(job, config, span)
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        await self.blocks.acheck_owner(scope, job.thread_id)
        async with (
            self._holding_scope(job, scope, by_hand=by_hand),
            self._scope_locks.hold(scope.key),
        ):
            started = self._started(job)
            try:
                state = await graph.ainvoke(payload, run_config, context=context, durability="exit")
            except Exception as error:
                if by_hand:  # scheduled runs are reported by the coordinator, with their retry
                    self._failed_by_hand(job, error, started)
                raise
        result = self._sleep_result(state)
        self._finished(job, result, started)
        return result

    @asynccontextmanager
    async def _holding_scope(
        self, job: SleepJob, scope: Scope, *, by_hand: bool
    ) -> AsyncIterator[None]:
        """Async :meth:`SleepTimeAgent._holding_scope`."""
        async with arun_lock(self.blocks.store, scope, wait=False) as held:
            if held:
                yield
                return
        if not by_hand:
            raise ScopeBusyError(scope.key)
        self._waiting(job)
        async with arun_lock(self.blocks.store, scope, wait=True):
            yield

    async def _run_job(self, job: SleepJob) -> None:
        """Run a due job (called by the scheduler); never raises."""
        assert self._coordinator is not None and self._slots is not None
        claim = self._coordinator.claim(job)
        if claim is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        ending = JobEnding()
        try:
            async with self._slots:
                position = await self.blocks.aposition(job.thread_id)
                should = self._should_run(job, position)
                ran = await self._sleep(job, by_hand=False) if should else None
                ending = self._ending_of(position, ran)
        except Exception as failure:
            ending = self._ending_of_error(failure)
            if ending.error is not None:
                await self._count_failure(job, failure, ending)
        finally:
            self._release(claim, ending)
            if task is not None:
                self._in_flight.discard(task)

    async def _count_failure(self, job: SleepJob, failure: Exception, ending: JobEnding) -> None:
        try:
            scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
            counted = await self.blocks.arecord_failure(
                scope, job.thread_id, **self._failure_args(failure)
            )
        except Exception:
            logger.exception("could not count the failed attempt of %s", job.thread_id)
            return
        self._counted(job, counted, ending)

    async def memory(self, *, thread_id: str, user_id: str | None = None) -> dict[str, MemoryBlock]:
        """Async :meth:`SleepTimeAgent.memory`."""
        blocks = await self.blocks.aload(await self._owner(thread_id, user_id))
        return {block.label: block for block in blocks}

    async def write_memory(
        self,
        label: str,
        value: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        expected_version: int | None = None,
    ) -> BlockDiff | None:
        """Async :meth:`SleepTimeAgent.write_memory`."""
        require_storable(value, what="the block value")
        scope = await self._owner(thread_id, user_id)
        outcome = await self.blocks.awrite(
            scope, label, value, expected_version=expected_version, **self._write_args(thread_id)
        )
        return self._written(outcome)

    async def history(
        self,
        label: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[HistoryEntry]:
        """Async :meth:`SleepTimeAgent.history`."""
        scope = await self._owner(thread_id, user_id)
        return await self.blocks.ahistory(scope, label, limit=limit, before=before)

    async def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        """Async :meth:`SleepTimeAgent.usage`."""
        await self._owner(thread_id, user_id)
        return await self.blocks.ausage(thread_id)
