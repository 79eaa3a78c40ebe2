"""Bring a database's store layout up to the one this release writes, or refuse a newer one.

An agent runs :func:`migrate_plan` when it opens its store, before anything else
reads it. The stored version (``("sleepagent", "meta")``, key ``"layout"``) says
which steps are due; each step is idempotent, so two processes opening an old
database at once both finish it, and a step cut short by a kill is done again on
the next open (the version is written last). Every process on one database must
run a release that knows its layout: a newer database is refused with
:class:`~sleepagent.errors.LayoutVersionError`, never read half-understood.

Versions (:data:`~sleepagent.store.layout.LAYOUT_VERSION`):

1. Releases up to 0.3: no version record. Threads' records, logs and scopes.
2. Pending markers: each append leaves a marker, a commit deletes those its
   watermark reaches, and start-up recovery reads the markers alone. The step
   from 1 reads every thread's head and watermark once and marks what is pending.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from langgraph.store.base import GetOp, Item, Op, PutOp, Result

from sleepagent.errors import LayoutVersionError
from sleepagent.store import layout

__all__ = ["migrate_plan"]

Plan = Generator[list[Op], list[Result], Any]

MIGRATION_BATCH = 500
"""Writes per store batch while migrating."""


def migrate_plan(at: str) -> Generator[list[Op], list[Result], int]:
    """Migrate the store to :data:`~sleepagent.store.layout.LAYOUT_VERSION`.

    Args:
        at: The time to record (ISO 8601).

    Returns:
        The version the database had (1 for a database with no version record,
        including a new one).

    Raises:
        LayoutVersionError: The database has a newer layout than this release knows.

    """
    (found,) = yield [GetOp(layout.META_NS, layout.LAYOUT_KEY)]
    version = int(found.value.get("version", 1)) if isinstance(found, Item) else 1
    if version > layout.LAYOUT_VERSION:
        raise LayoutVersionError(version, layout.LAYOUT_VERSION)
    if version == layout.LAYOUT_VERSION:
        return version
    if version < 2:
        yield from _mark_pending_work()
    record = {"version": layout.LAYOUT_VERSION, "migrated_from": version, "at": at}
    yield [PutOp(layout.META_NS, layout.LAYOUT_KEY, record, index=False)]
    return version


def _mark_pending_work() -> Plan:
    """1 -> 2: a marker for every thread with log entries past its watermark.

    Reads layout 1 as it was written (heads and watermarks under the threads
    prefix), on purpose not through today's readers, which follow the newest layout.
    """
    records: dict[tuple[str, ...], dict[str, Any]] = {}
    items = yield from layout.search_all(layout.threads_prefix(), page_size=layout.RECOVERY_PAGE)
    for item in items:
        if item.key in ("head", "watermark"):
            records.setdefault(tuple(item.namespace), {})[item.key] = item.value
    puts: list[Op] = []
    for found in records.values():
        head, mark = found.get("head"), found.get("watermark", {})
        if head is None or head.get("scope") is None or head["seq"] <= mark.get("seq", 0):
            continue
        marker = {
            "thread_id": head["thread_id"],
            "scope": head["scope"],
            "first": mark.get("seq", 0) + 1,
            "seq": head["seq"],
            "at": head.get("at"),
        }
        namespace = layout.pending_ns(head["thread_id"])
        puts.append(PutOp(namespace, layout.seq_key(head["seq"]), marker, index=False))
    for start in range(0, len(puts), MIGRATION_BATCH):
        yield puts[start : start + MIGRATION_BATCH]
