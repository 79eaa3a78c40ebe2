"""Command line: ``sleepagent demo`` and ``sleepagent memory show``."""

from __future__ import annotations

import argparse
import json
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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "memory":
        return _memory_show(args)
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sleepagent", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser("demo", help="run the offline, scripted demo")
    demo.add_argument("--db", help="SQLite file to keep (default: a temporary file)")

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
    print(f"memory of {scope.key}")
    for block in blocks:
        stamp = block.updated_at.isoformat() if block.updated_at else "never written"
        print(f"\n[{block.label}] v{block.version}, {block.chars}/{block.limit} chars, {stamp}")
        if block.description:
            print(f"  ({block.description})")
        for line in block.value.splitlines() or ["(empty)"]:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
