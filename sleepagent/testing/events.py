"""A recorder of sleep-run events, for tests to assert on after."""

from __future__ import annotations

import threading
import time

from sleepagent.scheduling.events import EventKind, SleepEvent

__all__ = ["EventRecorder"]


class EventRecorder:
    """Records the sleep-run events of one or more agents, in the order they arrive.

    Subscribe it (``agent.subscribe(recorder)``), act, then assert on what it
    recorded. It may be called from any thread or task, so it also serves a
    real idle timer, whose runs happen on threads of their own; wait for them
    with :meth:`wait`, which always has a timeout::

        events = EventRecorder()
        agent.subscribe(events)
        agent.chat("I moved to Porto", thread_id="t1")
        assert events.wait(EventKind.FINISHED, timeout=10)
        assert [event.reason for event in events.of(EventKind.STARTED)] == ["idle"]

    """

    def __init__(self) -> None:
        self._events: list[SleepEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: SleepEvent) -> None:
        """Record ``event`` (the subscriber an agent calls)."""
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def events(self) -> list[SleepEvent]:
        """Every event recorded so far, oldest first (a copy)."""
        with self._changed:
            return list(self._events)

    def of(self, *kinds: EventKind, thread_id: str | None = None) -> list[SleepEvent]:
        """The recorded events of any of ``kinds`` (of every kind when none is given).

        Args:
            *kinds: The kinds to keep.
            thread_id: Keep only the events of this thread.

        Returns:
            The events, oldest first.

        """
        with self._changed:
            return self._matching(kinds, thread_id)

    def wait(
        self,
        *kinds: EventKind,
        count: int = 1,
        thread_id: str | None = None,
        timeout: float,
    ) -> bool:
        """Block until ``count`` events of ``kinds`` have been recorded, or ``timeout`` passes.

        Events recorded before the call count too. ``kinds`` and ``thread_id``
        select events as in :meth:`of`.

        Returns:
            Whether that many events were recorded in time.

        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._matching(kinds, thread_id)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def clear(self) -> None:
        """Forget every event recorded so far."""
        with self._changed:
            self._events.clear()

    def _matching(self, kinds: tuple[EventKind, ...], thread_id: str | None) -> list[SleepEvent]:
        return [
            event
            for event in self._events
            if (not kinds or event.kind in kinds)
            and (thread_id is None or event.thread_id == thread_id)
        ]
