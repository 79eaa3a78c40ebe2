"""The fact pass: what the user said about themselves, listed in free text, recorded by code.

A small model that edits a block with tools or tagged text often stores the
user's sentence as it was said, repeats lines, or never writes a changed fact
at all ("I moved to Porto" left "I live in Lisbon" in place). Asked for a plain
list instead, the same model writes one short line per fact. Here that list is
read back (:func:`read_fact_lines`), and each line is added to the user's block
through the consolidation checks (:func:`stage_facts`): grounding in what the
user said, repeats, lines another line already says, and corrections, which
replace the fact they correct. The model writes facts; code decides what is
stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sleepagent.errors import BlockLimitError, MemoryEditError
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.transcript import LogEntry
from sleepagent.sleep.archive import room_made
from sleepagent.sleep.consolidation import PageEvidence, review_edit
from sleepagent.sleep.dating import anchor_times, date_of_line
from sleepagent.sleep.speakers import facts_of_their_own, without_their_own_words

__all__ = [
    "FactLines",
    "FactsStaged",
    "dated_facts",
    "prepared_facts",
    "read_fact_lines",
    "stage_facts",
]

logger = logging.getLogger("sleepagent.sleep")

NOTHING_NEW = "NOTHING NEW"
"""What the pass writes when the user said nothing new about themselves."""


@dataclass(frozen=True)
class FactLines:
    """A fact pass read back.

    Attributes:
        lines: One fact per line, without list markers, in the order written.
        nothing_new: The pass said the user told nothing new.
        listed: The pass wrote a list, even one of questions only.

    """

    lines: tuple[str, ...]
    nothing_new: bool
    listed: bool = False

    @property
    def readable(self) -> bool:
        """Whether the pass gave an answer at all: a list, or that there is nothing new."""
        return bool(self.lines) or self.nothing_new or self.listed


@dataclass(frozen=True)
class FactsStaged:
    """What :func:`stage_facts` did.

    Attributes:
        staged: The working copy with every accepted line added.
        accepted: Lines added.
        refused: Lines the checks refused, with the reason, for the log.
        full: A line was left out because the block had no room for it.
        archived: Lines moved out of the block to the scope's archive to make
            room, oldest first (only when archiving was asked for).

    """

    staged: StagedMemory
    accepted: int
    refused: tuple[tuple[str, str], ...]
    full: bool = False
    archived: tuple[str, ...] = ()


_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(?P<fact>.+?)\s*$")
_EMPHASIS = re.compile(r"\*\*|__")


def read_fact_lines(text: str) -> FactLines:
    """The facts a pass listed: its list items that state something (not questions).

    Only list items count (``- ...``, ``* ...``, ``1. ...``): a small model often
    writes a sentence of preamble first ("Here are the facts:"), which is not one.
    """
    lines = []
    listed = False
    for raw in text.splitlines():
        found = _ITEM.match(raw)
        if found is None:
            continue
        listed = True
        fact = _EMPHASIS.sub("", found.group("fact")).strip()
        if fact and not fact.endswith("?") and NOTHING_NEW not in fact.upper():
            lines.append(fact)
    nothing_new = not lines and NOTHING_NEW in text.upper()
    return FactLines(tuple(dict.fromkeys(lines)), nothing_new, listed)


def stage_facts(
    staged: StagedMemory,
    label: str,
    lines: Sequence[str],
    evidence: PageEvidence,
    *,
    archive: bool = False,
) -> FactsStaged:
    """Add each line to block ``label``, one checked insert at a time.

    One line at a time, so that a refused line (a guess, a repeat) costs only
    itself, and a correction replaces the fact it corrects. A line the block has
    no room for is left out, with the reason logged; with ``archive``, the
    block's oldest lines are moved out to make room for it first
    (:mod:`sleepagent.sleep.archive`).
    """
    accepted = 0
    refused = []
    archived: list[str] = []
    full = False
    for line in lines:
        try:
            try:
                staged = _with_line(staged, label, line, evidence)
            except BlockLimitError:
                room = room_made(staged.block(label), len(line) + 1) if archive else None
                if room is None:
                    raise
                # The moved lines go to the archive whatever becomes of the new line;
                # it is reviewed again, as a correction may have replaced a moved line.
                staged = staged.stage(room.edit)[0]
                archived.extend(room.moved)
                staged = _with_line(staged, label, line, evidence)
        except (MemoryEditError, BlockLimitError) as error:
            full = full or isinstance(error, BlockLimitError)
            refused.append((line, str(error)))
            logger.info("fact pass: line %r not added: %s", line, error)
            continue
        accepted += 1
    return FactsStaged(staged, accepted, tuple(refused), full, tuple(archived))


def _with_line(staged: StagedMemory, label: str, line: str, evidence: PageEvidence) -> StagedMemory:
    reviewed = review_edit(staged.block(label), InsertEdit(label, line), evidence)
    return staged.stage(reviewed.edit)[0]


def prepared_facts(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """A pass's ``lines`` made ready for the checks, against the messages ``said``.

    Relative times dated (:func:`dated_facts`), a named speaker's quoted words cut
    off, and each fact under the name of the speaker who said it
    (:mod:`sleepagent.sleep.speakers`).
    """
    speakers = tuple(dict.fromkeys(entry.speaker for entry in said if entry.speaker))
    lines = without_their_own_words(dated_facts(lines, said), speakers)
    return facts_of_their_own(lines, said)


def dated_facts(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """``lines`` with their relative times ("last week") dated from the messages ``said``.

    The pass is shown the messages already dated, so this catches the times a
    model writes on its own; each line is dated from the message it most likely
    came from (:func:`~sleepagent.sleep.dating.date_of_line`).
    """
    return tuple(anchor_times(line, date_of_line(line, said)) for line in lines)
