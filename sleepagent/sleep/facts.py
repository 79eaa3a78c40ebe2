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
from sleepagent.sleep.consolidation import PageEvidence, review_edit
from sleepagent.sleep.dating import anchor_times, date_of_line

__all__ = [
    "FactLines",
    "FactsStaged",
    "dated_facts",
    "facts_of_their_own",
    "prepared_facts",
    "read_fact_lines",
    "stage_facts",
    "without_their_own_words",
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

    """

    staged: StagedMemory
    accepted: int
    refused: tuple[tuple[str, str], ...]
    full: bool = False


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
    staged: StagedMemory, label: str, lines: Sequence[str], evidence: PageEvidence
) -> FactsStaged:
    """Add each line to block ``label``, one checked insert at a time.

    One line at a time, so that a refused line (a guess, a repeat) costs only
    itself, and a correction replaces the fact it corrects. A line the block has
    no room for is left out, with the reason logged.
    """
    accepted = 0
    refused = []
    full = False
    for line in lines:
        try:
            reviewed = review_edit(staged.block(label), InsertEdit(label, line), evidence)
            staged = staged.stage(reviewed.edit)[0]
        except (MemoryEditError, BlockLimitError) as error:
            full = full or isinstance(error, BlockLimitError)
            refused.append((line, str(error)))
            logger.info("fact pass: line %r not added: %s", line, error)
            continue
        accepted += 1
    return FactsStaged(staged, accepted, tuple(refused), full)


def prepared_facts(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """A pass's ``lines`` made ready for the checks, against the messages ``said``.

    Relative times dated (:func:`dated_facts`), a named speaker's quoted words cut
    off (:func:`without_their_own_words`), and a fact listed for two speakers kept
    for the one who said it (:func:`facts_of_their_own`).
    """
    speakers = tuple(dict.fromkeys(entry.speaker for entry in said if entry.speaker))
    lines = without_their_own_words(dated_facts(lines, said), speakers)
    return facts_of_their_own(lines, said)


def without_their_own_words(lines: Sequence[str], speakers: Sequence[str]) -> tuple[str, ...]:
    """``lines`` about a named speaker, cut where the speaker's own words take over.

    A small model often starts a fact and runs on into the message it came from:
    "Melanie started to realize that self-care is important. It's a journey for
    me, ..." keeps its first sentence. The first sentence (or dash-separated part)
    always stays; the line ends before the first later part that speaks in the
    first or second person. Lines that do not start with a speaker's name are
    unchanged.
    """
    names = {name.lower() for name in speakers}
    kept = []
    for line in lines:
        first = re.sub(r"(?:'s|\W)+$", "", line.split(maxsplit=1)[0]).lower() if line else ""
        cuts = list(_PARTS.finditer(line))
        if first not in names or not cuts:
            kept.append(line)
            continue
        # Each later part runs from one cut to the next; the line ends before the first
        # part that speaks.
        parts = zip(cuts, [*(cut.start() for cut in cuts[1:]), len(line)], strict=True)
        spoken = next((cut for cut, end in parts if _SPOKEN.search(line[cut.end() : end])), None)
        kept.append(line if spoken is None else line[: spoken.start()].rstrip(" ,;"))
    return tuple(kept)


_PARTS = re.compile(r"(?<=[.!?])\s+|\s+[-\u2013\u2014]\s+")
_SPOKEN = re.compile(r"\b(?:I|I'm|I've|I'll|me|my|we|we're|our|us|you|you're|your)\b(?!-)", re.I)
"""Words of a person speaking; "me-time" is not one."""


def dated_facts(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """``lines`` with their relative times ("last week") dated from the messages ``said``.

    The pass is shown the messages already dated, so this catches the times a
    model writes on its own; each line is dated from the message it most likely
    came from (:func:`~sleepagent.sleep.dating.date_of_line`).
    """
    return tuple(anchor_times(line, date_of_line(line, said)) for line in lines)


def facts_of_their_own(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """``lines`` without a fact written for a speaker who did not say it.

    A small model reading two people often writes one fact for both ("Caroline
    bought figurines." and "Melanie bought figurines."). When the same claim is
    listed under several speakers' names, only the speakers whose own messages
    say the most of its words keep it; on a tie all keep it (both may have done
    it). A line that names no speaker of ``said`` is kept as it is.
    """
    speakers = {entry.speaker.lower(): entry.speaker for entry in said if entry.speaker}
    if len(speakers) < 2:
        return tuple(lines)
    texts = {
        name: " ".join(e.text for e in said if e.speaker and e.speaker.lower() == name)
        for name in speakers
    }
    heard = {name: _stems(text) for name, text in texts.items()}
    lines = [_to_the_speaker_who_said_it(line, speakers, texts, heard) for line in lines]
    owners: dict[str, dict[str, int]] = {}
    for line in lines:
        owner, claim = _owner_and_claim(line, speakers)
        if owner is not None:
            owners.setdefault(claim, {})[owner] = len(_stems(claim) & heard[owner])
    kept = []
    for line in lines:
        owner, claim = _owner_and_claim(line, speakers)
        scores = owners.get(claim, {})
        if owner is not None and len(scores) > 1 and scores[owner] < max(scores.values()):
            logger.info("fact pass: line %r not added: said by another speaker", line)
            continue
        kept.append(line)
    return tuple(kept)


def _to_the_speaker_who_said_it(
    line: str, speakers: dict[str, str], texts: dict[str, str], heard: dict[str, set[str]]
) -> str:
    """``line`` under the name of the speaker who said it of themselves, when it is not.

    "Caroline made this bowl in her class", when only Melanie spoke of the bowl,
    and in the first person ("I made this bowl in my class"), is Melanie's fact.
    A line whose named speaker said any of its words stays as it is, and so does
    one the other speaker said to them ("you made this bowl?"), or that is too
    short to tell (fewer than two content words).
    """
    owner, claim = _owner_and_claim(line, speakers)
    if owner is None:
        return line
    words = _stems(claim) - _FUNCTION_STEMS - {name[:4] for name in speakers}
    if len(words) < 2 or words & heard[owner]:
        return line
    needed = max(2, -(-len(words) // 2))
    sayers = [
        name
        for name in speakers
        if name != owner
        and any(
            len(words & _stems(sentence)) >= needed
            and _FIRST_PERSON.search(sentence)
            and not _SECOND_PERSON.search(sentence)
            for sentence in _SENTENCES.split(texts[name])
        )
    ]
    if len(sayers) != 1:
        return line
    first, rest = line.split(maxsplit=1) if " " in line.strip() else (line, "")
    possessive = "'s" if first.lower().endswith("'s") else ""
    logger.info("fact pass: line %r is %s's own fact", line, speakers[sayers[0]])
    return f"{speakers[sayers[0]]}{possessive} {rest}".strip()


_SENTENCES = re.compile(r"(?<=[.!?])\s+")
# fmt: off
_FUNCTION_STEMS = frozenset(word[:4] for word in (
    "this", "that", "these", "those", "with", "have", "having", "they", "them", "their",
    "there", "then", "than", "what", "when", "where", "which", "while", "from", "been",
    "being", "were", "will", "would", "could", "should", "about", "just", "really", "very",
    "also", "into", "like", "more", "much", "some", "such", "over", "only", "even", "still",
    "always",
))
# fmt: on
"""Words that say nothing of who did what; "this" or "really" tell no speaker apart."""
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|me|my|we|we're|our)\b(?!-)", re.IGNORECASE)
_SECOND_PERSON = re.compile(r"\b(?:you|you're|your|yours)\b", re.IGNORECASE)


def _owner_and_claim(line: str, speakers: dict[str, str]) -> tuple[str | None, str]:
    """The speaker a line is about (its first word), and what it says of them."""
    first, _, rest = line.strip().partition(" ")
    name = re.sub(r"(?:'s|\W)+$", "", first).lower()
    if name not in speakers:
        return None, line
    return name, " ".join(re.findall(r"[a-z0-9]+", rest.lower()))


def _stems(text: str) -> set[str]:
    """Content words by their first four letters ("bought" and "buying" differ; enough here)."""
    return {word[:4] for word in re.findall(r"[a-z0-9]+", text.lower()) if len(word) > 3}
