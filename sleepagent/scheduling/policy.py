"""When sleep-time compute is due, and when its next step may go: pure decisions over plain data."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sleepagent.config import SleepConfig

__all__ = [
    "TIMER_REASONS",
    "Reason",
    "ThreadActivity",
    "backoff_delay",
    "due_after_turn",
    "recovery_due",
    "too_few_new_messages",
    "turn_precedence_wait",
]


class Reason(enum.Enum):
    """Why a sleep run ran."""

    IDLE = "idle"
    """The conversation went quiet for ``idle_seconds``."""
    MAX_WAIT = "max_wait"
    """``max_wait_turns`` or ``max_wait_seconds`` was reached without a quiet period."""
    MANUAL = "manual"
    """``sleep()`` was called."""
    RECOVERY = "recovery"
    """A starting process found work a previous one left pending."""
    CONTEXT = "context"
    """``add_context()`` gave context before any question."""
    IMPORT = "import"
    """``import_messages(..., sleep=True)`` brought in earlier history and asked for a run."""


@dataclass(frozen=True)
class ThreadActivity:
    """What the scheduler knows of a thread's turns not yet covered by a sleep run.

    Attributes:
        first_turn_at: When the first uncovered turn happened.
        last_turn_at: When the latest turn happened.
        turns: Uncovered turns.

    """

    first_turn_at: float
    last_turn_at: float
    turns: int

    def with_turn(self, at: float) -> ThreadActivity:
        """The activity after one more turn at ``at``."""
        return ThreadActivity(self.first_turn_at, at, self.turns + 1)


def due_after_turn(activity: ThreadActivity, config: SleepConfig) -> tuple[float, Reason]:
    """When the thread's sleep run is due, and why, given its uncovered turns.

    The idle deadline moves with every turn (debounce); the max-wait limits
    do not, so a conversation that never goes quiet is still covered.
    """
    due, reason = activity.last_turn_at + config.idle_seconds, Reason.IDLE
    if config.max_wait_turns is not None and activity.turns >= config.max_wait_turns:
        return activity.last_turn_at, Reason.MAX_WAIT
    if config.max_wait_seconds is not None:
        limit = activity.first_turn_at + config.max_wait_seconds
        if limit < due:
            due, reason = limit, Reason.MAX_WAIT
    return due, reason


TIMER_REASONS = frozenset({Reason.IDLE, Reason.MAX_WAIT, Reason.RECOVERY})
"""Reasons of runs the scheduler started (``min_new_messages`` applies to them)."""


def too_few_new_messages(pending: int, config: SleepConfig) -> bool:
    """Whether a timer-started run should wait for more than ``pending`` new messages."""
    return pending < config.min_new_messages


def recovery_due(last_turn_at: float | None, now: float, config: SleepConfig) -> float:
    """When pending work found at start-up is due: its idle deadline, or now if that passed."""
    if last_turn_at is None:
        return now
    return max(now, last_turn_at + config.idle_seconds)


def backoff_delay(attempt: int, config: SleepConfig) -> float | None:
    """Delay before retry number ``attempt`` (1-based), or None when out of retries."""
    if attempt > config.sleep_retries:
        return None
    return float(config.retry_backoff_seconds * 2 ** (attempt - 1))


def turn_precedence_wait(
    turns_in_flight: int, waited: float, bound: float, *, closed: bool = False
) -> float:
    """Seconds a step of a sleep run should still wait for turns: 0.0 means it goes now.

    A step waits while any turn is in flight, and never more than ``bound``
    seconds in all (``SleepConfig.turn_precedence_seconds``; 0 never waits), so
    sleep work gives way to turns without being starved by them (every message is
    still covered: DESIGN invariant 4). Once the agent is closing no step waits.

    Args:
        turns_in_flight: Turns being answered now.
        waited: Seconds this step has waited so far.
        bound: The most it may wait in all.
        closed: Whether the agent is closing.

    """
    if closed or turns_in_flight <= 0:
        return 0.0
    return max(0.0, bound - waited)
