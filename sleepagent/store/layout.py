"""Where sleepagent keeps each record in a LangGraph store, and how stored items are read.

The one owner of the layout: every namespace sleepagent reads or writes is built
here, and every id placed in a namespace goes through the one codec here
(:func:`encode_id` / :func:`decode_id`). Layout in the
:class:`~langgraph.store.base.BaseStore`::

    ("sleepagent", "scopes", kind, id, "blocks")          label -> block; "#labels" -> every
                                                          stored label (kept by commits, so
                                                          turns read blocks by key)
    ("sleepagent", "scopes", kind, id, "history", label)  version -> committed value
    ("sleepagent", "scopes", kind, id, "contexts")        id -> raw context text
    ("sleepagent", "scopes", kind, id, "runs")            run id -> sleep run record
    ("sleepagent", "scopes", kind, id, "failed")          thread#seq -> failed page
    ("sleepagent", "scopes", kind, id, "running")         "run" -> the run in flight (its
                                                          thread, reason and start), written
                                                          when a run takes the scope's run
                                                          lock and removed when it ends
    ("sleepagent", "threads", thread_id)                  "head", "watermark", "failing",
                                                          "usage:chat", "usage:sleep"; the
                                                          head holds the newest entry's seq
                                                          and the newest logged message id
    ("sleepagent", "logs", thread_id)                     seq -> log entry
    ("sleepagent", "pending", thread_id)                  seq -> marker of an append no
                                                          sleep run has covered yet (its
                                                          scope, time and first seq); a
                                                          commit deletes those its
                                                          watermark reaches, so start-up
                                                          reads only pending work
    ("sleepagent", "meta")                                "layout" -> {"version": N}

The layout has a version (:data:`LAYOUT_VERSION`); :mod:`sleepagent.store.migrations`
brings an older database up to it when an agent opens it, and refuses a newer one.

Recall (``SleepConfig.recall_messages``) needs full-text search, which
``BaseStore`` lacks, so its rows live in tables of their own beside the store's,
in the same database (:mod:`sleepagent.store.recallindex`; made by its idempotent
``setup()``, only once recall or the archive is on; they are outside the layout
version, which covers the store's own items)::

    sleepagent_recall       one row per indexed message: scope (key, plain), thread_id
                            (plain), seq, role, body, speaker, said_at, logged_at,
                            message_id; unique (scope, thread_id, seq). An archived
                            fact (``SleepConfig.archive_facts``) is a row of role
                            'fact', thread_id '' and seq its place in the archive. PostgreSQL adds
                            terms (a generated tsvector, 'english') and its GIN index
                            sleepagent_recall_terms; SQLite an integer id and owner (a
                            token of the scope key's SHA-256, searched with the body).
    sleepagent_recall_fts   SQLite only: FTS5 over body and owner (external content,
                            rowid = id), kept by the triggers sleepagent_recall_added and
                            sleepagent_recall_deleted

An ``InMemoryStore`` keeps the same rows in a dictionary beside it, in process.

``id`` and ``thread_id`` are stored encoded (:func:`encode_id`); block labels are
stored as they are (:class:`~sleepagent.memory.blocks.MemoryBlock` refuses a label
a namespace cannot hold).

Pure: names and keys in, names, ops and values out;
:class:`~sleepagent.memory.blockstore.BlockStore` and
:class:`~sleepagent.store.catalog.Catalog` do the reading and writing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from langgraph.store.base import Item, ListNamespacesOp, MatchCondition, Op, Result, SearchOp

from sleepagent.errors import ConfigurationError
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.records import HistoryEntry
from sleepagent.memory.transcript import LogEntry
from sleepagent.scope import Scope

__all__ = [
    "LABELS_KEY",
    "LAYOUT_KEY",
    "LAYOUT_VERSION",
    "META_NS",
    "RECALL_FTS_TABLE",
    "RECALL_TABLE",
    "RECOVERY_PAGE",
    "ROOT",
    "RUNNING_KEY",
    "SEARCH_PAGE",
    "decode_id",
    "encode_id",
    "history_span",
    "list_scopes_op",
    "pending_marker",
    "pending_ns",
    "pending_prefix",
    "search_all",
    "scope_namespace",
    "scope_of",
    "threads_prefix",
]

logger = logging.getLogger("sleepagent.memory")

ROOT = "sleepagent"
"""First element of every namespace the library writes."""
SEARCH_PAGE = 1000
"""Items asked for per store search."""
LABELS_KEY = "#labels"
"""Key, beside the blocks, of the list of every stored label (no label can start with #)."""
RECALL_TABLE = "sleepagent_recall"
"""Recall's rows (one per indexed message), beside the store's tables."""
RECALL_FTS_TABLE = "sleepagent_recall_fts"
"""SQLite's FTS5 index over :data:`RECALL_TABLE`."""
SCOPE_LIST_PAGE = 100
"""Namespaces asked for per listing of the scopes."""

_SCOPES = (ROOT, "scopes")
_THREADS = (ROOT, "threads")
_LOGS = (ROOT, "logs")
_PENDING = (ROOT, "pending")
META_NS = (ROOT, "meta")
"""Namespace of the database-wide records (the layout version)."""
LAYOUT_KEY = "layout"
"""Key, in :data:`META_NS`, of ``{"version": N}``."""
LAYOUT_VERSION = 2
"""The layout this release writes. 1: no version record, no pending markers. 2: pending
markers, so start-up recovery reads the pending threads and nothing else."""
RECOVERY_PAGE = 250_000
"""Items asked for per search of the pending markers: SQL stores sort the whole match
for every page (10,000-item pages cost 11 sorts at 100,000 markers, 4 s on SQLite), and
every page is kept until the read ends anyway, so start-up asks for few, large pages."""


# --- the id codec ------------------------------------------------------------------

_ESCAPES = {"%": "%25", ".": "%2E", "\x00": "%00"}
_UNESCAPES = {escape: char for char, escape in _ESCAPES.items()}
_TO_ESCAPE = re.compile("[%.\x00]")
_ESCAPED = re.compile("%25|%2E|%00")


def encode_id(text: str) -> str:
    """``text`` (a scope id or a thread id) as a namespace label; inverse of :func:`decode_id`.

    A LangGraph namespace label may not contain ``.`` (SQL stores join the labels
    with dots). ``%``, ``.`` and NUL become ``%25``, ``%2E`` and ``%00``; nothing
    else changes, so the labels of existing databases stay what they are.
    """
    return _TO_ESCAPE.sub(lambda found: _ESCAPES[found.group()], text)


def decode_id(label: str) -> str:
    """The id :func:`encode_id` turned into ``label``.

    Raises:
        ValueError: If ``label`` is not something :func:`encode_id` writes (a ``%``
            that starts none of its escapes, a ``.`` or a NUL): a namespace
            sleepagent did not write.

    """
    if _TO_ESCAPE.search(_ESCAPED.sub("", label)):
        raise ValueError(f"not a namespace label sleepagent encoded: {label!r}")
    return _ESCAPED.sub(lambda found: _UNESCAPES[found.group()], label)


# --- namespaces and keys -----------------------------------------------------------


def scope_namespace(scope: Scope) -> tuple[str, ...]:
    """Namespace prefix of everything a scope owns; inverse of :func:`scope_of`."""
    return (*_SCOPES, scope.kind, encode_id(scope.id))


_SCOPE_DEPTH = len(_SCOPES) + 2


def scope_of(namespace: Sequence[str]) -> Scope | None:
    """The scope a namespace belongs to, or ``None`` for one that is no scope's.

    Any namespace under :func:`scope_namespace` counts (its blocks, history, ...),
    so a listing truncated to the scope's depth gives each scope once.
    """
    if len(namespace) < _SCOPE_DEPTH or tuple(namespace[: len(_SCOPES)]) != _SCOPES:
        return None
    kind, label = namespace[len(_SCOPES)], namespace[len(_SCOPES) + 1]
    try:
        scope_id = decode_id(label)
    except ValueError:
        return None
    if kind == "thread" and scope_id:
        return Scope("thread", scope_id)
    if kind == "user" and scope_id:
        return Scope("user", scope_id)
    return None


def list_scopes_op(offset: int) -> ListNamespacesOp:
    """One page of the namespaces that name a scope (read them with :func:`scope_of`)."""
    return ListNamespacesOp(
        match_conditions=(MatchCondition(match_type="prefix", path=_SCOPES),),
        max_depth=_SCOPE_DEPTH,
        limit=SCOPE_LIST_PAGE,
        offset=offset,
    )


def blocks_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "blocks")


