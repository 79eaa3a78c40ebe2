"""LangGraph Server entry point: the sleepagent graph, built from environment variables.

``langgraph.json`` points at :func:`make_graph`; the server supplies the
checkpointer and the store. Set ``SLEEPAGENT_MODEL`` (default
``openai:gpt-4o-mini``) and optionally ``SLEEPAGENT_SLEEP_MODEL``, plus the
provider's own variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).
"""

from __future__ import annotations

import os

from langgraph.graph.state import CompiledStateGraph

from sleepagent import build_graph
from sleepagent.graph import RECURSION_LIMIT


def make_graph() -> CompiledStateGraph:
    model = os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini")
    sleep_model = os.environ.get("SLEEPAGENT_SLEEP_MODEL") or None
    graph = build_graph(model, sleep_model=sleep_model).compile(name="sleepagent")
    return graph.with_config(recursion_limit=RECURSION_LIMIT)
