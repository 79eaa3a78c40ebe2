"""The soak's ledger: what each worker was told, made durable before it goes on.

One JSON object per line, appended to the worker's own file and synced to disk
(``write``, ``flush``, ``os.fsync``) before :meth:`Ledger.write` returns, so a
``kill -9`` right after a call returned cannot lose its record. A line torn by a
kill in the middle of a write was never acknowledged; :func:`read_ledgers` skips it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sleepagent.results import BlockDiff
from sleepagent.scheduling import EventKind, SleepEvent


class Ledger:
    """An append-only, fsync'd JSONL file; safe to write from several threads.

    Args:
        path: The file (created if missing, appended to otherwise).
        writer: Who writes (``w1g0``), recorded in every line.

    """

    def __init__(self, path: Path, writer: str) -> None:
        torn = path.exists() and path.stat().st_size > 0 and not _ends_with_newline(path)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if torn:
            self._file.write("\n")  # end a line a kill tore, so the next one stands alone
        self._lock = threading.Lock()
        self.writer = writer

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` and return only once it is on disk."""
        line = json.dumps({**record, "writer": self.writer, "t": time.time()})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._file.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def edit_records(db: str, scope: str, run_id: str | None, diffs: Iterable[BlockDiff]) -> list[dict]:
    """One ledger record per block a reported run changed: the lines it added, at its version."""
    records = []
    for diff in diffs:
        before = set(diff.before.splitlines())
        added = [line for line in diff.after.splitlines() if line and line not in before]
        records.append(
            {
                "type": "edit",
                "db": db,
                "scope": scope,
                "label": diff.label,
                "version": diff.version_after,
                "lines": added,
                "run_id": run_id,
            }
        )
    return records


def event_records(db: str, event: SleepEvent) -> list[dict]:
    """What a sleep-run event tells: the run's outcome and every edit it says it committed."""
    if event.kind is EventKind.FINISHED:
        outcome = event.outcome.value if event.outcome is not None else None
        run = {
            "type": "run",
            "db": db,
            "scope": event.scope,
            "reason": event.reason,
            "outcome": outcome,
            "run_id": event.run_id,
        }
        return [*edit_records(db, event.scope, event.run_id, event.diffs), run]
    if event.kind is EventKind.FAILED:
        return [{"type": "run_failed", "db": db, "error": str(event.error)[:200]}]
    if event.kind is EventKind.PAGE_FAILED:
        return [{"type": "page_failed", "db": db, "scope": event.scope}]
    return []


def read_ledgers(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every record of the ledgers, file by file; a torn line is skipped."""
    for path in paths:
        with open(path, encoding="utf-8") as file:
            for line in file:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line torn by a kill: never acknowledged
