"""GraphNode: a graph node with a sync and an async body, and no tracing run of its own.

LangGraph already opens a run per node (named after the node) and sets the
run config in context before it calls the node's runnable; a plain function
node is called as it is. A ``RunnableLambda`` would open a second, nested run
of the same name and inspect its function's signature on every call, about a
third of a millisecond per node on the turn path. This runnable only calls
the body that fits the mode, as LangGraph does with a plain function.

A node that does I/O is written once, as a flow (see :mod:`sleepagent._twins`):
:meth:`GraphNode.of_flow` drives it with sync calls under ``invoke`` and async
ones under ``ainvoke``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig

from sleepagent._twins import Flow, arun, run

__all__ = ["GraphNode"]

S = TypeVar("S")
R = TypeVar("R")


class GraphNode(Runnable[S, R], Generic[S, R]):
    """Calls ``func(state)`` under ``invoke`` and ``await afunc(state)`` under ``ainvoke``.

    Args:
        name: The node's name.
        func: The synchronous body.
        afunc: The asynchronous body; without one, ``ainvoke`` calls ``func``
            on the event loop, so give one to any node that does I/O.

    """

    def __init__(
        self,
        name: str,
        func: Callable[[S], R],
        afunc: Callable[[S], Awaitable[R]] | None = None,
    ) -> None:
        self.name = name
        self._func = func
        self._afunc = afunc

    @classmethod
    def of_flow(cls, name: str, flow: Callable[[S], Flow[R]]) -> GraphNode[S, R]:
        """A node whose body is written once, as ``flow(state)``, and driven in either mode."""

        def body(state: S) -> R:
            return run(flow(state))

        async def abody(state: S) -> R:
            return await arun(flow(state))

        return cls(name, body, abody)

    def invoke(self, input: S, config: RunnableConfig | None = None, **kwargs: Any) -> R:
        """Run the synchronous body on ``input`` (the graph state)."""
        return self._func(input)

    async def ainvoke(self, input: S, config: RunnableConfig | None = None, **kwargs: Any) -> R:
        """Run the asynchronous body on ``input``, or the synchronous one if there is none."""
        if self._afunc is None:
            return self._func(input)
        return await self._afunc(input)
