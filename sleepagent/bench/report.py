"""The run folder's report: ``summary.md`` and the plots, from ``results.jsonl`` alone."""

from __future__ import annotations

from pathlib import Path

from sleepagent.bench.plots import write_plots
from sleepagent.bench.runner import read_results
from sleepagent.bench.summary import Summary, render_markdown, summarize

__all__ = ["write_report"]


def write_report(folder: Path, *, t: float = 10.0, plots: bool = True) -> Summary:
    """Recompute the summary of a run folder and write ``summary.md`` and the PNG plots.

    Args:
        folder: The run folder holding ``results.jsonl``.
        t: Price of a test-time token in sleep-time tokens.
        plots: Also write the plots (needs matplotlib, the ``bench`` extra).

    Returns:
        The summary written.

    """
    folder = Path(folder)
    summary = summarize(read_results(folder / "results.jsonl"), t=t)
    (folder / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
    if plots:
        write_plots(summary, folder)
    return summary
