"""Examples for the benchmark: generated ones, or the published formats from local files.

Files are read from where the user put them; nothing is fetched or bundled (the
GSM-Symbolic data is CC BY-NC-ND 4.0, AIME problems are MAA material). Supported
formats, one JSON object a line, every other field of a row ignored:

- Stateful GSM-Symbolic: rows of GSM-Symbolic's generated data (``id`` = the template,
  shared by all its instances, ``instance``, ``question``, ``answer`` ending ``#### n``,
  ``final_answer`` ...) with ``stateful_gsm_symbolic_context`` and
  ``stateful_gsm_symbolic_question`` added. An example's key is the variant read from
  the file name (``p1``/``p2``), the template and the instance: ``gsm-symbolic-p2/t7-i13``.
- Stateful AIME: ``stateful_aime_context`` (empty for a one-sentence problem, which is
  then answered test-time only), ``stateful_aime_question`` and an integer ``answer``
  (``25`` or ``"025"``). The year (2024 or 2025) comes from a ``year`` field, the row's
  id, or the file name, in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sleepagent._jsonl import json_objects
from sleepagent.bench.generator import Level, Problem, generate
from sleepagent.bench.grading import AnswerFormat, format_number, gsm8k_gold
from sleepagent.bench.sampling import draw
from sleepagent.errors import SleepAgentError

__all__ = [
    "DatasetError",
    "Example",
    "Question",
    "from_problems",
    "load_aime",
    "load_examples",
    "load_files",
    "load_gsm_symbolic",
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
    """A question about a context, with its exact gold answer.

    Attributes:
        text: The question.
        answer: The gold number.
        gold: The gold as the dataset writes it (``45``, ``18.75``, ``025``), which the
            paper's string rule compares; empty means :func:`format_number` of ``answer``.

    """

    text: str
    answer: Fraction
    gold: str = ""

    @property
    def gold_text(self) -> str:
        """The gold as written, for the paper's rule."""
        return self.gold or format_number(self.answer)


@dataclass(frozen=True)
class Example:
    """A context and the questions asked about it (the first is the main one).

    Attributes:
        id: Unique key, used in result keys (``gsm-symbolic-p2/t7-i13``).
        context: What the sleep-time agent sees before any question; empty for a
            problem that is a single sentence (answered test-time only).
        questions: At least one question; more for the multi-query experiment.
        source: Which data the example comes from (``gsm-symbolic-p1``, ``aime-2025``,
            ``generated-base``); the report gives each its own rows.
        group: The template the example instantiates; sampling draws across groups.
            Empty means the example is its own group.
        answer_format: How the gold is written, which decides the paper's rule.

    """

    id: str
    context: str
    questions: tuple[Question, ...]
    source: str = "generated"
    group: str = ""
    answer_format: AnswerFormat = AnswerFormat.GSM8K

    @property
    def has_context(self) -> bool:
        """Whether there is a context for sleep-time compute to work on."""
        return bool(self.context.strip())

    @property
    def template(self) -> str:
        """The sampling group: :attr:`group`, else the example itself."""
        return self.group or self.id


def from_problems(problems: Iterable[Problem]) -> list[Example]:
    """Generated problems as examples, each with all its questions."""
    return [
        Example(
            id=problem.id,
            context=problem.context,
            questions=tuple(
                Question(text, Fraction(answer)) for _, text, answer in problem.questions
            ),
            source=f"generated-{problem.level.value}",
            group=problem.template,
        )
        for problem in problems
    ]


Parse = Callable[[dict[str, Any], int, str], Example]


def _read_jsonl(path: Path, parse: Parse, source: str) -> list[Example]:
    if not path.is_file():
        raise DatasetError(
            "no such file; download the dataset yourself and pass its path", path=path
        )
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for number, record in json_objects(path, DatasetError):
        try:
            example = parse(record, number, source)
        except (KeyError, TypeError, ValueError) as error:
            message = (
                f"missing field {error.args[0]!r}" if isinstance(error, KeyError) else str(error)
            )
            raise DatasetError(message, path=path, line=number) from error
        if example.id in seen:
            raise DatasetError(
                f"example {example.id!r} repeats line {seen[example.id]}: the same "
                "'id' and 'instance' twice, so results could not tell them apart",
                path=path,
                line=number,
            )
        seen[example.id] = number
        examples.append(example)
    if not examples:
        raise DatasetError("the file has no examples", path=path)
    return examples


def _text(record: dict[str, Any], field: str, *, empty: bool = False) -> str:
    value = record[field]
    if not isinstance(value, str) or not (empty or value.strip()):
        raise ValueError(f"field {field!r} must be {'' if empty else 'non-empty '}text")
    return value.strip()


