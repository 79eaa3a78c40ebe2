"""The run folder's report: ``summary.md`` and the plots, from the folder's files alone.

``results.jsonl`` gives the tables; ``run.json`` and ``errors.jsonl`` give the run's
model, server, grading rule, failures and wall time. Rewriting the report of a folder
therefore reproduces the same ``summary.md``. A LoCoMo folder (its lines are ``ingest``,
``qa`` and ``judge``) gets LoCoMo's tables and plots.
"""

from __future__ import annotations

from pathlib import Path

from sleepagent.bench.conversation_summary import (
    ConversationSummary,
    is_conversation_run,
    render_conversation_markdown,
    summarize_conversations,
)
from sleepagent.bench.grading import GradingRule
from sleepagent.bench.plots import write_conversation_plots, write_plots
from sleepagent.bench.runlog import read_failures, read_run_info
from sleepagent.bench.summary import Summary, render_markdown, summarize
from sleepagent.bench.units import read_results

__all__ = ["write_report"]


def write_report(
    folder: Path,
    *,
    t: float | None = None,
    grading: GradingRule | None = None,
    plots: bool = True,
) -> Summary | ConversationSummary:
    """Recompute the summary of a run folder and write ``summary.md`` and the PNG plots.

    Args:
        folder: The run folder holding ``results.jsonl``.
        t: Price of a test-time token in sleep-time tokens; ``None`` takes the one in
            ``run.json``, else 10.
        grading: The grading rule; ``None`` takes the one in ``run.json``, else both.
        plots: Also write the plots (needs matplotlib, the ``bench`` extra).

    Returns:
        The summary written.

    """
    folder = Path(folder)
    info = read_run_info(folder)
    records = read_results(folder / "results.jsonl")
    failures = read_failures(folder, [str(r.get("key")) for r in records])
    if is_conversation_run(records):
        found = summarize_conversations(records, info=info, failures=failures)
        (folder / "summary.md").write_text(render_conversation_markdown(found), encoding="utf-8")
        if plots:
            write_conversation_plots(found, folder)
        return found
    summary = summarize(
        records,
        t=t if t is not None else info.t if info else 10.0,
        grading=grading or (GradingRule(info.grading) if info else GradingRule.BOTH),
        info=info,
        failures=failures,
    )
    (folder / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
    if plots:
        write_plots(summary, folder)
    return summary
