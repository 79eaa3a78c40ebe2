"""build_graph(): the primary agent and the sleep-time agent in one LangGraph graph.

Nodes: ``agent`` and ``agent_tools`` (the primary agent), ``sleep``,
``sleep_tools`` and ``sleep_commit`` (the sleep-time agent). Where a run starts
is decided in :func:`entered`: every run enters at ``agent``, and input that
carries a ``sleep_request`` goes on to ``sleep`` at once (a sleep run), anything
else is a chat turn. A sleep run should execute on its own companion thread (see
:func:`sleep_thread_id`): two runs at once on one checkpoint thread would
overwrite each other's checkpoints, and the user's turn must never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from sleepagent._twins import Flow, call
from sleepagent.chat.primary import NodeResult, PrimaryAgent
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError, WrongModeError
from sleepagent.graph.companion import sleep_request, sleep_thread_id
from sleepagent.graph.context import SleepContext, current_target
from sleepagent.graph.node import GraphNode
from sleepagent.graph.state import SleepAgentState
from sleepagent.models import ModelLike, resolve_model
from sleepagent.scheduling.base import SleepJob
from sleepagent.scheduling.policy import ThreadActivity, due_after_turn
from sleepagent.scheduling.precedence import TurnsInFlight
from sleepagent.sleep.nodes import SleepTimeRunner

if TYPE_CHECKING:
    from sleepagent.scheduling.server import ServerIdleScheduler

__all__ = ["SleepAgentState", "build_graph", "sleep_request", "sleep_thread_id"]

S = TypeVar("S")
R = TypeVar("R")

RECURSION_LIMIT = 10_000
"""Graph steps allowed per run. The loops are bounded by the step budgets and
the page count; LangGraph's default of 25 would cut a long transcript short."""


def build_graph(
    model: ModelLike,
    *,
    sleep_model: ModelLike | None = None,
    config: SleepConfig | None = None,
    clock: Callable[[], float] = time.time,
    server_scheduler: ServerIdleScheduler | None = None,
    turns: TurnsInFlight | None = None,
) -> StateGraph[SleepAgentState, SleepContext, SleepAgentState, SleepAgentState]:
    """The sleepagent graph, not yet compiled.

    Compile it with a checkpointer and a store (LangGraph Server provides
    both), and pass ``context=SleepContext(thread_id=..., user_id=...)`` when
    invoking it.

    Args:
        model: The primary agent's chat model, or a spec such as ``"openai:gpt-4o-mini"``.
        sleep_model: The sleep-time agent's model; defaults to ``model``.
        config: Behaviour settings; defaults to ``SleepConfig()``.
        clock: Source of the current POSIX time, for time stamps.
        server_scheduler: On LangGraph Server: after each answered turn, node
            ``schedule_sleep`` sets the scope's delayed sleep run with it.
        turns: The turns in flight that sleep runs give way to: before each model
            call and each commit, a run waits while any is in flight, for at most
            ``config.turn_precedence_seconds``. The agents pass their own; count
            yours with ``turns.enter()`` and ``turns.leave()``. None: no waiting.

    Returns:
        A ``StateGraph`` with nodes ``agent``, ``agent_tools``, ``sleep``,
        ``sleep_tools`` and ``sleep_commit``.

    """
    config = config or SleepConfig()
    chat_model = resolve_model(model)
    after_turn = END if server_scheduler is None else "schedule_sleep"
    primary = PrimaryAgent(chat_model, config, clock, after_turn=after_turn)
    sleeper = SleepTimeRunner(resolve_model(sleep_model or chat_model), config, clock)

    graph = StateGraph(SleepAgentState, context_schema=SleepContext)
    graph.add_node(
        "agent",
        GraphNode.of_flow("agent", entered(primary.step)),
        destinations=("agent_tools", "sleep", after_turn),
    )
    graph.add_node("agent_tools", GraphNode.of_flow("agent_tools", primary.tools))
    step: Callable[[SleepAgentState], Flow[Command[str]]] = sleeper.step
    commit: Callable[[SleepAgentState], Flow[Command[str]]] = sleeper.commit
    if turns is not None and config.turn_precedence_seconds > 0:
        # The steps that call the model or commit give way to turns first;
        # sleep_tools only applies the reply the step before received.
        step = after_turns(step, turns, config.turn_precedence_seconds)
        commit = after_turns(commit, turns, config.turn_precedence_seconds)
    graph.add_node(
        "sleep",
        GraphNode.of_flow("sleep", step),
        destinations=("sleep_tools", "sleep_commit", END),
    )
    graph.add_node(
        "sleep_tools",
        GraphNode("sleep_tools", sleeper.tools),
        destinations=("sleep", "sleep_commit"),
    )
    graph.add_node(
        "sleep_commit",
        GraphNode.of_flow("sleep_commit", commit),
        destinations=("sleep", END),
    )
    graph.add_edge(START, "agent")
    graph.add_edge("agent_tools", "agent")
    if server_scheduler is None:
        return graph

    if server_scheduler.scope_policy is not config.scope:
        raise ConfigurationError(
            f"the server scheduler resolves memory scopes with {server_scheduler.scope_policy}, "
            f"the graph with {config.scope}: pass ServerIdleScheduler(scope=config.scope)"
        )
    scheduling = _ServerScheduling(server_scheduler, config)
    graph.add_node(
        "schedule_sleep",
        GraphNode("schedule_sleep", scheduling.refuse_sync, scheduling.schedule),
    )
    graph.add_edge("schedule_sleep", END)
    return graph


