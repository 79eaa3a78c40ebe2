"""Facts about named speakers: whose fact a line is, and where it stops being a fact.

On a page of an imported conversation between named people, a small model writes
facts under the wrong name, for both people at once, or runs on from a fact into
the words the speaker said. These pure functions over the listed lines and the
page's messages decide whose fact each line is, before the consolidation checks
see it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sleepagent.memory.transcript import LogEntry
from sleepagent.sleep.wording import (
    FIRST_PERSON,
    SECOND_PERSON,
    content_stems,
    sentences,
    speaks_in_person,
    stem,
)

__all__ = [
    "facts_of_their_own",
    "line_subject",
    "without_their_own_words",
    "words_of_their_own",
]

logger = logging.getLogger("sleepagent.sleep")


def line_subject(line: str) -> str:
    """The first word of ``line``, lowercased, without a possessive or punctuation.

    "Caroline's dog" and "Caroline:" give "caroline": whose fact a line states.
    """
    words = line.strip(" -*").split(maxsplit=1)
    return re.sub(r"(?:['\u2019]s|\W)+$", "", words[0]).lower() if words else ""


def without_their_own_words(lines: Sequence[str], speakers: Sequence[str]) -> tuple[str, ...]:
    """``lines`` about a named speaker, cut where the speaker's own words take over.

    A small model often starts a fact and runs on into the message it came from:
    "Melanie started to realize that self-care is important. It's a journey for
    me, ..." keeps its first sentence. The first sentence (or dash-separated part)
    always stays; the line ends before the first later part that speaks in the
    first or second person, or opens as chat does without its "I" ("Can't wait to
    see them rock the festival."). Lines that do not start with a speaker's name
    are unchanged.
    """
    names = {name.lower() for name in speakers}
    kept = []
    for line in lines:
        cuts = list(_PARTS.finditer(line))
        if line_subject(line) not in names or not cuts:
            kept.append(line)
            continue
        # Each later part runs from one cut to the next; the line ends before the first
        # part that speaks.
        parts = zip(cuts, [*(cut.start() for cut in cuts[1:]), len(line)], strict=True)
        spoken = next((cut for cut, end in parts if _spoken(line[cut.end() : end])), None)
        kept.append(line if spoken is None else line[: spoken.start()].rstrip(" ,;"))
    return tuple(kept)


_PARTS = re.compile(r"(?<=[.!?])\s+|\s+[-\u2013\u2014]\s+")
_CHAT_OPENER = re.compile(
    r"^\W*(?:wow|thanks(?! to\b)|thank you|hey|yay|awesome|congrats|congratulations|haha|lol|omg|"
    r"can't wait|cannot wait|gonna|wanna|gotta|sounds (?:great|good|fun|awesome)|"
    r"looks (?:great|good|amazing|awesome)|so (?:glad|happy|proud))\b",
    re.IGNORECASE,
)
"""How a chat message opens when its speaker drops the "I" ("Can't wait to see it!")."""


def _spoken(part: str) -> bool:
    """Whether a later part of a fact line is the speaker's words, not more of the fact."""
    return speaks_in_person(part) or _CHAT_OPENER.match(part) is not None


def facts_of_their_own(lines: Sequence[str], said: Sequence[LogEntry]) -> tuple[str, ...]:
    """``lines`` with each speaker's fact under the name of the speaker it belongs to.

    A small model reading two people often writes a fact under the wrong name
    ("Gina lost her job as a banker" when Jon said "I lost my job as a banker"),
    or one fact for both ("Caroline bought figurines." and "Melanie bought
    figurines."). Whose a fact is comes from :func:`words_of_their_own`: a line
    whose words belong at least twice as much (and by two words or more) to one
    other speaker moves to that speaker's name; when the same claim is listed
    under several names, only the speakers with the most of its words keep it,
    and on a tie all keep it (both may have done it). A line that names no
    speaker of ``said``, or names two of them ("Gina thanks Jon"), stays as it is.
    """
    speakers = {entry.speaker.lower(): entry.speaker for entry in said if entry.speaker}
    if len(speakers) < 2:
        return tuple(lines)
    theirs = words_of_their_own(said)
    lines = [_to_the_speaker_it_belongs_to(line, speakers, theirs) for line in lines]
    claims = [(line, *_owner_and_claim(line, speakers)) for line in lines]
    owners: dict[str, dict[str, int]] = {}
    for _, owner, claim in claims:
        if owner is not None:
            owners.setdefault(claim, {})[owner] = len(_claim_stems(claim, speakers) & theirs[owner])
    kept = []
    for line, owner, claim in claims:
        scores = owners.get(claim, {})
        if owner is not None and len(scores) > 1 and scores[owner] < max(scores.values()):
            logger.info("fact pass: line %r not added: said by another speaker", line)
            continue
        kept.append(line)
    return tuple(kept)


def words_of_their_own(said: Sequence[LogEntry]) -> dict[str, set[str]]:
    """Each speaker's words (stems, by lowercased name): what they said of themselves.

    A sentence in the first person ("I lost my job as a banker") gives its words
    to its speaker; one in the second person ("sorry about your job") gives them
    to the speakers addressed, every other speaker of the page. A sentence in
    neither person ("Wow, it's beautiful") is nobody's.
    """
    names = {entry.speaker.lower() for entry in said if entry.speaker}
    theirs: dict[str, set[str]] = {name: set() for name in names}
    for entry in said:
        if not entry.speaker:
            continue
        speaker = entry.speaker.lower()
        for sentence in sentences(entry.text):
            stems = content_stems(sentence)
            if FIRST_PERSON.search(sentence):
                theirs[speaker] |= stems
            if SECOND_PERSON.search(sentence):
                for other in names - {speaker}:
                    theirs[other] |= stems
    return theirs


def _to_the_speaker_it_belongs_to(
    line: str, speakers: dict[str, str], theirs: dict[str, set[str]]
) -> str:
    """``line`` under the name of the one other speaker its words belong to, if any.

    Lines too short to tell (fewer than two content words) stay as they are.
    """
    owner, claim = _owner_and_claim(line, speakers)
    if owner is None or any(name in claim.split() for name in speakers):
        return line
    words = _claim_stems(claim, speakers)
    if len(words) < 2:
        return line
    own = len(words & theirs[owner])
    scores = {name: len(words & theirs[name]) for name in speakers if name != owner}
    others = [name for name, score in scores.items() if score >= max(2, 2 * own)]
    if len(others) != 1:
        return line
    first, rest = line.split(maxsplit=1) if " " in line.strip() else (line, "")
    possessive = "'s" if first.lower().endswith("'s") else ""
    logger.info("fact pass: line %r is %s's own fact", line, speakers[others[0]])
    return f"{speakers[others[0]]}{possessive} {rest}".strip()


# fmt: off
_FUNCTION_STEMS = frozenset(stem(word) for word in (
    "this", "that", "these", "those", "with", "have", "having", "they", "them", "their",
    "there", "then", "than", "what", "when", "where", "which", "while", "from", "been",
    "being", "were", "will", "would", "could", "should", "about", "just", "really", "very",
    "also", "into", "like", "more", "much", "some", "such", "over", "only", "even", "still",
    "always",
))
# fmt: on
"""Words that say nothing of who did what; "this" or "really" tell no speaker apart."""


def _claim_stems(claim: str, speakers: dict[str, str]) -> set[str]:
    """The words of a claim that can tell its speaker: no names, no function words."""
    return content_stems(claim) - _FUNCTION_STEMS - {stem(name) for name in speakers}


def _owner_and_claim(line: str, speakers: dict[str, str]) -> tuple[str | None, str]:
    """The speaker a line is about (its first word), and what it says of them."""
    name = line_subject(line)
    if name not in speakers:
        return None, line
    rest = line.strip().partition(" ")[2]
    return name, " ".join(re.findall(r"[a-z0-9]+", rest.lower()))
