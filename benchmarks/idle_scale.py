"""100,000 idle conversations in one process: recovery at start, timers, RSS, a burst.

Seeds N threads with one turn each that no sleep run has covered (the records a
turn writes: log entries, head, usage and pending marker, written in large
batches once, then the file is copied for every measurement), and measures:

- **recovery**: opening an agent on the database, from the constructor to every
  alarm set: the layout check, the pending read and N alarms. Sync agent
  (thread-pool timer) and async agent (asyncio timer), on SQLite and, with
  ``--postgres URL`` (default ``$SLEEPAGENT_TEST_POSTGRES_URL``), PostgreSQL.
  Each in a child process, with its RSS before and after.
- **reschedule** one of the N pending alarms, as a turn does: the scheduler's
  ``set`` on both timers, and the coordinator's ``on_turn`` (what a turn calls).
- **burst**: ``--burst`` conversations fall quiet together, each sleep run 50 ms
  in its model call; every run must start within
  (burst / max_concurrent_sleeps) x run time + 0.1 s of its due time.

Bare: APScheduler 3 alone holding one job per thread (``add_job`` with
``replace_existing``, the way an idle timer per conversation is usually kept),
for the same N. Prints ours / bare / ratio; asserts nothing.

    taskset -c 0 .venv/bin/python benchmarks/idle_scale.py [--threads 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _sidebyside import machine, percentile, row

from sleepagent import AsyncSleepTimeAgent, SleepConfig, SleepTimeAgent
from sleepagent.memory.blockstore import BlockStore
from sleepagent.scheduling import EventKind, SleepEvent, SleepJob
from sleepagent.scheduling.policy import Reason
from sleepagent.scope import Scope
from sleepagent.sleep.facts import NOTHING_NEW
from sleepagent.store import layout
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import ScriptedChatModel
from sleepagent.usage import Usage

SEED_BATCH_OPS = 5_000  # PostgreSQL takes at most 65,535 parameters a query
USERS = 1_000
RESCHEDULES = 2_000
BURST_MODEL_S = 0.05
IDLE = SleepConfig(idle_seconds=3_600)  # recovered alarms stay pending while measured


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- seeding ---------------------------------------------------------------------------


def seed(db: Path | str, threads: int) -> float:
    """Write ``threads`` pending one-turn threads straight through the store, in batches."""
    at = datetime.now(UTC).isoformat()
    began = time.perf_counter()
    with open_persistence(db) as (_, store):
        blocks = BlockStore(store, ())
        ops: list[Any] = []
        for n in range(threads):
            thread = f"idle-{n}"
            texts = [("user", "hello", f"{thread}-u"), ("assistant", "ok", f"{thread}-a")]
            plan = blocks._append_plan(  # the records a turn writes, without the turn
                Scope("user", f"user-{n % USERS}"),
                thread,
                texts,
                head=0,
                logged_until=None,
                at=at,
                chat_usage=Usage(input_tokens=10, output_tokens=1, calls=1),
            )
            ops.extend(next(plan))
            if len(ops) >= SEED_BATCH_OPS:
                store.batch(ops)
                ops = []
        if ops:
            store.batch(ops)
        # Written by this release: no migration to run at open.
        store.put(layout.META_NS, layout.LAYOUT_KEY, {"version": layout.LAYOUT_VERSION})
    return time.perf_counter() - began


# --- one measurement per child process ---------------------------------------------------


def recovery_child(db: str, mode: str, threads: int) -> dict[str, Any]:
    """Open an agent on ``db``, time it, count alarms, reschedule a few, report RSS.

    An agent on an empty database is opened and closed first, so imports, graph
    compilation and connection set-up are paid before the clock and RSS start.
    """
    model = ScriptedChatModel([])
    with tempfile.TemporaryDirectory() as warm:
        if mode == "sync":
            SleepTimeAgent(model, db=Path(warm) / "warm.db", config=IDLE).close()
        else:

            async def warm_up() -> None:
                async with AsyncSleepTimeAgent(model, db=Path(warm) / "warm.db", config=IDLE):
                    pass

            asyncio.run(warm_up())
    before = rss_mb()
    if mode == "sync":
        began = time.perf_counter()
        agent = SleepTimeAgent(model, db=db, config=IDLE)
        opened = time.perf_counter() - began
        try:
            return {**measure_open(agent, opened, before, threads)}
        finally:
            agent.close()

    async def run() -> dict[str, Any]:
        began = time.perf_counter()
        async with AsyncSleepTimeAgent(model, db=db, config=IDLE) as agent:
            opened = time.perf_counter() - began
            return measure_open(agent, opened, before, threads)

    return asyncio.run(run())


def measure_open(agent: Any, opened: float, before: float, threads: int) -> dict[str, Any]:
    scheduler = agent.scheduler
    alarms = len(scheduler._alarms)
    after = rss_mb()
    rng = random.Random(0)
    now = scheduler.now()
    set_times, turn_times = [], []
    for _ in range(RESCHEDULES):
        n = rng.randrange(threads)
        job = SleepJob(f"idle-{n}", f"user-{n % USERS}", now + 3_600 + rng.random(), Reason.IDLE)
        began = time.perf_counter()
        scheduler.set(job)
        set_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        agent._coordinator.on_turn(job.thread_id, job.user_id)
        turn_times.append(time.perf_counter() - began)
    return {
        "open_s": opened,
        "alarms": alarms,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "set_median_s": statistics.median(set_times),
        "set_p99_s": percentile(set_times, 0.99),
        "on_turn_median_s": statistics.median(turn_times),
    }


def bare_child(threads: int) -> dict[str, Any]:
    """APScheduler alone: one job per thread, then replacing one job as a turn would."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    def job() -> None:
        pass

    before = rss_mb()
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    due = datetime.fromtimestamp(time.time() + 3_600, UTC)
    began = time.perf_counter()
    for n in range(threads):
        scheduler.add_job(job, DateTrigger(due, timezone=UTC), id=f"idle-{n}")
    added = time.perf_counter() - began
    after = rss_mb()
    rng = random.Random(0)
    set_times = []
    for _ in range(RESCHEDULES):
        trigger = DateTrigger(
            datetime.fromtimestamp(time.time() + 3_600 + rng.random(), UTC), timezone=UTC
        )
        began = time.perf_counter()
        scheduler.add_job(job, trigger, id=f"idle-{rng.randrange(threads)}", replace_existing=True)
        set_times.append(time.perf_counter() - began)
    scheduler.shutdown(wait=False)
    return {
        "open_s": added,
        "alarms": threads,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "set_median_s": statistics.median(set_times),
        "set_p99_s": percentile(set_times, 0.99),
    }


