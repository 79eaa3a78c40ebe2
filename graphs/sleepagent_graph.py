"""LangGraph Server entry point: the sleepagent graph, built from environment variables.

``langgraph.json`` points at :func:`make_graph`; the server supplies the
checkpointer and the store. One graph serves both sides: input with
``messages`` is a chat turn, input with ``sleep_request`` is a sleep run (on
the scope's companion thread). After each turn the graph sets the scope's
delayed sleep run on this same server.

Environment: ``SLEEPAGENT_MODEL`` (default ``openai:gpt-4o-mini``),
``SLEEPAGENT_SLEEP_MODEL`` (default: the same), ``SLEEPAGENT_IDLE_SECONDS``
(default 30), ``SLEEPAGENT_ASSISTANT_ID`` (default ``sleepagent``, the graph id
below), plus the provider's own variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).
"""

from __future__ import annotations

import os

from langgraph.graph.state import CompiledStateGraph

from sleepagent import SleepConfig, build_graph
from sleepagent.graph.build import RECURSION_LIMIT
from sleepagent.scheduling.server import ServerIdleScheduler


def make_graph() -> CompiledStateGraph:
    model = os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini")
    sleep_model = os.environ.get("SLEEPAGENT_SLEEP_MODEL") or None
    config = SleepConfig(idle_seconds=float(os.environ.get("SLEEPAGENT_IDLE_SECONDS", "30")))
    scheduler = ServerIdleScheduler(
        os.environ.get("SLEEPAGENT_ASSISTANT_ID", "sleepagent"), scope=config.scope
    )
    graph = build_graph(model, sleep_model=sleep_model, config=config, server_scheduler=scheduler)
    return graph.compile(name="sleepagent").with_config(recursion_limit=RECURSION_LIMIT)
