"""Plans that read a scope's or a thread's records back: runs, failed pages, history, positions.

Read-only, for inspection and scheduling (never on a turn's or a commit's path);
:class:`~sleepagent.memory.blockstore.BlockStore` drives them with its ``batch``
and ``abatch`` shells, as it drives its own plans.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any, TypeVar

from langgraph.store.base import GetOp, Item, Op, Result

from sleepagent.memory.records import ActiveRun, HistoryEntry, ThreadPosition
from sleepagent.results import FailedPage, RunRecord
from sleepagent.scope import Scope
from sleepagent.store import layout
from sleepagent.usage import Phase, Usage

__all__ = [
    "active_run_plan",
    "failed_plan",
    "history_plan",
    "parse_time",
    "pending_markers_plan",
    "pending_span_plan",
    "position_plan",
    "positions_plan",
    "runs_plan",
    "usage_plan",
]

T = TypeVar("T")
Plan = Generator[list[Op], list[Result], T]


def runs_plan(scope: Scope, limit: int) -> Plan[list[RunRecord]]:
    """The scope's newest ``limit`` run records, newest first."""
    items = yield from layout.search_all(layout.runs_ns(scope))
    runs = [RunRecord.from_dict(item.value) for item in items]
    runs.sort(key=lambda run: (run.finished_at, run.run_id), reverse=True)
    return runs[:limit]


def active_run_plan(scope: Scope) -> Plan[ActiveRun | None]:
    """The run the scope's marker says is in flight, or None.

    A run killed before it ended leaves its marker: only the run lock tells a
    live run from a dead one (:meth:`sleepagent.store.catalog.Catalog.scope`
    asks it).
    """
    (item,) = yield [GetOp(layout.running_ns(scope), layout.RUNNING_KEY)]
    return ActiveRun.from_dict(item.value) if isinstance(item, Item) else None


def failed_plan(scope: Scope, thread_id: str | None) -> Plan[list[FailedPage]]:
    """The scope's failed pages (of one thread, when given), in log order."""
    items = yield from layout.search_all(layout.failed_ns(scope))
    pages = [FailedPage.from_dict(item.value) for item in items]
    if thread_id is not None:
        pages = [page for page in pages if page.thread_id == thread_id]
    return sorted(pages, key=lambda page: (page.thread_id, page.first_seq))


def position_plan(thread_id: str) -> Plan[ThreadPosition | None]:
    """The thread's head and watermark, or None for a thread with no log."""
    head, mark = yield [
        GetOp(layout.thread_ns(thread_id), "head"),
        GetOp(layout.thread_ns(thread_id), "watermark"),
    ]
    if not isinstance(head, Item):
        return None
    return ThreadPosition(
        thread_id=thread_id,
        head=head.value["seq"],
        watermark=layout.value(mark).get("seq", 0),
        scope=head.value.get("scope"),
        last_at=head.value.get("at"),
    )


def pending_span_plan(thread_id: str) -> Plan[tuple[float, float, int] | None]:
    """``(first pending at, last at, pending count)`` of the thread, or None with none."""
    head_result, mark_result = yield [
        GetOp(layout.thread_ns(thread_id), "head"),
        GetOp(layout.thread_ns(thread_id), "watermark"),
    ]
    head = layout.value(head_result).get("seq", 0)
    watermark = layout.value(mark_result).get("seq", 0)
    if head <= watermark:
        return None
    (first,) = yield [GetOp(layout.log_ns(thread_id), layout.seq_key(watermark + 1))]
    first_at = layout.value(first).get("at") or layout.value(head_result)["at"]
    last_at = layout.value(head_result)["at"]
    return parse_time(first_at).timestamp(), parse_time(last_at).timestamp(), head - watermark


