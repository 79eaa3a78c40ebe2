"""The state schema of the sleepagent graph."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["SleepAgentState"]


class SleepAgentState(TypedDict, total=False):
    """State of a sleepagent graph thread.

    Chat threads use ``messages`` and ``turn_diffs``; the
    companion sleep threads use the ``sleep*`` keys. All values are plain data.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    turn_diffs: list[dict[str, Any]]
    sleep_request: dict[str, Any] | None
    sleep: dict[str, Any] | None
    sleep_messages: list[AnyMessage]
    sleep_result: dict[str, Any] | None
