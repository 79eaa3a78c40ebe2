"""Examples for the benchmark: generated ones, or the published formats from a local file.

Files are read from where the user put them; nothing is fetched or bundled (the
GSM-Symbolic data is CC BY-NC-ND 4.0). Supported formats, one JSON object a line:

- Stateful GSM-Symbolic: ``stateful_gsm_symbolic_context``,
  ``stateful_gsm_symbolic_question`` and a GSM8K-style ``answer`` ending ``#### n``.
- Stateful AIME: ``stateful_aime_context``, ``stateful_aime_question`` and an
  integer ``answer``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sleepagent.bench.generator import Level, Problem, generate
from sleepagent.bench.grading import gsm8k_gold
from sleepagent.errors import SleepAgentError

__all__ = [
    "DatasetError",
    "Example",
    "Question",
    "from_problems",
    "load_aime",
    "load_gsm_symbolic",
    "load_examples",
]


class DatasetError(SleepAgentError, ValueError):
    """A dataset file is missing, or a line of it is malformed.

    Attributes:
        path: The file, or ``None`` when no file was involved.
        line: The 1-based line number, or ``None`` for the file as a whole.

    """

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}" if path is not None else message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Question:
    """A question about a context, with its exact gold answer."""

    text: str
    answer: Fraction


@dataclass(frozen=True)
class Example:
    """A context and the questions asked about it (the first is the main one).

    Attributes:
        id: Stable identifier, used in result keys.
        context: What the sleep-time agent sees before any question.
        questions: At least one question; more for the multi-query experiment.

    """

    id: str
    context: str
    questions: tuple[Question, ...]


def from_problems(problems: Iterable[Problem]) -> list[Example]:
    """Generated problems as examples, each with all its questions."""
    return [
        Example(
            id=problem.id,
            context=problem.context,
            questions=tuple(
                Question(text, Fraction(answer)) for _, text, answer in problem.questions
            ),
        )
        for problem in problems
    ]


def _read_jsonl(
    path: Path, parse: Callable[[dict[str, Any], int], Example], limit: int | None
) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            "no such file; download the dataset yourself and pass its path", path=path
        )
    examples: list[Example] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(
                    f"not valid JSON ({error.msg})", path=path, line=number
                ) from error
            if not isinstance(record, dict):
                raise DatasetError("expected a JSON object", path=path, line=number)
            try:
                examples.append(parse(record, number))
            except (KeyError, TypeError, ValueError) as error:
                message = (
                    f"missing field {error.args[0]!r}"
                    if isinstance(error, KeyError)
                    else str(error)
                )
                raise DatasetError(message, path=path, line=number) from error
            if limit is not None and len(examples) >= limit:
                break
    if not examples:
        raise DatasetError("the file has no examples", path=path)
    return examples


def _text(record: dict[str, Any], field: str) -> str:
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {field!r} must be non-empty text")
    return value.strip()


def _gsm_example(record: dict[str, Any], number: int) -> Example:
    context = _text(record, "stateful_gsm_symbolic_context")
    question = _text(record, "stateful_gsm_symbolic_question")
    answer = _text(record, "answer")
    return Example(
        id=str(record.get("id", f"gsm-{number}")),
        context=context,
        questions=(Question(question, gsm8k_gold(answer)),),
    )


def _aime_example(record: dict[str, Any], number: int) -> Example:
    context = _text(record, "stateful_aime_context")
    question = _text(record, "stateful_aime_question")
    raw = record["answer"]
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"field 'answer' must be an integer, got {raw!r}")
    try:
        answer = int(str(raw).strip())
    except ValueError as error:
        raise ValueError(f"field 'answer' must be an integer, got {raw!r}") from error
    return Example(
        id=str(record.get("id", f"aime-{number}")),
        context=context,
        questions=(Question(question, Fraction(answer)),),
    )


def load_gsm_symbolic(path: Path | str, *, limit: int | None = None) -> list[Example]:
    """Read a Stateful GSM-Symbolic JSONL file (P1 or P2).

    Args:
        path: The downloaded file, e.g. ``stateful_gsm_symbolic_p1.jsonl``.
        limit: Read at most this many examples.

    Raises:
        DatasetError: For a missing file, or a line that is not JSON or lacks a
            field, naming the line.

    """
    return _read_jsonl(Path(path), _gsm_example, limit)


def load_aime(path: Path | str, *, limit: int | None = None) -> list[Example]:
    """Read a Stateful AIME JSONL file; see :func:`load_gsm_symbolic`."""
    return _read_jsonl(Path(path), _aime_example, limit)


DATASETS: Sequence[str] = ("generated", "gsm-symbolic", "aime")
"""Names accepted by :func:`load_examples`."""


def load_examples(
    dataset: str,
    *,
    n: int,
    path: Path | str | None = None,
    seed: int = 0,
    level: Level = Level.BASE,
) -> list[Example]:
    """``n`` examples of a dataset.

    Args:
        dataset: ``generated``, ``gsm-symbolic`` or ``aime``.
        n: How many examples (fewer when the file has fewer).
        path: The local file, for the published formats.
        seed: Seed of the generator.
        level: Difficulty of the generator.

    Raises:
        DatasetError: For an unknown name, a missing path, or a bad file.

    """
    if dataset == "generated":
        return from_problems(generate(n, seed=seed, level=level))
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    if path is None:
        raise DatasetError(f"the {dataset} dataset needs --data PATH to a local file")
    loader = load_gsm_symbolic if dataset == "gsm-symbolic" else load_aime
    return loader(path, limit=n)
