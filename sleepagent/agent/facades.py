"""SleepTimeAgent and AsyncSleepTimeAgent: the graph with its persistence and idle timer.

Both own their checkpointer, store and scheduler (unless you pass your own)
and close them on exit. Each public method drives one flow of
:mod:`sleepagent.agent.flows`, where every step is written once: the sync
agent with :func:`~sleepagent._twins.run`, the async one with
:func:`~sleepagent._twins.arun`. What a facade writes itself is only its
mode's I/O: how it opens and closes its persistence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack, ExitStack
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from sleepagent._twins import Flow, arun, astream, async_twin, run, stream
from sleepagent.agent.flows import AgentFlows
from sleepagent.errors import WrongModeError
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.blockstore import HistoryEntry
from sleepagent.memory.imported import MessageLike, Timestamp
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    FailedPage,
    Forgotten,
    ImportResult,
    SleepResult,
)
from sleepagent.scheduling.apscheduler import AsyncIOIdleScheduler, BackgroundIdleScheduler
from sleepagent.scheduling.base import IdleScheduler, SleepJob
from sleepagent.scheduling.policy import Reason
from sleepagent.store.persistence import open_async_persistence, open_persistence
from sleepagent.usage import Phase, Usage

__all__ = ["AsyncSleepTimeAgent", "SleepTimeAgent"]

T = TypeVar("T")

Persistence = tuple[BaseCheckpointSaver[Any], BaseStore]


class SleepTimeAgent(AgentFlows):
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
        self._run(self._open_flow())

    def _open_persistence(self) -> Persistence:
        return self._stack.enter_context(open_persistence(self._db))

    def _close_persistence(self) -> None:
        self._stack.close()

    def _run(self, flow: Flow[T]) -> T:
        return run(self._boundary(flow))

    def _run_job(self, job: SleepJob) -> None:
        self._run(self._job_flow(job))

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
        start); runs in flight get up to ``CLOSE_WAIT_S`` seconds to finish,
        and no scheduled run starts any more.
        """
        self._run(self._close_flow())

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
        return self._run(self._chat_flow(message, thread_id, user_id, config))

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
        return stream(self._boundary(self._chat_stream_flow(message, thread_id, user_id, config)))

    def import_messages(
        self,
        messages: Iterable[MessageLike],
        *,
        thread_id: str,
        user_id: str | None = None,
        session_date: Timestamp | None = None,
        sleep: bool = False,
        config: RunnableConfig | None = None,
    ) -> ImportResult:
        """Log a conversation's earlier messages into a thread, without calling the chat model.

        For a bot that already has history: the messages are logged as if they had
        been said on the thread, and sleep-time compute covers them like chat turns.
        The idle timer is set as after a turn, or, with ``sleep=True``, the sleep
        run is made now and its result returned in :attr:`ImportResult.sleep`.

        They are written to both places a turn writes. The thread's log (in the
        store) is what the sleep-time agent reads, and it keeps every message, with
        its speaker and time. The thread's checkpoint is what the chat model is
        sent on the next :meth:`chat`: rendering the chat prompt from the log
        instead would add a store read of the whole window to every turn, so the
        newest messages go in with one ``update_state`` (at most
        ``SleepConfig.state_messages``, as after a turn). A named speaker is written
        before the text there (``"Ines: ..."``).

        Every message is checked before anything is written: the log gets all of
        them in one batch, or none, and a failed log write takes them back out of
        the checkpoint.

        Args:
            messages: Oldest first: :class:`~sleepagent.ImportedMessage` items,
                mappings with ``text`` (or ``content``) and optional ``role``
                (``user`` or ``assistant``), ``speaker`` and ``timestamp``, or
                LangChain ``HumanMessage`` / ``AIMessage`` objects.
            thread_id: The conversation.
            user_id: The user, when memory follows them across threads.
            session_date: When the messages were said, for those without a timestamp
                (a ``datetime``, or text such as ``"3 March 2024"``).
            sleep: Run sleep-time compute over them now, instead of when the idle
                timer says.
            config: A LangChain ``RunnableConfig``, merged into the sleep run's own.

        Raises:
            MessageRecordError: For a message that cannot be imported (its index is
                ``.index``); nothing is written.
            ConfigurationError: For no messages, or unusable ids or session date.
            ScopeMismatchError: When the thread belongs to another memory scope.
            ModelCallError: With ``sleep=True``, when a sleep-time model call failed;
                the messages stay imported and pending.

        """
        return self._run(
            self._import_flow(messages, thread_id, user_id, session_date, sleep, config)
        )

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
        return self._run(self._sleep_by_hand(self._job(thread_id, user_id, Reason.MANUAL), config))

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
        return self._run(self._add_context_flow(text, thread_id, user_id, config))

    def failed_pages(self, *, thread_id: str, user_id: str | None = None) -> list[FailedPage]:
        """Pages of the thread that sleep-time compute gave up on after their retries."""
        return self._run(self._failed_pages_flow(thread_id, user_id))

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
        return self._run(self._retry_failed_flow(thread_id, user_id, config))

    # --- memory ----------------------------------------------------------------

    def memory(self, *, thread_id: str, user_id: str | None = None) -> dict[str, MemoryBlock]:
        """The blocks of the scope, by label, in render order.

        Raises:
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        return self._run(self._memory_flow(thread_id, user_id))

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
        return self._run(
            self._write_memory_flow(label, value, thread_id, user_id, expected_version)
        )

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
        return self._run(self._history_flow(label, thread_id, user_id, limit, before))

    def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        """Token usage totals of a thread, per phase."""
        return self._run(self._usage_flow(thread_id, user_id))

    # --- a user's data -----------------------------------------------------------

    def forget(self, *, user_id: str | None = None, thread_id: str | None = None) -> Forgotten:
        """Remove everything stored for a user or a conversation, on this agent's database.

        ``forget(user_id=...)`` removes the user's memory scope: its blocks and
        their history, raw contexts, sleep runs and failed pages, and every
        thread kept for it, with each thread's transcript log, watermark,
        pending work, usage, checkpoints and idle timer. ``forget(thread_id=...)``
        removes that conversation only (pass ``user_id`` too when it belongs
        to a user); the blocks of a user's scope go only with ``user_id``. Under
        ``ScopePolicy.THREAD`` a thread is its own scope, so its blocks go with it.

        A sleep run of the scope in flight, in any process on the database, is
        waited for, and none starts until the data is gone, so none can write
        it back. Nothing of any other scope is read or changed. A conversation
        that starts while this runs, or a turn served meanwhile by another
        process, is new data and is kept. Calling it again is harmless, and
        finishes a forget that a killed process left half done.

        Returns:
            What was removed.

        Raises:
            ConfigurationError: With neither id, or ``user_id`` alone under
                ``ScopePolicy.THREAD``.
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        return self._run(self._forget_flow(user_id, thread_id))

    def export(self, *, user_id: str | None = None, thread_id: str | None = None) -> dict[str, Any]:
        """Everything :meth:`forget` would remove, as one JSON-ready document.

        The document has ``format`` (``sleepagent-export/1``), ``exported_at``,
        ``scope`` and ``whole_scope``; ``memory`` (with a whole scope: blocks
        by label, each block's history in version order, runs); and
        ``threads``, by id: each thread's stored records, transcript log,
        raw contexts, failed pages and checkpointed messages (LangChain's
        ``messages_to_dict`` form). ``json.dumps`` takes it as it is.

        Raises:
            ConfigurationError: With neither id, or ``user_id`` alone under
                ``ScopePolicy.THREAD``.
            ScopeMismatchError: When the thread belongs to another memory scope.

        """
        return self._run(self._export_flow(user_id, thread_id))


