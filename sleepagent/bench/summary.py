"""Tables from ``results.jsonl`` alone, by pure functions, so a test can recompute them.

Cost model (the paper's, with ``t`` a parameter): a test-time token costs ``t``
sleep-time tokens. With ``N`` queries sharing one context, a sleep-time query costs
``t * c_test + S / N`` where ``c_test`` is its test-time tokens and ``S`` the sleep
run's tokens; a test-time-only query costs ``t * c_tt``. Sleep-time compute pays off
from ``N* = S / (t * (c_tt - c_test))`` queries per context. The paper counts generated
(completion) tokens only; the tables also give the figure with prompt tokens counted.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from sleepagent.bench.grading import AnswerFormat, GradingRule, paper_correct
from sleepagent.bench.runlog import Failures, RunInfo

__all__ = [
    "BreakEven",
    "ConditionRow",
    "MultiQueryRow",
    "PredictabilityRow",
    "Summary",
    "anticipated_questions",
    "break_even",
    "info_lines",
    "jaccard",
    "render_markdown",
    "summarize",
]

PAPER_DIFFERENCES = (
    "The sleep-time agent is sleepagent's, not the paper's Letta agent and prompts: by "
    "default a free-text reasoning pass over the context, whose final values code writes "
    "into a `learned_context` block (an edit round with memory tools runs only when the "
    "pass concluded nothing); the test-time prompts are our five verbosity prompts, not "
    "the paper's files.",
    "A sleep-time answer sees the learned context c' in memory and the bare question; "
    "`sleep_time_raw` adds the raw context c (the released harness sends c, c' and q).",
    "k parallel runs are concatenated under a header per run (the paper's code has no "
    "k-way concatenation), and nested: `sleep_time_k5` uses the first 5 of the runs "
    "`sleep_time_k10` makes, `sleep_time` the first; each row pays for all of its k.",
    "`sleep_time_s<n>` is the agreement of the first n reasoning samples of one sleep run "
    "(the run makes the largest n), worked out again from the recorded samples; it is "
    "charged those samples' share of the run's tokens, by their length.",
    "Prompt (prefill) tokens are reported next to completion tokens; the paper counts "
    "completion tokens only, and so do the cost columns.",
    "Problems without a context (one-sentence AIME problems) are answered test-time only "
    "and reported in their own `(no context)` rows, outside the comparisons.",
)
"""What ``summary.md`` says about choices that differ from the paper."""

MULTI_QUERY_N = (1, 2, 5, 10)
"""Queries per context reported in the multi-query table."""

QUINTILES = 5

Record = Mapping[str, Any]


@dataclass(frozen=True)
class ConditionRow:
    """One condition at one budget, averaged over its answers.

    Attributes:
        condition: Condition name; ``test_time (no context)`` for problems that have no
            context to sleep on, kept apart so conditions compare on the same problems.
        budget: Budget name.
        n: Answers.
        correct: Correct answers under the summary's leading rule (the paper's, unless
            only ours was asked for).
        correct_ours: Correct answers under our rule.
        correct_paper: Correct answers under the paper's rule.
        test_prompt: Mean test-time prompt tokens per answer.
        test_completion: Mean test-time completion tokens per answer.
        sleep_prompt: Mean sleep-time prompt tokens per context (all k runs).
        sleep_completion: Mean sleep-time completion tokens per context (all k runs).
        wall_s: Mean test-time wall time per answer, seconds.
        sleep_wall_s: Mean sleep-time wall time per context, seconds (all k runs).
        source: The data source, or ``""`` for every source pooled.

    """

    condition: str
    budget: str
    n: int
    correct: int
    correct_ours: int
    correct_paper: int
    test_prompt: float
    test_completion: float
    sleep_prompt: float
    sleep_completion: float
    wall_s: float
    sleep_wall_s: float = 0.0
    source: str = ""

    @property
    def accuracy(self) -> float:
        """Correct answers over answers, under the leading rule."""
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_ours(self) -> float:
        """Accuracy under our rule."""
        return self.correct_ours / self.n if self.n else 0.0

    @property
    def accuracy_paper(self) -> float:
        """Accuracy under the paper's rule."""
        return self.correct_paper / self.n if self.n else 0.0

    def cost_per_query(self, t: float, queries: int = 1) -> float:
        """Completion-token cost of one query when ``queries`` share the sleep run."""
        return t * self.test_completion + self.sleep_completion / queries


