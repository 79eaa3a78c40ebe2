from __future__ import annotations

import re

import pytest

from sleepagent.bench.generator import QUESTION_KINDS, TEMPLATES, Level, Problem, generate


def _replay(problem: Problem) -> tuple[int, int]:
    """A second, separate reading of the story's steps (not the generator's table)."""
    holders = {"a": 0, "b": 0}
    for step in problem.steps:
        n = step.amount
        if step.kind == "start_a":
            holders["a"] = n
        elif step.kind == "b_plus":
            holders["b"] = holders["a"] + n
        elif step.kind == "b_times":
            holders["b"] = sum(holders["a"] for _ in range(n))
        elif step.kind.startswith("move_"):
            source, target = step.kind[5], step.kind[6]
            holders[source] -= n
            holders[target] += n
        else:
            verb, who = step.kind.split("_")
            holders[who] = {"add": holders[who] + n, "sub": holders[who] - n}.get(
                verb, holders[who] * n
            )
    return holders["a"], holders["b"]


def _expected(kind: str, a: int, b: int, gift: int) -> int:
    formulas = {
        "a": a,
        "b": b,
        "total": a + b,
        "difference": max(a, b) - min(a, b),
        "total_after_gift": (a + gift) + (b + gift),
        "a_doubled": a + a,
        "b_doubled": b + b,
        "a_after_gift": a + gift,
        "b_after_gift": b + gift,
        "total_tripled": a + b + a + b + a + b,
    }
    return formulas[kind]


ALL = [
    problem
    for level in Level
    for seed in (0, 1, 2)
    for problem in generate(len(TEMPLATES) * 2, seed=seed, level=level)
]
BY_TEMPLATE = {t.name: [p for p in ALL if p.template == t.name] for t in TEMPLATES}


def test_there_are_at_least_twenty_templates_each_with_distinct_wording() -> None:
    assert len(TEMPLATES) >= 20
    assert len({t.phrases["move_ab"] for t in TEMPLATES}) == len(TEMPLATES)
    assert len({t.name for t in TEMPLATES}) == len(TEMPLATES)


@pytest.mark.parametrize("template", sorted(BY_TEMPLATE))
def test_every_answer_is_recomputed_independently_from_the_story(template: str) -> None:
    assert len(BY_TEMPLATE[template]) == 2 * 3 * len(Level)
    for problem in BY_TEMPLATE[template]:
        a, b = _replay(problem)
        assert a > 0 and b > 0
        for kind, _, answer in problem.questions:
            assert answer == _expected(kind, a, b, problem.gift), (problem.id, kind)


@pytest.mark.parametrize("template", sorted(BY_TEMPLATE))
def test_each_sentence_states_the_number_its_step_uses(template: str) -> None:
    for problem in BY_TEMPLATE[template]:
        _check_sentences(problem)


def _check_sentences(problem: Problem) -> None:
    sentences = re.findall(r"[^.]+\.", problem.context)
    assert len(sentences) == len(problem.steps)
    for sentence, step in zip(sentences, problem.steps, strict=True):
        assert re.search(rf"(?<![\w.]){step.amount}(?![\w])", sentence), sentence


def test_levels_add_clauses_and_steps() -> None:
    lengths = {level: {len(p.steps) for p in generate(30, seed=4, level=level)} for level in Level}
    assert lengths == {Level.BASE: {3}, Level.P1: {4}, Level.P2: {5}}


def test_generation_is_deterministic_by_seed() -> None:
    assert generate(25, seed=7, level=Level.P1) == generate(25, seed=7, level=Level.P1)
    assert generate(25, seed=7) != generate(25, seed=8)


def test_every_template_is_used() -> None:
    assert {p.template for p in generate(len(TEMPLATES))} == {t.name for t in TEMPLATES}


def test_the_question_never_leaks_into_the_context() -> None:
    for problem in ALL:
        for _, question, _ in problem.questions:
            assert question not in problem.context
        assert "?" not in problem.context
        assert problem.text == f"{problem.context} {problem.question}"
        assert problem.question.endswith("?")


def test_each_context_supports_at_least_five_distinct_questions() -> None:
    for problem in ALL:
        texts = [question for _, question, _ in problem.questions]
        assert len(set(texts)) == len(QUESTION_KINDS) >= 5
        assert problem.question == problem.questions[0][1]
        assert problem.answer == problem.questions[0][2]
