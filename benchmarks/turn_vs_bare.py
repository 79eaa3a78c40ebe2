"""P1: one synchronous turn, ours beside a bare LangGraph chatbot, in memory and on SQLite.

Both answer the same turns with the same fixed-latency fake model, interleaved
turn by turn in one process (ours, then bare, on threads of the same length),
each with its own checkpointer of the same class (``InMemorySaver``, or
``SqliteSaver`` on its own file in the same folder). Ours is a
``SleepTimeAgent`` with no idle timer (sleep runs are measured elsewhere).
Prints median and p99 per backend as ours / bare / ratio.

Run::

    taskset -c 0 .venv/bin/python benchmarks/turn_vs_bare.py [--turns 600] [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from _sidebyside import DEFAULT_LATENCY_S, FixedLatencyModel, bare_chatbot, compare, machine
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from sleepagent import SleepTimeAgent


def bare_saver(kind: str, folder: Path) -> tuple[Any, Any]:
    if kind == "memory":
        return InMemorySaver(), None
    conn = sqlite3.connect(str(folder / "bare.db"), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


def measure(kind: str, turns: int, threads: int, latency: float) -> tuple[list[float], list[float]]:
    model = FixedLatencyModel(latency=latency)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saver, conn = bare_saver(kind, folder)
        bare = bare_chatbot(model, saver)
        db = None if kind == "memory" else folder / "ours.db"
        ours_times: list[float] = []
        bare_times: list[float] = []
        with SleepTimeAgent(model, db=db, scheduler=None) as agent:
            warm = min(threads, turns)
            for i in range(turns + warm):
                thread = f"t{i % threads}"
                began = time.perf_counter()
                agent.chat(f"message {i}", thread_id=thread)
                ours = time.perf_counter() - began
                began = time.perf_counter()
                bare.invoke(
                    {"messages": [("user", f"message {i}")]},
                    {"configurable": {"thread_id": thread}},
                )
                if i >= warm:  # the first turn of each thread opens it
                    ours_times.append(ours)
                    bare_times.append(time.perf_counter() - began)
        if conn is not None:
            conn.close()
    return ours_times, bare_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=600, help="turns measured per backend")
    parser.add_argument("--threads", type=int, default=20, help="threads the turns go round")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S, help="model seconds")
    parser.add_argument("--quick", action="store_true", help="150 turns")
    args = parser.parse_args()
    turns = 150 if args.quick else args.turns
    print(machine())
    print(
        f"P1: {turns} sync turns per backend over {args.threads} threads "
        f"({turns // args.threads} turns each), fixed model latency {args.latency * 1000:.0f} ms, "
        "ours and bare interleaved"
    )
    for kind in ("memory", "sqlite"):
        ours, bare = measure(kind, turns, args.threads, args.latency)
        print(kind)
        print("\n".join(compare("turn", ours, bare)))
    print(machine())


if __name__ == "__main__":
    main()
