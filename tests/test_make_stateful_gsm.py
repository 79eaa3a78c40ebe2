"""The builder of Stateful GSM-Symbolic rows (benchmarks/make_stateful_gsm.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from sleepagent.bench.datasets import load_gsm_symbolic

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "make_stateful_gsm.py"


def _builder():
    spec = importlib.util.spec_from_file_location("make_stateful_gsm", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_last_question_is_split_from_its_context_and_prices_stay_whole():
    split = _builder().split_problem
    assert split("Ann has 3 pens at $2.50 each. She buys 2 more. How much did she pay?") == (
        "Ann has 3 pens at $2.50 each. She buys 2 more.",
        "How much did she pay?",
    )


def test_a_condition_after_the_question_stays_in_the_context():
    context, question = _builder().split_problem(
        "Bo reads 4 pages a day. How many pages in 5 days? On the last day he reads 2 more."
    )
    assert question == "How many pages in 5 days?"
    assert context == "Bo reads 4 pages a day. On the last day he reads 2 more."


def test_built_rows_keep_every_field_and_load(tmp_path):
    source = tmp_path / "GSM_p2.jsonl"
    rows = [
        {
            "id": 7,
            "instance": i,
            "question": f"Cy has {i + 2} apples. He eats 1. How many are left?",
            "answer": f"{i + 2} - 1 = {i + 1}\n#### {i + 1}",
            "original_id": 99,
            "final_answer": f"{i + 1}.0",
        }
        for i in range(2)
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "stateful_gsm_symbolic_p2.jsonl"
    assert _builder().main([str(source), str(out)]) == 0
    built = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(row) >= set(rows[0]) for row in built)
    examples = load_gsm_symbolic(out)
    assert [e.context for e in examples] == [
        "Cy has 2 apples. He eats 1.",
        "Cy has 3 apples. He eats 1.",
    ]
    assert examples[0].questions[0].text == "How many are left?"
