"""SleepTimeAgent and AsyncSleepTimeAgent: the graph with its persistence and idle timer.

Both own their checkpointer, store and scheduler (unless you pass your own)
and close them on exit. They differ only in how they call the graph and the
store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from types import TracebackType
from typing import Any, Literal, NoReturn, Self

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from sleepagent._locks import AsyncKeyedLocks, KeyedLocks
from sleepagent.backends import arun_lock, run_lock
from sleepagent.blocks import MemoryBlock
from sleepagent.config import SleepConfig
from sleepagent.context import SleepContext, iso
from sleepagent.errors import ConfigurationError, ScopeBusyError, SleepAgentError, WrongModeError
from sleepagent.graph import RECURSION_LIMIT, build_graph, sleep_request, sleep_thread_id
from sleepagent.memory import BlockStore, CommitOutcome, HistoryEntry, ThreadPosition
from sleepagent.models import ModelLike, ModelOptions, resolve_models
from sleepagent.persistence import DbPath, open_async_persistence, open_persistence
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    Conflict,
    FailedPage,
    SleepOutcome,
    SleepResult,
)
from sleepagent.scheduling.apscheduler import AsyncIOIdleScheduler, BackgroundIdleScheduler
from sleepagent.scheduling.base import IdleScheduler, SleepJob
from sleepagent.scheduling.coordinator import SleepCoordinator
from sleepagent.scheduling.events import EventKind, SleepEvent, SleepEvents, event_for
from sleepagent.scheduling.policy import Reason, too_few_new_messages
from sleepagent.scope import Scope, resolve_scope
from sleepagent.storable import require_storable
from sleepagent.transcript import message_text
from sleepagent.usage import Phase, Usage

__all__ = ["AsyncSleepTimeAgent", "SleepTimeAgent"]

Graph = CompiledStateGraph[Any, SleepContext, Any, Any]
TextRole = tuple[str, str, str | None]
SchedulerArg = IdleScheduler | Literal["auto"] | None

CLOSE_WAIT_S = 5.0
"""How long closing waits for sleep runs in flight before it closes their connections."""

logger = logging.getLogger(__name__)


class _JobEnding:
    """How a scheduled job ended, for the coordinator."""

    __slots__ = ("covered", "error", "postpone", "retry")

    def __init__(
        self, *, covered: bool = False, postpone: bool = False, error: BaseException | None = None
    ) -> None:
        self.covered = covered
        self.postpone = postpone
        self.error = error
        self.retry = True


class UnprocessedPage(SleepAgentError, RuntimeError):
    """A scheduled run ended on a page it left pending (the page's outcome says why).

    Handed to the coordinator as the run's failure, so it is retried with backoff.
    """


class _AgentBase:
    """What both facades share: configuration, every decision, and results.

    The sync and async facades differ only where they call the graph or the
    store; what to check, what to run and how to report it is decided here.
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        sleep_model: ModelLike | None = None,
        config: SleepConfig | None = None,
        db: DbPath = "sleepagent.db",
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        scheduler: SchedulerArg = "auto",
        clock: Callable[[], float] | None = None,
        model_options: ModelOptions | None = None,
        sleep_model_options: ModelOptions | None = None,
    ) -> None:
        if (checkpointer is None) != (store is None):
            raise ConfigurationError(
                "pass both checkpointer= and store=, or neither (then db= is used)"
            )
        self.config = config or SleepConfig()
        self._scheduler = self._default_scheduler() if scheduler == "auto" else scheduler
        if clock is None:
            clock = self._scheduler.now if self._scheduler is not None else time.time
        self._clock = clock
        self.events = SleepEvents()
        self._coordinator = (
            SleepCoordinator(self.config, self._scheduler, self.events, self._scope_of)
            if self._scheduler is not None
            else None
        )
        self._db = db
        self._given = (
            (checkpointer, store) if checkpointer is not None and store is not None else None
        )
        chat_model, sleeper = resolve_models(
            model, sleep_model, options=model_options, sleep_options=sleep_model_options
        )
        self._builder = build_graph(
            chat_model, sleep_model=sleeper, config=self.config, clock=clock
        )
        self._graph: Graph | None = None
        self._blocks: BlockStore | None = None
        self._setup()

    def _setup(self) -> None:
        """Create what the facade owns (subclasses)."""

    def _default_scheduler(self) -> IdleScheduler:
        raise NotImplementedError

    def _scope_of(self, thread_id: str, user_id: str | None) -> Scope:
        return self.scope(thread_id=thread_id, user_id=user_id)

    def subscribe(self, callback: Callable[[SleepEvent], None]) -> Callable[[], None]:
        """Receive every sleep-run event; returns a function that unsubscribes.

        Callbacks run in the thread (or task) where the event happens; keep them short.
        """
        return self.events.subscribe(callback)

    @property
    def scheduler(self) -> IdleScheduler | None:
        """The idle timer, or None when sleep runs are only started by hand."""
        return self._scheduler

    def _attach(self, checkpointer: BaseCheckpointSaver[Any], store: BaseStore) -> None:
        self._graph = self._builder.compile(checkpointer=checkpointer, store=store)
        self._blocks = BlockStore(store, self.config.blocks)

    @property
    def graph(self) -> Graph:
        """The compiled graph (available once the agent is open)."""
        if self._graph is None:
            self._not_open()
        return self._graph

    @property
    def blocks(self) -> BlockStore:
        """Direct access to memory blocks, history, logs and watermarks."""
        if self._blocks is None:
            self._not_open()
        return self._blocks

    def _not_open(self) -> NoReturn:
        raise ConfigurationError(f"this {type(self).__name__} is closed or was never opened")

    def scope(self, *, thread_id: str, user_id: str | None = None) -> Scope:
        """The memory scope a call with this identity uses.

        Raises:
            ConfigurationError: For an empty id, one that cannot be stored, or a
                missing ``user_id`` under ``ScopePolicy.USER``.

        """
        return resolve_scope(self.config.scope, thread_id=thread_id, user_id=user_id)

    # --- events ----------------------------------------------------------------

    def _job(self, thread_id: str, user_id: str | None, reason: Reason) -> SleepJob:
        self.scope(thread_id=thread_id, user_id=user_id)  # refuse bad ids before anything
        return SleepJob(thread_id, user_id, self._clock(), reason)

    def _emit(self, kind: EventKind, job: SleepJob, **details: Any) -> None:
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        self.events.emit(event_for(kind, job, scope, at=self._clock(), **details))

    def _started(self, job: SleepJob) -> float:
        self._emit(EventKind.STARTED, job)
        return time.perf_counter()

    def _finished(self, job: SleepJob, result: SleepResult, started: float) -> None:
        details: dict[str, Any] = {
            "run_id": result.run_id,
            "duration": time.perf_counter() - started,
            "usage": result.usage,
            "diffs": result.diffs,
        }
        self._emit(EventKind.FINISHED, job, outcome=result.outcome, **details)
        if result.conflicts:
            self._emit(EventKind.CONFLICT, job, conflicts=result.conflicts, **details)
        for page in result.failed_pages:
            self._page_failed(job, page)

    def _page_failed(self, job: SleepJob, page: FailedPage) -> None:
        self._emit(EventKind.PAGE_FAILED, job, failed_page=page, error=page.error)

    def _failed_by_hand(self, job: SleepJob, error: BaseException, started: float) -> None:
        self._emit(
            EventKind.FAILED,
            job,
            error=f"{type(error).__name__}: {error}",
            duration=time.perf_counter() - started,
        )

    # --- building graph calls --------------------------------------------------

    def _config(
        self, thread_id: str, run_name: str, caller: RunnableConfig | None
    ) -> RunnableConfig:
        """Our run config merged with the caller's (callbacks, tags, metadata, run_name).

        The caller's settings are added to ours; the thread id and recursion
        limit stay ours, since the agent's correctness depends on them.
        """
        ours: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "recursion_limit": RECURSION_LIMIT,
            "run_name": run_name,
        }
        if not caller:
            return ours
        merged = merge_configs(ours, caller)
        merged["configurable"] = {**merged.get("configurable", {}), "thread_id": thread_id}
        merged["recursion_limit"] = RECURSION_LIMIT
        return merged

    def _chat_call(
        self,
        message: str,
        thread_id: str,
        user_id: str | None,
        caller: RunnableConfig | None,
    ) -> tuple[dict[str, Any], RunnableConfig, SleepContext, HumanMessage]:
        if not isinstance(message, str) or not message.strip():
            raise ConfigurationError("message must be non-empty text")
        require_storable(message, what="the message")
        self.scope(thread_id=thread_id, user_id=user_id)
        human = HumanMessage(message, id=str(uuid.uuid4()))
        config = self._config(thread_id, "sleepagent:chat-turn", caller)
        return {"messages": [human]}, config, SleepContext(thread_id, user_id), human

    def _context_entry(self, text: str, thread_id: str, user_id: str | None) -> list[TextRole]:
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("context text must be non-empty")
        require_storable(text, what="the context text")
        self.scope(thread_id=thread_id, user_id=user_id)
        return [("context", text, None)]

    @staticmethod
    def _streamed_text(item: Any) -> str:
        """The reply text in one ``stream_mode="messages"`` item, or ``""``.

        Only the ``agent`` node's model output is the reply; tool calls carry no text.
        """
        chunk, metadata = item
        if metadata.get("langgraph_node") != "agent" or not isinstance(chunk, AIMessage):
            return ""
        return message_text(chunk)

    @staticmethod
    def _undo(values: dict[str, Any], human: HumanMessage) -> dict[str, Any] | None:
        """The update that puts a failed turn's thread back as it was before the turn.

        LangGraph checkpoints a run's input before its first node runs, so a turn
        whose model call failed would leave the user's message in the thread and
        send it again with the next turn. The thread's messages are replaced by
        those before the turn (not removed one by one: a reply cut short may be
        known to the state read here and not to the checkpoint). Returns None
        when the turn left nothing behind.
        """
        messages = values.get("messages") or []
        ids = [message.id for message in messages]
        if human.id not in ids:
            return None
        before = messages[: ids.index(human.id)]
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *before]}

    def _turn_done(self, thread_id: str, user_id: str | None) -> None:
        if self._coordinator is not None:
            self._coordinator.on_turn(thread_id, user_id)

    def _sleep_call(
        self, job: SleepJob, caller: RunnableConfig | None, span: FailedPage | None = None
    ) -> tuple[dict[str, Any], RunnableConfig, SleepContext]:
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        config = self._config(sleep_thread_id(scope), "sleepagent:sleep-run", caller)
        request = sleep_request(reason=job.reason.value, run_id=str(uuid.uuid4()))
        if span is not None:
            request["sleep_request"]["span"] = {"first": span.first_seq, "last": span.last_seq}
        return request, config, SleepContext(job.thread_id, job.user_id)

    def _chat_result(
        self, state: dict[str, Any], human: HumanMessage, context: SleepContext
    ) -> ChatResult:
        messages = state["messages"]
        start = next(i for i in range(len(messages) - 1, -1, -1) if messages[i].id == human.id)
        turn = messages[start + 1 :]
        reply = turn[-1]
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the turn ended on {type(reply).__name__}, expected an AI reply")
        return ChatResult(
            reply=message_text(reply),
            usage=Usage.of_messages(turn),
            thread_id=context.thread_id,
            scope=self.scope(thread_id=context.thread_id, user_id=context.user_id).key,
            diffs=tuple(BlockDiff.from_dict(diff) for diff in state.get("turn_diffs") or ()),
        )

    @staticmethod
    def _sleep_result(state: dict[str, Any]) -> SleepResult:
        data = state["sleep_result"]
        return SleepResult(
            run_id=data["run_id"],
            thread_id=data["thread_id"],
            scope=data["scope"],
            reason=data["reason"],
            diffs=tuple(BlockDiff.from_dict(diff) for diff in data["diffs"]),
            conflicts=tuple(Conflict.from_dict(conflict) for conflict in data["conflicts"]),
            usage=Usage.from_dict(data["usage"]),
            messages_processed=data["messages_processed"],
            pages=data["pages"],
            steps=data["steps"],
            watermark=data["watermark"],
            outcome=SleepOutcome(data["outcome"]),
            failed_pages=tuple(FailedPage.from_dict(page) for page in data["failed_pages"]),
            covered=data["covered"],
        )

    def _now(self) -> str:
        return iso(self._clock())

    def _write_args(self, thread_id: str) -> dict[str, Any]:
        return {"run_id": f"user-{uuid.uuid4()}", "at": self._now(), "thread_id": thread_id}

    @staticmethod
    def _written(outcome: CommitOutcome) -> BlockDiff | None:
        return outcome.diffs[0] if outcome.diffs else None

    # --- scheduled jobs: the decisions -----------------------------------------

    def _should_run(self, job: SleepJob, position: ThreadPosition | None) -> bool:
        """Whether a due job needs a run: there is pending work, and enough of it."""
        if position is None or position.pending == 0:
            return False
        if too_few_new_messages(position.pending, self.config):
            self._emit(EventKind.SKIPPED, job)
            return False
        return True

    @staticmethod
    def _ending_of(position: ThreadPosition | None, ran: SleepResult | None) -> _JobEnding:
        if ran is None:
            # Nothing to do counts as covered; too little to do leaves the turns pending.
            return _JobEnding(covered=position is None or position.pending == 0)
        if ran.covered:
            return _JobEnding(covered=True)
        return _JobEnding(error=UnprocessedPage(f"{ran.outcome.value}: the page was left pending"))

    @staticmethod
    def _ending_of_error(error: Exception) -> _JobEnding:
        if isinstance(error, ScopeBusyError):
            return _JobEnding(postpone=True)  # another process runs this scope's sleep
        # Reported as a FAILED event and retried with backoff by the coordinator.
        return _JobEnding(error=error)

    def _failure_args(self, error: Exception) -> dict[str, Any]:
        """What :meth:`BlockStore.record_failure` needs to count a run that raised."""
        return {
            "error": f"{type(error).__name__}: {error}",
            "limit": self.config.sleep_retries + 1,
            "max_messages": self.config.page_messages,
            "max_chars": self.config.page_chars,
            "at": self._now(),
        }

    def _counted(self, job: SleepJob, outcome: CommitOutcome, ending: _JobEnding) -> None:
        if outcome.failed_page is not None:
            ending.retry = False  # given up: the timer stops paying for this page
            self._page_failed(job, outcome.failed_page)

    def _release(self, claim: Any, ending: _JobEnding) -> None:
        assert self._coordinator is not None
        self._coordinator.release(
            claim,
            covered=ending.covered,
            error=ending.error,
            postpone=ending.postpone,
            retry=ending.retry,
        )


