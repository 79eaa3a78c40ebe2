"""Where sleepagent keeps each record in a LangGraph store, and how stored items are read.

Layout in the :class:`~langgraph.store.base.BaseStore` (ids are percent-encoded
where the store forbids a character)::

    ("sleepagent", "scopes", kind, id, "blocks")          label -> block; "#labels" -> every
                                                          stored label (kept by commits, so
                                                          turns read blocks by key)
    ("sleepagent", "scopes", kind, id, "history", label)  version -> committed value
    ("sleepagent", "scopes", kind, id, "contexts")        id -> raw context text
    ("sleepagent", "scopes", kind, id, "runs")            run id -> sleep run record
    ("sleepagent", "scopes", kind, id, "failed")          thread#seq -> failed page
    ("sleepagent", "threads", thread_id)                  "head", "watermark", "failing",
                                                          "usage:chat", "usage:sleep"; the
                                                          head holds the newest entry's seq
                                                          and the newest logged message id
    ("sleepagent", "logs", thread_id)                     seq -> log entry

Pure: names and keys in, names and values out; :class:`~sleepagent.memory.blockstore.BlockStore`
does the reading and writing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from langgraph.store.base import Item, Result

from sleepagent.errors import ConfigurationError
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.records import HistoryEntry
from sleepagent.memory.transcript import LogEntry
from sleepagent.scope import Scope, encode_label

__all__ = ["LABELS_KEY", "ROOT", "SEARCH_PAGE", "history_span", "scope_namespace"]

logger = logging.getLogger("sleepagent.memory")

ROOT = "sleepagent"
"""First element of every namespace the library writes."""
SEARCH_PAGE = 1000
"""Items asked for per store search."""
LABELS_KEY = "#labels"
"""Key, beside the blocks, of the list of every stored label (no label can start with #)."""


# --- namespaces and keys -----------------------------------------------------------


def scope_namespace(scope: Scope) -> tuple[str, ...]:
    """Namespace prefix of everything a scope owns."""
    return (ROOT, "scopes", scope.kind, encode_label(scope.id))


def blocks_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "blocks")


def history_ns(scope: Scope, label: str) -> tuple[str, ...]:
    return (*scope_namespace(scope), "history", label)


def contexts_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "contexts")


def runs_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "runs")


def failed_ns(scope: Scope) -> tuple[str, ...]:
    return (*scope_namespace(scope), "failed")


def failed_key(thread_id: str, first: int) -> str:
    return f"{encode_label(thread_id)}#{seq_key(first)}"


def thread_ns(thread_id: str) -> tuple[str, ...]:
    return (ROOT, "threads", encode_label(thread_id))


def log_ns(thread_id: str) -> tuple[str, ...]:
    return (ROOT, "logs", encode_label(thread_id))


def seq_key(seq: int) -> str:
    """A log position as a key that sorts in order."""
    return f"{seq:010d}"


def head_value(
    entries: Sequence[LogEntry], thread_id: str, scope: Scope, at: str, logged_until: str | None
) -> dict[str, Any]:
    """The thread's ``head`` record once ``entries`` are appended.

    ``message_id`` is the newest logged message's id: context entries carry
    none, so it stays ``logged_until`` (the head's id before them).
    """
    newest_id = next((e.message_id for e in reversed(entries) if e.message_id), None)
    return {
        "seq": entries[-1].seq,
        "message_id": newest_id or logged_until,
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


def items(result: Result) -> list[Item]:
    """The items of a search result (nothing for any other result)."""
    return (
        [item for item in result or () if isinstance(item, Item)]
        if isinstance(result, list)
        else []
    )


def value(result: Result) -> Mapping[str, Any]:
    """The value of a get result, or an empty mapping when nothing was stored."""
    return result.value if isinstance(result, Item) else {}


def history_entry(item: Result) -> HistoryEntry | None:
    return HistoryEntry(**item.value) if isinstance(item, Item) else None


def with_declared_shape(declared: MemoryBlock, stored: Mapping[str, Any]) -> MemoryBlock:
    """A stored block with the description, limit and access its declaration has now."""
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
        block, description=declared.description, limit=limit, read_only=declared.read_only
    )
