from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from sleepagent.bench.datasets import (
    DatasetError,
    load_aime,
    load_examples,
    load_gsm_symbolic,
)
from sleepagent.bench.generator import Level


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


GSM = {
    "stateful_gsm_symbolic_context": "Ann has 3 apples. She buys 1,200 more.",
    "stateful_gsm_symbolic_question": "How many apples does Ann have?",
    "answer": "3 + 1200 = 1203\n#### 1,203",
}
AIME = {
    "stateful_aime_context": "Let x be the least positive integer with x = 1 mod 7.",
    "stateful_aime_question": "Find x + 100.",
    "answer": 101,
}


def test_gsm_symbolic_lines_become_examples_with_the_gold_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "p1.jsonl", [GSM, "", {**GSM, "answer": "#### $2"}])
    examples = load_gsm_symbolic(path)
    assert [e.questions[0].answer for e in examples] == [Fraction(1203), Fraction(2)]
    assert examples[0].context == GSM["stateful_gsm_symbolic_context"]
    assert examples[0].questions[0].text == GSM["stateful_gsm_symbolic_question"]
    assert examples[1].id == "gsm-3"


def test_aime_lines_become_examples_with_integer_answers(tmp_path: Path) -> None:
    path = _write(tmp_path / "aime.jsonl", [AIME, {**AIME, "answer": "7"}])
    assert [e.questions[0].answer for e in load_aime(path)] == [101, 7]


def test_the_limit_stops_reading(tmp_path: Path) -> None:
    path = _write(tmp_path / "p1.jsonl", [GSM, GSM, GSM, "this line is never read"])
    assert len(load_gsm_symbolic(path, limit=2)) == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([GSM, "{not json"], r"line 2: not valid JSON"),
        (
            [GSM, GSM, {"answer": "#### 1"}],
            r"line 3: missing field 'stateful_gsm_symbolic_context'",
        ),
        ([{**GSM, "answer": "no marker"}], r"line 1: no '#### <number>'"),
        ([[1, 2]], r"line 1: expected a JSON object"),
        ([{**GSM, "stateful_gsm_symbolic_question": ""}], r"line 1: field .* non-empty"),
    ],
)
def test_malformed_gsm_lines_are_errors_naming_the_line(
    tmp_path: Path, lines: list[object], message: str
) -> None:
    path = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DatasetError, match=message) as caught:
        load_gsm_symbolic(path)
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({k: v for k, v in AIME.items() if k != "answer"}, "missing field 'answer'"),
        ({**AIME, "answer": "twelve"}, "field .answer. must be an integer"),
        ({**AIME, "answer": 1.5}, "field .answer. must be an integer"),
    ],
)
def test_malformed_aime_lines_are_errors_naming_the_line(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    path = _write(tmp_path / "aime.jsonl", [AIME, record])
    with pytest.raises(DatasetError, match=f"line 2: {message}") as caught:
        load_aime(path)
    assert caught.value.line == 2


def test_a_missing_file_says_to_download_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="download"):
        load_gsm_symbolic(tmp_path / "absent.jsonl")


def test_load_examples_generates_or_reads(tmp_path: Path) -> None:
    generated = load_examples("generated", n=4, seed=3, level=Level.P1)
    assert len(generated) == 4 and all(len(e.questions) >= 5 for e in generated)
    path = _write(tmp_path / "p1.jsonl", [GSM, GSM])
    assert len(load_examples("gsm-symbolic", n=5, path=path)) == 2
    with pytest.raises(DatasetError, match="--data"):
        load_examples("aime", n=1)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_examples("mmlu", n=1)
