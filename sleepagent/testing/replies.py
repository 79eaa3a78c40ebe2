"""Scripted sleep-model replies: the memory tool calls a test writes most.

Each helper builds one :class:`~langchain_core.messages.AIMessage` for a
:class:`~sleepagent.testing.ScriptedChatModel` script, with fresh tool call ids,
so the same helper can be used for every step of a script::

    sleep = ScriptedChatModel([rethink("human", "Name: Ada."), finish()])

An edit ends the run by default (``finish=True`` adds a ``memory_finish`` call
after it), as a sleep-time model that made its one edit would.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolCall

from sleepagent.testing.scripted import ai_tool_calls, tool_call

__all__ = ["finish", "insert", "rethink"]


def finish() -> AIMessage:
    """A reply that ends the sleep run without an edit (a ``memory_finish`` call)."""
    return ai_tool_calls(tool_call("memory_finish"))


def rethink(label: str, value: str, *, finish: bool = True) -> AIMessage:
    """A reply that rewrites block ``label`` to ``value`` (a ``memory_rethink`` call).

    Args:
        label: The block to rewrite.
        value: Its complete new text.
        finish: Also call ``memory_finish`` after the edit, ending the run.

    """
    return _edit(tool_call("memory_rethink", label=label, new_value=value), finish=finish)


def insert(label: str, text: str, *, line: int | None = None, finish: bool = True) -> AIMessage:
    """A reply that inserts ``text`` into block ``label`` (a ``memory_insert`` call).

    Args:
        label: The block to insert into.
        text: The line(s) to insert.
        line: Insert before this line (0 = top, -1 = end); left out of the call
            when not given, so the tool's own default (the end) applies.
        finish: Also call ``memory_finish`` after the edit, ending the run.

    """
    args: dict[str, Any] = {"label": label, "text": text}
    if line is not None:
        args["line"] = line
    return _edit(tool_call("memory_insert", **args), finish=finish)


def _edit(call: ToolCall, *, finish: bool) -> AIMessage:
    return ai_tool_calls(call, tool_call("memory_finish")) if finish else ai_tool_calls(call)
