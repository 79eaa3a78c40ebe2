"""ConversationQueue: messages of one conversation are answered in order, one batch at a time.

A chat platform delivers messages concurrently. When a person sends a second
message while the bot is still answering the first, answering both at once
would reply out of order, and dropping one would lose it. The queue keeps one
worker per conversation: a message is handled after every earlier message of
that conversation, and (with ``merge=True``) everything that arrived while the
bot was busy becomes the next turn. Different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

from sleepagent.errors import ConfigurationError

__all__ = ["BatchHandler", "ConversationQueue", "ErrorHandler", "runs_by"]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

BatchHandler = Callable[[K, Sequence[T]], Awaitable[None]]
"""Answers a batch of items of one conversation: ``await handle(key, items)``."""

ErrorHandler = Callable[[K, Sequence[T], BaseException], None]
"""Told about a batch whose handler raised: ``on_error(key, items, error)``."""


class ConversationQueue(Generic[K, T]):
    """An ordered, per-conversation async work queue.

    Args:
        handle: Coroutine function called with a conversation key and the
            items to answer, oldest first.
        merge: Hand every item waiting to one call (messages sent while the
            bot was busy become one turn); ``False`` hands them one at a time.
        on_error: Called when ``handle`` raises; by default the error and the
            items are logged. Later items of the conversation are still handled.
        remember: How many recent ``item_id`` values are kept to drop redeliveries.

    Create and use it inside a running event loop. Close it with
    :meth:`aclose` (or ``async with``), which waits for queued work, bounded.

    """

    def __init__(
        self,
        handle: BatchHandler[K, T],
        *,
        merge: bool = True,
        on_error: ErrorHandler[K, T] | None = None,
        remember: int = 10_000,
    ) -> None:
        self._handle = handle
        self._merge = merge
        self._on_error = on_error or _log_error
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self._remember = remember
        self._waiting: dict[K, deque[T]] = {}
        self._workers: dict[K, asyncio.Task[None]] = {}
        self._closed = False

    async def __aenter__(self) -> ConversationQueue[K, T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def put(self, key: K, item: T, *, item_id: Hashable | None = None) -> bool:
        """Queue ``item`` for conversation ``key``; it is handled after every earlier item.

        Args:
            key: The conversation.
            item: What to handle.
            item_id: The platform's id of the message. Platforms redeliver a
                message whose acknowledgement was late (Slack retries after
                3 s); an id among the last ``remember`` ones is not queued again.

        Returns:
            Whether the item was queued (``False`` for a repeated ``item_id``).

        Raises:
            ConfigurationError: If the queue is closed.
            RuntimeError: If called outside a running event loop.

        """
        loop = asyncio.get_running_loop()
        if self._closed:
            raise ConfigurationError("this ConversationQueue is closed; create a new one")
        if item_id is not None:
            if item_id in self._seen:
                return False
            self._seen[item_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        self._waiting.setdefault(key, deque()).append(item)
        if key not in self._workers:
            self._workers[key] = loop.create_task(
                self._drain(key), name=f"sleepagent-conversation:{key}"
            )
        return True

    def waiting(self, key: K) -> int:
        """Items of ``key`` queued and not yet handed to ``handle``."""
        return len(self._waiting.get(key, ()))

    @property
    def busy(self) -> bool:
        """Whether any conversation has work queued or in hand."""
        return bool(self._workers)

    async def join(self, timeout: float) -> None:
        """Wait until every queued item has been handled, at most ``timeout`` seconds.

        Raises:
            TimeoutError: If work is still queued after ``timeout``.

        """
        await asyncio.wait_for(self._until_idle(), timeout)

    async def aclose(self, timeout: float = 10.0) -> list[tuple[K, T]]:
        """Refuse new items, let queued ones finish for up to ``timeout`` seconds, stop.

        Idempotent.

        Returns:
            The items that were not handled in time (and are not handled now),
            so the caller can report them; empty when everything was answered.

        """
        self._closed = True
        try:
            await self.join(timeout)
        except TimeoutError:
            logger.warning("closing ConversationQueue with work still queued after %ss", timeout)
        left = [(key, item) for key, items in self._waiting.items() for item in items]
        self._waiting.clear()
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return left

    async def _until_idle(self) -> None:
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def _drain(self, key: K) -> None:
        try:
            while batch := self._take(key):
                try:
                    await self._handle(key, batch)
                except Exception as error:
                    # One failed answer must not stall the rest of the conversation.
                    self._on_error(key, batch, error)
        finally:
            self._workers.pop(key, None)

    def _take(self, key: K) -> list[T]:
        # No await between the emptiness check and the worker's exit, so an item
        # put meanwhile always finds either this worker or none and starts one.
        waiting = self._waiting.get(key)
        if not waiting:
            self._waiting.pop(key, None)
            return []
        if self._merge:
            batch = list(waiting)
            waiting.clear()
            return batch
        return [waiting.popleft()]


def _log_error(key: Hashable, items: Sequence[object], error: BaseException) -> None:
    logger.error(
        "answering %d message(s) of conversation %s failed", len(items), key, exc_info=error
    )


def runs_by(items: Iterable[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """``items`` cut into runs of consecutive items with the same ``key``, order kept.

    A merged batch from a thread where two people spoke is answered as one
    turn per run, each under its speaker's identity::

        runs_by(["a1", "a2", "b1", "a3"], key=lambda s: s[0])
        # [["a1", "a2"], ["b1"], ["a3"]]
    """
    runs: list[list[T]] = []
    for item in items:
        if runs and key(runs[-1][-1]) == key(item):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