def _identifier(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise ValueError(f"field {field!r} must be an integer or text, got {value!r}")
    return str(value).strip()


def _gsm_example(record: dict[str, Any], number: int, source: str) -> Example:
    context = _text(record, "stateful_gsm_symbolic_context", empty=True)
    question = _text(record, "stateful_gsm_symbolic_question")
    answer = _text(record, "answer")
    template, instance = _identifier(record, "id"), _identifier(record, "instance")
    if template is None:
        key, group = f"line{number}", ""
    else:
        key, group = f"t{template}" + (f"-i{instance}" if instance is not None else ""), template
    _, _, gold = answer.rpartition("####")
    return Example(
        id=f"{source}/{key}",
        # A one-sentence problem splits into an empty context (just the period).
        context="" if not context.strip(" .") else context,
        questions=(Question(question, gsm8k_gold(answer), gold.strip()),),
        source=source,
        group=group,
        answer_format=AnswerFormat.GSM8K,
    )


_YEAR = re.compile(r"(?<!\d)(20\d\d)(?!\d)")


def _aime_example(record: dict[str, Any], number: int, source: str) -> Example:
    context = _text(record, "stateful_aime_context", empty=True)
    question = _text(record, "stateful_aime_question")
    raw = record["answer"]
    text = str(raw).strip() if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isdigit():
        raise ValueError(f"field 'answer' must be an integer, got {raw!r}")
    ident = next(
        (v for v in (_identifier(record, f) for f in ("id", "ID", "problem_id")) if v), None
    )
    year = _identifier(record, "year")
    found = _YEAR.search(year or ident or "")
    label = f"aime-{found.group(1)}" if found else source
    return Example(
        id=f"{label}/{ident or f'line{number}'}",
        context=context,
        questions=(Question(question, Fraction(int(text)), text),),
        source=label,
        answer_format=AnswerFormat.AIME,
    )


def _gsm_source(path: Path) -> str:
    variant = re.search(r"(?:^|[^a-z0-9])p([12])(?:$|[^a-z0-9])", path.stem.lower())
    return f"gsm-symbolic-p{variant.group(1)}" if variant else "gsm-symbolic"


def _aime_source(path: Path) -> str:
    year = _YEAR.search(path.stem)
    return f"aime-{year.group(1)}" if year else "aime"


def load_gsm_symbolic(path: Path | str) -> list[Example]:
    """Read a Stateful GSM-Symbolic JSONL file (P1 or P2), every row, in file order.

    Args:
        path: The file, e.g. ``stateful_gsm_symbolic_p2.jsonl``; ``p1``/``p2`` in its
            name labels the examples' source.

    Raises:
        DatasetError: For a missing file, or a line that is not JSON, lacks a field,
            has no ``#### n`` or repeats another line's ``id`` and ``instance``,
            naming the line.

    """
    path = Path(path)
    return _read_jsonl(path, _gsm_example, _gsm_source(path))


def load_aime(path: Path | str) -> list[Example]:
    """Read a Stateful AIME JSONL file; see :func:`load_gsm_symbolic`."""
    path = Path(path)
    return _read_jsonl(path, _aime_example, _aime_source(path))


DATASETS: Sequence[str] = ("generated", "gsm-symbolic", "aime", "locomo")
"""Names the benchmark takes; ``locomo`` is conversations, read by
:func:`sleepagent.bench.conversations.load_locomo`, not by :func:`load_examples`."""


def load_files(dataset: str, paths: Sequence[Path | str]) -> list[Example]:
    """Every example of one or more local files of a published dataset (P1 and P2, say).

    Raises:
        DatasetError: For an unknown name, no path, a bad file, or an example key
            found in two files (the same file given twice).

    """
    if dataset not in ("gsm-symbolic", "aime"):
        raise DatasetError(f"unknown file dataset {dataset!r}; use gsm-symbolic or aime")
    if not paths:
        raise DatasetError(f"the {dataset} dataset needs --data PATH to a local file")
    loader = load_gsm_symbolic if dataset == "gsm-symbolic" else load_aime
    examples: list[Example] = []
    where: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        for example in loader(path):
            if example.id in where:
                raise DatasetError(
                    f"example {example.id!r} is also in {where[example.id]}; pass each file once",
                    path=path,
                )
            where[example.id] = path
            examples.append(example)
    return examples


def load_examples(
    dataset: str,
    *,
    n: int,
    path: Path | str | Sequence[Path | str] | None = None,
    seed: int = 0,
    level: Level = Level.BASE,
) -> list[Example]:
    """``n`` examples of a dataset: generated, or drawn across templates from local files.

    Args:
        dataset: ``generated``, ``gsm-symbolic`` or ``aime``.
        n: How many examples (all, when the files have fewer).
        path: The local file or files, for the published formats.
        seed: Seed of the generator, or of the draw from the files.
        level: Difficulty of the generator.

    Raises:
        DatasetError: For an unknown name, a missing path, or a bad file.

    """
    if dataset == "generated":
        return from_problems(generate(n, seed=seed, level=level))
    if dataset not in ("gsm-symbolic", "aime"):
        raise DatasetError(f"unknown dataset {dataset!r}; use generated, gsm-symbolic or aime")
    paths: Sequence[Path | str] = (
        () if path is None else [path] if isinstance(path, str | Path) else path
    )
    return draw(load_files(dataset, paths), n, seed=seed)