@dataclass(frozen=True)
class BreakEven:
    """Sleep-time (k = 1) against test-time only, at one budget.

    Attributes:
        budget: Budget name.
        test_time: Mean test-time tokens of a test-time-only answer.
        sleep_time: Mean test-time tokens of a sleep-time answer.
        sleep_per_context: Mean sleep-time tokens per context.
        queries: Queries per context from which sleep-time is cheaper; ``None`` when
            a sleep-time answer needs no fewer test-time tokens (it never pays off).
        all_tokens: Whether prompt tokens are counted too.

    """

    budget: str
    test_time: float
    sleep_time: float
    sleep_per_context: float
    queries: float | None
    all_tokens: bool


@dataclass(frozen=True)
class MultiQueryRow:
    """N questions sharing one sleep run, at one budget.

    Attributes:
        budget: Budget name.
        queries: N.
        contexts: Contexts with N sleep-time answers.
        sleep_accuracy: Accuracy of those sleep-time answers.
        test_accuracy: Accuracy of test-time-only on the same questions (``None`` if absent).
        sleep_cost: Cost per query, completion tokens, the sleep run shared by N.
        test_cost: Cost per query of test-time only (``None`` if absent).

    """

    budget: str
    queries: int
    contexts: int
    sleep_accuracy: float
    test_accuracy: float | None
    sleep_cost: float
    test_cost: float | None


@dataclass(frozen=True)
class PredictabilityRow:
    """One predictability quintile (1 = least predictable), over every budget.

    Attributes:
        quintile: 1-5.
        questions: Questions in the bin.
        low: Lowest score in the bin.
        high: Highest score in the bin.
        sleep_accuracy: Sleep-time (k = 1) accuracy.
        test_accuracy: Test-time-only accuracy on the same questions, or ``None``.

    """

    quintile: int
    questions: int
    low: float
    high: float
    sleep_accuracy: float
    test_accuracy: float | None

    @property
    def gain(self) -> float | None:
        """Sleep-time minus test-time-only accuracy."""
        return None if self.test_accuracy is None else self.sleep_accuracy - self.test_accuracy


@dataclass(frozen=True)
class Summary:
    """Everything ``summary.md`` and the plots show."""

    t: float
    rows: tuple[ConditionRow, ...]
    break_even: tuple[BreakEven, ...]
    multi_query: tuple[MultiQueryRow, ...]
    predictability: tuple[PredictabilityRow, ...]
    answers: int
    sleep_runs: int
    logprob_predictability: tuple[PredictabilityRow, ...] = ()
    """Quintiles of the log-probability score, over the questions that have one."""
    logprob_scored: int = 0
    """Questions with a log-probability score."""
    logprob_unavailable: int = 0
    """Questions whose log-probability the endpoint could not give."""
    grading: GradingRule = GradingRule.BOTH
    """The rule(s) the accuracies come from."""
    by_source: tuple[ConditionRow, ...] = ()
    """The rows per data source, when the run has more than one."""
    sources: tuple[tuple[str, int, int], ...] = ()
    """``(source, examples, examples without context)`` per source."""
    info: RunInfo | None = None
    """How the folder was produced, when it has ``run.json``."""
    failures: Failures | None = None
    """Failed units logged in the folder."""
    empty_sleep_runs: int = 0
    """Sleep-time runs that left the learned context empty (nothing to answer from)."""
    learned_chars: float = 0.0
    """Mean length of the learned contexts, in characters."""
    sleep_outcomes: tuple[tuple[str, int], ...] = ()
    """How the sleep-time runs ended (``edited``, ``no_tool_call``, ...), where recorded."""

    @property
    def rule_text(self) -> str:
        """Which rule produced the accuracies, in words."""
        return {
            GradingRule.OURS: "ours (numbers compared exactly as fractions: 45 = 45.0)",
            GradingRule.PAPER: "the paper's (strings after removing $ and , and stripping "
            "'.'; AIME: last \\boxed{} integer)",
            GradingRule.BOTH: "both; accuracy is the paper's rule, with ours and the "
            "difference beside it",
        }[self.grading]


