"""Sleep-run events: what happened, for subscribers and the log."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sleepagent.results import BlockDiff, Conflict, FailedPage, SleepOutcome
from sleepagent.scheduling.base import SleepJob
from sleepagent.scope import Scope
from sleepagent.usage import Usage

__all__ = ["EventKind", "SleepEvent", "SleepEvents", "event_for"]

logger = logging.getLogger("sleepagent.sleep")


class EventKind(enum.Enum):
    """The kinds of sleep-run event."""

    SCHEDULED = "scheduled"
    """An alarm was set (or moved) for a thread."""
    WAITING = "waiting"
    """A run found another run of its memory scope in flight and waits for it to end.

    A run asked for by hand (``sleep()``, ``add_context()``, ``retry_failed()``)
    then waits for the scope's run lock, held in this process or, on SQLite and
    PostgreSQL, in another; a due scheduled run is set again, due at once, when
    the agent's run of that scope ends. Emitted only after the lock (or the
    scope's claim) was found taken, never on a free scope.
    """
    STARTED = "started"
    """A run began."""
    FINISHED = "finished"
    """A run ended and committed its pages."""
    SKIPPED = "skipped"
    """A due run did not start: fewer new messages than ``min_new_messages``."""
    FAILED = "failed"
    """A run raised; ``will_retry`` says whether it is scheduled again."""
    CONFLICT = "conflict"
    """A run finished but dropped edits that no longer applied (see ``conflicts``)."""
    PAGE_FAILED = "page_failed"
    """A page kept failing and was given up (``failed_page``); the timer no longer retries it."""
    TEXT_FALLBACK = "text_fallback"
    """``SleepEditMode.AUTO``: the sleep model answered a tool prompt with no tool call, so
    the run wrote memory as tagged text, and the agent's next ``text_fallback_runs`` runs
    start in that format before tools are tried again."""


@dataclass(frozen=True)
class SleepEvent:
    """One thing that happened to a sleep run.

    Attributes:
        kind: What happened.
        thread_id: The conversation.
        scope: Key of the memory scope.
        reason: Why the run was (or will be) started.
        at: When the event happened (scheduler clock, POSIX seconds).
        due_at: When the run is or was due.
        run_id: The run, once started.
        attempt: 1 for the first try, more for retries.
        duration: Seconds the run took (finished, failed, conflict).
        usage: Tokens the run spent.
        diffs: Blocks the run changed.
        conflicts: Edits the run dropped.
        error: The error text (failed).
        will_retry: Whether a failed run is scheduled again.
        outcome: How the run ended (finished).
        failed_page: The page given up (page_failed).

    """

    kind: EventKind
    thread_id: str
    scope: str
    reason: str
    at: float
    due_at: float | None = None
    run_id: str | None = None
    attempt: int = 1
    duration: float | None = None
    usage: Usage | None = None
    diffs: tuple[BlockDiff, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    error: str | None = None
    will_retry: bool = False
    outcome: SleepOutcome | None = None
    failed_page: FailedPage | None = None


def event_for(
    kind: EventKind, job: SleepJob, scope: Scope, *, at: float, **details: Any
) -> SleepEvent:
    """An event about ``job``, with the job's identity, reason, due time and attempt."""
    return SleepEvent(
        kind=kind,
        thread_id=job.thread_id,
        scope=scope.key,
        reason=job.reason.value,
        at=at,
        due_at=job.due_at,
        attempt=job.attempt,
        **details,
    )


Subscriber = Callable[[SleepEvent], None]

_LEVELS = {
    EventKind.SCHEDULED: logging.DEBUG,
    EventKind.WAITING: logging.INFO,
    EventKind.STARTED: logging.INFO,
    EventKind.FINISHED: logging.INFO,
    EventKind.SKIPPED: logging.INFO,
    EventKind.FAILED: logging.WARNING,
    EventKind.CONFLICT: logging.WARNING,
    EventKind.PAGE_FAILED: logging.ERROR,
    EventKind.TEXT_FALLBACK: logging.WARNING,
}


class SleepEvents:
    """Delivers events to subscribers and to the ``sleepagent.sleep`` logger."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wanted(self, kind: EventKind) -> bool:
        """Whether an event of ``kind`` would reach anyone: a subscriber, or the logger.

        Building an event costs a few microseconds; a start-up that recovers
        100,000 threads, or a turn nobody listens to, skips it.
        """
        return bool(self._subscribers) or logger.isEnabledFor(_LEVELS[kind])

    def emit(self, event: SleepEvent) -> None:
        """Log ``event`` and hand it to each subscriber; a failing subscriber is logged."""
        logger.log(
            _LEVELS[event.kind],
            "sleep %s: thread=%s scope=%s reason=%s attempt=%d%s",
            event.kind.value,
            event.thread_id,
            event.scope,
            event.reason,
            event.attempt,
            _details(event),
        )
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("a sleep-event subscriber raised; it is kept subscribed")


def _details(event: SleepEvent) -> str:
    parts = []
    if event.outcome is not None:
        parts.append(f"outcome={event.outcome.value}")
    if event.failed_page is not None:
        page = event.failed_page
        parts.append(f"messages={page.first_seq}-{page.last_seq} attempts={page.attempts}")
    if event.duration is not None:
        parts.append(f"duration={event.duration:.3f}s")
    if event.usage is not None:
        parts.append(f"tokens={event.usage.total_tokens}")
    if event.diffs:
        parts.append("changed=" + ",".join(diff.label for diff in event.diffs))
    if event.conflicts:
        parts.append("dropped=" + ",".join(conflict.label for conflict in event.conflicts))
    if event.error:
        parts.append(f"error={event.error!r} will_retry={event.will_retry}")
    return (" " + " ".join(parts)) if parts else ""
