"""100 conversations go quiet at once; each sleep run spends 0.2 s in its model call.

Prints how late each run started against its due time (median, p99, max) and
the peak number of runs in flight at once, with the real APScheduler timer and
SQLite persistence. Run: .venv/bin/python benchmarks/idle_burst.py [--conversations N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sleepagent import SleepConfig, SleepTimeAgent
from sleepagent.scheduling import EventKind, SleepEvent
from sleepagent.sleep.facts import NOTHING_NEW
from sleepagent.testing import ScriptedChatModel

MODEL_SECONDS = 0.2


def slow_model_call(prompt):
    time.sleep(MODEL_SECONDS)  # stands in for the provider's latency
    return NOTHING_NEW  # the fact pass concludes a "hello" page on this one call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--max-concurrent", type=int, default=SleepConfig().max_concurrent_sleeps)
    args = parser.parse_args()
    n = args.conversations

    lateness: list[float] = []
    in_flight = peak = 0
    lock = threading.Lock()
    all_done = threading.Event()

    def on_event(event: SleepEvent) -> None:
        nonlocal in_flight, peak
        with lock:
            if event.kind is EventKind.STARTED and event.due_at is not None:
                lateness.append(event.at - event.due_at)
                in_flight += 1
                peak = max(peak, in_flight)
            elif event.kind in (EventKind.FINISHED, EventKind.FAILED):
                in_flight -= 1
                if event.kind is EventKind.FAILED:
                    print("failed:", event.error)
                if len(lateness) == n and in_flight == 0:
                    all_done.set()

    config = SleepConfig(idle_seconds=1.0, max_concurrent_sleeps=args.max_concurrent)
    with tempfile.TemporaryDirectory() as folder:
        chat = ScriptedChatModel(["ok"] * n)
        sleep = ScriptedChatModel([slow_model_call] * n)
        with SleepTimeAgent(
            chat, sleep_model=sleep, db=Path(folder) / "bench.db", config=config
        ) as agent:
            agent.subscribe(on_event)
            began = time.perf_counter()
            for i in range(n):
                agent.chat("hello", thread_id=f"conversation-{i}", user_id=f"user-{i}")
            turns = time.perf_counter() - began
            if not all_done.wait(120):
                raise SystemExit("not every run finished within 120 s")
            total = time.perf_counter() - began

    late = sorted(lateness)
    p99 = late[min(len(late) - 1, round(0.99 * (len(late) - 1)))]
    print(
        f"{n} conversations, idle 1.0 s, model call {MODEL_SECONDS} s per run, "
        f"max_concurrent_sleeps={args.max_concurrent}"
    )
    print(f"turns: {turns:.2f} s for {n} ({turns / n * 1000:.1f} ms each)")
    print(
        f"start lateness vs due time: median {statistics.median(late) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms"
    )
    print(f"peak runs in flight at once: {peak}")
    print(f"all {n} runs finished {total:.2f} s after the first turn")


if __name__ == "__main__":
    main()
