"""Memory blocks and the pure edit operations on them.

A memory block is a labelled piece of text with a character limit, shared by
the primary agent (which reads it in its system prompt) and the sleep-time
agent (which rewrites it). Every function here is pure: an edit returns a new
block or raises a :class:`~sleepagent.errors.MemoryEditError` whose message is
meant for the model that asked for it; the original block is never changed.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sleepagent.errors import (
    BlockLimitError,
    ConfigurationError,
    MemoryEditError,
    ReadOnlyBlockError,
)

__all__ = [
    "DEFAULT_BLOCKS",
    "BlockRole",
    "DEFAULT_LIMIT",
    "Edit",
    "InsertEdit",
    "MemoryBlock",
    "ReplaceEdit",
    "RethinkEdit",
    "apply_edit",
    "insert",
    "replace_text",
    "rethink",
]

DEFAULT_LIMIT = 5_000
"""Characters per block unless declared otherwise (the paper's setting)."""

_HINT_CHARS = 200
"""Longest line quoted back to the model in a refusal."""

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


class BlockRole(enum.Enum):
    """What a block is for; the sleep-time agent's edits are checked by role.

    The rules live in :mod:`sleepagent.sleep.consolidation`; they key on the role,
    never on a label, so your own blocks get them by declaring one.
    """

    FACTS = "facts"
    """What is known about the user, one fact per line. New lines must be grounded in
    what the user said, duplicates are dropped, a rewrite cannot drop a fact it does
    not remove, and a correction replaces the fact it corrects."""
    LEARNED = "learned"
    """What sleep-time compute worked out ahead of questions: the only kind of block a
    page of context (``add_context``, imported material) may change."""
    PERSONA = "persona"
    """Who the assistant is. The sleep-time agent changes it only when the user spoke
    about how the assistant should behave; it never receives facts about the user."""
    NOTES = "notes"
    """Free text (the default): duplicate lines are dropped, nothing else is checked."""


@dataclass(frozen=True, kw_only=True)
class MemoryBlock:
    """One labelled section of memory.

    Declare your own blocks by passing instances with ``version=0`` in
    :attr:`SleepConfig.blocks <sleepagent.SleepConfig.blocks>`; the ``value``
    is then the block's starting text.

    Attributes:
        label: Identifier the tools use to name the block (letters, digits, ``_``, ``-``).
        value: The block's text.
        description: What belongs in the block; shown to both agents.
        limit: Most characters the value may hold.
        read_only: Whether agents may edit the block (code may still seed it).
        role: What the block is for (see :class:`BlockRole`).
        version: Committed version; 0 for a block that was never written.
        updated_at: When the current version was committed.

    """

    label: str
    value: str = ""
    description: str = ""
    limit: int = DEFAULT_LIMIT
    read_only: bool = False
    role: BlockRole = BlockRole.NOTES
    version: int = 0
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not _LABEL.fullmatch(self.label):
            raise ConfigurationError(
                f"invalid block label {self.label!r}: use 1-64 letters, digits, '_' or '-', "
                "starting with a letter or '_'"
            )
        if self.limit < 1:
            raise ConfigurationError(f"block {self.label!r}: limit must be positive")
        if not isinstance(self.role, BlockRole):
            raise ConfigurationError(
                f"block {self.label!r}: role must be a BlockRole, got {self.role!r}"
            )
        if len(self.value) > self.limit:
            raise ConfigurationError(
                f"block {self.label!r}: value has {len(self.value)} characters, "
                f"over its limit of {self.limit}"
            )

    @property
    def chars(self) -> int:
        """Characters the value currently uses."""
        return len(self.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as kept in the store and in graph state."""
        return {
            "label": self.label,
            "value": self.value,
            "description": self.description,
            "limit": self.limit,
            "read_only": self.read_only,
            "role": self.role.value,
            "version": self.version,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryBlock:
        """Inverse of :meth:`to_dict`."""
        updated_at = data.get("updated_at")
        return cls(
            label=data["label"],
            value=data.get("value", ""),
            description=data.get("description", ""),
            limit=data.get("limit", DEFAULT_LIMIT),
            read_only=data.get("read_only", False),
            role=BlockRole(data.get("role", BlockRole.NOTES.value)),
            version=data.get("version", 0),
            updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
        )


DEFAULT_BLOCKS: tuple[MemoryBlock, ...] = (
    MemoryBlock(
        label="persona",
        description="Who you are and how you speak. Keep it stable; change it only when asked.",
        value="I am a helpful, concise assistant.",
        role=BlockRole.PERSONA,
    ),
    MemoryBlock(
        label="human",
        description=(
            "What you know about the user: name, preferences, goals, circumstances, "
            "and corrections they made. Newest facts win."
        ),
        role=BlockRole.FACTS,
    ),
    MemoryBlock(
        label="learned_context",
        description=(
            "What was worked out between conversations: key facts of the context, "
            "derived results, and likely next questions with their answers."
        ),
        role=BlockRole.LEARNED,
    ),
)


def validate_declarations(blocks: Iterable[MemoryBlock]) -> None:
    """Check a block declaration list: unique labels, at least one block.

    Raises:
        ConfigurationError: If a label repeats or the list is empty.

    """
    seen: set[str] = set()
    for block in blocks:
        if not isinstance(block, MemoryBlock):
            raise ConfigurationError(f"blocks must be MemoryBlock instances, got {block!r}")
        if block.label in seen:
            raise ConfigurationError(f"block label {block.label!r} is declared twice")
        seen.add(block.label)
    if not seen:
        raise ConfigurationError("declare at least one memory block")


# --- edit operations -------------------------------------------------------------


def replace_text(block: MemoryBlock, old: str, new: str) -> MemoryBlock:
    """Replace the one occurrence of ``old`` in the block with ``new``.

    Raises:
        MemoryEditError: If ``old`` is empty or occurs other than exactly once.
        ReadOnlyBlockError: If the block is read-only.
        BlockLimitError: If the result would exceed the block's limit.

    """
    _check_writable(block)
    if not block.value:
        raise MemoryEditError(
            f"Edit refused: block '{block.label}' is empty, so there is no text to replace. "
            f"Use memory_insert(label='{block.label}', text=...) to add lines, or "
            f"memory_rethink(label='{block.label}', new_value=...) to write the whole block.",
            label=block.label,
        )
    if not old:
        raise MemoryEditError(
            f"Edit refused: 'old' is empty. Quote the exact text to replace in block "
            f"'{block.label}', or use memory_insert to add text.",
            label=block.label,
        )
    count = _occurrences(block.value, old)
    if count == 0:
        raise MemoryEditError(
            f"Edit refused: the text to replace was found 0 times in block '{block.label}' "
            f"(it must match exactly once). {_closest_hint(block.value, old)} "
            "The block is unchanged.",
            label=block.label,
        )
    if count > 1:
        raise MemoryEditError(
            f"Edit refused: the text to replace was found {count} times in block "
            f"'{block.label}' (it must match exactly once). Include more surrounding text so "
            "it matches exactly once. The block is unchanged.",
            label=block.label,
        )
    return _with_value(block, block.value.replace(old, new, 1))


def insert(block: MemoryBlock, text: str, line: int = -1) -> MemoryBlock:
    """Insert ``text`` as new line(s) before line ``line`` (0 = top, -1 = end).

    Raises:
        MemoryEditError: If ``text`` is empty or ``line`` is out of range.
        ReadOnlyBlockError: If the block is read-only.
        BlockLimitError: If the result would exceed the block's limit.

    """
    _check_writable(block)
    if not text:
        raise MemoryEditError(
            f"Edit refused: nothing to insert into block '{block.label}'.", label=block.label
        )
    lines = block.value.split("\n") if block.value else []
    position = len(lines) if line == -1 else line
    if not 0 <= position <= len(lines):
        raise MemoryEditError(
            f"Edit refused: line {line} is out of range for block '{block.label}', which has "
            f"{len(lines)} lines. Use 0 for the top, -1 for the end, or 0..{len(lines)}.",
            label=block.label,
        )
    new_lines = [*lines[:position], text, *lines[position:]]
    return _with_value(block, "\n".join(new_lines))


def rethink(block: MemoryBlock, new_value: str) -> MemoryBlock:
    """Rewrite the whole block with ``new_value``.

    Raises:
        ReadOnlyBlockError: If the block is read-only.
        BlockLimitError: If ``new_value`` exceeds the block's limit.

    """
    _check_writable(block)
    return _with_value(block, new_value)


def _occurrences(text: str, part: str) -> int:
    """Occurrences of ``part`` in ``text``, overlapping ones included.

    ``str.count`` misses overlaps: in "ha ha ha" it finds "ha ha" once, which
    would let an ambiguous quote silently edit the first match.
    """
    count, start = 0, text.find(part)
    while start != -1:
        count += 1
        start = text.find(part, start + 1)
    return count


def _closest_hint(value: str, wanted: str) -> str:
    """What to quote instead of ``wanted``: the block's line most like it.

    Models often paraphrase or mis-copy the text they mean to replace; showing the
    nearest line lets the next call quote it exactly.
    """
    lines = [line for line in value.split("\n") if line.strip()]
    closest = difflib.get_close_matches(wanted, lines, n=1, cutoff=0.0)
    if not closest:
        return "Copy the text exactly as it appears in the block."
    line = closest[0] if len(closest[0]) <= _HINT_CHARS else closest[0][:_HINT_CHARS] + "..."
    return f"Copy the text exactly as it appears in the block; the closest line is: {line!r}."


def _check_writable(block: MemoryBlock) -> None:
    if block.read_only:
        raise ReadOnlyBlockError(
            f"Edit refused: block '{block.label}' is read-only. Leave it as it is and put "
            "what you wanted to record in a writable block.",
            label=block.label,
        )


def _with_value(block: MemoryBlock, value: str) -> MemoryBlock:
    if len(value) > block.limit:
        raise BlockLimitError(
            f"Edit refused: block '{block.label}' would hold {len(value)} characters, over its "
            f"limit of {block.limit} (by {len(value) - block.limit}). Make the text shorter, or "
            "use memory_rethink to rewrite the block more compactly. The block is unchanged.",
            label=block.label,
            size=len(value),
            limit=block.limit,
        )
    return replace(block, value=value)


# --- edits as data, so a commit can re-apply them on a newer version ------------


@dataclass(frozen=True)
class ReplaceEdit:
    """A recorded :func:`replace_text` call."""

    label: str
    old: str
    new: str
    kind: Literal["replace"] = "replace"


@dataclass(frozen=True)
class InsertEdit:
    """A recorded :func:`insert` call."""

    label: str
    text: str
    line: int = -1
    kind: Literal["insert"] = "insert"


@dataclass(frozen=True)
class RethinkEdit:
    """A recorded :func:`rethink` call."""

    label: str
    new_value: str
    kind: Literal["rethink"] = "rethink"


Edit = ReplaceEdit | InsertEdit | RethinkEdit
"""Any recorded edit."""


def apply_edit(block: MemoryBlock, edit: Edit) -> MemoryBlock:
    """Apply a recorded edit to ``block`` (same errors as the edit function)."""
    match edit:
        case ReplaceEdit(old=old, new=new):
            return replace_text(block, old, new)
        case InsertEdit(text=text, line=line):
            return insert(block, text, line)
        case RethinkEdit(new_value=new_value):
            return rethink(block, new_value)


def edit_to_dict(edit: Edit) -> dict[str, Any]:
    """Plain-data form of an edit, for graph state."""
    return {key: getattr(edit, key) for key in edit.__dataclass_fields__}


def edit_from_dict(data: Mapping[str, Any]) -> Edit:
    """Inverse of :func:`edit_to_dict`."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    match data["kind"]:
        case "replace":
            return ReplaceEdit(**fields)
        case "insert":
            return InsertEdit(**fields)
        case "rethink":
            return RethinkEdit(**fields)
    raise ValueError(f"unknown edit kind {data['kind']!r}")