def _mean(values: Iterable[float]) -> float:
    found = list(values)
    return fmean(found) if found else 0.0


def _sleep_tokens(record: Record, sleeps: Mapping[str, Record], field: str) -> int:
    """The sleep tokens an answer's learned context cost.

    A ``sleep_time_s<n>`` answer used the first n of the run's reasoning samples:
    it is charged their share of the run's tokens, by their length in characters
    (the run counts tokens for all its samples together).
    """
    total = 0
    for key in record.get("sleep_keys", ()):
        sleep = sleeps[key]
        tokens = int(sleep["sleep_usage"][field])
        count, samples = record.get("samples", 0), sleep.get("reasoning") or []
        if count and len(samples) > count:
            tokens = round(tokens * sum(map(len, samples[:count])) / sum(map(len, samples)))
        total += tokens
    return total


def _sleep_wall(record: Record, sleeps: Mapping[str, Record]) -> float:
    return sum(float(sleeps[key].get("wall_s", 0.0)) for key in record.get("sleep_keys", ()))


def correct_paper(record: Record) -> bool:
    """The paper's grade of an answer record (recomputed for records that predate it)."""
    if "correct_paper" in record:
        return bool(record["correct_paper"])
    gold = str(record.get("gold_text") or record["gold"])
    fmt = AnswerFormat(record.get("answer_format", AnswerFormat.GSM8K.value))
    return paper_correct(str(record["reply"]), gold, fmt)[1]


def is_right(record: Record, rule: GradingRule) -> bool:
    """An answer record's grade under the leading rule of ``rule``."""
    return bool(record["correct"]) if rule is GradingRule.OURS else correct_paper(record)


def condition_label(record: Record) -> str:
    """The row an answer belongs to: its condition, set apart when it had no context."""
    name = str(record["condition"])
    return f"{name} (no context)" if record.get("no_context") else name


def _budget_order(name: str) -> tuple[int, str]:
    digits = re.match(r"v(\d+)", name)
    return (int(digits.group(1)) if digits else 0, name)


_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "in",
        "on",
        "is",
        "are",
        "do",
        "does",
        "did",
        "how",
        "many",
        "much",
        "what",
    ]
)


def _tokens(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS)


def jaccard(left: str, right: str) -> float:
    """Token-set Jaccard similarity of two texts (lower case, common words dropped)."""
    a, b = _tokens(left), _tokens(right)
    return len(a & b) / len(a | b) if a | b else 0.0


def anticipated_questions(learned_context: str) -> list[str]:
    """The questions a learned context anticipates: each question-marked sentence in it."""
    found: list[str] = []
    for line in learned_context.splitlines():
        body = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)]|Q\d*:)\s*", "", line)
        found.extend(part.strip() + "?" for part in body.split("?")[:-1] if part.strip())
    return found


def predictability(learned_context: str, question: str) -> float:
    """How well the sleep-time agent foresaw ``question``: best Jaccard over its anticipations."""
    return max((jaccard(q, question) for q in anticipated_questions(learned_context)), default=0.0)


