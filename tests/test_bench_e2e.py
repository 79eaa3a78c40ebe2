"""The benchmark end to end, offline: a real ChatOpenAI against the loopback server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from statistics import fmean

import pytest

from sleepagent.bench.__main__ import main
from sleepagent.bench.datasets import Example, load_examples, load_files
from sleepagent.bench.grading import format_number
from sleepagent.bench.plots import PLOT_FILES
from sleepagent.bench.report import write_report
from sleepagent.bench.runner import (
    SLEEP,
    Budget,
    Condition,
    Kind,
    Runner,
    RunSpec,
    read_results,
    with_sleep_scaling,
)
from sleepagent.bench.summary import summarize
from sleepagent.models import ModelOptions, resolve_model
from sleepagent.testing import (
    Completion,
    LoopbackOpenAI,
    PromptLogprobs,
    RecordedRequest,
    rate_limited,
    server_error,
    wire_call,
)
from tests.test_bench_fixtures import gsm_rows, write_jsonl
from tests.test_bench_runner import is_reasoning_pass, problem_of, reasoning

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


REASONING_TOKENS = 120
"""Completion tokens of a scripted reasoning pass: a sleep run's whole output."""


def _text(request: RecordedRequest, role: str) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.messages if m["role"] == role)


def is_sleep_request(request: RecordedRequest) -> bool:
    """Whether the sleep-time agent sent ``request``: its reasoning pass, or an edit round."""
    return bool(request.tools) or _reasoning_pass(request)


def _reasoning_pass(request: RecordedRequest) -> bool:
    # OpenAI's reasoning models get the system prompt as a developer message.
    return is_reasoning_pass(_text(request, "system") or _text(request, "developer"))


def responder(
    examples: list[Example], wrong: frozenset[str] = frozenset(), *, concluded: bool = True
):
    """Answers like a model would, whatever order concurrent requests arrive in.

    A sleep-time run's reasoning pass works the context out right (FINAL STATE and
    likely questions, see ``tests.test_bench_runner.reasoning``); ``concluded=False``
    cuts it off before its conclusions, so the edit round runs: it rewrites
    learned_context (anticipating the real question), then finishes. Test-time-only
    answers are long, and wrong for the examples in ``wrong``; sleep-time answers are
    short and right.
    """

    def respond(request: RecordedRequest) -> Completion:
        if _reasoning_pass(request):
            example = next(e for e in examples if e.context in _text(request, "user"))
            text = reasoning(problem_of(example), concluded=concluded)
            return Completion(text, prompt_tokens=250, completion_tokens=REASONING_TOKENS)
        if request.tools:
            if any(m["role"] == "tool" for m in request.messages):
                return Completion.calling(wire_call("memory_finish"), completion_tokens=3)
            example = next(e for e in examples if e.context in _text(request, "user"))
            note = f"Worked out.\nAnticipated questions:\n- {example.questions[0].text}"
            return Completion.calling(
                wire_call("memory_rethink", label="learned_context", new_value=note),
                prompt_tokens=300,
                completion_tokens=40,
            )
        user = _text(request, "user")
        example = next(e for e in examples if e.questions[0].text in user)
        gold = example.questions[0].answer
        if example.context in user:
            value = gold + 1 if example.id in wrong else gold
            return Completion(
                f"Step by step... The answer is {format_number(value)}.",
                prompt_tokens=100,
                completion_tokens=60,
            )
        return Completion(
            f"The answer is {format_number(gold)}.", prompt_tokens=150, completion_tokens=6
        )

    return respond


def _row(summary: str, condition: str, budget: str) -> list[str]:
    for line in summary.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[:2] == [condition, budget]:
            return cells
    raise AssertionError(f"no row for {condition} {budget}")


