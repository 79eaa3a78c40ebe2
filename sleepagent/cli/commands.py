"""The ``sleepagent`` command: demo, chat, import, memory and bench."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sleepagent._version import __version__
from sleepagent.errors import ConfigurationError, SleepAgentError, StorageError
from sleepagent.inspector import cli as inspect_cli
from sleepagent.store.dburl import redact_url

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

    from sleepagent.memory.blocks import MemoryBlock
    from sleepagent.scope import Scope
    from sleepagent.store.catalog import ScopeSummary

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Sleep-time compute for LangGraph chatbots: a sleep-time agent rewrites the memory
the chat agent answers from, between the user's turns."""

EPILOG = """\
examples:
  sleepagent demo                         offline walk-through, no key needed
  sleepagent chat --offline               terminal chat on scripted models
  sleepagent chat --model openai:gpt-4o-mini
  sleepagent import history.jsonl --thread t1 --user ada
  sleepagent memory list --db sleepagent.db
  sleepagent memory export --user ada     everything stored for a user, as JSON
  sleepagent bench --help                 the paper's experiments"""

DB_HELP = (
    "SQLite file, sqlite:///FILE URL or postgresql:// URL "
    "(default: $SLEEPAGENT_DB or sleepagent.db)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # The benchmark has its own, larger argument parser.
        from sleepagent.bench.__main__ import main as bench_main

        return bench_main(arguments[1:], prog="sleepagent bench")
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130  # Ctrl-C outside the chat's prompt: stop quietly, as shells expect
    except SleepAgentError as error:
        print(f"sleepagent: {error}", file=sys.stderr)
        if isinstance(error, StorageError):
            print(
                "  the database is the --db option: a SQLite file or a postgresql:// URL",
                file=sys.stderr,
            )
        return 2 if isinstance(error, ConfigurationError) else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sleepagent`` command; ``bench`` parses its own options."""
    parser = argparse.ArgumentParser(
        prog="sleepagent",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sleepagent {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_demo(commands)
    _add_chat(commands)
    _add_import(commands)
    _add_memory(commands)
    inspect_cli.add_parser(commands).set_defaults(run=inspect_cli.run)
    commands.add_parser(
        "bench",
        help="run the paper's experiments (see: sleepagent bench --help)",
        add_help=False,
    )
    return parser


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="offline walk-through on scripted models (no key, no network)",
        description="A scripted conversation on the real library: memory learned between "
        "turns, then the same questions answered test-time only and from sleep-time memory, "
        "with the tokens of each.",
    )
    demo.add_argument(
        "--db",
        metavar="FILE",
        help="keep the demo's SQLite database in FILE, to inspect with 'sleepagent memory' "
        "(default: a temporary file, deleted at the end)",
    )
    demo.set_defaults(run=_demo)


def _add_chat(commands: Any) -> None:
    chat = commands.add_parser(
        "chat",
        help="terminal chat; sleep-time compute runs when you pause",
        description="Chat in the terminal with a model of any LangChain provider, or of an "
        "OpenAI-compatible server. An openai: model needs OPENAI_API_KEY or a server given by "
        "--base-url (or OPENAI_BASE_URL); another provider reads its own key (such as "
        "ANTHROPIC_API_KEY); --offline needs neither. Commands inside: /memory, /sleep, "
        "/history LABEL, /usage, /help, /quit.",
    )
    chat.add_argument(
        "--model",
        default=os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
        help="model spec PROVIDER:MODEL, such as openai:gpt-4o-mini, "
        "anthropic:claude-sonnet-4-5 or ollama:llama3.2 "
        "(default: $SLEEPAGENT_MODEL or openai:gpt-4o-mini)",
    )
    chat.add_argument(
        "--sleep-model",
        metavar="MODEL",
        help="model spec of the sleep-time agent (default: --model)",
    )
    chat.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 (default: $OPENAI_BASE_URL)",
    )
    chat.add_argument(
        "--offline",
        action="store_true",
        help="use scripted models: no key, no network (memory and sleep runs are real)",
    )
    chat.add_argument("--thread", default="cli", help="conversation id (default: cli)")
    chat.add_argument("--user", help="user id: memory then follows the user across threads")
    chat.add_argument("--db", default=_default_db(), help=DB_HELP)
    chat.add_argument(
        "--idle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="quiet time before sleep-time compute runs (default: 30)",
    )
    chat.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds per model request (default: 600 for a server on this machine or "
        "network, 120 for a hosted API)",
    )
    chat.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="retries of a failed model request (default: 2)",
    )
    chat.add_argument(
        "--history",
        metavar="FILE",
        default=_default_history(),
        help="file of your past input lines, for the up arrow (default: %(default)s)",
    )
    chat.set_defaults(run=_chat)


def _add_import(commands: Any) -> None:
    importing = commands.add_parser(
        "import",
        help="log earlier history (JSONL) into a thread, without calling the chat model",
        description="Log a conversation's earlier messages into an agent's database, as if "
        "they had been said on the thread. FILE has one JSON object a line, oldest first: "
        '{"role": "user" | "assistant", "text": ...}, or {"speaker": NAME, "text": ...}, '
        'with an optional "timestamp", and optional "thread" and "user" that override '
        "--thread and --user for that line. Every line is checked before anything is "
        "written. Without --sleep no model is called: the messages wait as pending work "
        "for the next agent that opens the database.",
    )
    importing.add_argument("file", type=Path, metavar="FILE", help="the JSONL file")
    importing.add_argument("--thread", help="the thread of lines that name none")
    importing.add_argument("--user", help="the user of lines that name none (user memory)")
    importing.add_argument(
        "--session-date",
        metavar="WHEN",
        help="when the messages were said, for lines without a timestamp (e.g. '3 March 2024')",
    )
    importing.add_argument("--db", default=_default_db(), help=DB_HELP)
    importing.add_argument(
        "--sleep",
        action="store_true",
        help="run sleep-time compute over each thread now, with --model",
    )
    importing.add_argument(
        "--model",
        default=os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
        help="with --sleep: model spec (default: $SLEEPAGENT_MODEL or openai:gpt-4o-mini)",
    )
    importing.add_argument("--sleep-model", metavar="MODEL", help="with --sleep: sleep-time model")
    importing.add_argument(
        "--base-url", metavar="URL", help="with --sleep: OpenAI-compatible server"
    )
    importing.add_argument("--json", action="store_true", help="print JSON instead of text")
    importing.set_defaults(run=_import)


def _add_memory(commands: Any) -> None:
    memory = commands.add_parser(
        "memory",
        help="inspect memory: scopes, blocks, history",
        description="Read what sleep-time compute wrote, in the database an agent uses.",
    )
    actions = memory.add_subparsers(dest="action", metavar="ACTION", title="actions")
    memory.set_defaults(run=lambda _: _usage_error(memory))

    listing = actions.add_parser(
        "list",
        help="memory scopes and threads: pending work, last run, tokens",
        description="Every memory scope in the database: its stored blocks, threads, messages "
        "no sleep run has covered yet, pages given up on, the last sleep run (when, why, how it "
        "ended) and tokens per phase; then the threads with pending work.",
    )
    _add_db(listing)
    listing.set_defaults(run=_memory_list)

    show = actions.add_parser(
        "show",
        help="the blocks of one memory scope",
        description="The blocks stored for one user or thread. Exit status 1 when the "
        "database knows nothing of it.",
    )
    _add_db(show)
    _add_who(show)
    show.add_argument(
        "--blocks",
        metavar="SPEC",
        help="also show the blocks an agent declares, with defaults where nothing is stored: "
        "'default' (persona, human, learned_context) or MODULE:NAME / FILE.py:NAME naming a "
        "SleepConfig or a list of MemoryBlock",
    )
    show.set_defaults(run=_memory_show)

    history = actions.add_parser(
        "history",
        help="every version of one block, with diffs",
        description="Every committed version of a block, oldest first: when, by whom "
        "(sleep, chat or user), why the sleep run ran, and the diff from the version before.",
    )
    history.add_argument("label", metavar="LABEL", help="the block, e.g. human")
    _add_db(history)
    _add_who(history)
    history.set_defaults(run=_memory_history)

    forget = actions.add_parser(
        "forget",
        help="remove everything stored for a user or a thread",
        description="Remove a user's memory (blocks, history, contexts, runs) and every "
        "thread kept for it, or one thread (its transcript, checkpoints, watermark and pending "
        "work; a user's blocks go only with --user alone). Asks first; --yes skips the question.",
    )
    _add_db(forget)
    _add_owner(forget)
    forget.add_argument("--yes", action="store_true", help="do not ask before removing")
    forget.set_defaults(run=_memory_forget)

    export = actions.add_parser(
        "export",
        help="everything stored for a user or a thread, as JSON",
        description="One JSON document of everything 'memory forget' would remove: blocks, "
        "their history, runs, and each thread's transcript log and messages.",
    )
    export.add_argument("--db", default=_default_db(), help=DB_HELP)
    _add_owner(export)
    export.add_argument("--out", metavar="FILE", help="write the document to FILE, not stdout")
    export.set_defaults(run=_memory_export)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=_default_db(), help=DB_HELP)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_who(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the user whose memory to read (user scope)")
    who.add_argument("--thread", help="the thread whose memory to read (thread scope)")


def _add_owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="the user: their memory and every thread kept for it")
    parser.add_argument("--thread", help="one thread (with --user: a thread of that user's memory)")


def _default_db() -> str:
    return os.environ.get("SLEEPAGENT_DB", "sleepagent.db")


def _default_history() -> str:
    from sleepagent.integrations.statedir import state_dir

    return str(state_dir() / "chat-history")


def _usage_error(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --- commands ----------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from sleepagent.cli.demo import run_demo
    from sleepagent.cli.invocation import invoked_as

    return run_demo(sys.stdout, db=args.db, command=invoked_as())


def _chat(args: argparse.Namespace) -> int:
    from sleepagent.cli.repl import ChatSettings, run_chat

    settings = ChatSettings(
        model=args.model,
        sleep_model=args.sleep_model,
        base_url=args.base_url,
        offline=args.offline,
        thread_id=args.thread,
        user_id=args.user,
        db=args.db,
        idle_seconds=args.idle,
        timeout=args.timeout,
        max_retries=args.max_retries,
        history_file=args.history,
    )
    return run_chat(settings, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)


def _import(args: argparse.Namespace) -> int:
    from sleepagent.cli.importing import import_file, print_results
    from sleepagent.models import ModelOptions

    results = import_file(
        args.file,
        db=args.db,
        thread=args.thread,
        user=args.user,
        session_date=args.session_date,
        model=args.model if args.sleep else None,
        sleep_model=args.sleep_model if args.sleep else None,
        options=ModelOptions(base_url=args.base_url) if args.sleep else None,
    )
    print_results(results, sys.stdout, as_json=args.json)
    return 0


def _memory_list(args: argparse.Namespace) -> int:
    from sleepagent.store.catalog import Catalog

    with _open_store(args.db) as store:
        summaries = Catalog(store).scopes()
    if args.json:
        _print_json({"scopes": [_summary_json(summary) for summary in summaries]})
        return 0
    from sleepagent.cli.terminal import make_console, scopes_view

    console = make_console()
    if not summaries:
        console.print(
            f"no memory in {redact_url(args.db)} yet: chat with an agent that uses it first"
        )
        return 0
    console.print(scopes_view(summaries))
    return 0


def _memory_show(args: argparse.Namespace) -> int:
    from sleepagent.store.catalog import Catalog

    scope = _scope(args)
    declared = _declared_blocks(args.blocks) if args.blocks else ()
    with _open_store(args.db) as store:
        catalog = Catalog(store)
        known = catalog.scope(scope)
        blocks = catalog.blocks(scope, declared=declared) if known or declared else []
    if known is None and not declared:
        return _unknown_scope(scope.key, args.db)
    if args.json:
        _print_json({"scope": scope.key, "blocks": [_block_json(block) for block in blocks]})
        return 0
    from sleepagent.cli.terminal import blocks_view, make_console

    console = make_console()
    console.print(f"memory of {scope.key}", style="bold")
    if not blocks:
        console.print(
            "no block is stored yet (sleep-time compute has not written any); "
            "--blocks default shows the defaults an agent starts with"
        )
        return 0
    console.print()
    console.print(blocks_view(blocks))
    return 0


def _memory_history(args: argparse.Namespace) -> int:
    from sleepagent.store.catalog import Catalog

    scope = _scope(args)
    with _open_store(args.db) as store:
        catalog = Catalog(store)
        known = catalog.scope(scope)
        steps = catalog.history(scope, args.label) if known else []
    if known is None:
        return _unknown_scope(scope.key, args.db)
    if not steps:
        labels = ", ".join(known.labels) or "none yet"
        print(
            f"sleepagent: {scope.key} has no history for block {args.label!r} "
            f"(stored blocks: {labels})",
            file=sys.stderr,
        )
        return 1
    if args.json:
        _print_json(
            {
                "scope": scope.key,
                "label": args.label,
                "versions": [{**vars(step.entry), "diff": step.diff.unified()} for step in steps],
            }
        )
        return 0
    from sleepagent.cli.terminal import history_view, make_console

    console = make_console()
    console.print(f"history of {scope.key} / {args.label}", style="bold")
    console.print()
    console.print(history_view(steps))
    return 0


def _memory_forget(args: argparse.Namespace) -> int:
    if not (args.user or args.thread):
        return _whose_data()
    with _open_agent(args.db) as agent:
        # What an export holds is what forget removes: show it before asking.
        held = agent.export(user_id=args.user, thread_id=args.thread)
        scope, threads = held["scope"], sorted(held["threads"])
        if not _holds_anything(held):
            shown = redact_url(args.db)
            print(f"sleepagent: nothing is stored for {scope} in {shown}", file=sys.stderr)
            return 1
        question = f"Remove everything stored for {scope}, {_threads_phrase(threads)}? [y/N] "
        if not args.yes and not _confirmed(question):
            print("nothing removed", file=sys.stderr)
            return 1
        forgotten = agent.forget(user_id=args.user, thread_id=args.thread)
    if args.json:
        _print_json(vars(forgotten))
        return 0
    memory = "its memory, " if forgotten.whole_scope else ""
    print(
        f"forgot {forgotten.scope}: {memory}{_threads_phrase(forgotten.threads)} "
        f"with their checkpoints; {forgotten.items} stored records in all"
    )
    return 0


def _memory_export(args: argparse.Namespace) -> int:
    if not (args.user or args.thread):
        return _whose_data()
    with _open_agent(args.db) as agent:
        document = agent.export(user_id=args.user, thread_id=args.thread)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"exported {document['scope']} to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


# --- helpers -----------------------------------------------------------------------


@contextmanager
def _open_agent(db: str) -> Iterator[Any]:
    """An agent on ``db`` that can read and remove data but never calls a model.

    Its models are empty scripts: forget and export call none, and any call
    would raise instead of reaching a provider.
    """
    from sleepagent.agent.facades import SleepTimeAgent
    from sleepagent.testing import ScriptedChatModel

    _require_database(db)
    with SleepTimeAgent(ScriptedChatModel([]), db=db, scheduler=None) as agent:
        yield agent


def _whose_data() -> int:
    print("sleepagent: say whose data: --user USER, --thread THREAD, or both", file=sys.stderr)
    return 2


def _holds_anything(exported: dict[str, Any]) -> bool:
    if any(exported.get("memory", {}).values()):
        return True
    return any(
        thread["records"] or thread["log"] or thread["messages"]
        for thread in exported["threads"].values()
    )


def _threads_phrase(threads: Sequence[str]) -> str:
    if not threads:
        return "no thread"
    named = ", ".join(threads[:5]) + (", ..." if len(threads) > 5 else "")
    return f"{len(threads)} thread{'s' if len(threads) != 1 else ''} ({named})"


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "memory forget asks before it removes anything: pass --yes to run it unattended"
        )
    return input(question).strip().lower() in ("y", "yes")


@contextmanager
def _open_store(db: str) -> Iterator[BaseStore]:
    """The store of ``db``, refusing a SQLite file that does not exist (it would be created)."""
    from sleepagent.store.persistence import open_persistence

    _require_database(db)
    with open_persistence(db) as (_, store):
        yield store


def _require_database(db: str) -> None:
    """Refuse a SQLite file that does not exist: opening it would create it."""
    from sleepagent.store.dburl import SqliteTarget, parse_db

    target = parse_db(db)
    if isinstance(target, SqliteTarget) and not target.path.exists():
        raise _NoDatabaseError(
            f"no database at {target.path}: pass the agent's file with --db FILE"
        )


class _NoDatabaseError(SleepAgentError, FileNotFoundError):
    """The SQLite file given to a memory command does not exist."""


def _scope(args: argparse.Namespace) -> Scope:
    from sleepagent.scope import Scope

    return Scope("user", args.user) if args.user else Scope("thread", args.thread)


def _unknown_scope(key: str, db: str) -> int:
    db = redact_url(db)
    print(
        f"sleepagent: no memory scope {key} in {db}: "
        f"'sleepagent memory list --db {db}' lists the scopes it holds",
        file=sys.stderr,
    )
    return 1


def _declared_blocks(spec: str) -> tuple[MemoryBlock, ...]:
    """The blocks named by ``--blocks``: ``default``, ``module:NAME`` or ``file.py:NAME``."""
    from sleepagent.config import SleepConfig
    from sleepagent.memory.blocks import DEFAULT_BLOCKS, MemoryBlock

    if spec == "default":
        return tuple(DEFAULT_BLOCKS)
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ConfigurationError(
            f"--blocks {spec!r}: use 'default', MODULE:NAME or FILE.py:NAME "
            "(NAME is a SleepConfig or a list of MemoryBlock)"
        )
    if where.endswith(".py"):
        loader = importlib.util.spec_from_file_location("sleepagent_blocks_spec", where)
        if loader is None or loader.loader is None or not Path(where).is_file():
            raise ConfigurationError(f"--blocks {spec!r}: no Python file {where}")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise ConfigurationError(
                f"--blocks {spec!r}: cannot import {where}: {error}"
            ) from error
    value = getattr(module, name, None)
    if isinstance(value, SleepConfig):
        value = value.blocks
    if not isinstance(value, list | tuple) or not all(isinstance(b, MemoryBlock) for b in value):
        raise ConfigurationError(
            f"--blocks {spec!r}: {name} must be a SleepConfig or a list of MemoryBlock"
        )
    return tuple(value)


def _block_json(block: MemoryBlock) -> dict[str, Any]:
    return block.to_dict()


def _summary_json(summary: ScopeSummary) -> dict[str, Any]:
    return {
        "scope": summary.scope.key,
        "blocks": list(summary.labels),
        "updated_at": summary.updated_at,
        "last_activity": summary.last_activity,
        "pending": summary.pending,
        "last_run": summary.last_run.to_dict() if summary.last_run else None,
        "running": summary.running.to_dict() if summary.running else None,
        "failed_pages": [page.to_dict() for page in summary.failed_pages],
        "usage": {phase: usage.to_dict() for phase, usage in summary.usage.items()},
        "threads": [
            {
                "thread_id": thread.thread_id,
                "head": thread.head,
                "watermark": thread.watermark,
                "pending": thread.pending,
                "last_at": thread.last_at,
                "usage": {phase: usage.to_dict() for phase, usage in thread.usage.items()},
            }
            for thread in summary.threads
        ],
    }


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    raise SystemExit(main())