def break_even(
    test_time: float, sleep_time: float, sleep_per_context: float, t: float
) -> float | None:
    """Queries per context from which sleep-time compute costs less per query."""
    saving = t * (test_time - sleep_time)
    return sleep_per_context / saving if saving > 0 else None


def _rows(
    answers: Sequence[Record], sleeps: Mapping[str, Record], rule: GradingRule, source: str = ""
) -> tuple[ConditionRow, ...]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for answer in answers:
        groups[condition_label(answer), answer["budget"]].append(answer)
    return tuple(
        ConditionRow(
            condition=condition,
            budget=budget,
            n=len(group),
            correct=sum(is_right(r, rule) for r in group),
            correct_ours=sum(bool(r["correct"]) for r in group),
            correct_paper=sum(correct_paper(r) for r in group),
            test_prompt=_mean(r["test_usage"]["input_tokens"] for r in group),
            test_completion=_mean(r["test_usage"]["output_tokens"] for r in group),
            sleep_prompt=_mean(_sleep_tokens(r, sleeps, "input_tokens") for r in group),
            sleep_completion=_mean(_sleep_tokens(r, sleeps, "output_tokens") for r in group),
            wall_s=_mean(r["wall_s"] for r in group),
            sleep_wall_s=_mean(_sleep_wall(r, sleeps) for r in group),
            source=source,
        )
        for (condition, budget), group in sorted(
            groups.items(), key=lambda item: (item[0][0], _budget_order(item[0][1]))
        )
    )


def summarize(
    records: Sequence[Record],
    *,
    t: float = 10.0,
    grading: GradingRule = GradingRule.BOTH,
    info: RunInfo | None = None,
    failures: Failures | None = None,
) -> Summary:
    """Every table of the summary, from the records of ``results.jsonl``.

    Args:
        records: Sleep and answer records.
        t: Price of a test-time token in sleep-time tokens.
        grading: The rule(s) accuracies come from.
        info: How the folder was produced (``run.json``), stated in the summary.
        failures: Failed units logged in the folder.

    """
    sleeps = {r["key"]: r for r in records if r.get("kind") == "sleep"}
    answers = [r for r in records if r.get("kind") == "answer"]
    rows = _rows(answers, sleeps, grading)
    # Comparisons pair conditions on the same problems: those with a context.
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for answer in answers:
        if not answer.get("no_context"):
            groups[answer["condition"], answer["budget"]].append(answer)
    graded: list[Record] = [{**r, "correct": is_right(r, grading)} for r in answers]
    graded_groups: dict[tuple[str, str], list[Record]] = {
        key: [{**r, "correct": is_right(r, grading)} for r in group]
        for key, group in groups.items()
    }
    per_source: dict[str, list[Record]] = defaultdict(list)
    for answer in answers:
        per_source[str(answer.get("source", ""))].append(answer)
    by_source = (
        tuple(
            row
            for source, found in sorted(per_source.items())
            for row in _rows(found, sleeps, grading, source or "-")
        )
        if len(per_source) > 1
        else ()
    )
    examples: dict[str, dict[str, bool]] = defaultdict(dict)
    for answer in answers:
        examples[str(answer.get("source", ""))][answer["example"]] = bool(answer.get("no_context"))
    logprobs = [r for r in records if r.get("kind") == "logprob"]
    scored = {
        (r["example"], r["question_index"]): float(r["logprob"])
        for r in logprobs
        if r.get("logprob") is not None
    }
    return Summary(
        t=t,
        rows=rows,
        break_even=_break_evens(groups, sleeps, t),
        multi_query=_multi_query(graded_groups, sleeps, t),
        predictability=_predictability(graded, sleeps),
        answers=len(answers),
        sleep_runs=len(sleeps),
        logprob_predictability=_quintiles(scored, graded),
        logprob_scored=len(scored),
        logprob_unavailable=sum(r.get("logprob") is None for r in logprobs),
        grading=grading,
        by_source=by_source,
        sources=tuple(
            (source or "-", len(found), sum(found.values()))
            for source, found in sorted(examples.items())
        ),
        info=info,
        failures=failures,
        empty_sleep_runs=sum(
            not str(r.get("learned_context", "")).strip() for r in sleeps.values()
        ),
        learned_chars=_mean(len(str(r.get("learned_context", ""))) for r in sleeps.values()),
        sleep_outcomes=tuple(
            sorted(Counter(str(r["outcome"]) for r in sleeps.values() if r.get("outcome")).items())
        ),
    )


