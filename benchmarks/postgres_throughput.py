"""P5: turns per second on PostgreSQL from 1 and 4 processes, with sleep runs in flight.

Every process answers turns one after another for ``--seconds``, going round
10 conversations of its own, with the same fixed-latency fake model. Bare:
LangGraph's minimal chatbot on ``PostgresSaver``. Ours: ``SleepTimeAgent`` on
the same database, and in each process ``--sleepers`` threads run sleep-time
compute on those conversations back to back (``--sleep-latency`` seconds of
model time per run), so runs hold their locks and pooled connections while
the turns are measured. Measurements alternate bare / ours at 1 and at 4
processes, ``--rounds`` times; the best round of each is kept.

Run::

    SLEEPAGENT_TEST_POSTGRES_URL=postgresql://... \\
      taskset -c 0 .venv/bin/python benchmarks/postgres_throughput.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import threading
import time
import uuid
from typing import Any

from _sidebyside import DEFAULT_LATENCY_S, FixedLatencyModel, bare_chatbot, machine

CONVERSATIONS = 10


def _bare_worker(url: str, tag: str, seconds: float, latency: float, start: Any, done: Any) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        graph = bare_chatbot(FixedLatencyModel(latency=latency), saver)

        def turn(i: int) -> None:
            graph.invoke(
                {"messages": [("user", f"message {i}")]},
                {"configurable": {"thread_id": f"{tag}-c{i % CONVERSATIONS}"}},
            )

        done.put(_drive(turn, seconds, start))


def _ours_worker(
    url: str,
    tag: str,
    seconds: float,
    latency: float,
    sleepers: int,
    sleep_latency: float,
    start: Any,
    done: Any,
) -> None:
    from sleepagent import SleepTimeAgent

    model = FixedLatencyModel(latency=latency)
    sleeper = FixedLatencyModel(latency=sleep_latency, finish=True)
    with SleepTimeAgent(model, sleep_model=sleeper, db=url, scheduler=None) as agent:
        stop = threading.Event()

        def sleep_runs(k: int) -> None:
            n = k
            while not stop.is_set():
                agent.sleep(thread_id=f"{tag}-c{n % CONVERSATIONS}")
                n += sleepers

        def turn(i: int) -> None:
            agent.chat(f"message {i}", thread_id=f"{tag}-c{i % CONVERSATIONS}")

        for i in range(CONVERSATIONS):  # every conversation has something to sleep on
            turn(i)
        threads = [threading.Thread(target=sleep_runs, args=(k,)) for k in range(sleepers)]
        for thread in threads:
            thread.start()
        try:
            done.put(_drive(turn, seconds, start))
        finally:
            stop.set()
            for thread in threads:
                thread.join(sleep_latency * 3 + 30)


def _drive(turn: Any, seconds: float, start: Any) -> int:
    turn(-1)  # warm up
    start.wait()
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        turn(count)
        count += 1
    return count


def measure(kind: str, url: str, processes: int, args: argparse.Namespace) -> float:
    """Turns per second over all processes."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(processes), ctx.Queue()
    tag = uuid.uuid4().hex[:8]
    workers = []
    for n in range(processes):
        common = (url, f"{kind}-{tag}-p{n}", args.seconds, args.latency)
        if kind == "bare":
            target, extra = _bare_worker, ()
        else:
            target, extra = _ours_worker, (args.sleepers, args.sleep_latency)
        workers.append(ctx.Process(target=target, args=(*common, *extra, start, done)))
    for worker in workers:
        worker.start()
    total = sum(done.get(timeout=args.seconds + 120) for _ in workers)
    for worker in workers:
        worker.join(60)
    return total / args.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=6.0, help="measured per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S)
    parser.add_argument("--sleepers", type=int, default=2, help="sleep-run threads per process")
    parser.add_argument("--sleep-latency", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="one round of 4 s")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL or set SLEEPAGENT_TEST_POSTGRES_URL")
    if args.quick:
        args.rounds, args.seconds = 1, 4.0
    print(machine())
    print(
        f"P5: PostgreSQL, sync turns back to back for {args.seconds:.0f} s per run, model "
        f"{args.latency * 1000:.0f} ms; ours with {args.sleepers} sleep-run threads per process "
        f"({args.sleep_latency:.1f} s of model time per run); best of {args.rounds} rounds"
    )
    best: dict[tuple[str, int], float] = {}
    for _ in range(args.rounds):
        for processes in (1, 4):
            for kind in ("bare", "ours"):
                rate = measure(kind, args.postgres, processes, args)
                best[kind, processes] = max(best.get((kind, processes), 0.0), rate)
    for processes in (1, 4):
        ours, bare = best["ours", processes], best["bare", processes]
        print(
            f"  {processes} process{'es' if processes > 1 else '  '}  ours {ours:7.1f} turns/s  "
            f"bare {bare:7.1f} turns/s  ratio {ours / bare:5.2f}x"
        )
    ours_scale = best["ours", 4] / best["ours", 1]
    bare_scale = best["bare", 4] / best["bare", 1]
    print(
        f"  scaling 1 -> 4     ours {ours_scale:7.2f}x        bare {bare_scale:7.2f}x        "
        f"ratio {ours_scale / bare_scale:5.2f}x"
    )
    print(machine())


if __name__ == "__main__":
    main()
