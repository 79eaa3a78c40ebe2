"""P1 with recall: one synchronous turn with recall off, with recall on, and bare LangGraph.

The sibling of ``turn_vs_bare.py``. Three chatbots answer the same turns with the
same fixed-latency fake model, interleaved turn by turn in one process: ours with
recall off (the default), ours with ``recall_messages=10`` whose memory scope
already holds an imported history (``--history`` messages, LoCoMo-sized by
default, indexed at import), and a bare LangGraph chatbot. Each has its own
checkpointer and store of the same kind (in memory, a SQLite file each, or, with
``--postgres URL``, that database). Every turn of the recall agent searches the
index with its message's words, drawn like the history's from ``--vocabulary``
words (2,000 by default; with 44, every message matches every search, the
search's worst case). Prints median and p99 per backend: off / bare, on / bare,
on / off. Nothing is asserted: these are measurements.

Run::

    taskset -c 0 .venv/bin/python benchmarks/recall_turn_cost.py [--turns 600] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _sidebyside import DEFAULT_LATENCY_S, FixedLatencyModel, bare_chatbot, compare, machine
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from sleepagent import SleepConfig, SleepTimeAgent

WORDS = tuple(
    [
        "bicycle",
        "garage",
        "lisbon",
        "marathon",
        "painting",
        "cat",
        "pepper",
        "sister",
        "wedding",
        "guitar",
        "concert",
        "pottery",
        "hiking",
        "camping",
        "novel",
        "garden",
        "tulips",
        "coffee",
        "tea",
        "market",
        "oranges",
        "report",
        "friday",
        "adoption",
        "school",
        "teacher",
        "recipe",
        "pasta",
        "birthday",
        "museum",
        "beach",
        "summer",
        "winter",
        "trip",
        "train",
        "violin",
        "neighbour",
        "puppy",
        "yoga",
        "swimming",
        "photography",
        "charity",
        "volunteer",
        "festival",
    ]
)


def vocabulary(size: int) -> tuple[str, ...]:
    """The words sentences draw from: the named ones, then made-up ones up to ``size``."""
    made_up = (f"{WORDS[i % len(WORDS)][:4]}{i}" for i in range(max(0, size - len(WORDS))))
    return (*WORDS, *made_up)


def sentence(rng: random.Random, words: Sequence[str], length: int = 12) -> str:
    return " ".join(rng.choice(words) for _ in range(length)).capitalize() + "."


def bare_saver(kind: str, folder: Path, url: str | None) -> tuple[Any, Any]:
    if kind == "memory":
        return InMemorySaver(), None
    if kind == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        assert url is not None
        conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(conn)  # type: ignore[arg-type]
        saver.setup()
        return saver, conn
    conn = sqlite3.connect(str(folder / "bare.db"), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


def target(kind: str, folder: Path, name: str, url: str | None) -> Any:
    if kind == "memory":
        return None
    if kind == "postgres":
        return url
    return folder / f"{name}.db"


def measure(
    kind: str,
    turns: int,
    threads: int,
    latency: float,
    history: int,
    url: str | None,
    words: Sequence[str],
) -> dict[str, list[float]]:
    model = FixedLatencyModel(latency=latency)
    rng = random.Random(7)
    times: dict[str, list[float]] = {"off": [], "on": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saver, conn = bare_saver(kind, folder, url)
        bare = bare_chatbot(model, saver)
        recall = SleepConfig(recall_messages=10)
        # On PostgreSQL both agents share the database: each gets users of its own.
        with (
            SleepTimeAgent(model, db=target(kind, folder, "off", url), scheduler=None) as off,
            SleepTimeAgent(
                model, db=target(kind, folder, "on", url), scheduler=None, config=recall
            ) as on,
        ):
            records = [{"speaker": "Ines", "text": sentence(rng, words)} for _ in range(history)]
            for user in range(threads):
                on.import_messages(records, thread_id=f"history-{user}", user_id=f"on-u{user}")
            warm = min(threads, turns)
            for i in range(turns + warm):
                thread, message = f"t{i % threads}", sentence(rng, words, 8)
                user = i % threads
                began = time.perf_counter()
                off.chat(message, thread_id=f"off-{thread}", user_id=f"off-u{user}")
                spent_off = time.perf_counter() - began
                began = time.perf_counter()
                on.chat(message, thread_id=f"on-{thread}", user_id=f"on-u{user}")
                spent_on = time.perf_counter() - began
                began = time.perf_counter()
                bare.invoke(
                    {"messages": [("user", message)]},
                    {"configurable": {"thread_id": f"bare-{thread}"}},
                )
                if i >= warm:  # the first turn of each thread opens it
                    times["off"].append(spent_off)
                    times["on"].append(spent_on)
                    times["bare"].append(time.perf_counter() - began)
        if conn is not None:
            conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=600, help="turns measured per backend")
    parser.add_argument("--threads", type=int, default=20, help="threads and users")
    parser.add_argument("--history", type=int, default=600, help="indexed messages per user")
    parser.add_argument("--latency", type=float, default=DEFAULT_LATENCY_S, help="model seconds")
    parser.add_argument(
        "--vocabulary",
        type=int,
        default=2_000,
        help="distinct words the messages draw from (44: every message matches every search)",
    )
    parser.add_argument("--postgres", metavar="URL", help="also measure on this database")
    parser.add_argument("--quick", action="store_true", help="150 turns, 200 messages of history")
    args = parser.parse_args()
    turns = 150 if args.quick else args.turns
    history = 200 if args.quick else args.history
    print(machine())
    print(
        f"P1 with recall: {turns} sync turns per backend over {args.threads} threads, "
        f"{history} indexed messages per user over {args.vocabulary} words, fixed model latency "
        f"{args.latency * 1000:.0f} ms; recall off, recall on (10 messages) and bare "
        "interleaved"
    )
    kinds = ["memory", "sqlite", *(["postgres"] if args.postgres else [])]
    for kind in kinds:
        words = vocabulary(args.vocabulary)
        times = measure(kind, turns, args.threads, args.latency, history, args.postgres, words)
        print(kind)
        print("\n".join(compare("recall off vs bare", times["off"], times["bare"])))
        print("\n".join(compare("recall on vs bare", times["on"], times["bare"])))
        print("\n".join(compare("recall on vs off", times["on"], times["off"])))
    print(machine())


if __name__ == "__main__":
    main()
