from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from sleepagent.bench.datasets import (
    DatasetError,
    load_aime,
    load_examples,
    load_files,
    load_gsm_symbolic,
)
from sleepagent.bench.generator import Level
from sleepagent.bench.grading import AnswerFormat
from tests.test_bench_fixtures import aime_rows, gsm_rows, write_jsonl

GSM = gsm_rows(templates=1, instances=1)[0]
AIME = aime_rows()[0]


def test_gsm_symbolic_rows_are_keyed_by_variant_template_and_instance(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "stateful_gsm_symbolic_p2.jsonl", gsm_rows(3, 4))
    examples = load_gsm_symbolic(path)
    assert len(examples) == 12 and len({e.id for e in examples}) == 12
    first = examples[0]
    assert first.id == "gsm-symbolic-p2/t0-i0"
    assert (first.source, first.template, first.answer_format) == (
        "gsm-symbolic-p2",
        "0",
        AnswerFormat.GSM8K,
    )
    assert first.context == GSM["stateful_gsm_symbolic_context"]
    assert first.questions[0].text == GSM["stateful_gsm_symbolic_question"]
    assert (first.questions[0].answer, first.questions[0].gold_text) == (45, "45")
    quarter = examples[4].questions[0]
    assert (quarter.answer, quarter.gold_text) == (Fraction(75, 4), "18.75")


def test_p1_and_p2_files_load_together_and_stay_apart(tmp_path: Path) -> None:
    p1 = write_jsonl(tmp_path / "GSM_p1.jsonl", gsm_rows(2, 2))
    p2 = write_jsonl(tmp_path / "GSM_p2.jsonl", gsm_rows(2, 2))
    examples = load_files("gsm-symbolic", [p1, p2])
    assert [e.source for e in examples] == ["gsm-symbolic-p1"] * 4 + ["gsm-symbolic-p2"] * 4
    with pytest.raises(DatasetError, match="pass each file once"):
        load_files("gsm-symbolic", [p1, p1])


def test_a_file_without_ids_is_keyed_by_line(tmp_path: Path) -> None:
    bare = {k: v for k, v in GSM.items() if k not in ("id", "instance")}
    path = write_jsonl(tmp_path / "mine.jsonl", [bare, "", bare])
    assert [e.id for e in load_gsm_symbolic(path)] == ["gsm-symbolic/line1", "gsm-symbolic/line3"]


def test_a_repeated_template_and_instance_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    rows = gsm_rows(1, 2)
    path = write_jsonl(tmp_path / "p1.jsonl", [*rows, rows[0]])
    with pytest.raises(DatasetError, match=r"line 3: example .*t0-i0.* repeats line 1"):
        load_gsm_symbolic(path)


def test_aime_rows_keep_empty_contexts_and_zero_padded_golds(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "stateful_aime.jsonl", aime_rows())
    examples = load_aime(path)
    assert [e.id for e in examples] == [
        "aime-2024/2024-I-1",
        "aime-2024/2024-I-2",
        "aime-2024/2024-II-3",
    ]
    assert [e.has_context for e in examples] == [True, True, False]
    assert [(q.answer, q.gold_text) for e in examples for q in e.questions] == [
        (25, "025"),
        (150, "150"),
        (12, "012"),
    ]
    assert examples[0].answer_format is AnswerFormat.AIME


def test_the_aime_year_comes_from_the_row_then_the_file_name(tmp_path: Path) -> None:
    rows = [
        {**AIME, "id": 7, "year": 2025},
        {k: v for k, v in AIME.items() if k != "id"},
    ]
    examples = load_aime(write_jsonl(tmp_path / "stateful_aime_2024.jsonl", rows))
    assert [e.id for e in examples] == ["aime-2025/7", "aime-2024/line2"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([GSM, "{not json"], r"line 2: not valid JSON"),
        (
            [GSM, GSM | {"instance": 1}, {"answer": "#### 1"}],
            r"line 3: missing field 'stateful_gsm_symbolic_context'",
        ),
        ([{**GSM, "answer": "no marker"}], r"line 1: no '#### <number>'"),
        ([[1, 2]], r"line 1: expected a JSON object"),
        ([{**GSM, "stateful_gsm_symbolic_question": ""}], r"line 1: field .* non-empty"),
        ([{**GSM, "stateful_gsm_symbolic_context": None}], r"line 1: field .*context.* text"),
        ([{**GSM, "id": [1]}], r"line 1: field 'id' must be an integer or text"),
    ],
)
def test_malformed_gsm_lines_are_errors_naming_the_line(
    tmp_path: Path, lines: list[object], message: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
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
        ({**AIME, "stateful_aime_question": " "}, "field .* non-empty"),
    ],
)
def test_malformed_aime_lines_are_errors_naming_the_line(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    path = write_jsonl(tmp_path / "aime.jsonl", [AIME, record])
    with pytest.raises(DatasetError, match=f"line 2: {message}") as caught:
        load_aime(path)
    assert caught.value.line == 2


def test_a_missing_file_says_to_download_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="download"):
        load_gsm_symbolic(tmp_path / "absent.jsonl")


def test_load_examples_generates_or_draws_from_files(tmp_path: Path) -> None:
    generated = load_examples("generated", n=4, seed=3, level=Level.P1)
    assert len(generated) == 4 and all(len(e.questions) >= 5 for e in generated)
    path = write_jsonl(tmp_path / "p1.jsonl", gsm_rows(3, 4))
    assert len(load_examples("gsm-symbolic", n=50, path=path)) == 12
    assert {e.template for e in load_examples("gsm-symbolic", n=3, path=path)} == {"0", "1", "2"}
    with pytest.raises(DatasetError, match="--data"):
        load_examples("aime", n=1)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_examples("mmlu", n=1)
