"""P2: many concurrent conversations on SQLite (asyncio), ours beside a bare LangGraph chatbot.

N conversations each send T turns one after another, all conversations at once,
on one event loop. Bare: LangGraph's minimal chatbot on ``AsyncSqliteSaver``
(one aiosqlite connection). Ours: ``AsyncSleepTimeAgent`` on a SQLite file (its
own saver and store connections). Same fixed-latency fake model. Rounds
alternate bare / ours / ours with sleep runs in flight, so machine noise hits
all three; per-turn latencies are pooled over the rounds.

"With sleep runs": quiet threads (a quarter as many as conversations by
default) run sleep-time compute back to back while the turns are measured,
each run on one new log entry, with 2 s of model time per run by default, so
runs are always in their model calls or committing. The figure to watch is
ours with runs / ours without. Runs are measured twice: with the default
``turn_precedence_seconds`` (each step of a run first waits, for a bounded
time, while turns are in flight) and with 0 (precedence off), with the sleep
runs each finished beside them: precedence trades runs per second for turns.

Run::

    taskset -c 0 .venv/bin/python benchmarks/async_conversations.py [--conversations 200 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite
from _sidebyside import (
    DEFAULT_LATENCY_S,
    FixedLatencyModel,
    bare_chatbot,
    compare,
    machine,
    percentile,
    row,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from sleepagent import AsyncSleepTimeAgent, SleepConfig

PRECEDENCE_OFF = SleepConfig(turn_precedence_seconds=0)


async def conversation(turn, name: str, turns: int, latencies: list[float]) -> None:
    for i in range(turns):
        began = time.perf_counter()
        await turn(name, f"message {i}")
        latencies.append(time.perf_counter() - began)


async def bare_round(folder: Path, n: int, turns: int, latency: float, tag: str) -> list[float]:
    model = FixedLatencyModel(latency=latency)
    async with aiosqlite.connect(str(folder / f"bare-{tag}.db")) as conn:
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        graph = bare_chatbot(model, saver, mode="async")

        async def turn(thread: str, text: str) -> None:
            await graph.ainvoke(
                {"messages": [("user", text)]}, {"configurable": {"thread_id": thread}}
            )

        latencies: list[float] = []
        await asyncio.gather(*(conversation(turn, f"c{j}", turns, latencies) for j in range(n)))
        return latencies


async def ours_round(
    folder: Path,
    n: int,
    turns: int,
    latency: float,
    tag: str,
    sleepers: int,
    sleep_latency: float,
    config: SleepConfig | None = None,
) -> tuple[list[float], int]:
    """Latencies of every turn, and the sleep runs finished meanwhile."""
    model = FixedLatencyModel(latency=latency)
    sleep_model = FixedLatencyModel(latency=sleep_latency, finish=True)
    async with AsyncSleepTimeAgent(
        model, sleep_model=sleep_model, db=folder / f"ours-{tag}.db", scheduler=None, config=config
    ) as agent:

        async def turn(thread: str, text: str) -> None:
            await agent.chat(text, thread_id=thread)

        done = asyncio.Event()
        runs_done = [0]

        async def sleeper(j: int) -> None:
            # Back-to-back sleep runs on a quiet thread of its own, each on one new
            # log entry, until the turns are over: runs are in flight throughout.
            thread = f"quiet{j}"
            scope = agent.scope(thread_id=thread)
            while not done.is_set():
                entry = [("user", "something to remember", None)]
                await agent.blocks.aappend(scope, thread, entry, at="2026-01-01T00:00:00+00:00")
                await agent.sleep(thread_id=thread)
                runs_done[0] += 1

        runs = [asyncio.create_task(sleeper(j)) for j in range(sleepers)]
        if runs:
            await asyncio.sleep(0.05)  # let the runs reach their model calls
        latencies: list[float] = []
        await asyncio.gather(*(conversation(turn, f"c{j}", turns, latencies) for j in range(n)))
        finished = runs_done[0]
        done.set()
        await asyncio.gather(*runs)
        if runs and finished < sleepers:
            print("    (some sleep runs never finished during the turns: lower --sleep-latency)")
        return latencies, finished


def report(
    n: int,
    bare: list[float],
    ours: list[float],
    during: dict[str, list[float]],
    runs: dict[str, int],
) -> None:
    print(f"{n} conversations: {len(ours)} turns each of bare / ours / ours with runs (x2)")
    print("\n".join(compare("turn", ours, bare)))
    for name, latencies in during.items():
        print(
            f"  ours with sleep runs in flight, {name} ({runs[name]} runs finished "
            "during the turns) (as 'ours') / ours without them (as 'bare'):"
        )
        print(row("turn median", statistics.median(latencies), statistics.median(ours)))
        print(row("turn p99", percentile(latencies, 0.99), percentile(ours, 0.99)))


async def main_async(args: argparse.Namespace) -> None:
    print(machine())
    print(
        f"P2: asyncio, SQLite, {args.turns} turns per conversation, {args.rounds} rounds, "
        f"model {args.latency * 1000:.0f} ms, sleep model {args.sleep_latency:.1f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in args.conversations:
            bare: list[float] = []
            ours: list[float] = []
            variants = {"precedence on": None, "precedence off": PRECEDENCE_OFF}
            during: dict[str, list[float]] = {name: [] for name in variants}
            runs = dict.fromkeys(variants, 0)
            for r in range(args.rounds):
                tag = f"{n}-{r}"
                bare += await bare_round(folder, n, args.turns, args.latency, tag)
                ours += (await ours_round(folder, n, args.turns, args.latency, tag, 0, 0.0))[0]
                sleepers = args.sleepers or max(1, n // 4)
                for v, (name, config) in enumerate(variants.items()):
                    latencies, finished = await ours_round(
                        folder,
                        n,
                        args.turns,
                        args.latency,
                        f"{tag}-s{v}",
                        sleepers,
                        args.sleep_latency,
                        config,
                    )
                    during[name] += latencies
                    runs[name] += finished
            report(n, bare, ours, during, runs)
    print(machine())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--turns", type=int, default=5, help="turns per conversation")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S)
    parser.add_argument("--sleep-latency", type=float, default=2.0)
    parser.add_argument(
        "--sleepers", type=int, default=0, help="sleep runs in flight (default: a quarter of N)"
    )
    parser.add_argument("--quick", action="store_true", help="one round, 3 turns each")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.turns = 1, 3
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
