"""Think, then write: what a sleep-time reasoning pass produced, and how samples agree.

A small model asked to edit memory and pre-compute at once does neither well:
it restates the context, lists questions without answers, or loses the format.
So a sleep run first *thinks*: a free reasoning pass over the page with no tools
and no format to keep, which tracks every quantity and answers the questions a
user is likely to ask (the prompt is ``prompts.SLEEP_THINK_PROMPT``). The pass
ends with two plain sections the model writes reliably:

    FINAL STATE
    South shelf: 72 - 28 = 44
    Q: How many books are on both shelves?
    A: 24 + 44 = 68

This module reads those sections back (:func:`read_notes`), combines ``k``
independent samples by agreement (:func:`agree`: the paper's parallel sleep-time
compute, decided the way self-consistency decides), and renders what was agreed
as the lines of a learned-context block (:func:`learned_lines`). Everything here
is pure; the sleep nodes make the model calls.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FINAL_VALUES",
    "Agreed",
    "Notes",
    "Worked",
    "agree",
    "agreed_lines",
    "learned_lines",
    "read_notes",
]


@dataclass(frozen=True)
class Worked:
    """One result a reasoning sample worked out.

    Attributes:
        subject: A quantity's name, or an anticipated question.
        result: What the sample found: the value, or the answer with its working.
        question: Whether ``subject`` is a question (else a quantity).

    """

    subject: str
    result: str
    question: bool
    text: str = ""

    @property
    def line(self) -> str:
        """The result as one line of memory: as the model wrote it, or ``subject: result``."""
        return self.text or f"{self.subject}: {self.result}"

    @property
    def value(self) -> str:
        """What two samples must share to agree: the answer's last number, else its text."""
        return final_value(self.result)


@dataclass(frozen=True)
class Notes:
    """What one reasoning sample concluded, in the order it wrote it."""

    results: tuple[Worked, ...]

    @property
    def empty(self) -> bool:
        """Whether the sample concluded nothing readable."""
        return not self.results


@dataclass(frozen=True)
class Agreed:
    """A result after the samples voted on it.

    Attributes:
        subject: The quantity or question, as most samples put it.
        result: The majority's answer, with the working of one sample that gave it.
        votes: Samples that gave the majority's value.
        seen: Samples that worked this subject out at all.
        others: Values the other samples gave, most common first (empty when unanimous).
        question: Whether ``subject`` is a question.

    """

    subject: str
    result: str
    votes: int
    seen: int
    others: tuple[str, ...] = ()
    question: bool = False
    line: str = ""

    @property
    def certain(self) -> bool:
        """Whether a strict majority of the samples that saw the subject gave this value."""
        return self.votes * 2 > self.seen


_Q = re.compile(r"^(?:Q(?:uestion)?\s*\d*)\s*[:.)]\s*(?P<q>.+?)\s*$", re.IGNORECASE)
_A = re.compile(r"^(?:A(?:nswer)?\s*\d*)\s*[:.)]\s*(?P<a>.+?)\s*$", re.IGNORECASE)
_QA = re.compile(
    r"^(?:Q(?:uestion)?\s*\d*)\s*[:.)]\s*(?P<q>.+?\?)\s*(?:A(?:nswer)?)\s*[:.)]\s*(?P<a>.+?)\s*$",
    re.IGNORECASE,
)
_STATE_HEAD = re.compile(r"final\s+state", re.IGNORECASE)
_HEAD_WORDS = 6
"""Most words of a line that opens the state section ("### Step 2: FINAL STATE"); a longer
one is a sentence that mentions it ("I'll go step by step, then write the FINAL STATE and
answer the questions"), which opened the section on the material itself."""
_STATE_END = re.compile(r"question|^(?:3[.)]|step\s*3)", re.IGNORECASE)
_WORKING = re.compile(r"^(?:step|sentence)\s*\d", re.IGNORECASE)
_NAMED = re.compile(r"^(?P<name>[^:=]{2,80}?)\s*(?::|=)\s*(?P<value>.+)$")
_DECORATION = re.compile(r"^[\s>#*\-•]+|\*\*|__|`|#")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_LONGEST_STATE_LINE = 160


