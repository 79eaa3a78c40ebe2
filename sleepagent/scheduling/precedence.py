"""Turns before sleep work: an agent's turns in flight, and the bounded wait of a sleep step.

asyncio has no priorities, and one step of a sleep run (a page read and a model
call, or a commit) costs about as much CPU as a turn, so on a saturated core
every run in flight takes its share from the turns. Each agent therefore counts
its turns in flight here, and a step of a sleep run waits while there are any,
for at most ``SleepConfig.turn_precedence_seconds``
(:func:`~sleepagent.scheduling.policy.turn_precedence_wait` decides). A turn
never waits: it only counts itself in and out.

One counter serves threads and tasks alike, as
:class:`~sleepagent.agent.inflight.RunsInFlight` does: a sync step waits on a
condition, an async one on a future of its own loop; both are woken when the
last turn leaves or the agent closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from sleepagent._twins import async_twin
from sleepagent.scheduling.policy import turn_precedence_wait

__all__ = ["TurnsInFlight"]

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]


class TurnsInFlight:
    """Counts the turns in flight; steps of sleep runs wait for them, for a bounded time.

    Args:
        clock: Seconds from a monotonic source, to measure how long a step has waited.

    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._count = 0
        self._closed = False
        self._waiters: list[_Waiter] = []

    @property
    def count(self) -> int:
        """Turns in flight now."""
        return self._count

    def enter(self) -> None:
        """Count a turn in; it never waits (the lock is held for a few instructions)."""
        with self._changed:
            self._count += 1

    def leave(self) -> None:
        """Count a turn out (once per :meth:`enter`); the last one lets every waiting step go."""
        with self._changed:
            self._count -= 1
            if self._count:
                return
            waiters = self._wake()
        _resolve_all(waiters)

    def close(self) -> None:
        """End every wait now, and let none begin again (the agent is closing). Idempotent."""
        with self._changed:
            self._closed = True
            waiters = self._wake()
        _resolve_all(waiters)

    def yield_to_turns(self, bound: float) -> float:
        """Wait while turns are in flight, for at most ``bound`` seconds in all.

        Returns:
            The seconds waited.

        """
        # The clock is read under the lock, so that a turn leaving (or the agent
        # closing) cannot slip in between a decision to wait and the wait itself.
        with self._changed:
            started = self._clock()
            while (left := self._left(started, bound)) > 0:
                self._changed.wait(left)
            return self._clock() - started

    @async_twin(yield_to_turns)
    async def ayield_to_turns(self, bound: float) -> float:
        """Async :meth:`yield_to_turns`: waits without blocking the event loop.

        A wait that is cancelled leaves nothing behind.
        """
        loop = asyncio.get_running_loop()
        with self._changed:
            started = self._clock()
        while True:
            with self._changed:
                left = self._left(started, bound)
                if left <= 0:
                    return self._clock() - started
                waiter: _Waiter = (loop, loop.create_future())
                self._waiters.append(waiter)
            try:
                await asyncio.wait({waiter[1]}, timeout=left)
            finally:
                with self._changed:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def _left(self, started: float, bound: float) -> float:
        """Seconds still to wait (the lock held)."""
        waited = self._clock() - started
        return turn_precedence_wait(self._count, waited, bound, closed=self._closed)

    def _wake(self) -> list[_Waiter]:
        """Wake the threads waiting, and hand back the tasks' futures (the lock held)."""
        self._changed.notify_all()
        waiters, self._waiters = self._waiters, []
        return waiters


def _resolve_all(waiters: list[_Waiter]) -> None:
    for loop, woken in waiters:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
            loop.call_soon_threadsafe(_resolve, woken)


def _resolve(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
