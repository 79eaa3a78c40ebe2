"""Command line: ``sleepagent demo``, ``chat``, ``memory show`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sleepagent.blocks import DEFAULT_BLOCKS
from sleepagent.memory import BlockStore
from sleepagent.persistence import open_persistence
from sleepagent.scope import Scope

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # The benchmark has its own, larger argument parser.
        from sleepagent.bench.__main__ import main as bench_main

        return bench_main(arguments[1:])
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.command == "demo":
        return _demo(args)
    if args.command == "chat":
        return _chat(args)
    if args.command == "memory":
        return _memory_show(args)
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sleepagent", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser("demo", help="run the offline, scripted demo")
    commands.add_parser(
        "bench", help="run the paper's experiments (options: sleepagent bench --help)"
    )
    demo.add_argument("--db", help="SQLite file to keep (default: a temporary file)")

    chat = commands.add_parser(
        "chat",
        help="chat with a real model; sleep-time compute runs when you pause",
        description="Chat with an OpenAI or OpenAI-compatible model in the terminal. "
        "Needs OPENAI_API_KEY, or a server given by --base-url / OPENAI_BASE_URL.",
    )
    chat.add_argument(
        "--model",
        default=os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
        help="model spec 'openai:<model>' (default: $SLEEPAGENT_MODEL or openai:gpt-4o-mini)",
    )
    chat.add_argument("--sleep-model", help="model spec of the sleep-time agent (default: --model)")
    chat.add_argument(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 (default: $OPENAI_BASE_URL)",
    )
    chat.add_argument("--thread", default="cli", help="conversation id (default: cli)")
    chat.add_argument("--user", help="user id: memory then spans the user's threads")
    chat.add_argument("--db", default="sleepagent.db", help="SQLite file (default: sleepagent.db)")
    chat.add_argument(
        "--idle",
        type=float,
        default=30.0,
        help="seconds of quiet before sleep-time compute runs (default: 30)",
    )
    chat.add_argument(
        "--timeout",
        type=float,
        help="seconds per model request (default: 600 for a server on this machine or "
        "network, 120 for a hosted API)",
    )
    chat.add_argument(
        "--max-retries", type=int, default=2, help="retries of a failed request (default: 2)"
    )

    memory = commands.add_parser("memory", help="inspect memory blocks")
    memory_commands = memory.add_subparsers(dest="memory_command", required=True)
    show = memory_commands.add_parser("show", help="print the blocks of a memory scope")
    show.add_argument("--db", required=True, help="SQLite file of the agent")
    who = show.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the user whose memory to show")
    who.add_argument("--thread", help="the thread whose memory to show (thread scope)")
    show.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from sleepagent.demo import run_demo

    if args.db:
        return run_demo(sys.stdout, db=args.db)
    with tempfile.TemporaryDirectory() as folder:
        return run_demo(sys.stdout, db=str(Path(folder) / "sleepagent-demo.db"))


def _chat(args: argparse.Namespace) -> int:
    from sleepagent.repl import ChatSettings, run_chat

    settings = ChatSettings(
        model=args.model,
        sleep_model=args.sleep_model,
        base_url=args.base_url,
        thread_id=args.thread,
        user_id=args.user,
        db=args.db,
        idle_seconds=args.idle,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    return run_chat(settings, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)


def _memory_show(args: argparse.Namespace) -> int:
    if not Path(args.db).is_file():
        print(f"sleepagent: no database at {args.db}", file=sys.stderr)
        return 1
    scope = Scope("user", args.user) if args.user else Scope("thread", args.thread)
    with open_persistence(args.db) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS).load(scope)
    if args.json:
        print(json.dumps({"scope": scope.key, "blocks": [b.to_dict() for b in blocks]}, indent=2))
        return 0
    from sleepagent.repl import format_blocks

    print(f"memory of {scope.key}\n")
    print(format_blocks(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
