"""The companion sleep thread of a memory scope, and the input that starts a sleep run there.

Shared by the graph, the agents and LangGraph Server scheduling, so none of
them imports another for these two names.
"""

from __future__ import annotations

import uuid
from typing import Any

from sleepagent.scope import Scope

__all__ = ["sleep_request", "sleep_thread_id"]


def sleep_request(*, reason: str = "manual", run_id: str | None = None) -> dict[str, Any]:
    """Graph input that starts a sleep run."""
    request: dict[str, Any] = {"reason": reason}
    if run_id is not None:
        request["run_id"] = run_id
    return {"sleep_request": request}


_COMPANION_NAMESPACE = uuid.UUID("6f1c8f3e-2b7a-4c55-9a41-5e0d2f7d8a10")


def sleep_thread_id(scope: Scope) -> str:
    """The companion thread where sleep runs of ``scope`` execute.

    A UUID derived from the scope, because LangGraph Server accepts only UUID
    thread ids; the same id serves every checkpointer.
    """
    return str(uuid.uuid5(_COMPANION_NAMESPACE, f"sleepagent-sleep:{scope.key}"))
