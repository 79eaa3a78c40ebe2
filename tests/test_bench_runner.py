"""The runner's conditions and bookkeeping, against scripted models."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from sleepagent import prompts
from sleepagent.bench.datasets import Example, load_examples, load_files
from sleepagent.bench.generator import TEMPLATES, Level, Problem, generate
from sleepagent.bench.runner import (
    SLEEP,
    Budget,
    Condition,
    Kind,
    Runner,
    RunOutcome,
    RunSpec,
    default_concurrency,
    parse_conditions,
    read_results,
    with_sleep_scaling,
)
from sleepagent.bench.summary import (
    anticipated_questions,
    break_even,
    jaccard,
    render_markdown,
    summarize,
)
from sleepagent.bench.units import record_tokens, unit_note
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError
from sleepagent.models import ModelOptions, resolve_model
from sleepagent.testing import (
    LoopbackOpenAI,
    PromptLogprobs,
    ScriptedChatModel,
    ai_tool_calls,
    rate_limited,
    tool_call,
)
from tests.test_bench_fixtures import aime_rows, write_jsonl

EXAMPLE = load_examples("generated", n=1, seed=11)[0]
"""Mia has 33 marbles; Leo has 3 times as many (99) and trades away 76: 33 and 23 at the end."""
LEARNED = "Her brother Leo: 23 marbles"
"""A final value the reasoning pass works out from EXAMPLE's context, kept in memory."""
WORKING = "3 x 33 = 99"
"""A step of that pass's working, which stays out of memory."""


def problem_of(example: Example) -> Problem:
    """The generated problem behind ``example``: its id names template, level, seed and index."""
    _, level, seed, index = example.id.rsplit("-", 3)
    problem = generate(int(index) + 1, seed=int(seed), level=Level(level))[int(index)]
    assert problem.context == example.context
    return problem


_PHRASES = {
    "start_a": ("{n}", None),
    "b_plus": (None, "{a} + {n}"),
    "b_times": (None, "{n} x {a}"),
    "add_a": ("{a} + {n}", None),
    "sub_a": ("{a} - {n}", None),
    "mul_a": ("{n} x {a}", None),
    "add_b": (None, "{b} + {n}"),
    "sub_b": (None, "{b} - {n}"),
    "move_ab": ("{a} - {n}", "{b} + {n}"),
    "move_ba": ("{a} + {n}", "{b} - {n}"),
}
"""How each kind of sentence changes the two amounts, as a worked calculation."""
_OPERATORS = {"+": operator.add, "-": operator.sub, "x": operator.mul}


def _value(calculation: str) -> int:
    """A number, or two numbers and one of ``+ - x``, worked out."""
    if " " not in calculation:
        return int(calculation)
    left, sign, right = calculation.split()
    return _OPERATORS[sign](int(left), int(right))


def reasoning(problem: Problem, *, concluded: bool = True) -> str:
    """The reasoning pass of a sleep model that works ``problem``'s context out right.

    In the form the pass asks for (``prompts.SLEEP_THINK_CONTEXT_PROMPT``): each
    sentence with the amounts it changes, calculated; then a FINAL STATE section and
    likely questions with their answers. Not ``concluded``, it stops before them, as
    a pass cut off by its token budget does.
    """
    template = next(t for t in TEMPLATES if t.name == problem.template)
    names = [holder[0].upper() + holder[1:] for holder in (template.a, template.b)]
    a = b = 0
    lines = []
    for number, step in enumerate(problem.steps, start=1):
        lines.append(f"Sentence {number}: {step.text}")
        for index, change in enumerate(_PHRASES[step.kind]):
            if change is not None:
                calculation = change.format(a=a, b=b, n=step.amount)
                value = _value(calculation)
                worked = calculation if calculation == str(value) else f"{calculation} = {value}"
                lines.append(f"  {names[index]}: {worked}")
                a, b = (value, b) if index == 0 else (a, value)
    gold = {kind: answer for kind, _, answer in problem.questions}
    assert (a, b) == (gold["a"], gold["b"]), "the scripted reasoning must be right"
    if not concluded:
        return "\n".join(lines)
    big, small = max(a, b), min(a, b)
    lines += [
        "",
        "FINAL STATE",
        f"{names[0]}: {a} {template.unit}",
        f"{names[1]}: {b} {template.unit}",
        "",
        f"Q: {template.questions['total']}",
        f"A: {a} + {b} = {a + b}",
        f"Q: {template.questions['difference']}",
        f"A: {big} - {small} = {big - small}",
    ]
    return "\n".join(lines)


