"""Everything the store holds for a thread or a memory scope: found once, then erased or exported.

``forget`` and ``export`` agree by construction: both start from
:func:`holdings_plan`, so what an export returns is exactly what a forget
removes from the store (the agent adds the threads' checkpoints to both).

What belongs to what (the namespaces are :mod:`sleepagent.store.layout`'s):

* a **thread**: its records (``head``, ``watermark``, ``failing``, usage), its
  transcript log, its pending markers, and the raw contexts and failed pages
  its messages made in its scope;
* a **whole scope**: everything under the scope's namespace (blocks, their
  history, contexts, runs, failed pages, and anything a later release adds
  there), plus each thread whose log is kept for that scope.

Every search here keeps only the items whose namespace starts with the one
asked for, element by element, whatever prefix matching the store does: so
forgetting ``ada`` can never touch ``adam``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph.store.base import Item, Op, PutOp, Result

from sleepagent.memory.recall import ARCHIVE_THREAD, RecallRow
from sleepagent.scope import Scope
from sleepagent.store import layout

__all__ = ["EXPORT_FORMAT", "Holdings", "erase_plan", "export_document", "holdings_plan"]

T = TypeVar("T")
Plan = Generator[list[Op], list[Result], T]

EXPORT_FORMAT = "sleepagent-export/1"
"""The ``format`` field of an export document; changes when its shape does."""
ERASE_BATCH = 500
"""Deletions per store batch."""
ERASE_PASSES = 3
"""Searches for what is left before giving up: items can arrive while erasing (a turn
served by another process), and each pass removes what the one before found."""


@dataclass(frozen=True)
class Holdings:
    """What the store holds for a thread, or for a whole memory scope.

    Attributes:
        scope: The memory scope.
        threads: The threads whose records and logs are included, sorted.
        whole_scope: True when the scope's own records (blocks, history, runs,
            ...) are included; False for a single thread of a shared scope.
        items: Every stored item, as the store returned it.

    """

    scope: Scope
    threads: tuple[str, ...]
    whole_scope: bool
    items: tuple[Item, ...]


def holdings_plan(scope: Scope, thread_id: str | None) -> Plan[Holdings]:
    """Find the holdings of ``thread_id`` (in ``scope``), or of the whole ``scope`` (``None``).

    A thread of a ``thread`` scope is its scope: asking for it alone takes the whole scope.
    """
    whole = thread_id is None or scope == Scope("thread", thread_id)
    if whole:
        threads = yield from _threads_of(scope)
    else:
        assert thread_id is not None
        threads = [thread_id]
    found = yield from _items_plan(scope, threads, whole=whole)
    return Holdings(scope, tuple(threads), whole, tuple(found))


def erase_plan(found: Holdings) -> Plan[int]:
    """Delete ``found``, and what arrived for the same threads since; returns the count.

    Run it holding the scope's commit lock, so no commit interleaves. Only the
    threads in ``found`` are erased: a conversation that starts meanwhile is not
    the one that was asked for. A thread's ``head`` goes last: the threads of a
    scope are found by their heads, so a forget cut short (a process killed) is
    finished by asking again.
    """
    removed = 0
    items = list(found.items)
    for _ in range(ERASE_PASSES):
        if not items:
            break
        heads_last = sorted(items, key=lambda item: item.key == "head")
        deletes: list[Op] = [PutOp(tuple(item.namespace), item.key, None) for item in heads_last]
        for start in range(0, len(deletes), ERASE_BATCH):
            yield deletes[start : start + ERASE_BATCH]
        removed += len(deletes)
        items = yield from _items_plan(found.scope, found.threads, whole=found.whole_scope)
    return removed


def export_document(
    holdings: Holdings,
    messages: dict[str, list[dict[str, Any]]],
    *,
    exported_at: str,
    recall: Sequence[RecallRow] = (),
) -> dict[str, Any]:
    """One JSON-ready document of ``holdings``, with each thread's checkpointed messages.

    Sections follow the layout: ``memory`` (a whole scope only: blocks by label,
    history by label in version order, runs, and the ``archive`` of facts moved
    out of full blocks, in the order archived), then per thread its records,
    transcript log in order, raw contexts, failed pages, pending markers,
    messages and ``recall`` (its rows in the recall index, kept beside the store:
    see :mod:`sleepagent.store.recallindex`). An item in no known section is kept
    under ``other`` as it was stored, so nothing is left out of an export.
    """
    threads: dict[str, dict[str, Any]] = {
        thread: {
            "records": {},
            "log": [],
            "contexts": [],
            "failed_pages": [],
            "pending": [],
            "messages": messages.get(thread, []),
            "recall": [],
        }
        for thread in holdings.threads
    }
    memory: dict[str, Any] = {"blocks": {}, "history": {}, "runs": [], "archive": []}
    other: list[dict[str, Any]] = []
    by_thread_ns = {layout.thread_ns(thread): thread for thread in holdings.threads}
    by_log_ns = {layout.log_ns(thread): thread for thread in holdings.threads}
    by_pending_ns = {layout.pending_ns(thread): thread for thread in holdings.threads}
    scope = holdings.scope
    for item in sorted(holdings.items, key=lambda item: (tuple(item.namespace), item.key)):
        namespace, value = tuple(item.namespace), item.value
        owner = threads.get(str(value.get("thread_id")))
        if namespace in by_thread_ns:
            threads[by_thread_ns[namespace]]["records"][item.key] = value
        elif namespace in by_log_ns:
            threads[by_log_ns[namespace]]["log"].append(value)
        elif namespace in by_pending_ns:
            threads[by_pending_ns[namespace]]["pending"].append(value)
        elif namespace == layout.blocks_ns(scope):
            if item.key != layout.LABELS_KEY:
                memory["blocks"][item.key] = value
        elif namespace[:-1] == layout.history_prefix(scope):
            memory["history"].setdefault(namespace[-1], []).append(value)
        elif namespace == layout.runs_ns(scope):
            memory["runs"].append(value)
        elif namespace == layout.contexts_ns(scope) and owner is not None:
            owner["contexts"].append(value)
        elif namespace == layout.failed_ns(scope) and owner is not None:
            owner["failed_pages"].append(value)
        else:
            other.append({"namespace": list(namespace), "key": item.key, "value": value})
    for row in recall:
        if row.thread_id == ARCHIVE_THREAD:
            memory["archive"].append(row.to_dict())
        elif row.thread_id in threads:
            threads[row.thread_id]["recall"].append(row.to_dict())
        else:  # a thread whose log is gone: still the scope's, still exported
            other.append({"recall": row.to_dict()})
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": exported_at,
        "scope": scope.key,
        "whole_scope": holdings.whole_scope,
    }
    if holdings.whole_scope:
        document["memory"] = memory
    document["threads"] = threads
    if other:
        document["other"] = other
    return document


# --- searching ----------------------------------------------------------------------


def _threads_of(scope: Scope) -> Plan[list[str]]:
    """The threads whose log is kept for ``scope`` (by their heads), sorted.

    A ``thread`` scope's own thread counts even with no log yet: it may have
    checkpoints.
    """
    threads = {scope.id} if scope.kind == "thread" else set()
    for item in (yield from layout.search_all(layout.threads_prefix())):
        if item.key == "head" and item.value.get("scope") == scope.key:
            threads.add(item.value["thread_id"])
    return sorted(threads)


def _items_plan(scope: Scope, threads: Sequence[str], *, whole: bool) -> Plan[list[Item]]:
    found: list[Item] = []
    for thread in threads:
        found += yield from _search_exact(layout.thread_ns(thread))
        found += yield from _search_exact(layout.log_ns(thread))
        found += yield from _search_exact(layout.pending_ns(thread))
    if whole:
        found += yield from _search_exact(layout.scope_namespace(scope))
    else:
        for namespace in (layout.contexts_ns(scope), layout.failed_ns(scope)):
            in_scope = yield from _search_exact(namespace)
            found += [item for item in in_scope if item.value.get("thread_id") in threads]
    return found


def _search_exact(namespace: tuple[str, ...]) -> Plan[list[Item]]:
    """Items in ``namespace`` or below it, and nowhere else."""
    found = yield from layout.search_all(namespace)
    return list(_under(found, namespace))


def _under(items: Iterable[Item], namespace: Sequence[str]) -> Iterable[Item]:
    depth = len(namespace)
    return (item for item in items if tuple(item.namespace[:depth]) == tuple(namespace))
