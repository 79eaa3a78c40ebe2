"""LoCoMo: long conversations between two people, and questions about them, from a local file.

The file is ``data/locomo10.json`` of the LoCoMo repository (snap-research/LoCoMo;
Maharana et al., 2024, "Evaluating Very Long-Term Conversational Memory of LLM
Agents"). Its data is CC BY-NC 4.0: download it yourself; nothing is fetched or
bundled. Its shape, as read here (every other field is ignored):

- a JSON list of samples, each with ``sample_id``, ``conversation`` and ``qa``;
- ``conversation``: ``speaker_a`` and ``speaker_b`` (names), ``session_N`` (a list of
  turns) and ``session_N_date_time`` (``"10:15 am on 3 March, 2024"``) for N = 1, 2, ...;
  a date without its session is ignored;
- a turn: ``speaker``, ``dia_id`` (``"D3:11"``), ``text``; a turn that shares an image
  also has ``img_url``, ``blip_caption`` (the image described by a captioning model)
  and often ``query`` (the search that found the image);
- ``qa``: ``question``, ``answer`` (text, or a number), ``evidence`` (``dia_id`` list)
  and ``category`` 1-5; category 5 (adversarial: the conversation cannot answer it)
  has ``adversarial_answer`` (the trap: what is true of the other speaker) instead of
  an answer.

The category numbers are LoCoMo's: its evaluation splits category 1 answers at commas
(multi-hop) and reports categories in the order 4, 1, 2, 3, 5 (single-hop,
multi-hop, temporal, open-domain, adversarial).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from sleepagent.bench.datasets import DatasetError

__all__ = [
    "CATEGORY_ORDER",
    "Category",
    "Conversation",
    "Question",
    "Session",
    "Turn",
    "chosen_conversations",
    "draw_questions",
    "load_locomo",
]


class Category(IntEnum):
    """A LoCoMo question category, by the dataset's number."""

    MULTI_HOP = 1
    TEMPORAL = 2
    OPEN_DOMAIN = 3
    SINGLE_HOP = 4
    ADVERSARIAL = 5

    @property
    def label(self) -> str:
        """The category's name in tables: ``single-hop``, ``multi-hop``, ..."""
        return self.name.lower().replace("_", "-")


CATEGORY_ORDER = (
    Category.SINGLE_HOP,
    Category.MULTI_HOP,
    Category.TEMPORAL,
    Category.OPEN_DOMAIN,
    Category.ADVERSARIAL,
)
"""The order LoCoMo's own tables use (its evaluation prints categories 4, 1, 2, 3, 5)."""


@dataclass(frozen=True)
class Turn:
    """One message of a session.

    Attributes:
        speaker: Who said it.
        dia_id: Its id in the dataset (``"D3:11"``: session 3, turn 11).
        text: What was said.
        caption: The shared image, described (``blip_caption``), or ``None``.

    """

    speaker: str
    dia_id: str
    text: str
    caption: str | None = None

    @property
    def said(self) -> str:
        """The text with the shared image as text, the way LoCoMo's own baselines see it."""
        return f"{self.text} [shares {self.caption}]" if self.caption else self.text


@dataclass(frozen=True)
class Session:
    """One sitting of the conversation.

    Attributes:
        number: N of ``session_N``.
        date_time: When it was held, as the file writes it.
        turns: Its messages, in order.

    """

    number: int
    date_time: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    """A question about one conversation.

    Attributes:
        id: Unique key: the sample id and the question's position (``mini-1/q7``).
        conversation: The sample id.
        index: Position in the sample's ``qa`` list, from 0.
        text: The question.
        category: Its category.
        answer: The gold answer as text; ``None`` for an adversarial question.
        adversarial_answer: The trap answer of an adversarial question, else ``None``.
        evidence: The ``dia_id`` of the turns that hold the answer.

    """

    id: str
    conversation: str
    index: int
    text: str
    category: Category
    answer: str | None
    adversarial_answer: str | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo sample: two people, their sessions and the questions about them.

    Attributes:
        id: ``sample_id`` (``mini-1``).
        speaker_a: The first speaker's name.
        speaker_b: The second speaker's name.
        sessions: In order of their number.
        questions: In file order.

    """

    id: str
    speaker_a: str
    speaker_b: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]

    @property
    def turns(self) -> tuple[Turn, ...]:
        """Every turn, session after session."""
        return tuple(turn for session in self.sessions for turn in session.turns)


_SESSION = re.compile(r"session_(\d+)")


def load_locomo(path: Path | str) -> list[Conversation]:
    """Read a LoCoMo file (``locomo10.json``), every sample, in file order.

    Raises:
        DatasetError: For a missing file, a file that is not JSON, or a sample that
            lacks a field or holds a wrong type, naming the sample and the field.

    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            "no such file; download locomo10.json yourself (it is CC BY-NC 4.0) and pass its path",
            path=path,
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"not valid JSON ({error.msg}, line {error.lineno})", path=path
        ) from error
    if not isinstance(data, list) or not data:
        raise DatasetError("expected a non-empty JSON list of samples", path=path)
    found: list[Conversation] = []
    seen: set[str] = set()
    for position, sample in enumerate(data):
        where = f"sample {position}"
        try:
            if not isinstance(sample, dict):
                raise ValueError("expected a JSON object")
            where = f"sample {sample.get('sample_id', position)!r}"
            conversation = _conversation(sample)
        except KeyError as error:
            raise DatasetError(f"{where}: missing field {error.args[0]!r}", path=path) from error
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: {error}", path=path) from error
        if conversation.id in seen:
            raise DatasetError(f"{where}: sample_id repeats another sample's", path=path)
        seen.add(conversation.id)
        found.append(conversation)
    return found


