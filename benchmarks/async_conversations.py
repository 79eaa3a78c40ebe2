"""P2: many concurrent conversations on SQLite (asyncio), ours beside a bare LangGraph chatbot.

N conversations each send T turns one after another, all conversations at once,
on one event loop. Bare: LangGraph's minimal chatbot on ``AsyncSqliteSaver``
(one aiosqlite connection). Ours: ``AsyncSleepTimeAgent`` on a SQLite file (its
own saver and store connections). Same fixed-latency fake model. Rounds
alternate bare / ours / ours with sleep runs in flight, so machine noise hits
all three; per-turn latencies are pooled over the rounds.

"With sleep runs": before the round, as many quiet threads as conversations
logged a turn each; their sleep runs (2 s of model time each by default) start
just before the turns, so the turns are answered while those runs are in
their model calls and commit. The figure to watch is ours-with-runs / ours.

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
    folder: Path, n: int, turns: int, latency: float, tag: str, sleep_latency: float | None
) -> list[float]:
    model = FixedLatencyModel(latency=latency)
    sleeper = FixedLatencyModel(latency=sleep_latency or 0.0, finish=True)
    config = SleepConfig(max_concurrent_sleeps=max(1, n))
    async with AsyncSleepTimeAgent(
        model, sleep_model=sleeper, db=folder / f"ours-{tag}.db", scheduler=None, config=config
    ) as agent:

        async def turn(thread: str, text: str) -> None:
            await agent.chat(text, thread_id=thread)

        runs: list[asyncio.Task[object]] = []
        if sleep_latency is not None:
            for j in range(n):
                await agent.chat("something to remember", thread_id=f"quiet{j}")
            runs = [asyncio.create_task(agent.sleep(thread_id=f"quiet{j}")) for j in range(n)]
            await asyncio.sleep(0.05)  # let the runs reach their model calls
        latencies: list[float] = []
        await asyncio.gather(*(conversation(turn, f"c{j}", turns, latencies) for j in range(n)))
        in_flight = sum(not run.done() for run in runs)
        await asyncio.gather(*runs)
        if runs and in_flight == 0:
            print("    (the sleep runs ended before the turns did: raise --sleep-latency)")
        return latencies


def report(n: int, bare: list[float], ours: list[float], during: list[float]) -> None:
    print(f"{n} conversations: {len(ours)} turns each of bare / ours / ours with runs")
    print("\n".join(compare("turn", ours, bare)))
    print(row("with runs / without: median", statistics.median(during), statistics.median(ours)))
    print(row("with runs / without: p99", percentile(during, 0.99), percentile(ours, 0.99)))


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
            during: list[float] = []
            for r in range(args.rounds):
                tag = f"{n}-{r}"
                bare += await bare_round(folder, n, args.turns, args.latency, tag)
                ours += await ours_round(folder, n, args.turns, args.latency, tag, None)
                during += await ours_round(
                    folder, n, args.turns, args.latency, f"{tag}-s", args.sleep_latency
                )
            report(n, bare, ours, during)
    print(machine())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--turns", type=int, default=5, help="turns per conversation")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S)
    parser.add_argument("--sleep-latency", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="one round, 3 turns each")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.turns = 1, 3
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