class AsyncSleepTimeAgent(AgentFlows):
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

    async def _aopen_persistence(self) -> Persistence:
        return await self._stack.enter_async_context(open_async_persistence(self._db))

    async def _aclose_persistence(self) -> None:
        await self._stack.aclose()

    async def _arun(self, flow: Flow[T]) -> T:
        return await arun(self._boundary(flow))

    async def _run_job(self, job: SleepJob) -> None:
        await self._arun(self._job_flow(job))

    async def __aenter__(self) -> Self:
        await self._arun(self._open_flow())
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

    @async_twin(SleepTimeAgent.close)
    async def aclose(self) -> None:
        await self._arun(self._close_flow())

    @async_twin(SleepTimeAgent.chat)
    async def chat(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> ChatResult:
        return await self._arun(self._chat_flow(message, thread_id, user_id, config))

    @async_twin(SleepTimeAgent.chat_stream)
    def chat_stream(
        self,
        message: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[str]:
        return astream(self._boundary(self._chat_stream_flow(message, thread_id, user_id, config)))

    @async_twin(SleepTimeAgent.import_messages)
    async def import_messages(
        self,
        messages: Iterable[MessageLike],
        *,
        thread_id: str,
        user_id: str | None = None,
        session_date: Timestamp | None = None,
        sleep: bool = False,
        config: RunnableConfig | None = None,
    ) -> ImportResult:
        return await self._arun(
            self._import_flow(messages, thread_id, user_id, session_date, sleep, config)
        )

    @async_twin(SleepTimeAgent.sleep)
    async def sleep(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        job = self._job(thread_id, user_id, Reason.MANUAL)
        return await self._arun(self._sleep_by_hand(job, config))

    @async_twin(SleepTimeAgent.add_context)
    async def add_context(
        self,
        text: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> SleepResult:
        return await self._arun(self._add_context_flow(text, thread_id, user_id, config))

    @async_twin(SleepTimeAgent.failed_pages)
    async def failed_pages(self, *, thread_id: str, user_id: str | None = None) -> list[FailedPage]:
        return await self._arun(self._failed_pages_flow(thread_id, user_id))

    @async_twin(SleepTimeAgent.retry_failed)
    async def retry_failed(
        self,
        *,
        thread_id: str,
        user_id: str | None = None,
        config: RunnableConfig | None = None,
    ) -> list[SleepResult]:
        return await self._arun(self._retry_failed_flow(thread_id, user_id, config))

    @async_twin(SleepTimeAgent.memory)
    async def memory(self, *, thread_id: str, user_id: str | None = None) -> dict[str, MemoryBlock]:
        return await self._arun(self._memory_flow(thread_id, user_id))

    @async_twin(SleepTimeAgent.write_memory)
    async def write_memory(
        self,
        label: str,
        value: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        expected_version: int | None = None,
    ) -> BlockDiff | None:
        return await self._arun(
            self._write_memory_flow(label, value, thread_id, user_id, expected_version)
        )

    @async_twin(SleepTimeAgent.history)
    async def history(
        self,
        label: str,
        *,
        thread_id: str,
        user_id: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[HistoryEntry]:
        return await self._arun(self._history_flow(label, thread_id, user_id, limit, before))

    @async_twin(SleepTimeAgent.usage)
    async def usage(self, *, thread_id: str, user_id: str | None = None) -> dict[Phase, Usage]:
        return await self._arun(self._usage_flow(thread_id, user_id))

    @async_twin(SleepTimeAgent.forget)
    async def forget(
        self, *, user_id: str | None = None, thread_id: str | None = None
    ) -> Forgotten:
        return await self._arun(self._forget_flow(user_id, thread_id))

    @async_twin(SleepTimeAgent.export)
    async def export(
        self, *, user_id: str | None = None, thread_id: str | None = None
    ) -> dict[str, Any]:
        return await self._arun(self._export_flow(user_id, thread_id))
