"""Sync and async twins written once: flows that yield their I/O calls, and two drivers.

A *flow* is a generator that makes every decision and yields each I/O call it
needs as an effect; a driver performs the call and sends the result back in, or
throws the call's exception in, so the flow's own ``try`` blocks see it. :func:`run`
performs each call synchronously, :func:`arun` awaits its async twin: the two
modes share every line but the call itself. It is the idea of
:class:`~sleepagent.memory.blockstore.BlockStore`'s plans (which yield batches of
store ops) and of httpx's ``Auth.auth_flow``, for calls of any kind::

    def memory_flow(blocks, scope):
        loaded = yield from call(blocks.load, scope)  # blocks.aload(scope) under arun
        return {block.label: block for block in loaded}

    run(memory_flow(blocks, scope))          # sync
    await arun(memory_flow(blocks, scope))   # async

The async twin of a method ``name`` is the method ``aname`` of the same object,
the convention of LangChain, LangGraph and this package (``invoke``/``ainvoke``,
``load``/``aload``, ``_open``/``_aopen``: leading underscores stay in front); of a
function, the function ``aname`` of its module (``run_lock``/``arun_lock``).

Four effects, each with its sync and async performance:

- :func:`call`: one I/O call; its async twin is awaited when it returns an
  awaitable (``astream`` returns an async iterator, used as it is).
- :func:`within`: a sub-flow run inside a context manager (a lock), entered
  and exited with its twin in async code.
- :func:`shielded`: a sub-flow that a cancellation of the caller does not stop.
- :func:`emit`: a value for the caller of :func:`stream` / :func:`astream`,
  which hand it out as an iterator. ``close()``/``aclose()`` on that iterator
  throws :class:`StreamClosed` into the flow at its ``emit`` (not
  ``GeneratorExit``, which ``yield from`` would turn into ``close()`` of every
  sub-flow): the flow may still make calls, but not emit, before it lets it go.

Two helpers are flows built on them: :func:`iterate` (the next item of a sync or
async iterator) and :func:`holding` (a sub-flow run holding a lock that threads
and tasks share, such as :class:`~sleepagent.store.keyedlocks.SharedLock`; unlike
:func:`within`, its sub-flow may emit).

:func:`async_twin` gives an async method the docstring of its sync twin, so
docstrings are written once too.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar

__all__ = [
    "Flow",
    "StreamClosed",
    "arun",
    "astream",
    "async_twin",
    "call",
    "emit",
    "holding",
    "iterate",
    "run",
    "shielded",
    "stream",
    "twin_of",
    "within",
]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


class _Effect:
    """An I/O step of a flow: how to perform it in each mode."""

    __slots__ = ()

    def perform(self) -> Any:
        raise NotImplementedError

    async def aperform(self) -> Any:
        raise NotImplementedError


Flow: TypeAlias = Generator[_Effect, Any, T]
"""A flow that returns a ``T``: yields effects, receives what they return."""


class _Call(_Effect):
    __slots__ = ("args", "kwargs", "method")

    def __init__(self, method: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def perform(self) -> Any:
        return self.method(*self.args, **self.kwargs)

    async def aperform(self) -> Any:
        result = twin_of(self.method)(*self.args, **self.kwargs)
        return await result if inspect.isawaitable(result) else result


class _Within(_Effect):
    __slots__ = ("body", "opener")

    def __init__(self, opener: _Call, body: Callable[[Any], Flow[Any]]) -> None:
        self.opener = opener
        self.body = body

    def perform(self) -> Any:
        with self.opener.perform() as value:
            return run(self.body(value))

    async def aperform(self) -> Any:
        opener = self.opener
        async with twin_of(opener.method)(*opener.args, **opener.kwargs) as value:
            return await arun(self.body(value))


class _Shielded(_Effect):
    __slots__ = ("body",)

    def __init__(self, body: Flow[Any]) -> None:
        self.body = body

    def perform(self) -> Any:
        return run(self.body)

    async def aperform(self) -> Any:
        return await asyncio.shield(arun(self.body))


class StreamClosed(BaseException):
    """Thrown into a streaming flow at its :func:`emit` when the caller closed the stream."""


class _Emit(_Effect):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def call(method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Flow[R]:
    """``method(*args, **kwargs)``, or ``await`` of its async twin under :func:`arun`."""
    result: R = yield _Call(method, args, kwargs)
    return result


def within(
    body: Callable[[T], Flow[R]],
    opener: Callable[P, AbstractContextManager[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Flow[R]:
    """Run ``body(value)`` inside ``with opener(*args, **kwargs) as value``.

    Under :func:`arun`: inside ``async with`` the opener's async twin.
    """
    result: R = yield _Within(_Call(opener, args, kwargs), body)
    return result


def shielded(body: Flow[R]) -> Flow[R]:
    """Run ``body`` to its end even when the caller is cancelled meanwhile (async)."""
    result: R = yield _Shielded(body)
    return result


def emit(value: Any) -> Flow[None]:
    """Hand ``value`` to the caller of :func:`stream` or :func:`astream`."""
    yield _Emit(value)


def twin_of(method: Callable[..., Any]) -> Callable[..., Any]:
    """The async twin of ``method``: ``aname`` on its object, or in its module.

    Raises:
        TypeError: When there is none.

    """
    bare = method.__name__.lstrip("_")
    name = method.__name__[: -len(bare)] + "a" + bare
    owner = getattr(method, "__self__", None)
    if owner is None or isinstance(owner, ModuleType):
        owner = sys.modules[method.__module__]
    twin = getattr(owner, name, None)
    if twin is None:
        raise TypeError(f"{method.__qualname__} has no async twin {name}")
    return twin  # type: ignore[no-any-return]


# --- the drivers -------------------------------------------------------------------


class _Driving:
    """A flow being driven: what goes in next (a value, or an error), what came out last."""

    __slots__ = ("error", "flow", "result", "value")

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next_effect(self) -> _Effect | None:
        """Resume the flow; its next effect, or None once it has returned (or seen its close)."""
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            return self.flow.send(value) if error is None else self.flow.throw(error)
        except StopIteration as done:
            self.result = done.value
        except StreamClosed:
            pass  # the stream was closed: nobody reads a result
        return None

    def failed(self, error: BaseException) -> None:
        """The effect raised: throw it into the flow, which decides (a close, as StreamClosed)."""
        self.error = StreamClosed() if isinstance(error, GeneratorExit) else error


# The two loops below differ only where an effect is performed (a call, or an
# await); they cannot share that line: a generator cannot await.


def stream(flow: Flow[R]) -> Generator[Any, None, R]:
    """Drive ``flow`` synchronously, yielding what it emits; returns what it returns."""
    drive = _Driving(flow)
    while (effect := drive.next_effect()) is not None:
        try:
            drive.value = (yield effect.value) if isinstance(effect, _Emit) else effect.perform()
        except BaseException as error:
            drive.failed(error)
    return drive.result  # type: ignore[no-any-return]


async def astream(flow: Flow[Any], result: list[Any] | None = None) -> AsyncGenerator[Any, None]:
    """Drive ``flow`` with async I/O, yielding what it emits.

    What the flow returns is appended to ``result``: an async generator returns nothing.
    """
    drive = _Driving(flow)
    while (effect := drive.next_effect()) is not None:
        try:
            drive.value = (
                (yield effect.value) if isinstance(effect, _Emit) else await effect.aperform()
            )
        except BaseException as error:
            drive.failed(error)
    if result is not None:
        result.append(drive.result)


def run(flow: Flow[R]) -> R:
    """Drive ``flow`` synchronously and return what it returns.

    Raises:
        TypeError: When the flow emits (drive it with :func:`stream`).

    """
    steps = stream(flow)
    try:
        emitted = next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    steps.close()
    raise TypeError(f"the flow emitted {emitted!r}: drive it with stream()")


async def arun(flow: Flow[R]) -> R:
    """Drive ``flow`` with async I/O and return what it returns.

    Raises:
        TypeError: When the flow emits (drive it with :func:`astream`).

    """
    result: list[R] = []
    steps = astream(flow, result)
    async for emitted in steps:
        await steps.aclose()
        raise TypeError(f"the flow emitted {emitted!r}: drive it with astream()")
    return result[0]


# --- flows built on the effects -------------------------------------------------------


def iterate(iterator: Iterator[T] | AsyncIterator[T]) -> Flow[T | None]:
    """The next item of an iterator (async under :func:`arun`), or None at its end."""
    item: T | None = yield from call(_next, iterator)
    return item


def _next(iterator: Any) -> Any:
    return next(iterator, None)


async def _anext(iterator: Any) -> Any:
    return await anext(iterator, None)


class _Lock(Protocol):
    def acquire(self) -> bool: ...

    async def aacquire(self) -> bool: ...

    def release(self) -> None: ...


def holding(lock: _Lock, body: Flow[R]) -> Flow[R]:
    """Run ``body`` holding ``lock`` (``acquire``, or ``aacquire`` under :func:`arun`)."""
    yield from call(lock.acquire)
    try:
        return (yield from body)
    finally:
        lock.release()


# --- docstrings ----------------------------------------------------------------------


def async_twin(sync: Callable[..., Any]) -> Callable[[F], F]:
    """Give the decorated async twin of ``sync`` the docstring of ``sync``.

    A docstring of the twin's own, if any, goes first: write there only what
    differs (how cancellation behaves, say).
    """

    def document(twin: F) -> F:
        head = inspect.getdoc(twin) or f"Async :meth:`{sync.__qualname__}`."
        body = inspect.getdoc(sync)
        twin.__doc__ = f"{head}\n\n{body}" if body else head
        return twin

    return document
