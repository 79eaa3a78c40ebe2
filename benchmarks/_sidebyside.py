"""What every side-by-side benchmark shares: the fixed-latency model, the bare chatbot, figures.

The baseline is a plain LangGraph chatbot: a ``StateGraph`` whose state is a
message list with the ``add_messages`` reducer, one node that calls the model
on the thread's messages, compiled with the same checkpointer class on the
same kind of file or database as ours. Both call the same fake model, which
waits a fixed time and answers "ok", so the figures are what each graph adds
around an identical model call.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from sleepagent.sleep.facts import NOTHING_NEW

DEFAULT_LATENCY_S = 0.005


class FixedLatencyModel(BaseChatModel):
    """Answers "ok" after ``latency`` seconds (a sleep, so it costs no CPU).

    With ``finish=True`` it answers "NOTHING NEW" instead: the sleep-time model of a
    run that changes nothing, after its model time (the fact pass concludes a page on
    that one call, as the library's default).
    """

    latency: float = DEFAULT_LATENCY_S
    finish: bool = False

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FixedLatencyModel:  # type: ignore[override]
        return self

    def _reply(self) -> AIMessage:
        return AIMessage(NOTHING_NEW if self.finish else "ok")

    @property
    def _llm_type(self) -> str:
        return "fixed-latency"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency)
        return ChatResult(generations=[ChatGeneration(message=self._reply())])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.latency)
        return ChatResult(generations=[ChatGeneration(message=self._reply())])


class BareState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def bare_chatbot(
    model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any], *, mode: str = "sync"
) -> Any:
    """The baseline: LangGraph's minimal chatbot on ``checkpointer``.

    Its node is a plain function, as in LangGraph's tutorial: ``def`` for
    ``invoke``, ``async def`` for ``ainvoke`` (``mode="async"``).
    """

    def chatbot(state: BareState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def achatbot(state: BareState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(BareState)
    graph.add_node("chatbot", achatbot if mode == "async" else chatbot)
    graph.add_edge(START, "chatbot")
    return graph.compile(checkpointer=checkpointer)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> str:
    """Cores, pinning and load average, for the figures' header."""
    pinned = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores, pinned to CPU {pinned}, load average {load}, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.system()}"
    )


def row(name: str, ours: float, bare: float, unit: str = "ms", scale: float = 1000.0) -> str:
    ratio = ours / bare if bare else float("nan")
    return (
        f"  {name:34} ours {ours * scale:9.2f} {unit}  bare {bare * scale:9.2f} {unit}"
        f"  ratio {ratio:5.2f}x"
    )


def compare(name: str, ours: Sequence[float], bare: Sequence[float]) -> list[str]:
    """Median and p99 rows of two latency samples (seconds)."""
    return [
        row(f"{name} median", statistics.median(ours), statistics.median(bare)),
        row(f"{name} p99", percentile(ours, 0.99), percentile(bare, 0.99)),
    ]