def read_notes(text: str) -> Notes:
    """The results a reasoning pass wrote: its FINAL STATE lines and its Q/A pairs.

    Tolerates what small models add: bullets, bold, numbering, markdown tables
    (a row becomes ``first cell: last number``), a Q and its A on one line or
    two, blank lines. The state section opens at a short heading that names it
    (a sentence that only mentions it opens nothing) and ends at the questions.
    A state line must hold a number; an unanswered question is not a result;
    a result written twice (the state repeated at the end) is read once.
    """
    results: list[Worked] = []
    pending: str | None = None
    in_state = False
    for raw in text.splitlines():
        line = _DECORATION.sub("", raw).strip()
        if not line:
            continue
        if not in_state and _opens_state(line):
            in_state, pending = True, None
            continue
        if match := _QA.match(line):
            results.append(Worked(_clean(match["q"]), _clean(match["a"]), question=True))
            in_state, pending = False, None
        elif match := _Q.match(line):
            in_state, pending = False, _clean(match["q"])
        elif (match := _A.match(line)) and pending is not None:
            results.append(Worked(pending, _clean(match["a"]), question=True))
            pending = None
        elif in_state and _STATE_END.search(line):
            in_state = False
        elif in_state and (state := _state_line(line)) is not None:
            results.append(state)
    # A state written out twice (once before the questions, once after) is one result each.
    seen: set[tuple[str, str, bool]] = set()
    unique = []
    for result in results:
        key = (result.subject.casefold(), result.result, result.question)
        if result.result and result.subject and key not in seen:
            seen.add(key)
            unique.append(result)
    return Notes(tuple(unique))


def _opens_state(line: str) -> bool:
    """Whether ``line`` (its decoration removed) is the heading of a FINAL STATE section."""
    return (
        _STATE_HEAD.search(line) is not None
        and len(line.split()) <= _HEAD_WORDS
        and not _Q.match(line)
    )


def _state_line(line: str) -> Worked | None:
    """One FINAL STATE line as a result, or None for a rule, a step, or a line with no number."""
    if line.startswith("|"):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        numbers = [cell for cell in cells[1:] if _NUMBER.search(cell)]
        if not cells or not numbers or _NUMBER.fullmatch(cells[0]):
            return None  # a rule (|---|) or a row with nothing to name
        line = f"{cells[0]}: {numbers[-1]}"
    if _WORKING.match(line) or not _NUMBER.search(line) or len(line) > _LONGEST_STATE_LINE:
        return None
    line = _clean(line)
    if named := _NAMED.match(line):
        return Worked(named["name"].strip(), named["value"].strip(), question=False, text=line)
    return Worked(_NUMBER.sub("", line).strip(), line, question=False, text=line)


def agree(samples: Sequence[Notes], *, similar: float = 0.6) -> list[Agreed]:
    """Combine ``samples`` by agreement, in the order subjects were first written.

    Subjects are matched across samples by their words (a question asked in
    other words is the same question when the word sets overlap by ``similar``
    or more); each sample votes once per subject, with its value. A subject
    that fewer than half the samples worked out is dropped, as one sample's
    idea. The majority value wins; without a strict majority the result is kept
    as uncertain, with the other values, so the answer can say so.
    """
    groups: list[_Group] = []
    for index, notes in enumerate(samples):
        for worked in notes.results:
            group = _closest(groups, worked, similar, index)
            if group is None:
                group = _Group(words=_subject_words(worked.subject), question=worked.question)
                groups.append(group)
            group.add(index, worked)
    agreed = []
    for group in groups:
        if len(group.by_sample) * 2 < len(samples):
            continue
        agreed.append(group.verdict())
    return agreed


FINAL_VALUES = "Final values:"
"""The heading of the quantities a reasoning pass wrote into learned context."""


