"""PNG plots of a :class:`~sleepagent.bench.summary.Summary`, with matplotlib.

Figures are drawn on the Agg canvas directly (no pyplot, no global backend
switch), so plotting works headless and from any thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sleepagent.bench.conversation_summary import ConversationSummary
from sleepagent.bench.conversations import CATEGORY_ORDER, Category
from sleepagent.bench.grading import GradingRule
from sleepagent.bench.summary import PredictabilityRow, Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CONVERSATION_PLOT_FILES", "PLOT_FILES", "write_conversation_plots", "write_plots"]

PLOT_FILES = ("pareto.png", "cost.png", "predictability.png")
"""The files :func:`write_plots` writes."""

CONVERSATION_PLOT_FILES = ("f1_by_category.png", "tokens_per_query.png")
"""The files :func:`write_conversation_plots` writes (LoCoMo)."""


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _rule(summary: Summary) -> str:
    return "our rule" if summary.grading is GradingRule.OURS else "paper's rule"


def _pareto(summary: Summary) -> Figure:
    figure = _figure()
    axes = figure.add_subplot()
    points: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for row in summary.rows:
        points[row.condition].append((row.test_completion, row.accuracy, row.budget))
    for condition, found in sorted(points.items()):
        found.sort()
        axes.plot(
            [x for x, _, _ in found], [100 * y for _, y, _ in found], marker="o", label=condition
        )
    axes.set_xlabel("average test-time completion tokens per question")
    axes.set_ylabel(f"accuracy (%, {_rule(summary)})")
    axes.set_title("Accuracy vs test-time tokens (one point per budget)")
    axes.set_ylim(-2, 102)
    axes.grid(alpha=0.3)
    if points:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def _cost(summary: Summary) -> Figure:
    figure = _figure()
    axes = figure.add_subplot()
    paper = [item for item in summary.break_even if not item.all_tokens]
    top = max([10.0, *(2 * item.queries for item in paper if item.queries is not None)])
    queries = [1 + i * (top - 1) / 99 for i in range(100)]
    for index, item in enumerate(paper):
        # One colour per budget, shared by its sleep-time curve and test-time line.
        color = f"C{index % 10}"
        axes.plot(
            queries,
            [summary.t * item.sleep_time + item.sleep_per_context / n for n in queries],
            color=color,
            label=f"sleep-time {item.budget}",
        )
        axes.axhline(
            summary.t * item.test_time,
            color=color,
            linestyle="--",
            label=f"test-time only {item.budget}",
        )
    measured = [(m.queries, m.sleep_cost) for m in summary.multi_query]
    if measured:
        axes.scatter(
            [n for n, _ in measured],
            [c for _, c in measured],
            color="black",
            zorder=3,
            s=14,
            label="measured (multi-query)",
        )
    axes.set_xlabel("queries per context")
    axes.set_ylabel(f"cost per query (sleep-time tokens, t = {summary.t:g})")
    axes.set_title("Cost per query vs queries per context (completion tokens)")
    axes.grid(alpha=0.3)
    if paper or measured:
        axes.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    return figure


def _quintile_bars(axes: Axes, rows: Sequence[PredictabilityRow], score: str, title: str) -> None:
    xs = [row.quintile for row in rows]
    axes.bar([x - 0.2 for x in xs], [100 * r.sleep_accuracy for r in rows], 0.4, label="sleep-time")
    axes.bar(
        [x + 0.2 for x in xs],
        [100 * (r.test_accuracy or 0.0) for r in rows],
        0.4,
        label="test-time only",
    )
    axes.set_xticks(range(1, 6))
    axes.set_xlabel(f"{score} quintile (1 = least predictable question)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title)
    axes.set_ylim(0, 105)
    axes.legend(fontsize="small")


def _predictability(summary: Summary) -> Figure:
    figure = _figure()
    jaccard_title = "Accuracy by how well the sleep-time agent anticipated the question"
    if not summary.logprob_predictability:
        _quintile_bars(
            figure.add_subplot(), summary.predictability, "predictability", jaccard_title
        )
        figure.tight_layout()
        return figure
    # Two panels side by side, one per score, on one accuracy scale so they compare.
    figure.set_size_inches(12, 4.5)
    left, right = figure.subplots(1, 2, sharey=True)
    _quintile_bars(
        left,
        summary.predictability,
        "Jaccard predictability",
        "By anticipated questions (Jaccard)",
    )
    _quintile_bars(
        right,
        summary.logprob_predictability,
        "log-probability",
        "By log-probability of the question given the context",
    )
    figure.tight_layout()
    return figure


def write_plots(summary: Summary, folder: Path) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``folder``.

    Returns:
        The paths written.

    """
    written = []
    for name, draw in zip(PLOT_FILES, (_pareto, _cost, _predictability), strict=True):
        path = Path(folder) / name
        draw(summary).savefig(path)
        written.append(path)
    return written


# --- LoCoMo ----------------------------------------------------------------------------


def _f1_by_category(summary: ConversationSummary) -> Figure:
    figure = _figure()
    axes = figure.add_subplot()
    rows = summary.rows
    width = 0.8 / max(1, len(rows))
    for index, row in enumerate(rows):
        values = [
            row.declined if category is Category.ADVERSARIAL else row.f1[category.value]
            for category in CATEGORY_ORDER
        ]
        axes.bar(
            [i + (index - (len(rows) - 1) / 2) * width for i in range(len(CATEGORY_ORDER))],
            [100 * (value or 0.0) for value in values],
            width,
            label=row.system,
        )
    axes.set_xticks(range(len(CATEGORY_ORDER)))
    labels = [
        c.label if c is not Category.ADVERSARIAL else "adversarial\n(declined)"
        for c in CATEGORY_ORDER
    ]
    axes.set_xticklabels(labels)
    axes.set_ylabel("LoCoMo F1 (%)")
    axes.set_title("LoCoMo F1 by question category")
    # Room above the bars for a one-row legend, so no bar is hidden behind it.
    axes.set_ylim(0, 118)
    axes.set_yticks(range(0, 101, 20))
    axes.grid(axis="y", alpha=0.3)
    if rows:
        axes.legend(fontsize="small", ncol=len(rows), loc="upper center")
    figure.tight_layout()
    return figure


def _tokens_per_query(summary: ConversationSummary) -> Figure:
    figure = _figure()
    axes = figure.add_subplot()
    rows = summary.rows
    xs = list(range(len(rows)))
    prompt = [row.prompt_tokens for row in rows]
    axes.bar(xs, prompt, 0.6, label="prompt")
    axes.bar(xs, [row.completion_tokens for row in rows], 0.6, bottom=prompt, label="completion")
    for x, row in zip(xs, rows, strict=True):
        overall = "-" if row.overall is None else f"{100 * row.overall:.1f}"
        axes.annotate(
            f"F1 {overall}",
            (x, row.tokens_per_query),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize="small",
        )
    axes.set_xticks(xs)
    axes.set_xticklabels([row.system for row in rows])
    axes.set_ylabel("tokens per query (answer)")
    axes.set_title("Answer tokens per query, with overall F1 (categories 1-4)")
    axes.grid(axis="y", alpha=0.3)
    if rows:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def write_conversation_plots(summary: ConversationSummary, folder: Path) -> list[Path]:
    """Write :data:`CONVERSATION_PLOT_FILES` into ``folder``.

    Returns:
        The paths written.

    """
    written = []
    for name, draw in zip(
        CONVERSATION_PLOT_FILES, (_f1_by_category, _tokens_per_query), strict=True
    ):
        path = Path(folder) / name
        draw(summary).savefig(path)
        written.append(path)
    return written
