"""The words of a line, as the memory checks compare them.

Consolidation, the speaker rules and the dating of facts each ask whether two
texts share words, or whether someone speaks in one. They answer with one
vocabulary, defined here once: a word, its stem, and the pronouns of a person
speaking.
"""

from __future__ import annotations

import re

__all__ = [
    "FIRST_PERSON",
    "SECOND_PERSON",
    "SELF_REFERENCE",
    "content_stems",
    "sentences",
    "speaks_in_person",
    "stem",
    "words",
]

_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*|\d+(?:[.,]\d+)?")
_APOSTROPHE = "\u2019"  # a typographic apostrophe, as in "Marco\u2019s"
_COUNTING = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(n) for n, word in enumerate(_COUNTING.split())}

FIRST_PERSON = re.compile(
    r"\b(?:I|I'm|I've|I'd|I'll|me|my|myself|we|we're|our|us)\b(?!-)|\bI\u2019", re.IGNORECASE
)
"""Words of someone speaking of themselves or their own ("my", "we"); "me-time" is none."""
SECOND_PERSON = re.compile(r"\b(?:you|you're|your|yours)\b(?!-)", re.IGNORECASE)
"""Words of someone speaking to another."""
SELF_REFERENCE = re.compile(r"\b(?:I|I'm|I've|I'd|I'll|me|myself)\b|\bI\u2019", re.IGNORECASE)
"""The speaker as the one a sentence is about. "my" is left out on purpose: "My friend
Tom lives in Berlin" is about Tom, and grounds no "I live in Berlin"."""


def sentences(text: str) -> list[str]:
    """``text`` cut after each ``.``, ``!`` or ``?`` and at each line break."""
    return _SENTENCE_END.split(text)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


def words(text: str) -> list[str]:
    """The words of ``text``, lowercased, with number words as digits ("three" is "3")."""
    return [_NUMBER_WORDS.get(word.lower(), word.lower()) for word in _WORD.findall(text)]


def stem(word: str) -> str:
    """A word's first four letters after a plural or third-person ``s`` ("runs" is "run").

    Numbers stay whole: "2023" and "2024" differ.
    """
    word = word.lower().replace(_APOSTROPHE, "'").removesuffix("'s")
    if word[:1].isdigit():
        return word
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:4]


def content_stems(text: str) -> set[str]:
    """The stems of the longer words of ``text`` (four letters or more, or a number).

    Short words ("the", "was", "and") tell no two messages apart, so they are left out.
    """
    return {stem(word) for word in words(text) if len(word) > 3 or word[:1].isdigit()}


def speaks_in_person(text: str) -> bool:
    """Whether ``text`` has words of someone speaking ("I", "my", "you"), not of a fact."""
    return FIRST_PERSON.search(text) is not None or SECOND_PERSON.search(text) is not None