def learned_lines(agreed: Sequence[Agreed]) -> list[str]:
    """The lines a learned-context block gets from agreed results.

    The quantities' values at the end of the material, when the pass worked
    any out; the anticipated questions only when it did not (a conversation).
    A guessed question's answer is often wrong, and a small model answering
    later copies it: with the quantities alone, a 1.5B model answered 27 of 30
    questions right, against 23 of 30 with its own questions and answers added
    (generated grade-school contexts). An uncertain result names the values the
    other samples found, so the answering model does not take it on trust.
    """
    quantities = [result for result in agreed if not result.question]
    chosen = quantities or [result for result in agreed if result.question]
    lines = [FINAL_VALUES] if quantities else []
    for result in chosen:
        line = f"Q: {result.subject} A: {result.result}" if result.question else result.line
        if not result.certain:
            line += f" (uncertain: the other workings gave {' or '.join(result.others)})"
        lines.append(f"- {line}" if quantities else line)
    return lines


def agreed_lines(samples: Sequence[str]) -> list[str]:
    """The learned-context lines a set of reasoning samples (their reply texts) gives.

    What a sleep run writes from its ``sleep_samples`` samples, written as one
    pure function so that any subset of a run's samples (``SleepResult.reasoning``)
    can be scored as a smaller ``k``, with no further model call.
    """
    return learned_lines(agree([read_notes(text) for text in samples]))


def final_value(result: str) -> str:
    """The value a result states: its last number (``24 + 44 = 68`` is 68), else its text."""
    numbers: list[str] = _NUMBER.findall(result)
    if numbers:
        value = numbers[-1].replace("$", "").replace(",", "")
        return value.rstrip("0").rstrip(".") if "." in value else value
    return " ".join(re.findall(r"[a-z0-9]+", result.lower()))


class _Group:
    """Workings of one subject across samples."""

    def __init__(self, *, words: frozenset[str], question: bool) -> None:
        self.words = words
        self.question = question
        self.subjects: list[str] = []
        self.by_sample: dict[int, Worked] = {}

    def add(self, sample: int, worked: Worked) -> None:
        self.subjects.append(worked.subject)
        self.by_sample.setdefault(sample, worked)  # one vote per sample: its first working

    def verdict(self) -> Agreed:
        # Samples vote in sample order, so on a tie the first sample (the greedy
        # one) wins the line; `certain` is then False.
        ordered = [self.by_sample[index] for index in sorted(self.by_sample)]
        votes = Counter(worked.value for worked in ordered)
        (value, count), *rest = votes.most_common()
        chosen = next(worked for worked in ordered if worked.value == value)
        return Agreed(
            subject=Counter(self.subjects).most_common(1)[0][0],
            result=chosen.result,
            votes=count,
            seen=len(self.by_sample),
            others=tuple(other for other, _ in rest),
            question=self.question,
            line=chosen.line,
        )


def _closest(
    groups: Sequence[_Group], worked: Worked, similar: float, sample: int
) -> _Group | None:
    """The group ``worked`` belongs to: same kind, similar words, not yet voted on by ``sample``.

    Two results of one sample are never merged: they are two quantities
    ("Given to the shelter", "Share given to the shelter"), however alike.
    """
    words = _subject_words(worked.subject)
    best, score = None, 0.0
    for group in groups:
        if group.question != worked.question or sample in group.by_sample:
            continue
        overlap = len(words & group.words) / max(1, len(words | group.words))
        if overlap > score:
            best, score = group, overlap
    return best if score >= similar else None


_FILLER = frozenset(
    {"the", "a", "an", "of", "is", "are", "was", "were", "does", "do", "did", "how", "many"}
    | {"much", "what", "which", "who", "in", "on", "at", "to", "and", "s", "have", "has"}
    | {"there", "now", "total", "number", "after", "end"}
)


def _subject_words(subject: str) -> frozenset[str]:
    words = re.findall(r"[a-z]+", subject.lower())
    return frozenset(word for word in words if word not in _FILLER)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\\(", "").replace("\\)", "")).strip(" *")