@pytest.mark.sleep_failures_expected  # the script injects a rate limit
def test_a_run_writes_every_artifact_consistent_with_its_results_and_resumes(
    tmp_path: Path,
) -> None:
    examples = load_examples("generated", n=2, seed=5)
    out = tmp_path / "run"
    spec = RunSpec(
        examples=examples,
        conditions=(Condition(Kind.TEST_TIME), SLEEP),
        budgets=(Budget(2),),
        concurrency=2,
    )
    respond = responder(examples, frozenset({examples[1].id}))
    # 2 sleep runs of 1 call (the reasoning pass), 4 answers, and one rate limit that
    # costs a client retry.
    with LoopbackOpenAI([rate_limited(), *[respond] * 6]) as server:
        model = resolve_model(
            "openai:loopback", ModelOptions(base_url=server.base_url, max_retries=1)
        )
        outcome = Runner(model, out=out, progress=False).run(spec)
        server.assert_exhausted()
    assert (outcome.done, outcome.skipped, outcome.failed) == (6, 0, 0)

    write_report(out, t=10.0)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["kind"] for r in records) == ["answer"] * 4 + ["sleep"] * 2
    summary = (out / "summary.md").read_text()
    answers = [r for r in records if r["kind"] == "answer"]
    sleeps = {r["key"]: r for r in records if r["kind"] == "sleep"}
    for condition in ("test_time", "sleep_time"):
        group = [r for r in answers if r["condition"] == condition]
        row = _row(summary, condition, "v2")
        accuracy = 100 * fmean(float(r["correct"]) for r in group)
        completion = fmean(r["test_usage"]["output_tokens"] for r in group)
        sleep_out = fmean(
            sum(sleeps[k]["sleep_usage"]["output_tokens"] for k in r["sleep_keys"]) for r in group
        )
        paper = 100 * fmean(float(r["correct_paper"]) for r in group)
        assert row[2] == str(len(group))
        assert row[3:6] == [f"{paper:.1f}%", f"{accuracy:.1f}%", f"{accuracy - paper:+.1f} pts"]
        assert row[7] == f"{completion:.1f}"
        assert row[9] == f"{sleep_out:.1f}"
        assert row[12] == f"{10 * completion + sleep_out:.1f}"
    # The scripted numbers, so the check above is not vacuous.
    assert _row(summary, "test_time", "v2")[3:6] == ["50.0%", "50.0%", "+0.0 pts"]
    assert _row(summary, "sleep_time", "v2")[3] == "100.0%"
    assert _row(summary, "sleep_time", "v2")[6:8] == ["150.0", "6.0"]
    # Break-even at t = 10: 120 sleep tokens / (10 * (60 - 6)) queries.
    assert f"| {REASONING_TOKENS / 540:.2f} |" in summary
    # The learned contexts hold the reasoning pass's final values and no questions, so
    # neither question counts as anticipated (score 0); rank splits the tie.
    assert all("?" not in r["learned_context"] for r in sleeps.values())
    assert "| 1 | 1 | 0.00-0.00 | 100.0% | 0.0% | +100.0 pts |" in summary
    assert "| 3 | 1 | 0.00-0.00 | 100.0% | 100.0% | +0.0 pts |" in summary

    learned = fmean(len(r["learned_context"]) for r in sleeps.values())
    assert (
        f"- Learned contexts: 0 of 2 sleep-time runs left `learned_context` empty (their "
        f"answers had nothing learned to use); mean length {learned:.0f} characters."
    ) in summary
    for name in PLOT_FILES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name

    with LoopbackOpenAI() as idle:
        model = resolve_model("openai:loopback", ModelOptions(base_url=idle.base_url))
        again = Runner(model, out=out, progress=False).run(spec)
        assert idle.requests == []
    assert (again.done, again.skipped, again.failed) == (0, 6, 0)


def test_the_command_line_runs_a_tiny_benchmark_and_rewrites_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "cli"
    examples = load_examples("generated", n=1, seed=0)
    with LoopbackOpenAI([responder(examples)]) as server:
        argv = [
            "--dataset", "generated", "--n", "1", "--conditions", "test_time",
            "--budgets", "0", "--model", "openai:loopback", "--base-url", server.base_url,
            "--out", str(out), "--no-progress", "--max-tokens", "64",
        ]  # fmt: skip
        assert main(argv) == 0
        server.assert_exhausted()
        body = server.requests[0].body
        assert 64 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    text = (out / "summary.md").read_text()
    assert re.search(r"\| test_time \| v0 \| 1 \| 100\.0% \|", text)
    assert "test-time replies capped at 64 tokens" in text
    (out / "summary.md").unlink()
    assert main(["--out", str(out), "--report-only"]) == 0
    assert (out / "summary.md").exists()


