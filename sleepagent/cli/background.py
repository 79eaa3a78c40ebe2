"""An event loop on its own thread, where the terminal chat's agent does its work.

The chat reads lines and prints on the main thread; the agent is an
``AsyncSleepTimeAgent`` on this loop, so its idle timer runs there while the user
types. A turn or a ``/sleep`` run here can be called off: an asyncio task is
cancelled where it waits, the model's HTTP request included, and the library
then undoes what the task had begun. A thread blocked in a synchronous request
could not be stopped before the request's timeout (600 s for a local server,
tried three times). Ctrl-C during :meth:`AgentLoop.interruptible` and
:meth:`AgentLoop.stream` cancels the work that way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

__all__ = ["AgentLoop", "Cancelled"]

T = TypeVar("T")

_END = object()


class Cancelled(Exception):
    """Ctrl-C called the work off; it has finished unwinding when this is raised."""


class AgentLoop:
    """An asyncio loop on a daemon thread, and ways to wait for work on it.

    A context manager: the loop starts on entry and is stopped on exit.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="sleepagent-chat-loop", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # As asyncio.run ends a loop: what is left is cancelled and awaited first, so
        # no task is destroyed while pending (a store's batch task, say).
        asyncio.run_coroutine_threadsafe(self._finish(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _finish(self) -> None:
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the loop and wait for its result (Ctrl-C is not special here)."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def interruptible(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work``; Ctrl-C cancels it.

        Raises:
            Cancelled: Ctrl-C was pressed and ``work`` ended cancelled. Work that
                finished anyway (it was past its last wait) returns its result.

        """
        job = _Job(self._loop, work)
        with _ctrl_c_calls(job.cancel):
            return job.result()

    def stream(self, pieces: AsyncIterator[str]) -> Iterator[str]:
        """The pieces of an async iterator as they come; Ctrl-C cancels it.

        Raises:
            Cancelled: As :meth:`interruptible`, after the pieces that came first.

        """
        arrived: queue.Queue[object] = queue.Queue()

        async def pump() -> None:
            try:
                async for piece in pieces:
                    arrived.put(piece)
            finally:
                arrived.put(_END)

        job = _Job(self._loop, pump())
        with _ctrl_c_calls(job.cancel):
            try:
                while (piece := arrived.get()) is not _END:
                    yield piece  # type: ignore[misc]
            except GeneratorExit:
                job.cancel()  # the reader stopped early: stop the work, and let it unwind
                with suppress(Cancelled):
                    job.result()
                raise
            job.result()


class _Job(Generic[T]):
    """One coroutine run as a task on ``loop``, cancellable from another thread once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> None:
        self._loop = loop
        self._work = work
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False
        self._future = asyncio.run_coroutine_threadsafe(self._run(), loop)

    async def _run(self) -> T:
        if self._cancelled:
            self._work.close()
            raise asyncio.CancelledError
        self._task = asyncio.current_task()
        return await self._work

    def cancel(self) -> None:
        """Cancel the task; a second call does nothing, so the first unwinds undisturbed."""
        if self._cancelled or self._future.done():
            return
        self._cancelled = True
        self._loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def result(self) -> T:
        """Wait until the task has ended, however it ended."""
        try:
            return self._future.result()
        except concurrent.futures.CancelledError:
            raise Cancelled from None


@contextmanager
def _ctrl_c_calls(cancel: Callable[[], None]) -> Iterator[None]:
    """Make Ctrl-C call ``cancel`` instead of raising KeyboardInterrupt, for the block.

    Only the main thread may set a signal handler; elsewhere (a test calling the
    chat from another thread) Ctrl-C keeps its usual meaning.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
