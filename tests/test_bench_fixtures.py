"""Small datasets of our own in the exact shapes of the published files.

Stateful GSM-Symbolic rows keep every field of GSM-Symbolic's generated data (``id`` is
the template, shared by its instances; rows sorted by template) plus the two stateful
fields; Stateful AIME rows have an empty context for a one-sentence problem. The
problems are made up here: no published problem is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CANARY = "canary GUID 00000000-0000-4000-8000-000000000000"

# (context, question, solution, gold) per template; {x} varies by instance.
_TEMPLATES = [
    (
        "A baker fills {x} trays with 9 rolls each.",
        "How many rolls does the baker make?",
        "{x} * 9 = {r}",
        lambda x: x * 9,
    ),
    (
        "A rope of {x} metres is cut into 4 equal parts.",
        "How long is each part in metres?",
        "{x} / 4 = {r}",
        lambda x: x / 4,
    ),
    (
        "Mia saves $5 a week. After {x} weeks she spends $20.",
        "How many dollars does Mia have left?",
        "5 * {x} - 20 = {r}",
        lambda x: 5 * x - 20,
    ),
]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def gsm_rows(templates: int = 3, instances: int = 4) -> list[dict[str, Any]]:
    """Rows sorted by template: ``templates`` x ``instances``, as the real files are."""
    rows = []
    for template in range(templates):
        context, question, solution, answer = _TEMPLATES[template % len(_TEMPLATES)]
        for instance in range(instances):
            x = 5 + 10 * instance + 70 * template  # golds 45 (t0-i0), 18.75 (t1-i0)
            result = answer(x)
            rows.append(
                {
                    "id": template,
                    "instance": instance,
                    "question": f"{context.format(x=x)} {question}",
                    "answer": f"{solution.format(x=x, r=_number(result))}\n#### {_number(result)}",
                    "original_id": 100 + template,
                    "original_question": "(the original question)",
                    "original_answer": "(the original answer)\n#### 1",
                    "canary": CANARY,
                    "final_answer": f"{float(result)}",
                    "stateful_gsm_symbolic_context": context.format(x=x),
                    "stateful_gsm_symbolic_question": question,
                }
            )
    return rows


def aime_rows() -> list[dict[str, Any]]:
    """Two context-split problems and one single-sentence problem (empty context)."""
    return [
        {
            "id": "2024-I-1",
            "stateful_aime_context": "Let n be the least positive integer with n = 4 mod 7 "
            "and n = 1 mod 3.",
            "stateful_aime_question": "Find n + 21.",
            "answer": "025",
        },
        {
            "id": "2024-I-2",
            "stateful_aime_context": "A square has side length 12.",
            "stateful_aime_question": "Find its area plus 6.",
            "answer": 150,
        },
        {
            "id": "2024-II-3",
            "stateful_aime_context": "",
            "stateful_aime_question": "Find the number of positive divisors of 2024.",
            "answer": "012",
        },
    ]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write ``rows`` one a line; a string row is written as it is (for broken lines)."""
    path.write_text(
        "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n",
        encoding="utf-8",
    )
    return path


def test_gsm_rows_have_the_published_shape() -> None:
    rows = gsm_rows(templates=3, instances=4)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # sorted by template
    assert len({r["id"] for r in rows}) == 3 and len(rows) == 12  # ids shared by instances
    assert {r["answer"].rsplit("#### ", 1)[1] for r in rows[::4]} == {"45", "18.75", "705"}
    assert rows[0]["final_answer"] == "45.0"


def test_aime_rows_include_a_problem_without_context() -> None:
    rows = aime_rows()
    assert [r["stateful_aime_context"] == "" for r in rows] == [False, False, True]
    assert rows[0]["answer"] == "025"