class SleepTimeAgent(_AgentBase):
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
        with (
            self._scope_locks.hold(scope.key),
            run_lock(self.blocks.store, scope, wait=by_hand) as held,
        ):
            if not held:
                raise ScopeBusyError(scope.key)
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

    def _run_job(self, job: SleepJob) -> None:
        """Run a due job (called by the scheduler); never raises."""
        assert self._coordinator is not None
        claim = self._coordinator.claim(job)
        if claim is None:
            return
        with self._idle:
            self._in_flight += 1
        ending = _JobEnding()
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

    def _count_failure(self, job: SleepJob, failure: Exception, ending: _JobEnding) -> None:
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
        self, label: str, *, thread_id: str, user_id: str | None = None
    ) -> list[HistoryEntry]:
        """Every committed version of a block, oldest first."""
        return self.blocks.history(self._owner(thread_id, user_id), label)

    def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        """Token usage totals of a thread, per phase."""
        self._owner(thread_id, user_id)
        return self.blocks.usage(thread_id)


class AsyncSleepTimeAgent(_AgentBase):
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
            self._scope_locks.hold(scope.key),
            arun_lock(self.blocks.store, scope, wait=by_hand) as held,
        ):
            if not held:
                raise ScopeBusyError(scope.key)
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

    async def _run_job(self, job: SleepJob) -> None:
        """Run a due job (called by the scheduler); never raises."""
        assert self._coordinator is not None and self._slots is not None
        claim = self._coordinator.claim(job)
        if claim is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        ending = _JobEnding()
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

    async def _count_failure(self, job: SleepJob, failure: Exception, ending: _JobEnding) -> None:
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
        self, label: str, *, thread_id: str, user_id: str | None = None
    ) -> list[HistoryEntry]:
        """Async :meth:`SleepTimeAgent.history`."""
        return await self.blocks.ahistory(await self._owner(thread_id, user_id), label)

    async def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        """Async :meth:`SleepTimeAgent.usage`."""
        await self._owner(thread_id, user_id)
        return await self.blocks.ausage(thread_id)
