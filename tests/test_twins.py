"""Flows written once and driven in either mode (sleepagent._twins)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from sleepagent._twins import (
    Flow,
    StreamClosed,
    arun,
    astream,
    async_twin,
    call,
    emit,
    iterate,
    run,
    stream,
    twin_of,
    within,
)


class Port:
    """A sync method and its async twin for each call, recording which mode ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.exited: list[str] = []

    def double(self, n: int) -> int:
        self.calls.append("sync")
        return 2 * n

    async def adouble(self, n: int) -> int:
        self.calls.append("async")
        return 2 * n

    def fail(self) -> None:
        raise KeyError("sync")

    async def afail(self) -> None:
        raise KeyError("async")

    @contextmanager
    def held(self) -> Iterator[str]:
        try:
            yield "sync"
        finally:
            self.exited.append("sync")

    @asynccontextmanager
    async def aheld(self) -> AsyncIterator[str]:
        try:
            yield "async"
        finally:
            self.exited.append("async")

    def numbers(self) -> Iterator[int]:
        return iter([1, 2, 3])

    def anumbers(self) -> AsyncIterator[int]:
        return _async_iter([1, 2, 3])

    def _private(self) -> str:
        return "sync"

    async def _aprivate(self) -> str:
        return "async"


async def _async_iter(items: list[int]) -> AsyncIterator[int]:
    for item in items:
        yield item


def both(flow_factory):
    """The flow's result under run() and under arun()."""
    return run(flow_factory()), asyncio.run(arun(flow_factory()))


def test_a_flow_gives_the_same_result_in_both_modes_and_each_mode_makes_its_own_calls():
    port = Port()

    def flow() -> Flow[int]:
        first = yield from call(port.double, 2)
        return (yield from call(port.double, first))

    assert both(flow) == (8, 8)
    assert port.calls == ["sync", "sync", "async", "async"]


def test_a_calls_error_is_raised_in_the_flow_where_it_yielded_the_call():
    port = Port()

    def flow() -> Flow[str]:
        try:
            yield from call(port.fail)
        except KeyError as error:
            return f"caught {error.args[0]}"
        return "not raised"

    assert both(flow) == ("caught sync", "caught async")


def test_within_exits_its_context_manager_when_the_body_fails():
    port = Port()

    def body(value: str) -> Flow[None]:
        yield from call(port.fail)

    def flow() -> Flow[str]:
        try:
            yield from within(body, port.held)
        except KeyError:
            return "failed"
        return "not raised"

    assert both(flow) == ("failed", "failed")
    assert port.exited == ["sync", "async"]


def test_closing_a_stream_early_lets_the_flow_finish_its_calls_without_emitting():
    port = Port()
    finished: list[str] = []

    def flow() -> Flow[None]:
        numbers = yield from call(port.numbers)
        try:
            while (n := (yield from iterate(numbers))) is not None:
                yield from emit((yield from call(port.double, n)))
        except StreamClosed:
            while (n := (yield from iterate(numbers))) is not None:
                yield from call(port.double, n)
            finished.append("drained")
            raise

    pieces = stream(flow())
    assert next(pieces) == 2
    pieces.close()

    async def consume() -> None:
        pieces = astream(flow())
        assert await anext(pieces) == 2
        await pieces.aclose()

    asyncio.run(consume())
    assert finished == ["drained", "drained"]
    assert port.calls == ["sync"] * 3 + ["async"] * 3


def test_run_refuses_a_flow_that_emits():
    def flow() -> Flow[None]:
        yield from emit("piece")

    with pytest.raises(TypeError, match="stream"):
        run(flow())
    with pytest.raises(TypeError, match="astream"):
        asyncio.run(arun(flow()))


def test_the_async_twin_of_a_private_method_keeps_its_leading_underscore():
    port = Port()
    assert twin_of(port._private) == port._aprivate
    assert twin_of(port.held) == port.aheld


def test_a_method_without_an_async_twin_is_refused_by_name():
    def flow() -> Flow[None]:
        yield from call(Port().calls.append, 1)

    with pytest.raises(TypeError, match="aappend"):
        asyncio.run(arun(flow()))


def test_an_async_twin_is_documented_by_its_sync_twins_docstring():
    class Twins:
        def load(self) -> None:
            """Load it.

            Returns:
                Nothing.

            """

        @async_twin(load)
        async def aload(self) -> None:
            pass

        @async_twin(load)
        async def acarefully(self) -> None:
            """Async :meth:`load`: cancelling it leaves nothing half done."""

    head, _, rest = inspect.getdoc(Twins.aload).partition("\n\n")
    assert head == f"Async :meth:`{Twins.load.__qualname__}`."
    assert rest == inspect.getdoc(Twins.load)
    assert inspect.getdoc(Twins.acarefully).startswith(
        "Async :meth:`load`: cancelling it leaves nothing half done.\n\nLoad it."
    )
