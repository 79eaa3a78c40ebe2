"""BlockStore: memory blocks, their history, thread logs and watermarks on a LangGraph store.

Where each record lives in the store is :mod:`sleepagent.store.layout`.

Each key has one writer: the chat side writes a thread's log, ``head`` and
``usage:chat``; the sleep side writes ``watermark`` and ``usage:sleep``; blocks
and history are written only through :meth:`BlockStore.commit`. So a user turn
never waits on a lock the sleep side holds. Pending work is derived, not
flagged: a thread has pending work while its head is past its watermark.

Every operation is written once, as a plan that yields batches of store ops
and receives their results; :meth:`BlockStore._run` and
:meth:`BlockStore._arun` drive a plan with ``batch`` or ``abatch``. A batch is
one transaction on the SQL stores, which is what makes a commit atomic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar, Unpack

from langgraph.store.base import BaseStore, GetOp, Item, Op, PutOp, Result, SearchOp
from langgraph.store.base.batch import AsyncBatchedBaseStore

from sleepagent._twins import async_twin
from sleepagent.errors import (
    MemoryConflictError,
    ScopeMismatchError,
    WrongModeError,
)
from sleepagent.memory import recordreads as records
from sleepagent.memory.blocks import MemoryBlock, RethinkEdit
from sleepagent.memory.erasure import Holdings, erase_plan, holdings_plan
from sleepagent.memory.records import (
    ActiveRun,
    CommitOptions,
    CommitOutcome,
    HistoryEntry,
    PageAttempt,
    ThreadPosition,
    TurnRead,
)
from sleepagent.memory.staging import StagedMemory, plan_commit
from sleepagent.memory.transcript import LogEntry, LogText, take_page
from sleepagent.results import FailedPage, RunRecord
from sleepagent.scope import Scope
from sleepagent.store import layout, migrations
from sleepagent.store.locking import CommitBackend, backend_for
from sleepagent.usage import Phase, Usage

__all__ = [
    "ActiveRun",
    "BlockStore",
    "CommitOptions",
    "CommitOutcome",
    "HistoryEntry",
    "PageAttempt",
    "ThreadPosition",
    "TurnRead",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Plan = Generator[list[Op], list[Result], T]


class BlockStore:
    """Memory blocks and sleep-time bookkeeping on any LangGraph ``BaseStore``.

    Args:
        store: The LangGraph store (in-memory, SQLite, PostgreSQL or the server's).
        declared: Blocks every scope starts with, in render order.

    """

    def __init__(self, store: BaseStore, declared: Sequence[MemoryBlock]) -> None:
        self.store = store
        self.declared = tuple(declared)
        self._backend: CommitBackend = backend_for(store)

    @staticmethod
    def scope_namespace(scope: Scope) -> tuple[str, ...]:
        """Namespace prefix of everything a scope owns."""
        return layout.scope_namespace(scope)

    # --- plans: each yields op batches and returns a value ---------------------

    def _blocks_op(self, scope: Scope) -> SearchOp:
        return SearchOp(layout.blocks_ns(scope), limit=layout.SEARCH_PAGE)

    def _merge_blocks(self, stored: Result) -> list[MemoryBlock]:
        """Declared blocks overlaid with stored ones, declared first, extras by label."""
        by_label = {
            item.value["label"]: item.value
            for item in layout.items(stored)
            if item.key != layout.LABELS_KEY
        }
        blocks = []
        for declared in self.declared:
            data = by_label.pop(declared.label, None)
            blocks.append(declared if data is None else layout.with_declared_shape(declared, data))
        blocks.extend(MemoryBlock.from_dict(by_label[label]) for label in sorted(by_label))
        return blocks

    def _load_plan(self, scope: Scope) -> Plan[list[MemoryBlock]]:
        (stored,) = yield [self._blocks_op(scope)]
        return self._merge_blocks(stored)

    def _keyed_blocks_plan(
        self, scope: Scope, others: Sequence[Op]
    ) -> Plan[tuple[list[MemoryBlock], list[Result]]]:
        """The scope's blocks read by key, with ``others`` in the same batch.

        The turn and the sleep page read blocks this way, not with a search: a
        search is a prefix match (on PostgreSQL a prepared ``LIKE``, whose plan can
        scan the whole store as it grows), a key read is an index lookup. Which
        undeclared blocks exist is kept under ``layout.LABELS_KEY`` by the commit; a scope
        written before that key existed is read once by search, until its next commit.
        """
        ns = layout.blocks_ns(scope)
        keys = [*(block.label for block in self.declared), layout.LABELS_KEY]
        results = yield [*(GetOp(ns, key) for key in keys), *others]
        found, rest = results[: len(keys)], list(results[len(keys) :])
        index = found[-1]
        items: list[Item] = [item for item in found[:-1] if isinstance(item, Item)]
        if isinstance(index, Item):
            declared = set(keys)
            extra = [label for label in index.value.get("labels", []) if label not in declared]
            if extra:
                more = yield [GetOp(ns, label) for label in extra]
                items.extend(item for item in more if isinstance(item, Item))
        elif items:
            (stored,) = yield [self._blocks_op(scope)]
            items = list(layout.items(stored))
        return self._merge_blocks(items), rest

    def _turn_plan(self, scope: Scope, thread_id: str, *, with_contexts: bool) -> Plan[TurnRead]:
        ops: list[Op] = [
            GetOp(layout.thread_ns(thread_id), "head"),
            GetOp(layout.thread_ns(thread_id), "usage:chat"),
        ]
        if with_contexts:
            ops.append(SearchOp(layout.contexts_ns(scope), limit=layout.SEARCH_PAGE))
        blocks, results = yield from self._keyed_blocks_plan(scope, ops)
        head = layout.value(results[0])
        _check_thread_scope(head, scope, thread_id)
        contexts: list[str] = []
        if with_contexts:
            found = sorted(layout.items(results[2]), key=lambda item: (item.value["at"], item.key))
            contexts = [item.value["text"] for item in found]
        return TurnRead(
            blocks=blocks,
            head=head.get("seq", 0),
            logged_until=head.get("message_id"),
            chat_usage=Usage.from_dict(layout.value(results[1]).get("usage")),
            contexts=contexts,
            logged_ids=tuple(head.get("turn_ids") or ()),
        )

    def _append_plan(
        self,
        scope: Scope,
        thread_id: str,
        texts: Sequence[tuple[str, str, str | None] | LogText],
        *,
        head: int | None,
        logged_until: str | None,
        at: str,
        chat_usage: Usage | None = None,
        context_text: str | None = None,
        logged_ids: Sequence[str] = (),
    ) -> Plan[list[LogEntry]]:
        if head is None:
            (found,) = yield [GetOp(layout.thread_ns(thread_id), "head")]
            _check_thread_scope(layout.value(found), scope, thread_id)
            head = layout.value(found).get("seq", 0)
            logged_until = layout.value(found).get("message_id")
            logged_ids = layout.value(found).get("turn_ids") or ()
        entries = [
            LogEntry(
                seq=head + 1 + i,
                role=given.role,  # type: ignore[arg-type]
                text=given.text,
                message_id=given.message_id,
                at=at,
                speaker=given.speaker,
                said_at=given.said_at,
            )
            for i, given in enumerate(LogText(*item) for item in texts)
        ]
        if not entries and chat_usage is None:
            return []
        ops: list[Op] = [
            PutOp(layout.log_ns(thread_id), layout.seq_key(e.seq), e.to_dict(), index=False)
            for e in entries
        ]
        if entries:
            head_value = layout.head_value(entries, thread_id, scope, at, logged_until, logged_ids)
            ops.append(PutOp(layout.thread_ns(thread_id), "head", head_value, index=False))
            key, marker = layout.pending_marker(entries, thread_id, scope, at)
            ops.append(PutOp(layout.pending_ns(thread_id), key, marker, index=False))
        if chat_usage is not None:
            ops.append(
                PutOp(
                    layout.thread_ns(thread_id),
                    "usage:chat",
                    {"usage": chat_usage.to_dict(), "at": at},
                    index=False,
                )
            )
        if context_text is not None:
            ops.append(
                PutOp(
                    layout.contexts_ns(scope),
                    f"{thread_id}#{entries[0].seq}",
                    {"text": context_text, "thread_id": thread_id, "at": at},
                    index=False,
                )
            )
        yield ops
        return entries

    def _page_plan(
        self,
        scope: Scope,
        thread_id: str,
        *,
        max_messages: int,
        max_chars: int,
        span: tuple[int, int] | None = None,
    ) -> Plan[tuple[list[MemoryBlock], list[LogEntry], int, int]]:
        blocks, (head_result, mark_result) = yield from self._keyed_blocks_plan(
            scope,
            [
                GetOp(layout.thread_ns(thread_id), "head"),
                GetOp(layout.thread_ns(thread_id), "watermark"),
            ],
        )
        _check_thread_scope(layout.value(head_result), scope, thread_id)
        head = layout.value(head_result).get("seq", 0)
        watermark = layout.value(mark_result).get("seq", 0)
        first, last = span or (watermark + 1, min(head, watermark + max_messages))
        entries: list[LogEntry] = []
        if last >= first:
            found = yield [
                GetOp(layout.log_ns(thread_id), layout.seq_key(seq))
                for seq in range(first, last + 1)
            ]
            entries = [LogEntry.from_dict(item.value) for item in found if isinstance(item, Item)]
            if span is None:
                entries = take_page(entries, max_chars=max_chars)
        return blocks, entries, watermark, head

    def _commit_plan(
        self,
        scope: Scope,
        staged: StagedMemory,
        *,
        run_id: str,
        phase: str,
        at: str,
        thread_id: str | None = None,
        allow_partial: bool = True,
        reason: str | None = None,
        watermark: LogEntry | None = None,
        sleep_usage: Usage | None = None,
        page: PageAttempt | None = None,
    ) -> Plan[CommitOutcome]:
        reads: list[Op] = [self._blocks_op(scope)]
        if thread_id is not None:
            reads.append(GetOp(layout.thread_ns(thread_id), "usage:sleep"))
            if page is not None and page.retry:
                reads.append(
                    GetOp(layout.failed_ns(scope), layout.failed_key(thread_id, page.first))
                )
            else:
                reads.append(GetOp(layout.thread_ns(thread_id), "failing"))
            if watermark is not None:
                # The markers this commit's watermark may reach (layout.pending_marker).
                reads.append(SearchOp(layout.pending_ns(thread_id), limit=layout.RECOVERY_PAGE))
        results = yield reads
        current = self._merge_blocks(results[0])
        plan = plan_commit(staged, {block.label: block for block in current})
        if plan.conflicts and not allow_partial:
            return CommitOutcome(False, (), plan.conflicts, tuple(current))

        ops: list[Op] = []
        written = {}
        for block in plan.writes:
            stamped = replace(block, updated_at=records.parse_time(at))
            written[block.label] = stamped
            ops.append(PutOp(layout.blocks_ns(scope), block.label, stamped.to_dict(), index=False))
            history = {
                "label": block.label,
                "version": block.version,
                "value": block.value,
                "run_id": run_id,
                "phase": phase,
                "thread_id": thread_id,
                "at": at,
                "reason": reason,
            }
            ops.append(
                PutOp(
                    layout.history_ns(scope, block.label),
                    layout.seq_key(block.version),
                    history,
                    index=False,
                )
            )
        attempts, failed_page = 0, None
        if page is not None and thread_id is not None:
            attempts, failed_page, page_ops = self._page_accounting(
                scope, thread_id, page, layout.value(results[2]), at
            )
            ops.extend(page_ops)
            if page.retry or (page.failure is not None and failed_page is None):
                watermark = None  # the page stays pending (or was never the next one)
        if watermark is not None and thread_id is not None:
            mark = {
                "seq": watermark.seq,
                "message_id": watermark.message_id,
                "run_id": run_id,
                "reason": reason,
                "at": at,
            }
            ops.append(PutOp(layout.thread_ns(thread_id), "watermark", mark, index=False))
            ops.extend(_covered_markers(thread_id, results[-1], watermark.seq))
        if plan.writes:
            ops.extend(self._labels_ops(scope, results[0], plan.writes))
        if sleep_usage is not None and thread_id is not None:
            total = Usage.from_dict(layout.value(results[1]).get("usage")) + sleep_usage
            ops.append(
                PutOp(
                    layout.thread_ns(thread_id),
                    "usage:sleep",
                    {"usage": total.to_dict(), "at": at},
                    index=False,
                )
            )
        if ops:
            yield ops
        after = tuple(written.get(block.label, block) for block in current)
        return CommitOutcome(bool(ops), plan.diffs, plan.conflicts, after, attempts, failed_page)

    def _labels_ops(self, scope: Scope, stored: Result, writes: Sequence[MemoryBlock]) -> list[Op]:
        """Keep the list of stored labels the key reads need (see _keyed_blocks_plan)."""
        items = layout.items(stored)
        index = next((item for item in items if item.key == layout.LABELS_KEY), None)
        labels = sorted(
            {item.value["label"] for item in items if item.key != layout.LABELS_KEY}
            | {block.label for block in writes}
        )
        if index is not None and index.value.get("labels") == labels:
            return []
        return [PutOp(layout.blocks_ns(scope), layout.LABELS_KEY, {"labels": labels}, index=False)]

    def _page_accounting(
        self,
        scope: Scope,
        thread_id: str,
        page: PageAttempt,
        prior: Mapping[str, Any],
        at: str,
    ) -> tuple[int, FailedPage | None, list[Op]]:
        """Failure bookkeeping for a page: count the attempt, give the page up at the limit.

        Returns:
            ``(attempts, failed page if given up now, ops)``.

        """
        thread_ns, failed_ns = layout.thread_ns(thread_id), layout.failed_ns(scope)
        failed_key = layout.failed_key(thread_id, page.first)
        if page.failure is None:
            # Processed: forget earlier failed attempts at it (or its failed record).
            if page.retry:
                return 0, None, [PutOp(failed_ns, failed_key, None)]
            return 0, None, ([PutOp(thread_ns, "failing", None)] if prior else [])
        same_page = prior.get("first_seq", prior.get("first")) == page.first
        attempts = prior.get("attempts", 0) + 1 if same_page else 1
        record = FailedPage(
            thread_id=thread_id,
            scope=scope.key,
            first_seq=page.first,
            last_seq=page.last,
            error=page.failure,
            attempts=attempts,
            failed_at=at,
        )
        if page.retry:
            return attempts, None, [PutOp(failed_ns, failed_key, record.to_dict(), index=False)]
        if attempts < page.limit:
            failing = {"first": page.first, "last": page.last, "attempts": attempts, "at": at}
            return attempts, None, [PutOp(thread_ns, "failing", failing, index=False)]
        return (
            attempts,
            record,
            [
                PutOp(failed_ns, failed_key, record.to_dict(), index=False),
                PutOp(thread_ns, "failing", None),
            ],
        )

    def _failure_plan(
        self,
        scope: Scope,
        thread_id: str,
        *,
        error: str,
        limit: int,
        max_messages: int,
        max_chars: int,
        at: str,
    ) -> Plan[CommitOutcome]:
        """Count a failed attempt at the thread's next page (a run that raised)."""
        _, entries, _, _ = yield from self._page_plan(
            scope, thread_id, max_messages=max_messages, max_chars=max_chars
        )
        if not entries:
            return CommitOutcome(False, (), (), ())
        attempt = PageAttempt(entries[0].seq, entries[-1].seq, failure=error, limit=limit)
        return (
            yield from self._commit_plan(
                scope,
                StagedMemory(base={}),
                run_id="failure",
                phase="sleep",
                at=at,
                thread_id=thread_id,
                watermark=entries[-1],
                page=attempt,
            )
        )

    def _owner_plan(self, scope: Scope, thread_id: str) -> Plan[None]:
        (head,) = yield [GetOp(layout.thread_ns(thread_id), "head")]
        _check_thread_scope(layout.value(head), scope, thread_id)

    def _write_plan(
        self,
        scope: Scope,
        label: str,
        value: str,
        *,
        expected_version: int | None,
        run_id: str,
        at: str,
        thread_id: str | None,
    ) -> Plan[CommitOutcome]:
        """Set a block to ``value`` on whatever version it has now (read under the lock)."""
        current = yield from self._load_plan(scope)
        by_label = {block.label: block for block in current}
        block = by_label.get(label)
        if block is not None and expected_version is not None and block.version != expected_version:
            raise MemoryConflictError(
                label=label, expected_version=expected_version, current_version=block.version
            )
        staged, _ = StagedMemory.of(current).stage(RethinkEdit(label, value))
        return (
            yield from self._commit_plan(
                scope, staged, run_id=run_id, phase="user", at=at, thread_id=thread_id
            )
        )

    def _put_run_plan(self, scope: Scope, record: RunRecord) -> Plan[None]:
        yield [PutOp(layout.runs_ns(scope), record.run_id, record.to_dict(), index=False)]

    def _mark_running_plan(self, scope: Scope, run: ActiveRun | None) -> Plan[None]:
        value = None if run is None else run.to_dict()
        yield [PutOp(layout.running_ns(scope), layout.RUNNING_KEY, value, index=False)]

    # --- drivers ---------------------------------------------------------------

    def _run(self, plan: Plan[T], store: BaseStore | None = None) -> T:
        store = store or self.store
        if isinstance(store, AsyncBatchedBaseStore) and _in_event_loop():
            # Its sync methods hop onto the event loop and wait: from that loop's
            # own thread they would never return.
            plan.close()
            raise WrongModeError(
                f"{type(store).__name__} is an async store: from async code use the "
                "BlockStore methods whose names start with 'a' (aload, acommit, ...)"
            )
        try:
            ops = next(plan)
            while True:
                ops = plan.send(store.batch(ops))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _arun(self, plan: Plan[T], store: BaseStore | None = None) -> T:
        store = store or self.store
        try:
            ops = next(plan)
            while True:
                ops = plan.send(await self._backend.abatch(store, ops))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # --- public API: sync ------------------------------------------------------

    def load(self, scope: Scope) -> list[MemoryBlock]:
        """The scope's blocks in render order (declared defaults for unwritten ones)."""
        return self._run(self._load_plan(scope))

    def read_turn(self, scope: Scope, thread_id: str, *, with_contexts: bool = False) -> TurnRead:
        """What a chat turn needs, in one batch: blocks, log head, chat usage, raw contexts.

        Raises:
            ScopeMismatchError: When the thread's log belongs to another memory scope.

        """
        return self._run(self._turn_plan(scope, thread_id, with_contexts=with_contexts))

    def append(
        self,
        scope: Scope,
        thread_id: str,
        texts: Sequence[tuple[str, str, str | None] | LogText],
        *,
        at: str,
        head: int | None = None,
        logged_until: str | None = None,
        chat_usage: Usage | None = None,
        context_text: str | None = None,
        logged_ids: Sequence[str] = (),
    ) -> list[LogEntry]:
        """Append ``(role, text, message_id)`` entries (or :class:`LogText`) to a thread's log.

        One batch: the entries, the new head, and what comes with them.

        Args:
            scope: The memory scope the thread is used with.
            thread_id: The conversation.
            texts: Entries to append, oldest first.
            at: Time stamp (ISO 8601).
            head: The log head if the caller already read it (saves a read).
            logged_until: With ``head``: the newest graph message id the log held
                (see :class:`TurnRead`), kept when the new entries carry none.
            chat_usage: New total chat usage of the thread, written in the same batch.
            context_text: Also keep this text as raw context of the scope.
            logged_ids: With ``head``: the ids the log's last turn logged (see
                :class:`TurnRead`), kept when the new entries carry none.

        Only the thread's own writers (its chat turns and imports, serialised by the
        agent's lock for the thread) may call this.

        """
        plan = self._append_plan(
            scope,
            thread_id,
            texts,
            head=head,
            logged_until=logged_until,
            at=at,
            chat_usage=chat_usage,
            context_text=context_text,
            logged_ids=logged_ids,
        )
        return self._run(plan)

    def read_page(
        self,
        scope: Scope,
        thread_id: str,
        *,
        max_messages: int,
        max_chars: int,
        span: tuple[int, int] | None = None,
    ) -> tuple[list[MemoryBlock], list[LogEntry], int, int]:
        """Blocks and the next unprocessed page of the thread's log.

        Args:
            scope: The memory scope.
            thread_id: The conversation.
            max_messages: Most entries in the page.
            max_chars: Most characters in the page.
            span: Read exactly these entries (first, last) instead, whatever the watermark.

        Returns:
            ``(blocks, entries, watermark, head)``; ``entries`` is empty when
            there is nothing new.

        """
        plan = self._page_plan(
            scope, thread_id, max_messages=max_messages, max_chars=max_chars, span=span
        )
        return self._run(plan)

    def commit(
        self,
        scope: Scope,
        staged: StagedMemory,
        *,
        run_id: str,
        phase: str,
        at: str,
        **options: Unpack[CommitOptions],
    ) -> CommitOutcome:
        """Write staged edits atomically, checking versions (DESIGN invariant 2).

        Holds the scope's commit lock while it reads the current blocks, merges
        the edits into them and writes the result in one batch. What the lock
        covers (this process; processes on one SQLite file; one PostgreSQL
        database) depends on the store: see :mod:`sleepagent.store.locking`.

        Args:
            scope: The memory scope.
            staged: The run's working copy.
            run_id: Recorded in block history.
            phase: Who commits: ``sleep``, ``chat`` or ``user``.
            at: Commit time (ISO 8601).
            **options: See :class:`CommitOptions`.

        """
        plan = self._commit_plan(scope, staged, run_id=run_id, phase=phase, at=at, **options)
        return self._run_locked(plan, scope)

    def _run_locked(self, plan: Plan[T], scope: Scope) -> T:
        """Drive ``plan`` holding the scope's commit lock (see :mod:`sleepagent.store.locking`)."""
        with self._backend.transaction(scope) as store:
            return self._run(plan, store)

    def record_failure(
        self,
        scope: Scope,
        thread_id: str,
        *,
        error: str,
        limit: int,
        max_messages: int,
        max_chars: int,
        at: str,
    ) -> CommitOutcome:
        """Count a failed attempt at the thread's next page; give it up at ``limit`` attempts.

        A page given up is recorded (see :meth:`failed_pages`) and the watermark
        moves past it, so later messages are processed and the timer stops
        paying for it.
        """
        plan = self._failure_plan(
            scope,
            thread_id,
            error=error,
            limit=limit,
            max_messages=max_messages,
            max_chars=max_chars,
            at=at,
        )
        return self._run_locked(plan, scope)

    def check_owner(self, scope: Scope, thread_id: str) -> None:
        """Refuse ``scope`` on a thread that holds another scope's conversation.

        Raises:
            ScopeMismatchError: When the thread is bound to another memory scope.

        """
        self._run(self._owner_plan(scope, thread_id))

    def write(
        self,
        scope: Scope,
        label: str,
        value: str,
        *,
        run_id: str,
        at: str,
        expected_version: int | None = None,
        thread_id: str | None = None,
    ) -> CommitOutcome:
        """Set a block's value, reading its current version under the commit lock.

        Args:
            scope: The memory scope.
            label: The block.
            value: Its complete new value.
            run_id: Recorded in block history.
            at: Commit time (ISO 8601).
            expected_version: Write only if the block is at this version (compare-and-set).
            thread_id: The conversation the write is about, if any.

        Raises:
            MemoryConflictError: With ``expected_version``, when the block is at another.
            MemoryEditError: For an unknown or read-only label, or a value over the limit.

        """
        plan = self._write_plan(
            scope,
            label,
            value,
            expected_version=expected_version,
            run_id=run_id,
            at=at,
            thread_id=thread_id,
        )
        return self._run_locked(plan, scope)

    def put_run(self, scope: Scope, record: RunRecord) -> None:
        """Keep a sleep run's record (its own writer: the run)."""
        self._run(self._put_run_plan(scope, record))

    def mark_running(self, scope: Scope, run: ActiveRun | None) -> None:
        """Say which run of the scope is in flight, or (``None``) that it ended.

        Written by the run holding the scope's run lock, so by one writer at a
        time; readers (``sleepagent memory list``, the inspector) show it.
        """
        self._run(self._mark_running_plan(scope, run))

    def active_run(self, scope: Scope) -> ActiveRun | None:
        """The scope's run in flight as its marker says (a killed run's marker stays)."""
        return self._run(records.active_run_plan(scope))

    def holdings(self, scope: Scope, thread_id: str | None = None) -> Holdings:
        """Everything stored for ``thread_id`` in ``scope``, or for the whole scope.

        See :mod:`sleepagent.memory.erasure` for what belongs to a thread and to a scope.
        """
        return self._run(holdings_plan(scope, thread_id))

    def erase(self, found: Holdings) -> int:
        """Delete what :meth:`holdings` found, holding the scope's commit lock.

        Returns:
            How many records were deleted (what arrived for the same threads
            since ``found`` was read goes too).

        """
        return self._run_locked(erase_plan(found), found.scope)

    def runs(self, scope: Scope, *, limit: int = 50) -> list[RunRecord]:
        """The scope's most recent sleep runs, newest first."""
        return self._run(records.runs_plan(scope, limit))

    def failed_pages(self, scope: Scope, *, thread_id: str | None = None) -> list[FailedPage]:
        """Pages given up after their retries, by thread and position."""
        return self._run(records.failed_plan(scope, thread_id))

    def history(
        self, scope: Scope, label: str, *, limit: int | None = None, before: int | None = None
    ) -> list[HistoryEntry]:
        """Committed versions of a block, oldest first: all, or one page of them.

        Args:
            scope: The memory scope.
            label: The block.
            limit: At most this many versions: the newest ones (before ``before``).
            before: Only versions older than this one (the first version of the
                page read last, to read the page before it).

        A page costs two store reads, whatever the length of the history.

        Raises:
            ConfigurationError: For a ``limit`` or ``before`` that is not a positive integer.

        """
        return self._run(records.history_plan(scope, label, limit, before))

    def usage(self, thread_id: str) -> dict[Phase, Usage]:
        """Token usage totals of a thread, per phase."""
        return self._run(records.usage_plan(thread_id))

    def position(self, thread_id: str) -> ThreadPosition | None:
        """Log head and watermark of one thread, or None if it never logged anything."""
        return self._run(records.position_plan(thread_id))

    def positions(self) -> list[ThreadPosition]:
        """Log head and watermark of every thread, least recently active first."""
        return self._run(records.positions_plan())

    def pending_threads(self) -> list[ThreadPosition]:
        """Threads with log entries no sleep run has processed yet."""
        return [position for position in self.positions() if position.pending]

    def recovery_positions(self) -> list[ThreadPosition]:
        """Threads with pending work, from their markers alone: what start-up recovery reads.

        One search of the markers, where :meth:`pending_threads` reads every
        thread's records; each position spans the thread's uncovered appends.
        """
        return self._run(records.pending_markers_plan())

    def migrate(self, at: str) -> int:
        """Bring the store's layout up to this release's; returns the version it had.

        Raises:
            LayoutVersionError: The database was written by a newer release.

        """
        return self._run(migrations.migrate_plan(at))

    # --- public API: async twins -----------------------------------------------

    @async_twin(load)
    async def aload(self, scope: Scope) -> list[MemoryBlock]:
        return await self._arun(self._load_plan(scope))

    @async_twin(read_turn)
    async def aread_turn(
        self, scope: Scope, thread_id: str, *, with_contexts: bool = False
    ) -> TurnRead:
        return await self._arun(self._turn_plan(scope, thread_id, with_contexts=with_contexts))

    @async_twin(append)
    async def aappend(
        self,
        scope: Scope,
        thread_id: str,
        texts: Sequence[tuple[str, str, str | None] | LogText],
        *,
        at: str,
        head: int | None = None,
        logged_until: str | None = None,
        chat_usage: Usage | None = None,
        context_text: str | None = None,
        logged_ids: Sequence[str] = (),
    ) -> list[LogEntry]:
        plan = self._append_plan(
            scope,
            thread_id,
            texts,
            head=head,
            logged_until=logged_until,
            at=at,
            chat_usage=chat_usage,
            context_text=context_text,
            logged_ids=logged_ids,
        )
        return await self._arun(plan)

    @async_twin(read_page)
    async def aread_page(
        self,
        scope: Scope,
        thread_id: str,
        *,
        max_messages: int,
        max_chars: int,
        span: tuple[int, int] | None = None,
    ) -> tuple[list[MemoryBlock], list[LogEntry], int, int]:
        plan = self._page_plan(
            scope, thread_id, max_messages=max_messages, max_chars=max_chars, span=span
        )
        return await self._arun(plan)

    @async_twin(commit)
    async def acommit(
        self,
        scope: Scope,
        staged: StagedMemory,
        *,
        run_id: str,
        phase: str,
        at: str,
        **options: Unpack[CommitOptions],
    ) -> CommitOutcome:
        """Async :meth:`commit`.

        Cancelling it while it waits for the lock abandons it; once the lock is
        held it writes everything or nothing, and it never leaves the lock taken.
        """
        plan = self._commit_plan(scope, staged, run_id=run_id, phase=phase, at=at, **options)
        return await self._arun_locked(plan, scope)

    @async_twin(_run_locked)
    async def _arun_locked(self, plan: Plan[T], scope: Scope) -> T:
        async with self._backend.atransaction(scope) as store:
            return await self._arun(plan, store)

    @async_twin(record_failure)
    async def arecord_failure(
        self,
        scope: Scope,
        thread_id: str,
        *,
        error: str,
        limit: int,
        max_messages: int,
        max_chars: int,
        at: str,
    ) -> CommitOutcome:
        plan = self._failure_plan(
            scope,
            thread_id,
            error=error,
            limit=limit,
            max_messages=max_messages,
            max_chars=max_chars,
            at=at,
        )
        return await self._arun_locked(plan, scope)

    @async_twin(check_owner)
    async def acheck_owner(self, scope: Scope, thread_id: str) -> None:
        await self._arun(self._owner_plan(scope, thread_id))

    @async_twin(write)
    async def awrite(
        self,
        scope: Scope,
        label: str,
        value: str,
        *,
        run_id: str,
        at: str,
        expected_version: int | None = None,
        thread_id: str | None = None,
    ) -> CommitOutcome:
        plan = self._write_plan(
            scope,
            label,
            value,
            expected_version=expected_version,
            run_id=run_id,
            at=at,
            thread_id=thread_id,
        )
        return await self._arun_locked(plan, scope)

    @async_twin(put_run)
    async def aput_run(self, scope: Scope, record: RunRecord) -> None:
        await self._arun(self._put_run_plan(scope, record))

    @async_twin(mark_running)
    async def amark_running(self, scope: Scope, run: ActiveRun | None) -> None:
        await self._arun(self._mark_running_plan(scope, run))

    @async_twin(active_run)
    async def aactive_run(self, scope: Scope) -> ActiveRun | None:
        return await self._arun(records.active_run_plan(scope))

    @async_twin(holdings)
    async def aholdings(self, scope: Scope, thread_id: str | None = None) -> Holdings:
        return await self._arun(holdings_plan(scope, thread_id))

    @async_twin(erase)
    async def aerase(self, found: Holdings) -> int:
        return await self._arun_locked(erase_plan(found), found.scope)

    @async_twin(runs)
    async def aruns(self, scope: Scope, *, limit: int = 50) -> list[RunRecord]:
        return await self._arun(records.runs_plan(scope, limit))

    @async_twin(failed_pages)
    async def afailed_pages(
        self, scope: Scope, *, thread_id: str | None = None
    ) -> list[FailedPage]:
        return await self._arun(records.failed_plan(scope, thread_id))

    @async_twin(history)
    async def ahistory(
        self, scope: Scope, label: str, *, limit: int | None = None, before: int | None = None
    ) -> list[HistoryEntry]:
        return await self._arun(records.history_plan(scope, label, limit, before))

    @async_twin(usage)
    async def ausage(self, thread_id: str) -> dict[Phase, Usage]:
        return await self._arun(records.usage_plan(thread_id))

    @async_twin(position)
    async def aposition(self, thread_id: str) -> ThreadPosition | None:
        return await self._arun(records.position_plan(thread_id))

    async def apending_span(self, thread_id: str) -> tuple[float, float, int] | None:
        """When the thread's first and last unprocessed entries were logged, and how many.

        Returns:
            ``(first_at, last_at, count)`` in POSIX seconds, or None when nothing is pending.

        """
        return await self._arun(records.pending_span_plan(thread_id))

    @async_twin(positions)
    async def apositions(self) -> list[ThreadPosition]:
        return await self._arun(records.positions_plan())

    @async_twin(pending_threads)
    async def apending_threads(self) -> list[ThreadPosition]:
        return [position for position in await self.apositions() if position.pending]

    @async_twin(recovery_positions)
    async def arecovery_positions(self) -> list[ThreadPosition]:
        return await self._arun(records.pending_markers_plan())

    @async_twin(migrate)
    async def amigrate(self, at: str) -> int:
        return await self._arun(migrations.migrate_plan(at))


# --- helpers ---------------------------------------------------------------------


def _check_thread_scope(head: Mapping[str, Any], scope: Scope, thread_id: str) -> None:
    """Refuse a second memory scope on a thread (see ScopeMismatchError)."""
    bound_to = head.get("scope")
    if bound_to is not None and bound_to != scope.key:
        raise ScopeMismatchError(thread_id=thread_id, bound_to=bound_to, requested=scope.key)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _covered_markers(thread_id: str, found: Result, watermark: int) -> list[Op]:
    """Deletes of the thread's pending markers at or below ``watermark``.

    Only markers this commit read are deleted, never a key it did not see: a turn
    that appends meanwhile (turns take no commit lock) leaves a marker above the
    watermark, which stays, so its work is still found at the next start.
    """
    namespace = layout.pending_ns(thread_id)
    return [
        PutOp(namespace, item.key, None)
        for item in layout.items(found)
        if tuple(item.namespace) == namespace and item.value.get("seq", 0) <= watermark
    ]