def is_reasoning_pass(system: str) -> bool:
    """Whether a prompt with this system message asks for the sleep-time reasoning pass."""
    return system == prompts.SLEEP_THINK_SYSTEM_PROMPT


def scripted(calls: int) -> ScriptedChatModel:
    """A model whose sleep runs reason EXAMPLE's context out and whose answers are right.

    The reasoning pass concludes, so a sleep run is that one call: the context page
    needs no edit round, and one would fail the run.
    """

    def step(messages: Sequence[BaseMessage]) -> object:
        system = str(messages[0].content)
        if is_reasoning_pass(system):
            return reasoning(problem_of(EXAMPLE))
        if "sleep-time agent" in system:
            raise AssertionError("an edit round after a reasoning pass that concluded")
        return f"The answer is {EXAMPLE.questions[0].answer}."

    return ScriptedChatModel([step] * calls)


def run(tmp_path: Path, conditions: tuple[Condition, ...], calls: int) -> ScriptedChatModel:
    model = scripted(calls)
    spec = RunSpec(examples=[EXAMPLE], conditions=conditions, budgets=(Budget(0),))
    outcome = Runner(model, out=tmp_path, progress=False).run(spec)
    assert outcome.failed == 0
    model.assert_exhausted()
    return model


def chats(model: ScriptedChatModel) -> list:
    return [call for call in model.calls if "sleep-time agent" not in call.system]


def test_test_time_only_sends_context_and_question_and_nothing_learned(tmp_path: Path) -> None:
    (call,) = chats(run(tmp_path, (Condition(Kind.TEST_TIME),), 1))
    user = str(call.messages[-1].content)
    assert user == f"{EXAMPLE.context}\n\n{EXAMPLE.questions[0].text}"
    assert LEARNED not in call.system


def test_sleep_time_answers_the_bare_question_from_the_learned_context(tmp_path: Path) -> None:
    conditions = (SLEEP, Condition(Kind.SLEEP_TIME, raw=True))
    # One sleep run (its reasoning pass) serves both conditions' answers.
    model = run(tmp_path, conditions, 3)
    plain, raw = sorted(chats(model), key=lambda call: "raw_context" in call.system)
    for call in (plain, raw):
        assert str(call.messages[-1].content) == EXAMPLE.questions[0].text
        assert LEARNED in call.system
        assert WORKING not in call.system
    assert EXAMPLE.context not in plain.system
    assert "<raw_context>" in raw.system and EXAMPLE.context in raw.system


def test_scaled_sleep_time_concatenates_k_runs_and_reuses_them(tmp_path: Path) -> None:
    # Two sleep runs of one call each (the reasoning pass) serve both k = 1 and k = 2.
    model = run(tmp_path, (SLEEP, Condition(Kind.SLEEP_TIME, k=2)), 4)
    scaled = next(call for call in chats(model) if "sleep-time run 2 of 2" in call.system)
    assert "sleep-time run 1 of 2" in scaled.system
    assert scaled.system.count(LEARNED) == 2, "each run's learned context, one after the other"
    records = read_results(tmp_path / "results.jsonl")
    assert sum(r["kind"] == "sleep" for r in records) == 2