def _break_evens(
    groups: Mapping[tuple[str, str], list[Record]], sleeps: Mapping[str, Record], t: float
) -> tuple[BreakEven, ...]:
    found: list[BreakEven] = []
    budgets = sorted({b for (c, b) in groups if c == "sleep_time"}, key=_budget_order)
    for budget in budgets:
        tests, sleepers = groups.get(("test_time", budget)), groups[("sleep_time", budget)]
        if not tests:
            continue
        for all_tokens in (False, True):

            def tokens(record: Record, all_tokens: bool = all_tokens) -> int:
                usage = record["test_usage"]
                return int(usage["output_tokens"]) + (
                    int(usage["input_tokens"]) if all_tokens else 0
                )

            per_context = {
                r["example"]: _sleep_tokens(r, sleeps, "output_tokens")
                + (_sleep_tokens(r, sleeps, "input_tokens") if all_tokens else 0)
                for r in sleepers
            }
            tt, st = _mean(map(tokens, tests)), _mean(map(tokens, sleepers))
            sleep_cost = _mean(per_context.values())
            found.append(
                BreakEven(budget, tt, st, sleep_cost, break_even(tt, st, sleep_cost, t), all_tokens)
            )
    return tuple(found)


def _multi_query(
    groups: Mapping[tuple[str, str], list[Record]], sleeps: Mapping[str, Record], t: float
) -> tuple[MultiQueryRow, ...]:
    found: list[MultiQueryRow] = []
    budgets = sorted({b for (c, b) in groups if c == "sleep_time"}, key=_budget_order)
    for budget in budgets:
        by_example: dict[str, dict[int, Record]] = defaultdict(dict)
        for r in groups[("sleep_time", budget)]:
            by_example[r["example"]][r["question_index"]] = r
        tests = {
            (r["example"], r["question_index"]): r for r in groups.get(("test_time", budget), [])
        }
        for n in MULTI_QUERY_N:
            chosen = [
                (example, [answers[i] for i in range(n)])
                for example, answers in sorted(by_example.items())
                if all(i in answers for i in range(n))
            ]
            if not chosen or (n > 1 and not any(len(by_example[e]) > 1 for e in by_example)):
                continue
            picked = [r for _, rs in chosen for r in rs]
            sleep_per_context = _mean(
                _sleep_tokens(rs[0], sleeps, "output_tokens") for _, rs in chosen
            )
            paired = [
                tests[(r["example"], r["question_index"])]
                for r in picked
                if (r["example"], r["question_index"]) in tests
            ]
            found.append(
                MultiQueryRow(
                    budget=budget,
                    queries=n,
                    contexts=len(chosen),
                    sleep_accuracy=_mean(float(r["correct"]) for r in picked),
                    test_accuracy=_mean(float(r["correct"]) for r in paired) if paired else None,
                    sleep_cost=t * _mean(r["test_usage"]["output_tokens"] for r in picked)
                    + sleep_per_context / n,
                    test_cost=t * _mean(r["test_usage"]["output_tokens"] for r in paired)
                    if paired
                    else None,
                )
            )
    return tuple(found)


def _predictability(
    answers: Sequence[Record], sleeps: Mapping[str, Record]
) -> tuple[PredictabilityRow, ...]:
    scores: dict[tuple[str, int], float] = {}
    for r in answers:
        key = (r["example"], r["question_index"])
        first = sleeps.get(f"sleep|{r['example']}|r0")
        if r["condition"] == "sleep_time" and first is not None and key not in scores:
            scores[key] = predictability(first["learned_context"], r["question"])
    return _quintiles(scores, answers)


