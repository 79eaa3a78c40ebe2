"""How the command line shows memory, diffs, usage and scopes (rich renderables).

Shared by ``sleepagent chat`` and ``sleepagent memory``. Colour appears on a
terminal only; piped output is plain text with the same words, so it can be
read by scripts and tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.results import BlockDiff
from sleepagent.store.catalog import HistoryStep, ScopeSummary
from sleepagent.usage import Phase, Usage

__all__ = [
    "blocks_view",
    "diff_view",
    "history_view",
    "make_console",
    "scopes_view",
    "usage_view",
]

_PIPED_WIDTH = 160
_PHASES: tuple[Phase, ...] = ("chat", "sleep")
_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console that never wraps long lines (block values stay one line each).

    Piped output gets a fixed width of 160 columns, so tables stay readable in
    a file instead of being squeezed to rich's default of 80.
    """
    stream = file or (sys.stderr if stderr else sys.stdout)
    width = None if _is_terminal(stream) else _PIPED_WIDTH
    return Console(
        file=file, stderr=stderr, soft_wrap=True, highlight=False, markup=False, width=width
    )


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def diff_view(diff: BlockDiff, *, indent: str = "") -> Text:
    """A block diff, unified, with added lines green and removed lines red."""
    text = Text()
    for line in diff.unified().splitlines():
        style = "bold" if line.startswith(("+++", "---")) else _DIFF_STYLES.get(line[:1], "")
        text.append(f"{indent}{line}\n", style=style)
    text.rstrip()
    return text


def blocks_view(blocks: Iterable[MemoryBlock]) -> Text:
    """Memory blocks: label, version, size and time, then the value, indented."""
    text = Text()
    for index, block in enumerate(blocks):
        if index:
            text.append("\n\n")
        stamp = block.updated_at.isoformat(timespec="seconds") if block.updated_at else "default"
        text.append(f"[{block.label}]", style="bold cyan")
        text.append(f" v{block.version}, {block.chars}/{block.limit} chars, {stamp}")
        if block.read_only:
            text.append(", read-only", style="yellow")
        if block.description:
            text.append(f"\n  ({block.description})", style="dim")
        for line in block.value.splitlines() or ["(empty)"]:
            text.append(f"\n  {line}")
    return text


def usage_view(usage: Mapping[Phase, Usage]) -> Text:
    """Tokens per phase, one line each (chat = test time, sleep = sleep time)."""
    text = Text()
    for index, phase in enumerate(_PHASES):
        spent = usage.get(phase, Usage())
        if index:
            text.append("\n")
        text.append(f"{phase:<5}", style="bold")
        text.append(
            f" {spent.calls} calls, {spent.input_tokens} in ({spent.cached_tokens} cached), "
            f"{spent.output_tokens} out ({spent.reasoning_tokens} reasoning)"
        )
    return text


def scopes_view(summaries: Sequence[ScopeSummary]) -> RenderableType:
    """One row per memory scope, then one row per thread with pending work.

    ``failed`` counts transcript pages sleep-time compute gave up on; ``last run``
    says when the scope's latest sleep run ended, why it ran and how it ended, or,
    while a run of the scope is in flight (in any process), since when and why.
    """
    table = Table(title="memory scopes", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("scope", "blocks", "threads", "pending", "failed", "last activity", "last run"):
        table.add_column(column, no_wrap=True)
    table.add_column("chat tokens", justify="right", no_wrap=True)
    table.add_column("sleep tokens", justify="right", no_wrap=True)
    for summary in summaries:
        usage = summary.usage
        table.add_row(
            summary.scope.key,
            ",".join(summary.labels) or "-",
            str(len(summary.threads)),
            str(summary.pending),
            str(len(summary.failed_pages)),
            _stamp(summary.last_activity),
            _last_run(summary),
            str(usage["chat"].total_tokens),
            str(usage["sleep"].total_tokens),
        )
    pending = [thread for summary in summaries for thread in summary.threads if thread.pending]
    if not pending:
        return Group(table, Text("no thread has pending work"))
    threads = Table(title="threads with pending work", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("thread", "scope", "pending", "last message"):
        threads.add_column(column, no_wrap=True)
    for thread in pending:
        threads.add_row(
            thread.thread_id, thread.scope or "-", str(thread.pending), _stamp(thread.last_at)
        )
    return Group(table, threads)


def history_view(steps: Sequence[HistoryStep]) -> Text:
    """Every version of a block, newest last: who wrote it, when, why, and its diff."""
    text = Text()
    for index, step in enumerate(steps):
        entry = step.entry
        if index:
            text.append("\n\n")
        text.append(f"v{entry.version}", style="bold cyan")
        why = f" ({entry.reason})" if entry.reason else ""
        thread = f", thread {entry.thread_id}" if entry.thread_id else ""
        text.append(f" {_stamp(entry.at)} by {entry.phase}{why}{thread}, run {entry.run_id}\n")
        text.append_text(diff_view(step.diff, indent="  "))
    return text


def _last_run(summary: ScopeSummary) -> str:
    """The ``last run`` cell: the run in flight, else the latest one and how it ended."""
    if summary.running is not None:
        since = summary.running.started_at[11:19]  # the seconds count while it runs
        return f"running since {since} {summary.running.reason}"
    run = summary.last_run
    return f"{_stamp(run.finished_at)} {run.reason}: {run.outcome.value}" if run else "-"


def _stamp(at: str | None) -> str:
    # Minutes are enough to read in a table; the JSON output keeps the full time.
    return at[:16].replace("T", " ") if at else "-"