def test_agreed_samples_of_one_sleep_run_are_scored_as_each_smaller_k(tmp_path: Path) -> None:
    right = reasoning(problem_of(EXAMPLE))
    wrong = right.replace(LEARNED, "Her brother Leo: 32 marbles")
    samples = iter([wrong, right, right])

    def step(messages: Sequence[BaseMessage]) -> object:
        if is_reasoning_pass(str(messages[0].content)):
            return next(samples)
        return f"The answer is {EXAMPLE.questions[0].answer}."

    model = ScriptedChatModel([step] * 6)
    conditions = (
        SLEEP,
        Condition(Kind.SLEEP_TIME, samples=1),
        Condition(Kind.SLEEP_TIME, samples=3),
    )
    spec = RunSpec(examples=[EXAMPLE], conditions=conditions, budgets=(Budget(0),))
    runner = Runner(model, out=tmp_path, progress=False, sleep_config=SleepConfig(sleep_samples=3))
    assert runner.run(spec).failed == 0
    model.assert_exhausted()

    records = read_results(tmp_path / "results.jsonl")
    (sleep,) = [r for r in records if r["kind"] == "sleep"]
    assert sleep["reasoning"] == [wrong, right, right] and sleep["samples"] == 3
    systems = {r["condition"]: r for r in records if r["kind"] == "answer"}
    assert set(systems) == {"sleep_time", "sleep_time_s1", "sleep_time_s3"}
    one, three = (
        next(c for c in chats(model) if marker in c.system)
        for marker in ("Leo: 32 marbles", f"- {LEARNED}")
    )
    assert LEARNED not in one.system, "one sample alone keeps its own wrong value"
    assert "Leo: 32" not in three.system, "three samples outvote it"
    share = len(wrong) / (len(wrong) + 2 * len(right))
    completion = sleep["sleep_usage"]["output_tokens"]
    summary = summarize(records)
    charged = {row.condition: row for row in summary.rows if not row.source}
    assert charged["sleep_time_s1"].sleep_completion == pytest.approx(completion * share, abs=1)
    assert charged["sleep_time_s3"].sleep_completion == completion


def test_agreed_samples_need_a_run_that_makes_as_many(tmp_path: Path) -> None:
    spec = RunSpec(examples=[EXAMPLE], conditions=(Condition(Kind.SLEEP_TIME, samples=3),))
    with pytest.raises(ConfigurationError, match="sleep_samples"):
        Runner(scripted(0), out=tmp_path, progress=False).run(spec)


def test_context_only_withholds_the_question(tmp_path: Path) -> None:
    (call,) = chats(run(tmp_path, (Condition(Kind.CONTEXT_ONLY),), 1))
    user = str(call.messages[-1].content)
    assert EXAMPLE.context in user and EXAMPLE.questions[0].text not in user


def test_multi_query_answers_several_questions_from_one_sleep_run(tmp_path: Path) -> None:
    model = scripted(1 + 5)
    spec = RunSpec(examples=[EXAMPLE], conditions=(SLEEP,), budgets=(Budget(1),), queries=5)
    assert Runner(model, out=tmp_path, progress=False).run(spec).done == 6
    questions = [str(call.messages[-1].content) for call in chats(model)]
    assert sorted(questions) == sorted(q.text for q in EXAMPLE.questions[:5])
    summary = summarize(read_results(tmp_path / "results.jsonl"))
    costs = {row.queries: row.sleep_cost for row in summary.multi_query}
    assert sorted(costs) == [1, 2, 5] and costs[1] > costs[2] > costs[5]
    table = render_markdown(summary)
    assert f"| v1 | 5 | 1 | 20.0% | - | {costs[5]:.1f} | - | {costs[1] / costs[5]:.2f}x |" in table


def test_rate_limits_are_retried_by_the_client_alone_and_a_failed_unit_by_the_next_run(
    tmp_path: Path,
) -> None:
    spec = RunSpec(
        examples=[EXAMPLE], conditions=(Condition(Kind.TEST_TIME),), budgets=(Budget(0),)
    )
    with LoopbackOpenAI([rate_limited(), rate_limited(), "The answer is 3."]) as server:
        model = resolve_model("openai:m", ModelOptions(base_url=server.base_url, max_retries=1))
        first = Runner(model, out=tmp_path, progress=False).run(spec)
        assert (first.done, first.failed) == (0, 1)
        # The client's one retry, and no second layer on top of it.
        assert len(server.requests) == 2
        errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
        assert "RateLimitError" in errors[0]["error"]
        assert read_results(tmp_path / "results.jsonl") == []
        second = Runner(model, out=tmp_path, progress=False).run(spec)
        server.assert_exhausted()
    assert (second.done, second.failed) == (1, 0)


