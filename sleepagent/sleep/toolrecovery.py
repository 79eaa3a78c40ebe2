"""Tool calls a model wrote as JSON in its text, recovered when they are unambiguous.

Small local models asked with ``tools`` often write the call into the reply
text (``{"name": "memory_rethink", "arguments": {...}}``, sometimes in a
```` ```json ```` fence, sometimes several) instead of the server's tool-call
field, so the caller sees a plain answer. :func:`recover_tool_calls` finds such
JSON and turns it into LangChain tool calls, but only when the object names a
tool that was offered and its arguments validate against that tool's argument
model; everything else stays text, because prose with braces, a JSON example in
an answer, or a half-remembered tool name must never start a memory edit.

Recognised shapes, each alone, in a list, or in a ``{"tool_calls": [...]}``
wrapper: ``{"name", "arguments" | "parameters" | "args" | "input"}``,
``{"type": "function", "function": {"name", "arguments"}}`` (arguments as an
object or as a JSON string, the OpenAI wire shape), and the flat
``{"name": ..., <argument>: ...}`` when no arguments key is present.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolCall
from pydantic import BaseModel, ValidationError

from sleepagent.sleep.tools import (
    FINISH_TOOL,
    MemoryFinishArgs,
    MemoryInsertArgs,
    MemoryReplaceArgs,
    MemoryRethinkArgs,
)

__all__ = [
    "RejectedCall",
    "Recovery",
    "find_tool_calls",
    "memory_tool_args",
    "recover_tool_calls",
]

_NAME_KEYS = ("name", "tool", "tool_name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_WRAPPER_KEYS = frozenset({"type", "id", "call_id", "index"})


@dataclass(frozen=True)
class RejectedCall:
    """JSON shaped like a tool call that was left as text, and why.

    Attributes:
        name: The tool it named.
        reason: Why it was not recovered (tool not offered, arguments invalid).

    """

    name: str
    reason: str


@dataclass(frozen=True)
class Recovery:
    """What :func:`find_tool_calls` found in a text.

    Attributes:
        calls: The recovered calls, in text order.
        text: The text without the recovered JSON (and without fences left empty).
        rejected: Call-shaped JSON that stayed in the text.

    """

    calls: tuple[ToolCall, ...] = ()
    text: str = ""
    rejected: tuple[RejectedCall, ...] = ()


def memory_tool_args(*, finish: bool) -> dict[str, type[BaseModel]]:
    """The memory tools an agent offers, by name, with their argument models.

    Args:
        finish: Include ``memory_finish`` (the sleep-time agent offers it).

    """
    tools: dict[str, type[BaseModel]] = {
        "memory_replace": MemoryReplaceArgs,
        "memory_insert": MemoryInsertArgs,
        "memory_rethink": MemoryRethinkArgs,
    }
    if finish:
        tools[FINISH_TOOL] = MemoryFinishArgs
    return tools


def find_tool_calls(text: str, tools: Mapping[str, type[BaseModel]]) -> Recovery:
    """Find tool calls written as JSON in ``text``.

    Pure: call ids are derived from the text, so the same text gives the same ids.

    Args:
        text: Message content.
        tools: The offered tools: name to the pydantic model of its arguments.

    Returns:
        The recovered calls, the remaining text, and the rejected look-alikes.

    """
    calls: list[ToolCall] = []
    rejected: list[RejectedCall] = []
    kept: list[str] = []
    position = 0
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    for start, end, value in _json_values(text):
        candidates = list(_candidates(value))
        if not candidates:
            continue
        found = [_validate(candidate, tools) for candidate in candidates]
        rejected.extend(item for item in found if isinstance(item, RejectedCall))
        if not all(isinstance(item, tuple) for item in found):
            # A list mixing valid and invalid calls stays text whole: half a plan
            # is not what the model asked for.
            continue
        for name, args in (item for item in found if isinstance(item, tuple)):
            calls.append(
                ToolCall(name=name, args=args, id=f"call_{digest}_{len(calls)}", type="tool_call")
            )
        kept.append(text[position:start])
        position = end
    kept.append(text[position:])
    remaining = _without_empty_fences("".join(kept)) if calls else text
    return Recovery(calls=tuple(calls), text=remaining, rejected=tuple(rejected))


def recover_tool_calls(message: AIMessage, tools: Mapping[str, type[BaseModel]]) -> AIMessage:
    """``message`` with the tool calls its text held, when it has none of its own.

    A message that already carries tool calls (valid or not) is returned as is:
    the server understood the model, and text beside the calls is the model's.

    Args:
        message: The model's reply.
        tools: The offered tools: name to the pydantic model of its arguments.

    Returns:
        A copy with ``tool_calls`` set and the JSON removed from the content, or
        ``message`` itself when nothing was recovered.

    """
    if message.tool_calls or message.invalid_tool_calls or not tools:
        return message
    content = message.content if isinstance(message.content, str) else message.text
    recovery = find_tool_calls(content, tools)
    if not recovery.calls:
        return message
    return message.model_copy(update={"content": recovery.text, "tool_calls": list(recovery.calls)})


# --- finding JSON in text ---------------------------------------------------------------


def _json_values(text: str) -> Iterator[tuple[int, int, Any]]:
    """Every top-level JSON object or array in ``text``, with its span."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i != -1]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        yield start, end, value
        position = end