def _text(record: dict[str, Any], field: str) -> str:
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {field!r} must be non-empty text, got {value!r}")
    return value.strip()


def _conversation(sample: dict[str, Any]) -> Conversation:
    sample_id = _text(sample, "sample_id")
    talk = sample["conversation"]
    if not isinstance(talk, dict):
        raise TypeError("field 'conversation' must be an object")
    numbers = sorted(int(m.group(1)) for key in talk if (m := _SESSION.fullmatch(key)))
    if not numbers:
        raise ValueError("its conversation has no session_N")
    sessions = tuple(_session(talk, n) for n in numbers)
    qa = sample["qa"]
    if not isinstance(qa, list):
        raise TypeError("field 'qa' must be a list")
    return Conversation(
        id=sample_id,
        speaker_a=_text(talk, "speaker_a"),
        speaker_b=_text(talk, "speaker_b"),
        sessions=sessions,
        questions=tuple(_question(sample_id, i, record) for i, record in enumerate(qa)),
    )


def _session(talk: dict[str, Any], number: int) -> Session:
    turns = talk[f"session_{number}"]
    if not isinstance(turns, list):
        raise TypeError(f"field 'session_{number}' must be a list of turns")
    return Session(
        number=number,
        date_time=_text(talk, f"session_{number}_date_time"),
        turns=tuple(_turn(turn, number, i) for i, turn in enumerate(turns)),
    )


def _turn(turn: Any, number: int, index: int) -> Turn:
    if not isinstance(turn, dict):
        raise TypeError(f"turn {index} of session_{number} must be an object")
    try:
        caption = turn.get("blip_caption")
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"field 'blip_caption' must be text, got {caption!r}")
        return Turn(
            speaker=_text(turn, "speaker"),
            dia_id=_text(turn, "dia_id"),
            text=_text(turn, "text"),
            caption=caption.strip() if caption and caption.strip() else None,
        )
    except KeyError as error:
        raise KeyError(f"session_{number}[{index}].{error.args[0]}") from error


def _question(sample_id: str, index: int, record: Any) -> Question:
    if not isinstance(record, dict):
        raise TypeError(f"qa[{index}] must be an object")
    try:
        category = Category(record["category"])
    except KeyError as error:
        raise KeyError(f"qa[{index}].{error.args[0]}") from error
    except ValueError as error:
        raise ValueError(
            f"qa[{index}]: category must be 1-5, got {record['category']!r}"
        ) from error
    answer = record.get("answer")
    if category is not Category.ADVERSARIAL and answer is None:
        raise KeyError(f"qa[{index}].answer")
    evidence = record.get("evidence") or []
    return Question(
        id=f"{sample_id}/q{index}",
        conversation=sample_id,
        index=index,
        text=_text(record, "question"),
        category=category,
        answer=None if category is Category.ADVERSARIAL else str(answer).strip(),
        adversarial_answer=(
            None if record.get("adversarial_answer") is None else str(record["adversarial_answer"])
        ),
        evidence=tuple(str(e) for e in evidence),
    )


def chosen_conversations(
    conversations: Sequence[Conversation], ids: Sequence[str]
) -> list[Conversation]:
    """The conversations named by ``ids`` (their ``sample_id``), in the order asked.

    Raises:
        DatasetError: An id names no conversation of the file; the message lists
            the ids it has.

    """
    by_id = {conversation.id: conversation for conversation in conversations}
    unknown = [conversation_id for conversation_id in ids if conversation_id not in by_id]
    if unknown:
        raise DatasetError(
            f"no conversation {unknown[0]!r} in the file; it has {', '.join(by_id) or 'none'}"
        )
    return [by_id[conversation_id] for conversation_id in dict.fromkeys(ids)]


def draw_questions(
    conversations: Sequence[Conversation], per_category: int, *, seed: int = 0
) -> list[Question]:
    """Up to ``per_category`` questions of each category, the same ones for the same seed.

    Each category's questions (over every conversation given) are shuffled with
    ``seed``; the draw takes one of each category in turn, so the draw of ``k``
    per category starts the draw of a larger ``k`` and a run folder can grow.
    ``per_category`` 0 takes every question.
    """
    by_category: dict[Category, list[Question]] = {c: [] for c in CATEGORY_ORDER}
    for conversation in conversations:
        for question in conversation.questions:
            by_category[question.category].append(question)
    for category, found in by_category.items():
        random.Random(f"{seed}/{category.value}").shuffle(found)
    limit = max(len(found) for found in by_category.values()) if per_category <= 0 else per_category
    drawn: list[Question] = []
    for round_ in range(limit):
        for category in CATEGORY_ORDER:
            if round_ < len(by_category[category]):
                drawn.append(by_category[category][round_])
    return drawn
