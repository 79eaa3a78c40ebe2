"""The memory tools: their schemas for the model, and their effect on a staged copy.

The tools never touch the store. Each call either changes the run's
:class:`~sleepagent.memory.staging.StagedMemory` or returns an error message the model
can act on; the staged copy is committed later, in one step, by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sleepagent.errors import MemoryEditError, ReadOnlyBlockError
from sleepagent.memory.blocks import Edit, InsertEdit, ReplaceEdit, RethinkEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.storable import unstorable_reason
from sleepagent.sleep.consolidation import PageEvidence, Reviewed, review_edit

__all__ = ["FINISH_TOOL", "ToolRound", "memory_tool_schemas", "run_tool_calls"]

FINISH_TOOL = "memory_finish"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryReplaceArgs(_Args):
    """Replace text that occurs exactly once in a memory block."""

    label: str = Field(description="Label of the block to edit.")
    old: str = Field(description="Exact text to replace; must occur exactly once in the block.")
    new: str = Field(description="Replacement text (empty to delete).")


class MemoryInsertArgs(_Args):
    """Insert text as new line(s) into a memory block."""

    label: str = Field(description="Label of the block to edit.")
    text: str = Field(description="Text to insert.")
    line: int = Field(default=-1, description="Insert before this line: 0 = top, -1 = end.")


class MemoryRethinkArgs(_Args):
    """Rewrite a memory block completely with a new value."""

    label: str = Field(description="Label of the block to rewrite.")
    new_value: str = Field(description="The block's complete new text.")


class MemoryFinishArgs(_Args):
    """Finish editing memory for now."""


_ARGS: dict[str, type[_Args]] = {
    "memory_replace": MemoryReplaceArgs,
    "memory_insert": MemoryInsertArgs,
    "memory_rethink": MemoryRethinkArgs,
    FINISH_TOOL: MemoryFinishArgs,
}


def memory_tool_schemas(*, finish: bool = True) -> list[dict[str, Any]]:
    """OpenAI-format tool definitions for ``bind_tools``.

    Args:
        finish: Include ``memory_finish`` (the sleep-time agent has it; the
            primary agent, which ends its turn by answering, does not).

    """
    schemas = []
    for name, args in _ARGS.items():
        if name == FINISH_TOOL and not finish:
            continue
        parameters = args.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        parameters.setdefault("properties", {})
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": (args.__doc__ or "").strip(),
                    "parameters": parameters,
                },
            }
        )
    return schemas


@dataclass(frozen=True)
class ToolRound:
    """Outcome of answering one model message's tool calls.

    Attributes:
        staged: The working copy after the accepted edits.
        replies: One tool message per call (matched by ``tool_call_id``).
        finished: Whether ``memory_finish`` was called.
        accepted: Number of edits accepted in this round.
        refused: Number of calls refused (unknown or not offered tool, malformed
            arguments, refused edit).

    """

    staged: StagedMemory
    replies: tuple[ToolMessage, ...]
    finished: bool
    accepted: int
    refused: int = 0


_REPEATED_EDIT = (
    "Error: this exact edit was already made in this run, and the block holds it; memory "
    "editing is finished for this part of the conversation."
)


def _refusal(error: MemoryEditError, staged: StagedMemory) -> str:
    """The refusal the model reads; a read-only one names where the text can go."""
    if not isinstance(error, ReadOnlyBlockError):
        return str(error)
    writable = [block.label for block in staged.blocks() if not block.read_only]
    return f"{error} Writable blocks: {', '.join(writable) or 'none'}."


def run_tool_calls(
    staged: StagedMemory,
    message: AIMessage,
    *,
    allowed: Sequence[str] = tuple(_ARGS),
    evidence: PageEvidence | None = None,
) -> ToolRound:
    """Apply a model message's tool calls to ``staged``, in order.

    Malformed calls (a tool not in ``allowed``, arguments that are not a JSON
    object or do not fit the schema, text no backend can store) and refused
    edits become error replies; they never change the working copy. Replies to
    calls whose arguments were not JSON come first. With ``evidence`` (a sleep
    run's page), each edit first passes the consolidation checks
    (:func:`~sleepagent.sleep.consolidation.review_edit`); what they cleaned or
    refused is said in the call's reply.

    Raises:
        ValueError: If ``allowed`` names a tool that does not exist.

    """
    unknown = set(allowed) - set(_ARGS)
    if unknown:
        raise ValueError(f"allowed names tools that do not exist: {sorted(unknown)}")
    replies: list[ToolMessage] = []
    finished = False
    accepted = 0
    refused = len(message.invalid_tool_calls)
    for bad in message.invalid_tool_calls:
        replies.append(
            _error(
                bad.get("id") or "",
                bad.get("name") or "unknown",
                "Error: the tool call's arguments are not valid JSON "
                f"({bad.get('error') or 'could not parse'}). Send the call again with a "
                "JSON object of arguments.",
            )
        )
    for call in message.tool_calls:
        call_id, name = call.get("id") or "", call["name"]
        problem = _call_problem(name, call.get("args"), allowed)
        if problem is not None:
            refused += 1
            replies.append(_error(call_id, name, problem))
            continue
        try:
            args = _ARGS[name].model_validate(call["args"])
        except ValidationError as error:
            refused += 1
            replies.append(
                _error(call_id, name, f"Error: invalid arguments for {name}: {_brief(error)}")
            )
            continue
        if isinstance(args, MemoryFinishArgs):
            finished = True
            replies.append(ToolMessage("Memory editing finished.", tool_call_id=call_id, name=name))
            continue
        edit = _edit(args)
        if edit in staged.edits:
            # Small models resend an accepted call after its OK, step after step;
            # applied again, an insert would fill the block with copies. Resending
            # it says the model has nothing new, so the page ends here.
            refused += 1
            finished = True
            replies.append(_error(call_id, name, _REPEATED_EDIT))
            continue
        try:
            reviewed = (
                review_edit(staged.block(edit.label), edit, evidence)
                if evidence is not None
                else Reviewed(edit)
            )
            staged, block = staged.stage(reviewed.edit)
        except MemoryEditError as error:
            refused += 1
            replies.append(_error(call_id, name, _refusal(error, staged)))
            continue
        accepted += 1
        done = f"OK: block '{block.label}' now holds {block.chars}/{block.limit} characters."
        replies.append(
            ToolMessage(" ".join([done, *reviewed.notes]), tool_call_id=call_id, name=name)
        )
    return ToolRound(
        staged=staged,
        replies=tuple(replies),
        finished=finished,
        accepted=accepted,
        refused=refused,
    )


def _call_problem(name: str, args: Any, allowed: Sequence[str]) -> str | None:
    """Why a call must be refused before its arguments are even validated, if it must."""
    if name not in allowed:
        return f"Error: unknown tool '{name}'. Use one of: {', '.join(allowed)}."
    if not isinstance(args, dict):
        return (
            f"Error: the arguments of {name} must be a JSON object of named fields, "
            f"got {type(args).__name__}. Send the call again with an object."
        )
    for field_name, value in args.items():
        reason = unstorable_reason(value) if isinstance(value, str) else None
        if reason is not None:
            return f"Edit refused: argument '{field_name}' cannot be saved: {reason}."
    return None


def _edit(args: _Args) -> Edit:
    if isinstance(args, MemoryReplaceArgs):
        return ReplaceEdit(args.label, args.old, args.new)
    if isinstance(args, MemoryInsertArgs):
        return InsertEdit(args.label, args.text, args.line)
    if isinstance(args, MemoryRethinkArgs):
        return RethinkEdit(args.label, args.new_value)
    raise TypeError(f"not an edit: {args!r}")


def _error(call_id: str, name: str, text: str) -> ToolMessage:
    return ToolMessage(text, tool_call_id=call_id, name=name, status="error")


def _brief(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)
