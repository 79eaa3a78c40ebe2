"""Scripted models for ``sleepagent chat --offline``: try the chat with no key and no network.

The primary model answers from its memory blocks, so you can see what sleep-time
compute taught it; the sleep-time model lists what you said as facts, and the
library's checks decide what reaches the ``human`` block. Everything else (graph,
storage, idle timer, commits) is the real library.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage

from sleepagent.testing import (
    ScriptedChatModel,
    ai_tool_calls,
    memory_in_prompt,
    said_in_facts_prompt,
    tool_call,
    transcript_in_prompt,
)

__all__ = ["BANNER", "offline_models"]

BANNER = (
    "OFFLINE: the models are scripted (no key, no network). Replies are canned; memory, "
    "sleep-time runs, the idle timer and storage are real."
)

# The script is a list; long enough for any interactive session.
_CALLS = 100_000
_MEMORY_LIMIT = 4_000


def _reply(messages: Sequence[BaseMessage]) -> str:
    said = str(messages[-1].content).strip()
    known = memory_in_prompt(messages).get("human", "").strip()
    remembered = known.replace("\n", "; ") if known else "nothing yet (try /sleep)"
    return f'(scripted) You said "{said}". What I remember about you: {remembered}'


def _take_notes(messages: Sequence[BaseMessage]) -> AIMessage | str:
    said = said_in_facts_prompt(messages)
    if said is not None:
        # The fact pass: each message as a fact; the library's checks decide what stays.
        return "\n".join(f"- {line}" for line in said if line.strip()) or "NOTHING NEW"
    # The edit round (a request about the assistant itself): the notes rewritten.
    known = memory_in_prompt(messages).get("human", "").strip()
    said = [text.strip() for role, text in transcript_in_prompt(messages) if role == "user"]
    notes = "\n".join(line for line in [known, *said] if line)[-_MEMORY_LIMIT:]
    return ai_tool_calls(
        tool_call("memory_rethink", label="human", new_value=notes),
        tool_call("memory_finish"),
    )


def offline_models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """The primary and the sleep-time model of an offline chat."""
    return ScriptedChatModel([_reply] * _CALLS), ScriptedChatModel([_take_notes] * _CALLS)
