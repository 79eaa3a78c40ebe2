"""Archiving: a full facts block moves its oldest lines out, instead of losing them.

A block of the user's facts fills up over a long conversation (LoCoMo's 20-30
sessions fill 16,000 characters). Asked to make room, a small model rewrites
the block at length and drops facts it never meant to remove. With
``SleepConfig.archive_facts`` on, code makes the room instead: the block's
oldest lines (those at the top: facts are added at the end) move to the memory
scope's archive, a part of the recall index that each turn searches with the
user's message (:mod:`sleepagent.memory.recall`). A line is moved, never
rewritten, so the block and its archive together hold every fact.

The decision is pure (:func:`room_made`); the fact pass stages it
(:mod:`sleepagent.sleep.facts`) and the commit node writes the moved lines to
the archive before it commits the block, so a line is in the archive before it
leaves the block.
"""

from __future__ import annotations

from dataclasses import dataclass

from sleepagent.memory.blocks import Edit, MemoryBlock, ReplaceEdit, RethinkEdit

__all__ = ["ARCHIVE_HEADROOM", "RoomMade", "room_made"]

ARCHIVE_HEADROOM = 4
"""A block being archived is brought down to at most (limit - limit / this) characters
(three quarters), so the next pages add lines without archiving at every one."""


@dataclass(frozen=True)
class RoomMade:
    """The oldest lines of a block moved out to make room.

    Attributes:
        edit: The edit that removes them from the block.
        moved: The lines moved, oldest first, without blank ones.

    """

    edit: Edit
    moved: tuple[str, ...]


def room_made(block: MemoryBlock, needed: int) -> RoomMade | None:
    """The oldest lines of ``block`` to move out so that ``needed`` more characters fit.

    Lines leave from the top until the block holds at most three quarters of
    its limit and still has room for ``needed`` (a new line and its newline).
    The newest line always stays.

    Returns:
        The edit and the lines it moves; ``None`` when moving every line but the
        newest would still not make the room (a line longer than the block).

    """
    target = min(block.limit - block.limit // ARCHIVE_HEADROOM, block.limit - needed)
    lines = block.value.split("\n")
    kept_chars = len(block.value)
    cut = 0
    while cut < len(lines) - 1 and kept_chars > target:
        kept_chars -= len(lines[cut]) + 1  # the line and the newline after it
        cut += 1
    if kept_chars > block.limit - needed or cut == 0:
        return None
    prefix = "\n".join(lines[:cut]) + "\n"
    kept = "\n".join(lines[cut:])
    moved = tuple(line.strip() for line in lines[:cut] if line.strip())
    # A replace of the exact prefix re-applies at commit when another writer added
    # lines meanwhile; a rewrite of the whole block would conflict instead.
    edit: Edit = (
        ReplaceEdit(block.label, prefix, "")
        if block.value.count(prefix) == 1
        else RethinkEdit(block.label, kept)
    )
    return RoomMade(edit, moved)