def test_a_logprob_unit_is_retried_by_its_client_and_keyed_per_question(
    tmp_path: Path,
) -> None:
    spec = RunSpec(
        examples=[EXAMPLE],
        conditions=(Condition(Kind.TEST_TIME),),
        budgets=(Budget(0),),
        concurrency=1,
        logprob_model="openai:base",
    )
    # One worker takes units in order: the log-probability unit, then the answer.
    script = [rate_limited(), PromptLogprobs(values=lambda token: -2.0), "The answer is 3."]
    with LoopbackOpenAI(script) as server:
        options = ModelOptions(base_url=server.base_url, max_retries=1)
        model = resolve_model("openai:m", options)
        runner = Runner(model, out=tmp_path, progress=False, logprob_options=options)
        outcome = runner.run(spec)
        server.assert_exhausted()
        assert server.requests[1].body["model"] == "base"
    assert (outcome.done, outcome.failed) == (2, 0)
    (score,) = [r for r in read_results(tmp_path / "results.jsonl") if r["kind"] == "logprob"]
    assert score["key"] == f"logprob|{EXAMPLE.id}|q0"
    assert (score["logprob"], score["status"]) == (-2.0, "ok")


def test_efforts_need_a_model_that_has_reasoning_effort(tmp_path: Path) -> None:
    spec = RunSpec(
        examples=[EXAMPLE], conditions=(Condition(Kind.TEST_TIME),), budgets=(Budget(0, "low"),)
    )
    outcome = Runner(ScriptedChatModel(), out=tmp_path, progress=False).run(spec)
    assert outcome.failed == 1
    assert "reasoning_effort" in (tmp_path / "errors.jsonl").read_text()
    with LoopbackOpenAI(["The answer is 1."]) as server:
        model = resolve_model("openai:o3-mini", ModelOptions(base_url=server.base_url))
        assert Runner(model, out=tmp_path / "x", progress=False).run(spec).done == 1
        assert server.requests[0].body["reasoning_effort"] == "low"


def test_condition_names_round_trip_and_bad_ones_are_refused() -> None:
    names = (
        "test_time,sleep_time,sleep_time_raw,sleep_time_k5,sleep_time_k2_raw,context_only,"
        "sleep_time_k10@high,sleep_time_s3,sleep_time_s5_raw@low"
    )
    assert ",".join(c.name for c in parse_conditions(names)) == names
    for bad in ("sleepy", "sleep_time_k0", "sleep_time_kx", "test_time@high", "sleep_time_k2_s3"):
        with pytest.raises(ConfigurationError):
            parse_conditions(bad)


def test_break_even_is_sleep_tokens_over_the_priced_saving() -> None:
    assert break_even(60, 10, 1000, 10) == pytest.approx(2.0)
    assert break_even(10, 10, 1000, 10) is None
    assert break_even(10, 20, 1000, 10) is None


def test_anticipated_questions_are_read_from_lists_in_the_learned_context() -> None:
    learned = "Totals: A=5.\nLikely questions:\n1. How many does A have? 5\n- What is B?  Also C?"
    assert anticipated_questions(learned) == ["How many does A have?", "What is B?", "Also C?"]
    assert jaccard("How many apples does Ann have?", "how many APPLES does ann have") == 1.0
    assert jaccard("apples", "pears") == 0.0


def test_an_empty_results_file_gives_an_empty_but_valid_summary() -> None:
    summary = summarize([])
    assert summary.rows == () and summary.answers == 0
    assert render_markdown(summary).startswith("# Sleep-time compute benchmark")