def history_prefix(scope: Scope) -> tuple[str, ...]:
    """Namespace under which each block's history has its own namespace."""
    return (*scope_namespace(scope), "history")


def history_ns(scope: Scope, label: str) -> tuple[str, ...]:
    return (*history_prefix(scope), label)


def contexts_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "contexts")


def runs_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "runs")


def running_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "running")


RUNNING_KEY = "run"
"""Key, in :func:`running_ns`, of the scope's run in flight (one at a time per scope)."""


def failed_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "failed")


def failed_key(thread_id: str, first: int) -> str:
    return f"{encode_id(thread_id)}#{seq_key(first)}"


def threads_prefix() -> tuple[str, ...]:
    """Namespace prefix of every thread's records (search it for every thread's head)."""
    return _THREADS


def thread_ns(thread_id: str) -> tuple[str, ...]:
    return (*_THREADS, encode_id(thread_id))


def log_ns(thread_id: str) -> tuple[str, ...]:
    return (*_LOGS, encode_id(thread_id))


def pending_prefix() -> tuple[str, ...]:
    """Namespace prefix of every thread's pending markers (search it at start-up)."""
    return _PENDING


def pending_ns(thread_id: str) -> tuple[str, ...]:
    """Namespace of one thread's pending markers."""
    return (*_PENDING, encode_id(thread_id))