def history_plan(
    scope: Scope, label: str, limit: int | None = None, before: int | None = None
) -> Plan[list[HistoryEntry]]:
    """A block's committed versions, oldest first: all, or a page (see ``BlockStore.history``)."""
    # Versions are numbered 1, 2, ... per block and keyed by number, so a page's
    # keys follow from ``before`` (or the block's current version): one or two
    # key reads of the page's size, whatever the history's length. The whole
    # history is read the same way, in chunks (a search pages by offset).
    history_ns = layout.history_ns(scope, label)
    guess: dict[int, HistoryEntry] = {}
    block_op = GetOp(layout.blocks_ns(scope), label)
    if before is not None and limit is not None and limit <= layout.SEARCH_PAGE:
        first, last = layout.history_span(before - 1, limit=limit, before=before)
        block, *found = yield [
            block_op,
            *(GetOp(history_ns, layout.seq_key(v)) for v in range(first, last + 1)),
        ]
        guess = {e.version: e for e in (layout.history_entry(item) for item in found) if e}
    else:
        layout.history_span(0, limit=limit, before=before)  # refuse bad arguments first
        (block,) = yield [block_op]
    first, last = layout.history_span(
        layout.value(block).get("version", 0), limit=limit, before=before
    )
    missing = [v for v in range(first, last + 1) if v not in guess]
    for start in range(0, len(missing), layout.SEARCH_PAGE):
        chunk = missing[start : start + layout.SEARCH_PAGE]
        found = yield [GetOp(history_ns, layout.seq_key(v)) for v in chunk]
        guess.update((e.version, e) for e in (layout.history_entry(item) for item in found) if e)
    return [guess[v] for v in range(first, last + 1) if v in guess]


def usage_plan(thread_id: str) -> Plan[dict[Phase, Usage]]:
    """The thread's token totals, per phase."""
    chat, sleep = yield [
        GetOp(layout.thread_ns(thread_id), "usage:chat"),
        GetOp(layout.thread_ns(thread_id), "usage:sleep"),
    ]
    return {
        "chat": Usage.from_dict(layout.value(chat).get("usage")),
        "sleep": Usage.from_dict(layout.value(sleep).get("usage")),
    }


def positions_plan() -> Plan[list[ThreadPosition]]:
    """Every thread's head and watermark, oldest activity first."""
    by_thread: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in (yield from layout.search_all(layout.threads_prefix())):
        by_thread.setdefault(tuple(item.namespace), {})[item.key] = item.value
    positions = []
    for keys in by_thread.values():
        head = keys.get("head")
        if head is None:
            continue
        positions.append(
            ThreadPosition(
                thread_id=head["thread_id"],
                head=head["seq"],
                watermark=keys.get("watermark", {}).get("seq", 0),
                scope=head.get("scope"),
                last_at=head.get("at"),
            )
        )
    return sorted(positions, key=lambda position: (position.last_at or "", position.thread_id))


def pending_markers_plan() -> Plan[list[ThreadPosition]]:
    """Every thread with pending markers, as the span they cover, least recently active first.

    Start-up recovery reads this: one search of the markers (in large pages), so
    its cost follows the pending work, not every thread ever written. A thread's
    ``watermark`` here is the seq before its oldest uncovered append, and its
    ``head`` the newest one's.
    """
    spans: dict[tuple[str, ...], dict[str, Any]] = {}
    found = yield from layout.search_all(layout.pending_prefix(), page_size=layout.RECOVERY_PAGE)
    for item in found:
        marker, span = item.value, spans.get(tuple(item.namespace))
        if span is None:
            spans[tuple(item.namespace)] = dict(marker)
            continue
        span["first"] = min(span["first"], marker["first"])
        if marker["seq"] > span["seq"]:
            span.update(seq=marker["seq"], at=marker["at"], scope=marker["scope"])
    positions = [
        ThreadPosition(
            thread_id=span["thread_id"],
            head=span["seq"],
            watermark=span["first"] - 1,
            scope=span["scope"],
            last_at=span["at"],
        )
        for span in spans.values()
    ]
    return sorted(positions, key=lambda position: (position.last_at or "", position.thread_id))


def parse_time(at: str) -> datetime:
    """A stored ISO 8601 time stamp."""
    return datetime.fromisoformat(at)