def _quintiles(
    scores: Mapping[tuple[str, int], float], answers: Sequence[Record]
) -> tuple[PredictabilityRow, ...]:
    """Accuracy by score quintile (1 = lowest), over questions with a sleep-time answer.

    Both scores bin the same questions (those plain sleep-time answered), so their
    tables compare; a score for a question no such answer has is left out.
    """
    answered_sleep = {
        (r["example"], r["question_index"]) for r in answers if r["condition"] == "sleep_time"
    }
    scores = {key: value for key, value in scores.items() if key in answered_sleep}
    if not scores:
        return ()
    ranked = sorted(scores, key=lambda key: (scores[key], key))
    bins = {key: rank * QUINTILES // len(ranked) + 1 for rank, key in enumerate(ranked)}
    found: list[PredictabilityRow] = []
    for quintile in range(1, QUINTILES + 1):
        members = {key for key, b in bins.items() if b == quintile}
        if not members:
            continue

        def accuracy(condition: str, members: set[tuple[str, int]] = members) -> float | None:
            picked = [
                float(r["correct"])
                for r in answers
                if r["condition"] == condition and (r["example"], r["question_index"]) in members
            ]
            return _mean(picked) if picked else None

        values = [scores[key] for key in members]
        found.append(
            PredictabilityRow(
                quintile=quintile,
                questions=len(members),
                low=min(values),
                high=max(values),
                sleep_accuracy=accuracy("sleep_time") or 0.0,
                test_accuracy=accuracy("test_time"),
            )
        )
    return tuple(found)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _run_lines(summary: Summary) -> list[str]:
    examples = sum(n for _, n, _ in summary.sources)
    sources = "; ".join(
        f"{source}: {n}" + (f" ({bare} without context, answered test-time only)" if bare else "")
        for source, n, bare in summary.sources
    )
    lines = [
        "## Run",
        "",
        f"- Examples: {examples} ({sources or 'none'}); {summary.answers} answers, "
        f"{summary.sleep_runs} sleep-time runs.",
        f"- Grading: {summary.rule_text}.",
    ]
    if summary.sleep_runs:
        lines.append(
            f"- Learned contexts: {summary.empty_sleep_runs} of {summary.sleep_runs} sleep-time "
            f"runs left `learned_context` empty (their answers had nothing learned to use); "
            f"mean length {summary.learned_chars:.0f} characters."
            + (
                " Runs ended: "
                + ", ".join(f"{name} {n}" for name, n in summary.sleep_outcomes)
                + "."
                if summary.sleep_outcomes
                else ""
            )
        )
    return lines + info_lines(summary.info, summary.failures)


def info_lines(info: RunInfo | None, failures: Failures | None) -> list[str]:
    """The run's model, requests, wall time, command and failures, as summary lines."""
    lines: list[str] = []
    if info is not None and info.sessions:
        last = info.sessions[-1]
        models = {(s.model, s.sleep_model, s.server) for s in info.sessions}
        lines += [
            f"- Model: `{last.model}` (sleep-time: `{last.sleep_model}`), server `{last.server}`"
            + (
                " (sessions used different models or servers: see run.json)"
                if len(models) > 1
                else ""
            )
            + ".",
            f"- Requests: concurrency {last.concurrency}, timeout {last.timeout:g} s, "
            f"{last.max_retries} retries per request in the client (no other retry layer)"
            + _caps(last.max_tokens, last.sleep_max_tokens)
            + f"; up to {last.sleep_steps} model calls per sleep-time run in its edit "
            "rounds, besides the reasoning pass.",
            f"- Wall time: {info.wall_s / 60:.1f} min over {len(info.sessions)} session(s); "
            f"first started {info.sessions[0].started}.",
            f"- Command (last session): `{last.command}`",
        ]
    if failures is not None:
        text = (
            f"- Failures: {failures.open} units still failed, {failures.attempts} failed "
            "attempts logged (errors.jsonl); re-running the command retries them."
        )
        if failures.first_error:
            text += f" First open error: `{failures.first_error[:160]}`"
        lines.append(text)
    return lines


def _caps(test: int | None, sleep: int | None) -> str:
    caps = [
        f"{name} replies capped at {n} tokens"
        for name, n in (("test-time", test), ("sleep-time", sleep))
        if n
    ]
    return "; " + ", ".join(caps) if caps else ""


def _accuracy_cells(row: ConditionRow, rule: GradingRule) -> str:
    if rule is GradingRule.BOTH:
        diff = 100 * (row.accuracy_ours - row.accuracy_paper)
        return f"{_pct(row.accuracy_paper)} | {_pct(row.accuracy_ours)} | {diff:+.1f} pts"
    return _pct(row.accuracy)


def _accuracy_header(rule: GradingRule) -> tuple[str, str]:
    if rule is GradingRule.BOTH:
        return "accuracy (paper rule) | accuracy (our rule) | ours - paper", "---|---|---"
    return f"accuracy ({'our' if rule is GradingRule.OURS else 'paper'} rule)", "---"


def _row_table(rows: Sequence[ConditionRow], summary: Summary, source: bool) -> list[str]:
    head, rule_cols = _accuracy_header(summary.grading)
    first = "| source " if source else ""
    lines = [
        f"{first}| condition | budget | n | {head} | test prompt tok | test completion tok "
        "| sleep prompt tok | sleep completion tok | test wall s | sleep wall s "
        "| cost/query (N=1) |",
        f"{'|---' if source else ''}|---|---|---|{rule_cols}|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = f"| {row.source} " if source else ""
        lines.append(
            f"{cells}| {row.condition} | {row.budget} | {row.n} "
            f"| {_accuracy_cells(row, summary.grading)} "
            f"| {_fmt(row.test_prompt)} | {_fmt(row.test_completion)} "
            f"| {_fmt(row.sleep_prompt)} | {_fmt(row.sleep_completion)} "
            f"| {_fmt(row.wall_s, 3)} | {_fmt(row.sleep_wall_s, 1)} "
            f"| {_fmt(row.cost_per_query(summary.t))} |"
        )
    return lines


def render_markdown(summary: Summary) -> str:
    """``summary.md``: the run, the tables, then how to read them and the plots."""
    t = summary.t
    lines = [
        "# Sleep-time compute benchmark",
        "",
        *_run_lines(summary),
        "",
        f"Cost unit: one sleep-time token; a test-time token costs t = {t:g}.",
        "",
        "## Accuracy and tokens by condition and budget",
        "",
        "Tokens are means per answer (test time) and per context (sleep time, all k runs; "
        "each k is its own row, so its cost is its own). Cost per query counts completion "
        "tokens with the sleep run charged to one query. Sleep wall s adds up the k runs "
        "(run in parallel, they take less).",
        "",
        *_row_table(summary.rows, summary, source=False),
    ]
    if summary.by_source:
        lines += [
            "",
            "## By data source",
            "",
            *_row_table(summary.by_source, summary, source=True),
        ]
    if summary.break_even:
        lines += [
            "",
            "## Break-even: queries per context from which sleep-time compute is cheaper",
            "",
            "| budget | tokens counted | test-time only tok/query | sleep-time tok/query "
            "| sleep tok/context | break-even queries |",
            "|---|---|---|---|---|---|",
        ]
        for item in summary.break_even:
            counted = "prompt + completion" if item.all_tokens else "completion (paper)"
            queries = "never" if item.queries is None else _fmt(item.queries, 2)
            lines.append(
                f"| {item.budget} | {counted} | {_fmt(item.test_time)} | {_fmt(item.sleep_time)} "
                f"| {_fmt(item.sleep_per_context)} | {queries} |"
            )
    if summary.multi_query:
        lines += [
            "",
            "## Multi-query: N questions sharing one sleep-time run",
            "",
            "Cost per query in sleep-time tokens, t test-time tokens each; the sleep run's "
            "tokens are shared by the N questions. The last column is the single-query "
            "sleep-time cost over this row's (the paper reports 2.5x at N = 10).",
            "",
            "| budget | N | contexts | sleep-time accuracy | test-time accuracy "
            "| sleep-time cost/query | test-time cost/query | cost at N = 1 / this |",
            "|---|---|---|---|---|---|---|---|",
        ]
        single = {mq.budget: mq.sleep_cost for mq in summary.multi_query if mq.queries == 1}
        for mq in summary.multi_query:
            base = single.get(mq.budget)
            falls = f"{base / mq.sleep_cost:.2f}x" if base and mq.sleep_cost else "-"
            lines.append(
                f"| {mq.budget} | {mq.queries} | {mq.contexts} | {_pct(mq.sleep_accuracy)} "
                f"| {_pct(mq.test_accuracy)} | {_fmt(mq.sleep_cost)} | {_fmt(mq.test_cost)} "
                f"| {falls} |"
            )
    lines += _predictability_lines(summary)
    lines += ["", "## Where this differs from the paper", ""]
    lines += [f"- {item}" for item in PAPER_DIFFERENCES]
    lines += [
        "",
        "## Plots",
        "",
        "- `pareto.png`: accuracy against mean test-time completion tokens; one line per "
        "condition through its budgets. Up and to the left is better.",
        "- `cost.png`: cost per query against queries per context; sleep-time curves fall as "
        "more queries share the run, test-time-only lines are flat; they cross at break-even.",
        "- `predictability.png`: sleep-time and test-time-only accuracy per predictability "
        "quintile"
        + ("; the right panel bins by log-probability." if summary.logprob_predictability else "."),
        "",
    ]
    return "\n".join(lines)


def _quintile_table(rows: Sequence[PredictabilityRow], digits: int, between: str) -> list[str]:
    lines = [
        "| quintile | questions | score range | sleep-time accuracy | test-time accuracy | gain |",
        "|---|---|---|---|---|---|",
    ]
    for p in rows:
        gain = "-" if p.gain is None else f"{100 * p.gain:+.1f} pts"
        lines.append(
            f"| {p.quintile} | {p.questions} "
            f"| {_fmt(p.low, digits)}{between}{_fmt(p.high, digits)} "
            f"| {_pct(p.sleep_accuracy)} | {_pct(p.test_accuracy)} | {gain} |"
        )
    return lines


def _predictability_lines(summary: Summary) -> list[str]:
    lines: list[str] = []
    if summary.predictability:
        lines += [
            "",
            "## Accuracy by predictability quintile (1 = least predictable)",
            "",
            "Predictability: best token-set Jaccard similarity between the question and the "
            "questions the sleep-time agent anticipated in its learned context (run 1).",
            "",
            *_quintile_table(summary.predictability, 2, "-"),
        ]
    if summary.logprob_scored or summary.logprob_unavailable:
        lines += [
            "",
            "## Accuracy by log-probability quintile (1 = least predictable)",
            "",
            "Predictability as in the paper: the mean log-probability of the question's tokens "
            "given the context under a base model (`--logprob-model`), over the questions "
            "answered by plain sleep-time.",
            "",
            f"Log-probability scores: {summary.logprob_scored} questions scored, "
            f"{summary.logprob_unavailable} unavailable (the endpoint gave no prompt "
            "log-probabilities; left out of the quintiles).",
        ]
        if summary.logprob_predictability:
            lines += ["", *_quintile_table(summary.logprob_predictability, 3, " to ")]
    return lines