def _candidates(value: Any) -> Iterator[dict[str, Any]]:
    """The call-shaped objects in a decoded JSON value (a call, a list, a wrapper)."""
    if isinstance(value, list):
        named = [item for item in value if isinstance(item, dict) and _name_of(item) is not None]
        # A list is a list of calls only when every item is one.
        if named and len(named) == len(value):
            yield from named
        return
    if isinstance(value, dict):
        wrapped = value.get("tool_calls")
        if isinstance(wrapped, list) and len(value) == 1:
            yield from _candidates(wrapped)
        elif _name_of(value) is not None:
            yield value


def _name_of(item: dict[str, Any]) -> str | None:
    function = item.get("function")
    if isinstance(function, dict):
        name = function.get("name")
        return name if isinstance(name, str) else None
    for key in _NAME_KEYS:
        if isinstance(item.get(key), str):
            return str(item[key])
    return None


def _validate(
    item: dict[str, Any], tools: Mapping[str, type[BaseModel]]
) -> tuple[str, dict[str, Any]] | RejectedCall:
    name = _name_of(item)
    assert name is not None  # _candidates yields named objects only
    if name not in tools:
        return RejectedCall(name, f"'{name}' is not an offered tool")
    args = _arguments_of(item)
    if isinstance(args, str):
        return RejectedCall(name, args)
    try:
        tools[name].model_validate(args)
    except ValidationError as error:
        return RejectedCall(name, f"arguments do not fit {name}: {error.error_count()} error(s)")
    return name, args


def _arguments_of(item: dict[str, Any]) -> dict[str, Any] | str:
    """The call's arguments as an object, or why they cannot be read."""
    source = item["function"] if isinstance(item.get("function"), dict) else item
    present = [key for key in _ARGUMENT_KEYS if key in source]
    if not present:
        # The flat shape: every key but the name (and wrapper fields) is an argument.
        skip = {*_NAME_KEYS, "function", *_WRAPPER_KEYS}
        return {key: value for key, value in source.items() if key not in skip}
    args = source[present[0]]
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return "arguments are a string that is not JSON"
    if args is None:
        return {}
    if not isinstance(args, dict):
        return f"arguments are a {type(args).__name__}, not an object"
    return args


def _without_empty_fences(text: str) -> str:
    """The text with code fences the recovered JSON left empty taken out."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if line.startswith("```") and index + 1 < len(lines):
            following = index + 1
            while following < len(lines) and not lines[following].strip():
                following += 1
            if following < len(lines) and lines[following].strip() == "```":
                index = following + 1
                continue
        out.append(lines[index])
        index += 1
    return "\n".join(out).strip()
