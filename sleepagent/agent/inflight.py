"""The scheduled sleep runs in flight, so that closing an agent can wait for them.

One counter for both agents: the sync agent's runs are threads of the
scheduler's pool, the async agent's are tasks on its loop, and closing waits
with :meth:`RunsInFlight.drain` or :meth:`RunsInFlight.adrain` alike. Once
closing has begun no run enters, so a job the scheduler hands over late (it
waited for a worker, or for a slot of the concurrency cap) does nothing: its
work stays pending in the store for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from sleepagent._twins import async_twin

__all__ = ["RunsInFlight"]


class RunsInFlight:
    """Counts runs between :meth:`enter` and :meth:`leave`; threads and tasks alike."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._closing = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def enter(self) -> bool:
        """Count a run in; False once closing has begun (then the run must not start)."""
        with self._changed:
            if self._closing:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        """Count a run out (only after an :meth:`enter` that returned True)."""
        with self._changed:
            self._count -= 1
            if self._count:
                return
            self._changed.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, done in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, done)

    def drain(self, timeout: float) -> int:
        """Let no new run in, and wait up to ``timeout`` seconds for those in flight.

        Returns:
            How many runs are still in flight.

        """
        with self._changed:
            self._closing = True
            self._changed.wait_for(lambda: self._count == 0, timeout=timeout)
            return self._count

    @async_twin(drain)
    async def adrain(self, timeout: float) -> int:
        """Async :meth:`drain`: waits without blocking the event loop."""
        with self._changed:
            self._closing = True
            if self._count == 0:
                return 0
            done = asyncio.get_running_loop().create_future()
            self._waiters.append((asyncio.get_running_loop(), done))
        await asyncio.wait({done}, timeout=timeout)
        with self._changed:
            return self._count


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
