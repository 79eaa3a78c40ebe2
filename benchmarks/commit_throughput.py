"""Commit throughput: block commits per second from 1 and 4 processes on one database.

Every process commits sleep-run-shaped inserts into one block of one shared
memory scope (the contended case), through ``BlockStore.commit``: read the
blocks, merge, write blocks, history, watermark, all under the scope's commit
lock. "bare" runs the same reads and writes with no lock at all (what the
store alone costs; it loses edits across processes: the last column is the
most lost in one run). Run::

    .venv/bin/python benchmarks/commit_throughput.py [--commits 200] [--postgres URL]

PostgreSQL is measured when ``--postgres`` or ``SLEEPAGENT_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.store.persistence import open_persistence

SCOPE = Scope("user", "bench")
AT = "2026-01-01T00:00:00+00:00"


def _worker(db: str, name: str, commits: int, bare: bool, start, done) -> None:
    with open_persistence(db) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        blocks.load(SCOPE)  # warm the connection and the backend
        start.wait()
        for i in range(commits):
            staged, _ = StagedMemory.of(blocks.load(SCOPE)).stage(
                InsertEdit("human", f"{name}-{i}")
            )
            if bare:  # the same plan, driven with no lock around it
                plan = blocks._commit_plan(SCOPE, staged, run_id=name, phase="sleep", at=AT)
                blocks._run(plan)
            else:
                blocks.commit(SCOPE, staged, run_id=name, phase="sleep", at=AT)
        done.put(time.perf_counter())


def measure(db: str, processes: int, commits: int, *, bare: bool) -> tuple[float, int]:
    """Commits per second over all processes, and how many inserts were lost."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(processes + 1), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(db, f"p{n}", commits, bare, start, done))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    ended = max(done.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join()
    with open_persistence(db) as (_, store):
        value = BlockStore(store, DEFAULT_BLOCKS).load(SCOPE)[1].value
    lost = processes * commits - len(value.splitlines())
    return processes * commits / (ended - began), lost


def _fresh(kind: str, postgres: str | None, directory: Path, label: str) -> str:
    if kind == "sqlite":
        path = directory / f"{label}.db"
        with open_persistence(path):
            pass
        return str(path)
    assert postgres is not None
    import psycopg

    with open_persistence(postgres):
        pass
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DELETE FROM store WHERE prefix LIKE 'sleepagent.scopes.user.bench%'")
    return postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200, help="commits per process")
    parser.add_argument("--postgres", default=os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the best is shown")
    args = parser.parse_args()
    kinds = ["sqlite", *(["postgres"] if args.postgres else [])]
    print(f"{args.commits} commits per process, one shared scope, best of {args.repeat}\n")
    print(f"{'backend':<10} {'procs':>5} {'sleepagent /s':>14} {'bare /s':>9} {'bare lost':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for processes in (1, 4):
                ours, bare, bare_lost = 0.0, 0.0, 0
                for run in range(args.repeat):  # alternate, so load on the machine hits both
                    db = _fresh(kind, args.postgres, Path(tmp), f"{kind}{processes}-{run}")
                    rate, lost = measure(db, processes, args.commits, bare=False)
                    assert lost == 0, f"sleepagent lost {lost} inserts"
                    ours = max(ours, rate)
                    db = _fresh(kind, args.postgres, Path(tmp), f"{kind}{processes}-{run}bare")
                    rate, lost = measure(db, processes, args.commits, bare=True)
                    bare, bare_lost = max(bare, rate), max(bare_lost, lost)
                print(f"{kind:<10} {processes:>5} {ours:>14.0f} {bare:>9.0f} {bare_lost:>10}")


if __name__ == "__main__":
    main()
