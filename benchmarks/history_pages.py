"""history(): a page (limit / before) against the whole history, as the history grows.

A block of one scope gets N committed versions on a SQLite file (and on
PostgreSQL with ``--postgres``). Then, interleaved: the whole history, the
newest page, a page in the middle (``before=N//2``), and "bare": the store
reading the same page's items with one batch of ``GetOp``s (the least any
page can cost). Ratios: page / bare (the page's overhead over the raw read)
and the page at N / the page at the smallest N (flat when the cost follows
the page, not the history).

Run::

    taskset -c 0 .venv/bin/python benchmarks/history_pages.py [--versions 100 1000 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _sidebyside import machine, row
from langgraph.store.base import GetOp

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope
from sleepagent.memory.blocks import RethinkEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store.persistence import open_persistence

AT = "2026-01-01T00:00:00+00:00"
PAGE = 20


def fill(blocks: BlockStore, scope: Scope, versions: int) -> None:
    for i in range(versions):
        staged, _ = StagedMemory.of(blocks.load(scope)).stage(RethinkEdit("human", f"v{i}"))
        blocks.commit(scope, staged, run_id=f"r{i}", phase="user", at=AT)


def timed(call: Callable[[], Any], repeat: int) -> float:
    values = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        values.append(time.perf_counter() - began)
    return statistics.median(values)


def measure(db: Any, sizes: list[int], repeat: int) -> dict[int, dict[str, float]]:
    figures: dict[int, dict[str, float]] = {}
    with open_persistence(db) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        done = 0
        scope = Scope("thread", f"history-{time.time_ns()}")
        for size in sorted(sizes):
            fill(blocks, scope, size - done)
            done = size
            ns = (*BlockStore.scope_namespace(scope), "history", "human")
            raw_page = [GetOp(ns, f"{v:010d}") for v in range(size - PAGE + 1, size + 1)]
            calls = {
                "whole": lambda: blocks.history(scope, "human"),
                "page": lambda: blocks.history(scope, "human", limit=PAGE),
                "middle": lambda s=size: blocks.history(scope, "human", limit=PAGE, before=s // 2),
                "bare": lambda ops=raw_page: store.batch(ops),
            }
            assert [e.version for e in calls["page"]()] == list(range(size - PAGE + 1, size + 1))
            results: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(3):  # interleaved rounds
                for name, call in calls.items():
                    results[name].append(timed(call, repeat if name != "whole" else 3))
            figures[size] = {name: min(values) for name, values in results.items()}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--postgres", default=os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL"))
    parser.add_argument("--quick", action="store_true", help="100 and 1000 versions")
    args = parser.parse_args()
    if args.quick:
        args.versions = [100, 1000]
    print(machine())
    print(f"history: pages of {PAGE} versions; whole history for comparison")
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Any]] = [("sqlite", Path(tmp) / "history.db")]
        if args.postgres:
            backends.append(("postgres", args.postgres))
        for name, db in backends:
            figures = measure(db, args.versions, args.repeat)
            smallest = figures[min(figures)]
            print(name)
            for size, f in sorted(figures.items()):
                print(f"  {size} versions")
                print(row("newest page / bare GetOps", f["page"], f["bare"]))
                print(row("middle page / bare GetOps", f["middle"], f["bare"]))
                print(row("whole history / newest page", f["whole"], f["page"]))
                print(row(f"page here / page at {min(figures)}", f["page"], smallest["page"]))
    print(machine())


if __name__ == "__main__":
    main()