def test_problems_without_context_are_answered_test_time_only_and_reported_apart(
    tmp_path: Path,
) -> None:
    examples = load_files("aime", [write_jsonl(tmp_path / "stateful_aime.jsonl", aime_rows())])
    # The reasoning pass over each context that has one (see aime_rows).
    workings = {
        "n = 4 mod 7": "Sentence 1: numbers that are 4 mod 7 are 4, 11, 18, ...\n"
        "  4 = 3 + 1, so 4 is 1 mod 3 already: n = 4\n\n"
        "FINAL STATE\nLeast n: 4\n\nQ: What is n + 21?\nA: 4 + 21 = 25",
        "side length 12": "Sentence 1: the side is 12.\n  Area: 12 x 12 = 144\n\n"
        "FINAL STATE\nSide: 12\nArea: 144\n\nQ: What is the area plus 6?\nA: 144 + 6 = 150",
    }

    def step(messages: Sequence[BaseMessage]) -> object:
        if is_reasoning_pass(str(messages[0].content)):
            material = str(messages[-1].content)
            return next(text for key, text in workings.items() if key in material)
        if "sleep-time agent" in str(messages[0].content):
            raise AssertionError("an edit round after a reasoning pass that concluded")
        return "So the answer is \\boxed{25}."

    # 2 sleep runs of 1 call, 3 test-time answers, 2 sleep-time answers: none for the
    # problem without a context.
    model = ScriptedChatModel([step] * 7)
    spec = RunSpec(
        examples=examples, conditions=(Condition(Kind.TEST_TIME), SLEEP), budgets=(Budget(0),)
    )
    assert Runner(model, out=tmp_path / "run", progress=False).run(spec).failed == 0
    model.assert_exhausted()
    summary = summarize(read_results(tmp_path / "run" / "results.jsonl"))
    rows = {row.condition: row for row in summary.rows}
    assert {name: row.n for name, row in rows.items()} == {
        "sleep_time": 2,
        "test_time": 2,
        "test_time (no context)": 1,
    }
    # Gold 025 is 25 under both rules; 150 and 012 are not.
    assert (rows["test_time"].correct_paper, rows["test_time"].correct_ours) == (1, 1)
    assert summary.sources == (("aime-2024", 3, 1),)
    assert "aime-2024: 3 (1 without context, answered test-time only)" in render_markdown(summary)


def test_the_default_concurrency_is_one_for_a_server_on_this_machine() -> None:
    assert default_concurrency("http://127.0.0.1:8089/v1") == 1
    assert default_concurrency("http://localhost:11434/v1") == 1
    assert default_concurrency("https://api.example.org/v1") == 4
    assert default_concurrency(None) == 4


def test_each_group_of_units_has_its_own_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = scripted(3)
    spec = RunSpec(
        examples=[EXAMPLE], conditions=(Condition(Kind.TEST_TIME), SLEEP), budgets=(Budget(0),)
    )
    # 1 sleep run of 1 call (its reasoning pass), then one answer per condition.
    assert Runner(model, out=tmp_path, progress=True).run(spec).done == 3
    err = capsys.readouterr().err
    for label in ("sleep", "test_time", "sleep_time"):
        assert re.search(rf"{label}: 100%.*1/1", err), label


def test_the_progress_line_gives_each_units_time_and_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = scripted(3)
    spec = RunSpec(
        examples=[EXAMPLE], conditions=(Condition(Kind.TEST_TIME), SLEEP), budgets=(Budget(0),)
    )
    Runner(model, out=tmp_path, progress=True).run(spec)
    err = capsys.readouterr().err
    for record in read_results(tmp_path / "results.jsonl"):
        tokens = record_tokens(record)
        assert tokens > 0, record["kind"]
        assert re.search(rf"last \d+\.\d s, {tokens:,} tokens", err), record["key"]