def entered(
    answer: Callable[[SleepAgentState], Flow[NodeResult]],
) -> Callable[[SleepAgentState], Flow[NodeResult]]:
    """The ``agent`` node, where every run enters: a sleep request starts a sleep run.

    A sleep request goes on to ``sleep`` untouched (a :class:`Command`), anything
    else is a chat turn that ``answer`` runs. A conditional edge from ``START``
    would say this in the graph's shape, but it costs every turn a branch (LangGraph
    reads the state for it and calls the path as a traced runnable): about 0.1 ms
    of CPU a turn, some 5% of the library's own work with an instant model,
    measured beside this routing. The turn runs this node anyway, so handing a
    sleep request on from here costs a turn nothing.
    """

    def step(state: SleepAgentState) -> Flow[NodeResult]:
        if state.get("sleep_request"):
            return Command(goto="sleep")
        return (yield from answer(state))

    return step


def after_turns(
    node: Callable[[S], Flow[R]], turns: TurnsInFlight, bound: float
) -> Callable[[S], Flow[R]]:
    """``node``, run once no turn is in flight, or after ``bound`` seconds whatever the turns.

    asyncio has no priorities, and a step of a sleep run costs about as much CPU
    as a turn: waiting here gives the turns the core first (see
    :mod:`sleepagent.scheduling.precedence`). The wait is bounded, so sleep work
    is delayed, never starved.
    """

    def step(state: S) -> Flow[R]:
        yield from call(turns.yield_to_turns, bound)
        return (yield from node(state))

    return step


class _ServerScheduling:
    """Node ``schedule_sleep``: after a turn, (re)set the scope's delayed sleep run."""

    def __init__(self, scheduler: ServerIdleScheduler, config: SleepConfig) -> None:
        self._scheduler = scheduler
        self._config = config

    def refuse_sync(self, state: SleepAgentState) -> dict[str, Any]:
        raise WrongModeError("server scheduling runs on LangGraph Server: invoke the graph async")

    async def schedule(self, state: SleepAgentState) -> dict[str, Any]:
        target = current_target(self._config)
        identity = target.identity
        # The server keeps no timer state between runs, so the uncovered turns are
        # read back from the thread's log; the same policy as in-process decides.
        span = await target.blocks.apending_span(identity.thread_id)
        now = self._scheduler.now()
        first, turns = (span[0], max(1, span[2] // 2)) if span else (now, 1)
        due, reason = due_after_turn(ThreadActivity(first, now, turns), self._config)
        await self._scheduler.aset(SleepJob(identity.thread_id, identity.user_id, due, reason))
        return {}
