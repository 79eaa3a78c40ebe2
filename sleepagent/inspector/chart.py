"""The tokens-per-phase chart: cumulative tokens over time, laid out as SVG geometry.

Pure: it takes token events and returns coordinates; the template draws them
as inline SVG, so the chart needs no script and no network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sleepagent.inspector.views import Overview, ScopeDetail
from sleepagent.usage import Phase

__all__ = [
    "Chart",
    "ChartPoint",
    "Series",
    "TokenEvent",
    "layout",
    "overview_events",
    "scope_events",
]

WIDTH, HEIGHT = 640, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 12, 28
PHASES: tuple[Phase, ...] = ("chat", "sleep")


@dataclass(frozen=True)
class TokenEvent:
    """Tokens one phase spent, as of a moment.

    Attributes:
        at: When (ISO 8601).
        phase: ``chat`` or ``sleep``.
        tokens: Tokens spent by this event.
        label: What the event was (shown on hover).

    """

    at: str
    phase: Phase
    tokens: int
    label: str


@dataclass(frozen=True)
class ChartPoint:
    """One plotted point.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
        total: Cumulative tokens of the phase at this point.
        event: What happened there.

    """

    x: float
    y: float
    total: int
    event: TokenEvent


@dataclass(frozen=True)
class Series:
    """One phase's cumulative line.

    Attributes:
        phase: ``chat`` or ``sleep``.
        points: Its points, oldest first.
        path: SVG path data of the step line through them.
        total: The phase's final total.

    """

    phase: Phase
    points: tuple[ChartPoint, ...]
    path: str
    total: int


@dataclass(frozen=True)
class Chart:
    """A laid-out chart.

    Attributes:
        width: SVG width.
        height: SVG height.
        series: One line per phase.
        y_ticks: ``(y, label)`` of horizontal grid lines.
        x_ticks: ``(x, label)`` of time labels.
        plot: ``(left, top, right, bottom)`` of the plot area.

    """

    width: int
    height: int
    series: tuple[Series, ...]
    y_ticks: tuple[tuple[float, str], ...]
    x_ticks: tuple[tuple[float, str], ...]
    plot: tuple[int, int, int, int]

    @property
    def empty(self) -> bool:
        """True when there is nothing to draw."""
        return not any(series.points for series in self.series)


def scope_events(detail: ScopeDetail) -> list[TokenEvent]:
    """Token events of one scope: each sleep run, and each thread's chat total."""
    events = [
        TokenEvent(t.last_at, "chat", t.usage.chat, f"thread {t.thread_id}")
        for t in detail.threads
        if t.last_at
    ]
    if detail.runs:
        events += [
            TokenEvent(run.finished_at, "sleep", run.tokens, f"{run.reason} run {run.run_id[:8]}")
            for run in detail.runs
        ]
    else:
        # No run records: the sleep totals, at the scope's last sleep commit.
        events += [
            TokenEvent(detail.summary.last_run, "sleep", t.usage.sleep, f"thread {t.thread_id}")
            for t in detail.threads
            if detail.summary.last_run
        ]
    return events


def overview_events(overview: Overview) -> list[TokenEvent]:
    """Token events of every scope: its chat total at its latest turn, and each recent run.

    Scopes whose runs were not recorded add their sleep total at their last sleep commit.
    """
    events = [
        TokenEvent(scope.last_activity, "chat", scope.usage.chat, scope.key)
        for scope in overview.scopes
        if scope.last_activity
    ]
    events += [
        TokenEvent(run.finished_at, "sleep", run.tokens, f"{run.scope} {run.reason} run")
        for run in overview.runs
    ]
    recorded = {run.scope for run in overview.runs}
    events += [
        TokenEvent(scope.last_run, "sleep", scope.usage.sleep, scope.key)
        for scope in overview.scopes
        if scope.last_run and scope.key not in recorded
    ]
    return events


def layout(events: Iterable[TokenEvent]) -> Chart:
    """Cumulative tokens per phase over time, scaled into the chart's plot area."""
    ordered = sorted((e for e in events if e.tokens > 0), key=lambda e: (e.at, e.phase))
    left, top, right, bottom = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    plot = (left, top, right, bottom)
    if not ordered:
        return Chart(WIDTH, HEIGHT, tuple(Series(p, (), "", 0) for p in PHASES), (), (), plot)
    times = [_seconds(event.at) for event in ordered]
    start, end = min(times), max(times)
    span = (end - start) or 1.0
    totals = dict.fromkeys(PHASES, 0)
    cumulative: list[tuple[float, int, TokenEvent]] = []
    for when, event in zip(times, ordered, strict=True):
        totals[event.phase] += event.tokens
        cumulative.append((when, totals[event.phase], event))
    top_value = _nice_ceiling(max(totals.values()))

    def x_of(when: float) -> float:
        if end == start:
            return (left + right) / 2
        return round(left + (when - start) / span * (right - left), 1)

    def y_of(total: int) -> float:
        return round(bottom - total / top_value * (bottom - top), 1)

    series = []
    for phase in PHASES:
        points = tuple(
            ChartPoint(x_of(when), y_of(total), total, event)
            for when, total, event in cumulative
            if event.phase == phase
        )
        series.append(Series(phase, points, _step_path(points, bottom, right), totals[phase]))
    y_ticks = tuple((y_of(value), f"{value:,}") for value in _ticks(top_value))
    x_ticks = tuple(
        (x_of(when), datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S"))
        for when in sorted({start, end})
    )
    return Chart(WIDTH, HEIGHT, tuple(series), y_ticks, x_ticks, plot)


def _step_path(points: tuple[ChartPoint, ...], bottom: int, right: int) -> str:
    """A step line: flat until the next event, then up; carried on to the right edge."""
    if not points:
        return ""
    parts = [f"M{points[0].x},{bottom}", f"V{points[0].y}"]
    for point in points[1:]:
        parts += [f"H{point.x}", f"V{point.y}"]
    parts.append(f"H{right}")
    return " ".join(parts)


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _ticks(top_value: int) -> list[int]:
    return [top_value * share // 4 for share in range(5)]


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()
