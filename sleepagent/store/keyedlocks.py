"""In-process locks: by key (thread id, scope key), dropped when nobody holds or waits on them.

:class:`SharedLock` is the one sync and async code share (a commit's or a sleep run's
in-process lock, see :mod:`sleepagent.store.locking`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

__all__ = [
    "KeyedLocks",
    "SharedKeyedLocks",
    "SharedLock",
    "run_to_completion",
]

T = TypeVar("T")


class KeyedLocks:
    """One :class:`SharedLock` per key (a thread id, a scope key), created on demand.

    A lock lives while someone holds a reference to it: hold the lock returned by
    :meth:`get` in a variable for as long as you wait on it or hold it.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, SharedLock] = weakref.WeakValueDictionary()

    def get(self, key: str) -> SharedLock:
        """The lock of ``key``."""
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = SharedLock()
            return lock


class SharedLock:
    """A lock that threads and asyncio tasks (on any loops) can hold alike.

    Ownership passes straight from the releaser to the oldest waiter, so an
    asyncio waiter needs no worker thread, and a waiter that is cancelled
    either leaves the queue or, if the lock was already handed to it, passes
    the lock on: a cancelled waiter never keeps it.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock from a thread; ``blocking=False`` returns False when taken."""
        with self._guard:
            if not self._held:
                self._held = True
                return True
            if not blocking:
                return False
            waiter = _ThreadWaiter()
            self._waiters.append(waiter)
        try:
            waiter.granted.wait()
        except BaseException:  # KeyboardInterrupt while waiting
            self._give_up(waiter)
            raise
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Take the lock from a task; ``blocking=False`` returns False when taken."""
        with self._guard:
            if not self._held:
                self._held = True
                return True
            if not blocking:
                return False
            waiter = _TaskWaiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
        try:
            await waiter.granted
        except BaseException:
            self._give_up(waiter)
            raise
        return True

    def _give_up(self, waiter: _Waiter) -> None:
        """Leave the queue; if the lock was handed over meanwhile, pass it on."""
        with self._guard:
            queued = waiter in self._waiters
            if queued:
                self._waiters.remove(waiter)
        if not queued:
            self.release()

    def release(self) -> None:
        """Give the lock to the oldest waiter, or free it."""
        with self._guard:
            while self._waiters:
                if self._waiters.popleft().grant():
                    return
            self._held = False


class _ThreadWaiter:
    def __init__(self) -> None:
        self.granted = threading.Event()

    def grant(self) -> bool:
        self.granted.set()
        return True


class _TaskWaiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.granted: asyncio.Future[None] = loop.create_future()

    def grant(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._set)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            return False
        return True

    def _set(self) -> None:
        if not self.granted.done():
            self.granted.set_result(None)


_Waiter = _ThreadWaiter | _TaskWaiter


class SharedKeyedLocks:
    """One :class:`SharedLock` per key, dropped when nobody holds or waits on it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[SharedLock, int]] = {}

    def _enter(self, key: str) -> SharedLock:
        with self._guard:
            lock, users = self._locks.get(key, (SharedLock(), 0))
            self._locks[key] = (lock, users + 1)
            return lock

    def _leave(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @contextmanager
    def hold(self, key: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the lock of ``key`` from a thread; yields False if busy and not blocking."""
        lock = self._enter(key)
        try:
            held = lock.acquire(blocking=blocking)
            try:
                yield held
            finally:
                if held:
                    lock.release()
        finally:
            self._leave(key)

    @asynccontextmanager
    async def ahold(self, key: str, *, blocking: bool = True) -> AsyncIterator[bool]:
        """Hold the lock of ``key`` from a task; yields False if busy and not blocking."""
        lock = self._enter(key)
        try:
            held = await lock.aacquire(blocking=blocking)
            try:
                yield held
            finally:
                if held:
                    lock.release()
        finally:
            self._leave(key)


async def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile.

    For short critical sections (a store batch, a lock release) that must not
    stop half-way. A cancellation that arrives meanwhile is raised once the
    work is done.
    """
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise  # the work itself was cancelled (its loop shutting down)
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