def in_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url``, dropped afterwards: recovery reads
    every pending marker of its database, so it must hold only what was seeded."""
    import psycopg

    name = f"sleepagent_idle_scale_{os.getpid()}"
    parts = urlsplit(server_url)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield urlunsplit(parts._replace(path=f"/{name}"))
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- the burst ---------------------------------------------------------------------------


def burst(conversations: int, folder: Path) -> list[str]:
    def slow_model_call(prompt: Any) -> Any:
        time.sleep(BURST_MODEL_S)  # stands in for the provider's latency; costs no CPU
        return NOTHING_NEW  # the fact pass concludes the page on this one call

    config = SleepConfig(idle_seconds=1.0)
    lateness: list[float] = []
    lock, done = threading.Lock(), threading.Event()
    ended = 0

    def on_event(event: SleepEvent) -> None:
        nonlocal ended
        with lock:
            if event.kind is EventKind.STARTED and event.due_at is not None:
                lateness.append(event.at - event.due_at)
            elif event.kind in (EventKind.FINISHED, EventKind.FAILED):
                ended += 1
                if ended == conversations:
                    done.set()

    chat = ScriptedChatModel(["ok"] * conversations)
    sleep = ScriptedChatModel([slow_model_call] * conversations)
    with SleepTimeAgent(chat, sleep_model=sleep, db=folder / "burst.db", config=config) as agent:
        agent.subscribe(on_event)
        for n in range(conversations):
            agent.chat("hello", thread_id=f"burst-{n}", user_id=f"user-{n}")
        if not done.wait(600):
            return [f"  burst: not every run ended within 600 s ({ended}/{conversations})"]
    bound = conversations / config.max_concurrent_sleeps * BURST_MODEL_S + 0.1
    worst = max(lateness)
    return [
        f"  burst of {conversations}, {config.max_concurrent_sleeps} at once, "
        f"{BURST_MODEL_S * 1000:.0f} ms model call: start lateness median "
        f"{statistics.median(lateness) * 1000:.0f} ms, p99 {percentile(lateness, 0.99) * 1000:.0f}"
        f" ms, max {worst * 1000:.0f} ms; bound {bound * 1000:.0f} ms: "
        + ("held" if worst <= bound else "MISSED"),
    ]


# --- main --------------------------------------------------------------------------------


def report(name: str, ours: dict[str, Any], bare: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {ours['alarms']:,} alarms set",
        row("open to every alarm set", ours["open_s"], bare["open_s"], "s", 1.0),
        row(
            "RSS added",
            (ours["rss_after_mb"] - ours["rss_before_mb"]) / 1000,
            (bare["rss_after_mb"] - bare["rss_before_mb"]) / 1000,
            "MB",
        ),
        row("reschedule one, median", ours["set_median_s"], bare["set_median_s"], "µs", 1e6),
        row("reschedule one, p99", ours["set_p99_s"], bare["set_p99_s"], "µs", 1e6),
        f"  coordinator on_turn (a turn's whole timer cost), median "
        f"{ours['on_turn_median_s'] * 1e6:.1f} µs",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=1_000)
    parser.add_argument("--postgres", default=os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL"))
    parser.add_argument("--quick", action="store_true", help="10,000 threads, a burst of 200")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "bare":
            result = bare_child(int(rest[0]))
        else:
            result = recovery_child(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return
    threads = 10_000 if args.quick else args.threads
    conversations = 200 if args.quick else args.burst
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        seeded = Path(folder) / "seeded.db"
        print(f"seeded {threads:,} pending threads on SQLite in {seed(seeded, threads):.1f} s")
        bare = in_child("bare", str(threads))
        for mode in ("sync", "async"):
            copy = Path(folder) / f"{mode}.db"
            shutil.copy(seeded, copy)
            ours = in_child("recover", str(copy), mode, str(threads))
            print("\n".join(report(f"SQLite, {mode} agent", ours, bare)))
        if args.postgres:
            with scratch_database(args.postgres) as url:
                print(f"seeded {threads:,} on PostgreSQL in {seed(url, threads):.1f} s")
                for mode in ("sync", "async"):
                    ours = in_child("recover", url, mode, str(threads))
                    print("\n".join(report(f"PostgreSQL, {mode} agent", ours, bare)))
        print("\n".join(burst(conversations, Path(folder))))
    print(machine())


if __name__ == "__main__":
    main()
