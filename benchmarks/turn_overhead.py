"""What the library adds to a user's turn, with an instant (scripted) model.

Runs N turns on one thread and prints chat() latency (median, p99, max) per
backend, plus the same while a sleep run of that thread is in flight with its
model call blocked, so the figures show that the turn does not wait for it.
Run: .venv/bin/python benchmarks/turn_overhead.py [--turns N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sleepagent import SleepTimeAgent
from sleepagent.sleep.facts import NOTHING_NEW
from sleepagent.testing import ScriptedChatModel


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(db: str | Path | None, turns: int, *, thread: str, during_sleep: bool) -> list[float]:
    release, entered = threading.Event(), threading.Event()

    def blocked(prompt):
        entered.set()
        release.wait(300)
        return NOTHING_NEW  # the fact pass concludes the page on this one call

    chat = ScriptedChatModel(["ok"] * (turns + 1))
    sleep = ScriptedChatModel([blocked])
    latencies = []
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, scheduler=None) as agent:
        agent.chat("warm up", thread_id=thread)
        worker = None
        if during_sleep:
            worker = threading.Thread(target=agent.sleep, kwargs={"thread_id": thread})
            worker.start()
            entered.wait(30)
        for i in range(turns):
            began = time.perf_counter()
            agent.chat(f"message {i}", thread_id=thread)
            latencies.append(time.perf_counter() - began)
        release.set()
        if worker is not None:
            worker.join(30)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure too (its tables are used)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        backends: list[tuple[str, str | Path | None]] = [
            ("memory", None),
            ("sqlite", Path(folder) / "bench.db"),
        ]
        if args.postgres:
            backends.append(("postgres", args.postgres))
        print(f"{args.turns} turns on one thread, scripted model (no model time)")
        for name, db in backends:
            for during in (False, True):
                # A fresh thread each time: a longer thread means bigger checkpoints.
                thread = f"bench-{name}-{'during' if during else 'idle'}-{time.time_ns()}"
                values = measure(db, args.turns, thread=thread, during_sleep=during)
                label = "while a sleep run is in flight" if during else "idle"
                median, p99 = statistics.median(values), percentile(values, 0.99)
                print(
                    f"{name:8} {label:32} median {median * 1000:6.2f} ms  "
                    f"p99 {p99 * 1000:6.2f} ms  max {max(values) * 1000:6.2f} ms"
                )


if __name__ == "__main__":
    main()
