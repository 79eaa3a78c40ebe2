"""P4: turn cost and checkpoint bytes as one thread grows, ours beside a bare LangGraph chatbot.

One thread on SQLite, sync. Ours (``SleepTimeAgent``, default ``state_messages``
window) and bare (LangGraph's minimal chatbot on ``SqliteSaver``) answer the
same turns interleaved, with the same fixed-latency fake model, each on its own
file. Bare grows with the thread (every checkpoint holds the whole message
list), so it is stopped at ``--bare-turns``; ours goes on to ``--turns``.
Per milestone: the median of the turns just before it, and the checkpoint bytes
written per turn over that stretch (the ``checkpoints`` and ``writes`` tables of
the file, read with SQL).

Run::

    taskset -c 0 .venv/bin/python benchmarks/thread_length.py [--turns 3000] [--bare-turns 1000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from _sidebyside import DEFAULT_LATENCY_S, FixedLatencyModel, bare_chatbot, machine
from langgraph.checkpoint.sqlite import SqliteSaver

from sleepagent import SleepConfig, SleepTimeAgent

WINDOW = 10
"""Turns whose median stands for a milestone."""


def checkpoint_bytes(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        (checkpoints,) = conn.execute(
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints"
        ).fetchone()
        (writes,) = conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes").fetchone()
    finally:
        conn.close()
    return int(checkpoints + writes)


def milestones(turns: int) -> list[int]:
    marks = [m for m in (10, 100, 300, 1000, 2000, 3000, 5000, 10000) if m <= turns]
    return marks if turns in marks else [*marks, turns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=3000, help="turns of ours")
    parser.add_argument("--bare-turns", type=int, default=1000, help="turns of bare")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S)
    parser.add_argument("--quick", action="store_true", help="1000 turns, bare to 300")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.bare_turns = 1000, 300
    config = SleepConfig()
    print(machine())
    print(
        f"P4: one thread on SQLite, ours to turn {args.turns}, bare to turn {args.bare_turns}, "
        f"model {args.latency * 1000:.0f} ms, ours keeps {config.state_messages} messages in "
        f"graph state and sends the model {config.history_messages}"
    )
    model = FixedLatencyModel(latency=args.latency)
    marks = milestones(args.turns)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conn = sqlite3.connect(str(folder / "bare.db"), check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        bare = bare_chatbot(model, saver)
        ours_times: list[float] = []
        bare_times: list[float] = []
        bytes_at: dict[str, dict[int, int]] = {"ours": {0: 0}, "bare": {0: 0}}
        with SleepTimeAgent(model, db=folder / "ours.db", scheduler=None, config=config) as agent:
            for turn in range(1, args.turns + 1):
                began = time.perf_counter()
                agent.chat(f"message {turn}", thread_id="long")
                ours_times.append(time.perf_counter() - began)
                if turn <= args.bare_turns:
                    began = time.perf_counter()
                    bare.invoke(
                        {"messages": [("user", f"message {turn}")]},
                        {"configurable": {"thread_id": "long"}},
                    )
                    bare_times.append(time.perf_counter() - began)
                if turn in marks or turn + WINDOW in marks:
                    bytes_at["ours"][turn] = checkpoint_bytes(folder / "ours.db")
                    if turn <= args.bare_turns:
                        bytes_at["bare"][turn] = checkpoint_bytes(folder / "bare.db")
        conn.close()
    print(
        f"  {'turn':>6}  {'ours ms':>9} {'bare ms':>9} {'ratio':>6}   "
        f"{'ours B/turn':>11} {'bare B/turn':>11}"
    )
    for mark in marks:
        ours_ms = statistics.median(ours_times[mark - WINDOW : mark]) * 1000
        ours_b = _per_turn(bytes_at["ours"], mark)
        if mark <= args.bare_turns:
            bare_ms = statistics.median(bare_times[mark - WINDOW : mark]) * 1000
            bare_b = _per_turn(bytes_at["bare"], mark)
            print(
                f"  {mark:>6}  {ours_ms:9.2f} {bare_ms:9.2f} {ours_ms / bare_ms:5.2f}x   "
                f"{ours_b:11,.0f} {bare_b:11,.0f}"
            )
        else:
            print(f"  {mark:>6}  {ours_ms:9.2f} {'-':>9} {'':>6}   {ours_b:11,.0f} {'-':>11}")
    first, last = marks[0], marks[-1]
    growth = statistics.median(ours_times[last - WINDOW : last]) / statistics.median(
        ours_times[first - WINDOW : first]
    )
    print(f"  ours: turn {last} / turn {first}: {growth:.2f}x")
    bare_last = max(m for m in marks if m <= args.bare_turns)
    bare_growth = statistics.median(bare_times[bare_last - WINDOW : bare_last]) / statistics.median(
        bare_times[first - WINDOW : first]
    )
    print(f"  bare: turn {bare_last} / turn {first}: {bare_growth:.2f}x")
    print(machine())


def _per_turn(bytes_at: dict[int, int], mark: int) -> float:
    start = mark - WINDOW
    if start not in bytes_at or mark not in bytes_at:
        return float("nan")
    return (bytes_at[mark] - bytes_at[start]) / WINDOW


if __name__ == "__main__":
    main()