def test_logprob_model_scores_each_question_once_and_bins_the_summary_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "logprob"
    examples = load_examples("generated", n=3, seed=2)
    chat = responder(examples, frozenset({examples[0].id}))

    def respond(request: RecordedRequest) -> Completion | PromptLogprobs:
        if request.path != "/v1/completions":
            return chat(request)
        index = next(i for i, e in enumerate(examples) if e.context in request.body["prompt"])
        if index == 2:
            return Completion("no log-probabilities here")  # like a chat-only model
        return PromptLogprobs(values=lambda token, index=index: -0.5 * (index + 1))

    argv = [
        "--dataset", "generated", "--n", "3", "--seed", "2",
        "--conditions", "test_time,sleep_time", "--budgets", "1",
        "--model", "openai:loopback", "--logprob-model", "base", "--out", str(out),
        "--no-progress",
    ]  # fmt: skip
    # 3 sleep runs of 1 call (the reasoning pass), 6 answers and 3 log-probability requests.
    with LoopbackOpenAI([respond] * 12) as server:
        assert main([*argv, "--base-url", server.base_url]) == 0
        server.assert_exhausted()
        scoring = [r for r in server.requests if r.path == "/v1/completions"]
    assert {r.body["model"] for r in scoring} == {"base"}

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    scores = {r["example"]: r for r in records if r["kind"] == "logprob"}
    assert sorted(scores) == sorted(e.id for e in examples)
    assert [scores[e.id]["logprob"] for e in examples] == [-0.5, -1.0, None]
    assert scores[examples[2].id]["status"] == "unavailable"

    summary = (out / "summary.md").read_text()
    assert "Log-probability scores: 2 questions scored, 1 unavailable" in summary
    table = summary.split("## Accuracy by log-probability quintile")[1].split("## Plots")[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d \|", line)]
    # Recompute from results.jsonl: rank the scored questions, lowest first, into
    # quintiles of two (ranks 0 and 1 fall in bins 1 and 3).
    answers = [r for r in records if r["kind"] == "answer"]
    ranked = sorted(
        (r["logprob"], r["example"]) for r in scores.values() if r["logprob"] is not None
    )
    expected = []
    for rank, (value, example) in enumerate(ranked):
        correct = {r["condition"]: 100.0 * r["correct"] for r in answers if r["example"] == example}
        gain = correct["sleep_time"] - correct["test_time"]
        expected.append(
            f"| {rank * 5 // len(ranked) + 1} | 1 | {value:.3f} to {value:.3f} "
            f"| {correct['sleep_time']:.1f}% | {correct['test_time']:.1f}% | {gain:+.1f} pts |"
        )
    assert rows == expected
    # The scripted numbers, so the check is not vacuous: example 0 (-0.5, most
    # predictable) was answered wrong at test time only.
    assert rows[1] == "| 3 | 1 | -0.500 to -0.500 | 100.0% | 0.0% | +100.0 pts |"
    assert (out / "predictability.png").read_bytes().startswith(PNG_SIGNATURE)

    # A re-run finds every unit, the scores included, and asks for nothing.
    with LoopbackOpenAI() as idle:
        assert main([*argv, "--base-url", idle.base_url]) == 0
        assert idle.requests == []


def test_a_bad_condition_or_dataset_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--conditions", "sleepy"]) == 2
    assert main(["--out", str(tmp_path), "--dataset", "aime"]) == 2


def test_sleep_efforts_and_k_runs_are_rows_of_their_own_with_their_own_sleep_cost(
    tmp_path: Path,
) -> None:
    examples = load_examples("generated", n=1, seed=5)
    conditions = with_sleep_scaling(
        (Condition(Kind.TEST_TIME), SLEEP), ks=(2,), efforts=("low", "high")
    )
    spec = RunSpec(examples=examples, conditions=conditions, budgets=(Budget(0),))
    # Per effort 2 sleep runs of 1 call (the reasoning pass); answers: test_time and
    # 2 conditions x 2 efforts.
    with LoopbackOpenAI([responder(examples)] * 9) as server:
        model = resolve_model("openai:o3-mini", ModelOptions(base_url=server.base_url))
        outcome = Runner(model, out=tmp_path, progress=False).run(spec)
        server.assert_exhausted()
        sleeps = [r for r in server.requests if is_sleep_request(r)]
        sleep_efforts = sorted(r.body.get("reasoning_effort") for r in sleeps)
        answer_efforts = {
            r.body.get("reasoning_effort") for r in server.requests if not is_sleep_request(r)
        }
    assert (outcome.done, outcome.failed) == (9, 0)
    assert sleep_efforts == ["high"] * 2 + ["low"] * 2
    assert answer_efforts == {None}  # the sleep effort is the sleep side's only
    rows = {row.condition: row for row in summarize(read_results(tmp_path / "results.jsonl")).rows}
    assert sorted(rows) == [
        "sleep_time@high",
        "sleep_time@low",
        "sleep_time_k2@high",
        "sleep_time_k2@low",
        "test_time",
    ]
    # One sleep run is its reasoning pass's completion tokens; k = 2 pays for two.
    assert rows["sleep_time@low"].sleep_completion == REASONING_TOKENS
    assert rows["sleep_time_k2@high"].sleep_completion == 2 * REASONING_TOKENS
    assert rows["test_time"].sleep_completion == 0


def _gsm_responder(examples: list[Example]):
    """Test-time answers written as decimals ("45.0"): right for us, not always for the paper."""

    def respond(request: RecordedRequest) -> Completion:
        user = _text(request, "user")
        example = next(e for e in examples if e.context in user)
        value = float(example.questions[0].answer)
        return Completion(f"So the answer is {value}", prompt_tokens=80, completion_tokens=9)

    return respond


def test_the_command_line_draws_a_sample_resumes_it_and_reports_both_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = write_jsonl(tmp_path / "stateful_gsm_symbolic_p2.jsonl", gsm_rows(3, 4))
    examples = load_files("gsm-symbolic", [data])
    out = tmp_path / "gsm"
    respond = _gsm_responder(examples)

    def argv(url: str) -> list[str]:
        return [
            "--dataset", "gsm-symbolic", "--data", str(data), "--n", "4", "--seed", "3",
            "--conditions", "test_time", "--budgets", "0", "--model", "openai:loopback",
            "--base-url", url, "--retries", "0", "--out", str(out), "--no-progress",
        ]  # fmt: skip

    # One worker (a loopback server) takes the units in order; the second one fails.
    with LoopbackOpenAI([respond, server_error(), respond, respond]) as server:
        assert main(argv(server.base_url)) == 1
    first = capsys.readouterr().err
    assert "drew 4 examples (gsm-symbolic-p2: 4 from 3 templates)" in first
    assert "3 units done, 0 already done, 1 failed" in first
    assert "Failures: 1 units still failed" in (out / "summary.md").read_text()
    sample = json.loads((out / "sample.json").read_text())
    assert len(sample["keys"]) == 4 and sample["files"] == [data.name]

    with LoopbackOpenAI([respond]) as server:
        assert main(argv(server.base_url)) == 0
        server.assert_exhausted()
    assert "resumed the recorded sample of 4 examples" in capsys.readouterr().err

    records = read_results(out / "results.jsonl")
    assert sorted(r["example"] for r in records) == sorted(sample["keys"])
    summary = (out / "summary.md").read_text()
    ours = sum(r["correct"] for r in records)
    paper = sum(r["correct_paper"] for r in records)
    # Right for the paper only where the gold is written as a decimal too (18.75).
    assert (ours, paper) == (4, sum("." in r["gold_text"] for r in records))
    assert paper < ours  # "45.0" is not "45" to the paper's grader
    row = _row(summary, "test_time", "v0")
    assert row[2:6] == ["4", f"{25 * paper:.1f}%", "100.0%", f"{25 * (ours - paper):+.1f} pts"]
    for fact in (
        "Examples: 4 (gsm-symbolic-p2: 4)",
        "Grading: both",
        "Model: `openai:loopback`",
        "over 2 session(s)",
        "Failures: 0 units still failed, 1 failed attempts logged",
        "concurrency 1",
    ):
        assert fact in summary, fact

    assert main(["--out", str(out), "--report-only"]) == 0
    assert (out / "summary.md").read_text() == summary
    assert main(["--out", str(out), "--report-only", "--grading", "ours"]) == 0
    assert "| accuracy (our rule) |" in (out / "summary.md").read_text()


def test_sleep_steps_bound_the_model_calls_of_a_sleep_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    examples = load_examples("generated", n=1, seed=0)
    out = tmp_path / "steps"
    # A reasoning pass that concludes nothing, asked once more (neither is a step), one edit
    # call (its rethink; no room left for the finish), then one answer.
    with LoopbackOpenAI([responder(examples, concluded=False)] * 4) as server:
        argv = [
            "--n", "1", "--conditions", "sleep_time", "--budgets", "0", "--sleep-steps", "1",
            "--model", "openai:loopback", "--base-url", server.base_url, "--out", str(out),
            "--no-progress",
        ]  # fmt: skip
        assert main(argv) == 0
        server.assert_exhausted()
    assert "up to 1 model calls per sleep-time run in its edit" in (out / "summary.md").read_text()
