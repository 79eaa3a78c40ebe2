"""What both agent facades share: configuration, every decision, and turning state into results.

The decisions here are plain methods over plain data, with no I/O. The flows
that put them in order and make the I/O calls are in :mod:`sleepagent.agent.flows`;
:class:`~sleepagent.agent.facades.SleepTimeAgent` and
:class:`~sleepagent.agent.facades.AsyncSleepTimeAgent` only drive those flows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, NoReturn

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from sleepagent.agent.inflight import RunsInFlight
from sleepagent.chat.primary import trim_history
from sleepagent.config import ScopePolicy, SleepConfig
from sleepagent.errors import (
    ConfigurationError,
    MessageRecordError,
    ScopeBusyError,
    SleepAgentError,
)
from sleepagent.graph.build import RECURSION_LIMIT, build_graph, sleep_request, sleep_thread_id
from sleepagent.graph.context import SleepContext, iso
from sleepagent.memory.blockstore import BlockStore, CommitOutcome, ThreadPosition
from sleepagent.memory.imported import (
    MessageLike,
    Timestamp,
    graph_message,
    log_text,
    read_messages,
)
from sleepagent.memory.sizes import require_within_limit
from sleepagent.memory.storable import require_storable
from sleepagent.memory.transcript import LogEntry, LogText, message_text
from sleepagent.models import ModelLike, ModelOptions, resolve_models
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    Conflict,
    FailedPage,
    ImportResult,
    SleepOutcome,
    SleepResult,
)
from sleepagent.scheduling.base import IdleScheduler, SleepJob
from sleepagent.scheduling.coordinator import SleepCoordinator
from sleepagent.scheduling.events import EventKind, SleepEvent, SleepEvents, event_for
from sleepagent.scheduling.policy import Reason, too_few_new_messages
from sleepagent.scheduling.precedence import TurnsInFlight
from sleepagent.scope import Scope, resolve_scope
from sleepagent.store.keyedlocks import KeyedLocks
from sleepagent.store.persistence import DbPath
from sleepagent.usage import Usage

__all__ = ["CLOSE_WAIT_S", "AgentBase", "JobEnding", "SchedulerArg", "UnprocessedPage"]

Graph = CompiledStateGraph[Any, SleepContext, Any, Any]
TextRole = tuple[str, str, str | None]
SchedulerArg = IdleScheduler | Literal["auto"] | None

CLOSE_WAIT_S = 5.0
"""How long closing waits for sleep runs in flight before it closes their connections."""


class JobEnding:
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


class AgentBase:
    """What both facades share: configuration, every decision, and results.

    What to check, what to run and how to report it is decided here, with no
    I/O; :class:`~sleepagent.agent.flows.AgentFlows` puts it in order around the
    I/O calls, and the facades drive those flows in their mode.
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
        # This agent's turns in flight: its sleep runs give way to them (turns first).
        self._turns = TurnsInFlight()
        self._builder = build_graph(
            chat_model, sleep_model=sleeper, config=self.config, clock=clock, turns=self._turns
        )
        self._graph: Graph | None = None
        self._saver: BaseCheckpointSaver[Any] | None = None
        self._blocks: BlockStore | None = None
        # Turns of one thread are answered in order; one sleep run per scope in this
        # agent (other agents and processes: the store's run lock).
        self._thread_locks = KeyedLocks()
        self._scope_locks = KeyedLocks()
        self._runs = RunsInFlight()
        self._setup()

    # --- what each facade provides: its mode's I/O ------------------------------

    def _setup(self) -> None:
        """Create what the facade owns; the sync facade also opens it."""

    def _default_scheduler(self) -> IdleScheduler:
        raise NotImplementedError

    def _open_persistence(self) -> tuple[BaseCheckpointSaver[Any], BaseStore]:
        """Open the checkpointer and store of ``db`` (``_aopen_persistence`` in async)."""
        raise NotImplementedError

    def _close_persistence(self) -> None:
        """Close what :meth:`_open_persistence` opened (``_aclose_persistence`` in async)."""
        raise NotImplementedError

    def _run_job(self, job: SleepJob) -> Awaitable[None] | None:
        """Run a due job (the scheduler calls it); never raises."""
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
        self._saver = checkpointer
        self._blocks = BlockStore(store, self.config.blocks)

    @property
    def graph(self) -> Graph:
        """The compiled graph (available once the agent is open)."""
        if self._graph is None:
            self._not_open()
        return self._graph

    @property
    def checkpointer(self) -> BaseCheckpointSaver[Any]:
        """The checkpointer the graph keeps conversations with (available once open)."""
        if self._saver is None:
            self._not_open()
        return self._saver

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

    def _erasure_target(
        self, user_id: str | None, thread_id: str | None
    ) -> tuple[Scope, str | None]:
        """Whose data a forget or an export is about: ``(scope, thread or None for all)``.

        Raises:
            ConfigurationError: With neither id, or ``user_id`` alone on an
                agent whose memory is never a user's (``ScopePolicy.THREAD``).

        """
        if thread_id is not None:
            return self.scope(thread_id=thread_id, user_id=user_id), thread_id
        if user_id is None:
            raise ConfigurationError(
                "say whose data: user_id=... (a user's memory and every thread kept for it) "
                "or thread_id=... (one conversation)"
            )
        if self.config.scope is ScopePolicy.THREAD:
            raise ConfigurationError(
                "this agent keeps memory per thread (ScopePolicy.THREAD), never per user: "
                "pass thread_id=... for each of the user's conversations"
            )
        # Any thread id resolves the user's scope: the user id alone decides it.
        return self.scope(thread_id=user_id, user_id=user_id), None

    # --- events ----------------------------------------------------------------

    def _job(self, thread_id: str, user_id: str | None, reason: Reason) -> SleepJob:
        self.scope(thread_id=thread_id, user_id=user_id)  # refuse bad ids before anything
        return SleepJob(thread_id, user_id, self._clock(), reason)

    def _emit(self, kind: EventKind, job: SleepJob, **details: Any) -> None:
        scope = self.scope(thread_id=job.thread_id, user_id=job.user_id)
        self.events.emit(event_for(kind, job, scope, at=self._clock(), **details))

    def _waiting(self, job: SleepJob) -> None:
        self._emit(EventKind.WAITING, job)

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
        if result.text_fallback:
            self._emit(EventKind.TEXT_FALLBACK, job, run_id=result.run_id)

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
        self._check_message(message, what="the message")
        self.scope(thread_id=thread_id, user_id=user_id)
        human = HumanMessage(message, id=str(uuid.uuid4()))
        config = self._config(thread_id, "sleepagent:chat-turn", caller)
        return {"messages": [human]}, config, SleepContext(thread_id, user_id), human

    def _check_message(self, text: str, *, what: str) -> None:
        """Refuse message text the agent does not take: one check, for chat and imports alike.

        Raises:
            MessageTooLongError: Over ``max_message_chars``.
            ConfigurationError: For text no backend can store.

        """
        limit = self.config.max_message_chars
        require_within_limit(text, limit, what=what, setting="max_message_chars")
        require_storable(text, what=what)

    def _import_call(
        self,
        records: Iterable[MessageLike],
        thread_id: str,
        user_id: str | None,
        session_date: Timestamp | None,
        caller: RunnableConfig | None,
    ) -> tuple[list[HumanMessage | AIMessage], list[LogText], RunnableConfig]:
        """Every record checked, as graph messages and log entries sharing their ids.

        Raises before anything is written: a bad id, a bad record (naming it), or
        text a chat message could not have.
        """
        self.scope(thread_id=thread_id, user_id=user_id)
        messages = read_messages(records, session_date=session_date)
        for index, message in enumerate(messages):
            try:
                self._check_message(message.text, what="its text")
            except ConfigurationError as error:
                raise MessageRecordError(index, str(error)) from error
        ids = [str(uuid.uuid4()) for _ in messages]
        graph = [graph_message(m, i) for m, i in zip(messages, ids, strict=True)]
        texts = [log_text(m, i) for m, i in zip(messages, ids, strict=True)]
        return graph, texts, self._config(thread_id, "sleepagent:import", caller)

    def _import_update(
        self, values: dict[str, Any], imported: Sequence[HumanMessage | AIMessage]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The checkpoint update that adds ``imported``, and the one that takes it back.

        The thread's state keeps its window (``state_messages``, cut as a chat turn
        cuts it): older messages leave it and imported ones beyond the window never
        enter it. The log holds them all.
        """
        existing: list[AnyMessage] = list(values.get("messages") or [])
        window = trim_history([*existing, *imported], self.config.state_messages)
        kept = {message.id for message in window}
        removed = [RemoveMessage(id=m.id) for m in existing if m.id and m.id not in kept]
        added = [message for message in imported if message.id in kept]
        undo = {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *existing]}
        return {"messages": [*removed, *added]}, undo

    def _import_result(
        self,
        entries: Sequence[LogEntry],
        thread_id: str,
        user_id: str | None,
        ran: SleepResult | None,
    ) -> ImportResult:
        return ImportResult(
            thread_id=thread_id,
            scope=self.scope(thread_id=thread_id, user_id=user_id).key,
            messages=len(entries),
            first_seq=entries[0].seq,
            last_seq=entries[-1].seq,
            sleep=ran,
        )

    def _context_entry(self, text: str, thread_id: str, user_id: str | None) -> list[TextRole]:
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("context text must be non-empty")
        limit = self.config.max_context_chars
        require_within_limit(text, limit, what="the context text", setting="max_context_chars")
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
            text_fallback=data.get("text_fallback", False),
            reasoning=tuple(data.get("reasoning", ())),
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
    def _ending_of(position: ThreadPosition | None, ran: SleepResult | None) -> JobEnding:
        if ran is None:
            # Nothing to do counts as covered; too little to do leaves the turns pending.
            return JobEnding(covered=position is None or position.pending == 0)
        if ran.covered:
            return JobEnding(covered=True)
        return JobEnding(error=UnprocessedPage(f"{ran.outcome.value}: the page was left pending"))

    @staticmethod
    def _ending_of_error(error: Exception) -> JobEnding:
        if isinstance(error, ScopeBusyError):
            return JobEnding(postpone=True)  # another process runs this scope's sleep
        # Reported as a FAILED event and retried with backoff by the coordinator.
        return JobEnding(error=error)

    def _failure_args(self, error: Exception) -> dict[str, Any]:
        """What :meth:`BlockStore.record_failure` needs to count a run that raised."""
        return {
            "error": f"{type(error).__name__}: {error}",
            "limit": self.config.sleep_retries + 1,
            "max_messages": self.config.page_messages,
            "max_chars": self.config.page_chars,
            "at": self._now(),
        }

    def _counted(self, job: SleepJob, outcome: CommitOutcome, ending: JobEnding) -> None:
        if outcome.failed_page is not None:
            ending.retry = False  # given up: the timer stops paying for this page
            self._page_failed(job, outcome.failed_page)

    def _release(self, claim: Any, ending: JobEnding) -> None:
        assert self._coordinator is not None
        self._coordinator.release(
            claim,
            covered=ending.covered,
            error=ending.error,
            postpone=ending.postpone,
            retry=ending.retry,
        )