def pending_marker(
    entries: Sequence[LogEntry], thread_id: str, scope: Scope, at: str
) -> tuple[str, dict[str, Any]]:
    """Key and value of the marker an append of ``entries`` leaves until a run covers it."""
    return seq_key(entries[-1].seq), {
        "thread_id": thread_id,
        "scope": scope.key,
        "first": entries[0].seq,
        "seq": entries[-1].seq,
        "at": at,
    }


def seq_key(seq: int) -> str:
    """A log position as a key that sorts in order."""
    return f"{seq:010d}"


def head_value(
    entries: Sequence[LogEntry],
    thread_id: str,
    scope: Scope,
    at: str,
    logged_until: str | None,
    logged_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """The thread's ``head`` record once ``entries`` are appended.

    ``message_id`` is the newest logged message's id, and ``turn_ids`` the ids of
    every message this append logged (a turn's user messages and its reply): a
    process killed after the log write and before the turn's checkpoint leaves the
    thread holding the user message but not the reply, and the next turn finds
    where the log stands by the user message. Context entries carry no id, so both
    stay as they were (``logged_until``, ``logged_ids``).
    """
    ids = [e.message_id for e in entries if e.message_id]
    return {
        "seq": entries[-1].seq,
        "message_id": ids[-1] if ids else logged_until,
        "turn_ids": ids or list(logged_ids),
        "thread_id": thread_id,
        "scope": scope.key,
        "at": at,
    }


def history_span(current: int, *, limit: int | None, before: int | None) -> tuple[int, int]:
    """The versions ``(first, last)`` of a history page; empty when ``last < first``.

    Raises:
        ConfigurationError: For a ``limit`` or ``before`` that is not a positive integer.

    """
    for name, value_ in (("limit", limit), ("before", before)):
        if value_ is not None and (
            isinstance(value_, bool) or not isinstance(value_, int) or value_ < 1
        ):
            raise ConfigurationError(f"{name} must be a positive integer, got {value_!r}")
    last = current if before is None else min(current, before - 1)
    first = 1 if limit is None else max(1, last - limit + 1)
    return first, last


# --- reading stored items ----------------------------------------------------------


def search_all(
    namespace: tuple[str, ...], *, page_size: int = SEARCH_PAGE
) -> Generator[list[Op], list[Result], list[Item]]:
    """A plan that reads every item under ``namespace``, one page of ``page_size`` per batch.

    Drive it like a :class:`~sleepagent.memory.blockstore.BlockStore` plan: it
    yields a batch of one search and receives its results.
    """
    found: list[Item] = []
    offset = 0
    while True:
        (result,) = yield [SearchOp(namespace, limit=page_size, offset=offset)]
        page = items(result)
        found.extend(page)
        if len(page) < page_size:
            return found
        offset += page_size


def items(result: Result) -> list[Item]:
    """The items of a search result (nothing for any other result)."""
    return (
        [item for item in result or () if isinstance(item, Item)]
        if isinstance(result, list)
        else []
    )


def namespaces(result: Result) -> list[tuple[str, ...]]:
    """The namespaces of a listing result (nothing for any other result)."""
    if not isinstance(result, list):
        return []
    return [tuple(found) for found in result if isinstance(found, tuple)]


def value(result: Result) -> Mapping[str, Any]:
    """The value of a get result, or an empty mapping when nothing was stored."""
    return result.value if isinstance(result, Item) else {}


def history_entry(item: Result) -> HistoryEntry | None:
    return HistoryEntry(**item.value) if isinstance(item, Item) else None


def with_declared_shape(declared: MemoryBlock, stored: Mapping[str, Any]) -> MemoryBlock:
    """A stored block with the description, limit, access and role its declaration has now."""
    text = stored.get("value", "")
    limit = declared.limit
    if len(text) > limit:
        logger.warning(
            "block %r holds %d characters, over its declared limit of %d; "
            "keeping the value, edits may only shorten it",
            declared.label,
            len(text),
            limit,
        )
        limit = len(text)
    block = MemoryBlock.from_dict(stored)
    return replace(
        block,
        description=declared.description,
        limit=limit,
        read_only=declared.read_only,
        role=declared.role,
    )