def test_the_progress_note_adds_the_mean_per_unit_from_the_second_unit() -> None:
    assert unit_note([], []) == ""
    assert unit_note([2.04], [1234]) == "last 2.0 s, 1,234 tokens"
    assert (
        unit_note([2.0, 4.0], [1000, 3000]) == "last 4.0 s, 3,000 tokens; mean 3.0 s, 2,000 tokens"
    )
    line = {"sleep_usage": {"input_tokens": 30, "output_tokens": 12}, "wall_s": 1.0}
    assert record_tokens(line) == 42
    assert record_tokens({"kind": "logprob", "tokens": 9}) == 0


def test_the_caller_hears_after_every_unit_so_a_killed_run_keeps_its_record(
    tmp_path: Path,
) -> None:
    class Killed(Exception):
        pass

    heard: list[tuple[int, int]] = []

    def on_unit(outcome: RunOutcome) -> None:
        heard.append((outcome.done, outcome.failed))
        if len(heard) == 2:
            raise Killed  # as if the process died after its second unit

    model = scripted(4)
    spec = RunSpec(
        examples=[EXAMPLE],
        conditions=(Condition(Kind.TEST_TIME), SLEEP),
        budgets=(Budget(0),),
        concurrency=1,
    )
    with pytest.raises(Killed):
        Runner(model, out=tmp_path, progress=False).run(spec, on_unit=on_unit)
    assert heard == [(1, 0), (2, 0)]
    # The two finished units are kept; the next run does only the third.
    again = Runner(scripted(1), out=tmp_path, progress=False).run(spec)
    assert (again.done, again.skipped) == (1, 2)


def test_a_sleep_run_that_wrote_nothing_is_counted_in_the_summary(tmp_path: Path) -> None:
    # A reasoning pass cut off before its conclusions, twice (it is asked once more), then
    # an edit round that only finishes.
    unfinished = reasoning(problem_of(EXAMPLE), concluded=False)
    model = ScriptedChatModel(
        [unfinished, unfinished, ai_tool_calls(tool_call("memory_finish")), "The answer is 1."]
    )
    spec = RunSpec(examples=[EXAMPLE], conditions=(SLEEP,), budgets=(Budget(0),))
    assert Runner(model, out=tmp_path, progress=False).run(spec).failed == 0
    summary = summarize(read_results(tmp_path / "results.jsonl"))
    assert (summary.sleep_runs, summary.empty_sleep_runs) == (1, 1)
    assert "1 of 1 sleep-time runs left `learned_context` empty" in render_markdown(summary)
    assert summary.sleep_outcomes == (("unchanged", 1),)


def test_sleep_scaling_adds_k_conditions_and_multiplies_sleep_ones_by_effort() -> None:
    base = parse_conditions("test_time,sleep_time")
    assert [c.name for c in with_sleep_scaling(base, ks=(2, 5, 10))] == [
        "test_time",
        "sleep_time",
        "sleep_time_k2",
        "sleep_time_k5",
        "sleep_time_k10",
    ]
    scaled = with_sleep_scaling(base, ks=(5,), efforts=("low", "high"))
    assert [c.name for c in scaled] == [
        "test_time",
        "sleep_time@low",
        "sleep_time@high",
        "sleep_time_k5@low",
        "sleep_time_k5@high",
    ]
    spec = RunSpec(examples=[EXAMPLE], conditions=scaled)
    assert spec.sleep_runs() == {"low": 5, "high": 5}


def test_the_summary_counts_how_sleep_runs_ended_where_recorded() -> None:
    usage = {"input_tokens": 1, "output_tokens": 1}
    records = [
        {"kind": "sleep", "key": f"sleep|e{i}|r0", "learned_context": text, "sleep_usage": usage}
        | ({"outcome": outcome} if outcome else {})
        for i, (text, outcome) in enumerate(
            [("a", "edited"), ("", "no_tool_call"), ("", "no_tool_call"), ("b", None)]
        )
    ]
    summary = summarize(records)
    assert summary.sleep_outcomes == (("edited", 1), ("no_tool_call", 2))
    assert "Runs ended: edited 1, no_tool_call 2." in render_markdown(summary)
