"""The experiment: answer questions about contexts under each condition and budget.

Everything goes through the library's public API: a :class:`~sleepagent.SleepTimeAgent`
in memory (``db=None``) without idle timer (``scheduler=None``), one fresh thread per
unit of work. Two kinds of unit, each one line of ``results.jsonl`` when finished:

- a **sleep** unit runs sleep-time compute on a context (``add_context``) and records
  the learned context ``c'`` and the sleep-time token usage;
- an **answer** unit answers one question under one condition and budget, and records
  the reply, the grade and the test-time token usage;
- a **logprob** unit (only with ``RunSpec.logprob_model``) scores how predictable one
  question is from its context, as its mean token log-probability under a base model
  (:mod:`~sleepagent.bench.logprob`), or records the score as unavailable.

A sleep-time answer is given by a fresh agent whose ``learned_context`` block starts as
the recorded ``c'`` (the k recorded ``c'`` concatenated, for the scaled condition), so
one sleep run serves every budget and question about its context, and a re-run that
finds the sleep line does not repeat the sleep run. Keys of finished lines are skipped
on a re-run; failed units are logged to ``errors.jsonl`` and retried on the next run.

Retries live in one place, the model client (``ModelOptions.max_retries``, which backs off
and honours ``retry-after``); a unit that still fails waits for the next run. Units run
group by group (the sleep runs, then each condition), each group with its own progress
bar and ETA, at most ``RunSpec.concurrency`` at a time.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sleepagent.agent.facades import SleepTimeAgent
from sleepagent.bench import prompts
from sleepagent.bench.datasets import Example
from sleepagent.bench.grading import extract_answer, format_number, is_correct, paper_correct
from sleepagent.bench.logprob import make_client, score_question
from sleepagent.bench.units import (
    Record,
    RunOutcome,
    Unit,
    UnitRunner,
    default_concurrency,
    read_results,
)
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError, ModelCallError
from sleepagent.memory.blocks import DEFAULT_BLOCKS, DEFAULT_LIMIT, MemoryBlock
from sleepagent.models import ModelLike, ModelOptions
from sleepagent.sleep.thinking import agreed_lines
from sleepagent.usage import Usage

if TYPE_CHECKING:
    import openai

__all__ = [
    "Budget",
    "Condition",
    "Kind",
    "RunOutcome",
    "RunSpec",
    "Runner",
    "answer_key",
    "default_concurrency",
    "logprob_key",
    "parse_conditions",
    "learned_of",
    "read_results",
    "sleep_key",
]

LEARNED = "learned_context"
"""The block the sleep-time agent writes ``c'`` to."""


class Kind(Enum):
    """What the model sees at test time."""

    TEST_TIME = "test_time"
    """Context and question together in the user message; nothing learned."""
    SLEEP_TIME = "sleep_time"
    """The question only; the learned context (and optionally the raw one) in memory."""
    CONTEXT_ONLY = "context_only"
    """The context only; the model must guess the question and answer it."""


@dataclass(frozen=True)
class Condition:
    """One experimental condition.

    Attributes:
        kind: What the model sees at test time.
        k: Sleep-time runs whose learned contexts are concatenated (sleep-time only); the
            k runs are independent units, run in parallel up to the concurrency.
        raw: Also show the raw context at test time (``SleepConfig.show_raw_context``).
        sleep_effort: ``reasoning_effort`` of the sleep-time model (sleep-time only), the
            paper's other way of scaling sleep-time compute; ``None`` sends none.
        samples: Learned context from the agreement of the first ``samples`` reasoning
            samples of the context's sleep run (``sleep_time_s<samples>``), worked out
            again from the run's recorded samples with no model call, so one run at
            ``SleepConfig.sleep_samples = 5`` also scores 1 and 3; 0 takes the learned
            context the run wrote.

    """

    kind: Kind
    k: int = 1
    raw: bool = False
    sleep_effort: str | None = None
    samples: int = 0

    @property
    def name(self) -> str:
        """The name used in keys, tables and on the command line (``sleep_time_k5@high``)."""
        if self.kind is not Kind.SLEEP_TIME:
            return str(self.kind.value)
        base = "sleep_time" + (f"_k{self.k}" if self.k > 1 else "")
        base += (f"_s{self.samples}" if self.samples else "") + ("_raw" if self.raw else "")
        return base + (f"@{self.sleep_effort}" if self.sleep_effort else "")

    @property
    def multi_query(self) -> bool:
        """Whether this condition answers every question of a context (not only the first)."""
        if self.kind is Kind.TEST_TIME:
            return True
        return self.kind is Kind.SLEEP_TIME and dataclasses.replace(self, samples=0) == SLEEP


SLEEP = Condition(Kind.SLEEP_TIME)
DEFAULT_CONDITIONS = (
    Condition(Kind.TEST_TIME),
    SLEEP,
    Condition(Kind.SLEEP_TIME, raw=True),
    Condition(Kind.SLEEP_TIME, k=2),
    Condition(Kind.SLEEP_TIME, k=5),
    Condition(Kind.CONTEXT_ONLY),
)


def parse_conditions(text: str) -> tuple[Condition, ...]:
    """Conditions from a comma-separated list of names, such as ``test_time,sleep_time_k5``.

    Raises:
        ConfigurationError: For a name that is not a condition.

    """
    found: list[Condition] = []
    for raw_name in text.split(","):
        name, _, effort = raw_name.strip().partition("@")
        if effort and not name.startswith("sleep_time"):
            raise ConfigurationError(
                f"unknown condition {raw_name.strip()!r}: only sleep-time conditions take "
                "a sleep effort (sleep_time@high)"
            )
        if name in ("test_time", "context_only"):
            found.append(Condition(Kind(name)))
            continue
        parts = _SLEEP_NAME.fullmatch(name)
        if parts is None:
            raise ConfigurationError(
                f"unknown condition {name!r}: use test_time, context_only, sleep_time, "
                "sleep_time_raw, sleep_time_k<K>[_raw] or sleep_time_s<K>[_raw]"
            )
        k, samples = (int(part) if part else None for part in parts.group("k", "s"))
        if k == 0 or samples == 0:
            raise ConfigurationError(f"unknown condition {name!r}: k must be a positive integer")
        if k is not None and samples is not None:
            raise ConfigurationError(
                f"{name!r}: k concatenated runs and k agreed samples are two different "
                "ways to scale sleep-time compute; name one"
            )
        found.append(
            Condition(
                Kind.SLEEP_TIME,
                k=k or 1,
                raw=bool(parts.group("raw")),
                sleep_effort=effort or None,
                samples=samples or 0,
            )
        )
    return tuple(dict.fromkeys(found))


_SLEEP_NAME = re.compile(r"sleep_time(?:_k(?P<k>\d+))?(?:_s(?P<s>\d+))?(?P<raw>_raw)?")


def with_sleep_scaling(
    conditions: Sequence[Condition],
    *,
    ks: Sequence[int] = (),
    efforts: Sequence[str] = (),
    samples: Sequence[int] = (),
) -> tuple[Condition, ...]:
    """``conditions`` plus the sleep-side scaling axes.

    Every ``k`` in ``ks`` adds ``sleep_time_k<k>``, every count in ``samples`` adds
    ``sleep_time_s<count>``; with ``efforts``, each sleep-time condition is run once
    per sleep-time reasoning effort instead of with none.
    """
    found = list(conditions)
    found += [Condition(Kind.SLEEP_TIME, k=k) for k in ks]
    found += [Condition(Kind.SLEEP_TIME, samples=count) for count in samples]
    if efforts:
        found = [
            dataclasses.replace(c, sleep_effort=effort) if c.kind is Kind.SLEEP_TIME else c
            for c in found
            for effort in (efforts if c.kind is Kind.SLEEP_TIME else (None,))
        ]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class Budget:
    """One test-time budget: a verbosity prompt, and a reasoning effort where the model has it.

    Attributes:
        verbosity: Index into :data:`~sleepagent.bench.prompts.VERBOSITY_PROMPTS` (0-4).
        effort: ``reasoning_effort`` for reasoning models, or ``None``.

    """

    verbosity: int
    effort: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.verbosity < len(prompts.VERBOSITY_PROMPTS):
            raise ConfigurationError(
                f"verbosity must be 0-{len(prompts.VERBOSITY_PROMPTS) - 1}, got {self.verbosity}"
            )

    @property
    def name(self) -> str:
        """``v<verbosity>``, with ``-<effort>`` when an effort is set."""
        return f"v{self.verbosity}" + (f"-{self.effort}" if self.effort else "")

    @property
    def system_prompt(self) -> str:
        """The bot instructions that set this budget."""
        return f"{prompts.VERBOSITY_PROMPTS[self.verbosity]} {prompts.ANSWER_FORMAT}"


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What to run.

    Attributes:
        examples: Contexts and their questions.
        conditions: Conditions to run.
        budgets: Test-time budgets to run each condition at.
        queries: Questions answered per context (multi-query: up to this many, for
            test-time-only and plain sleep-time; other conditions answer the first).
        concurrency: Units of work in flight at once (1 for a one-slot local server).
        logprob_model: A base model to score each question's log-probability given its
            context with, through the server's legacy completions endpoint; ``None``
            skips that score.

    """

    examples: Sequence[Example]
    conditions: Sequence[Condition] = DEFAULT_CONDITIONS
    budgets: Sequence[Budget] = tuple(Budget(v) for v in range(5))
    queries: int = 1
    concurrency: int = 4
    logprob_model: str | None = None

    def __post_init__(self) -> None:
        if self.queries < 1 or self.concurrency < 1:
            raise ConfigurationError(
                f"queries and concurrency must be >= 1, got {self.queries}, {self.concurrency}"
            )
        ids = [example.id for example in self.examples]
        if len(set(ids)) != len(ids):
            repeated = next(i for i in ids if ids.count(i) > 1)
            raise ConfigurationError(
                f"example ids must be unique (they key the results); {repeated!r} repeats"
            )

    def sleep_runs(self) -> dict[str | None, int]:
        """Sleep runs needed per context, by sleep-time effort."""
        found: dict[str | None, int] = {}
        for c in self.conditions:
            if c.kind is Kind.SLEEP_TIME:
                found[c.sleep_effort] = max(found.get(c.sleep_effort, 0), c.k)
        return found


def sleep_key(example_id: str, rep: int, effort: str | None = None) -> str:
    """Key of the sleep unit ``rep`` of a context, at a sleep-time effort."""
    return f"sleep|{example_id}|" + (f"{effort}|" if effort else "") + f"r{rep}"


def answer_key(example_id: str, condition: str, budget: str, question: int) -> str:
    """Key of the answer unit of one question, condition and budget."""
    return f"answer|{example_id}|{condition}|{budget}|q{question}"


def logprob_key(example_id: str, question: int) -> str:
    """Key of the log-probability unit of one question."""
    return f"logprob|{example_id}|q{question}"


def _usage(usage: Usage) -> dict[str, int]:
    return usage.to_dict()


class Runner(UnitRunner):
    """Runs a :class:`RunSpec` into a run folder, resumably (the loop: :class:`UnitRunner`).

    Args:
        model: The test-time model, or a spec such as ``"openai:gpt-4o-mini"``.
        out: The run folder; ``results.jsonl`` there is appended to.
        sleep_model: The sleep-time model; defaults to ``model``.
        model_options: Options for a spec string ``model`` (server, timeout, retries).
        sleep_model_options: The same for the sleep-time model.
        logprob_options: Server, key, timeout and retries of the log-probability
            scoring (``RunSpec.logprob_model``); defaults to ``model_options``, so
            pass it when ``model`` is a model instance rather than a spec string.
        progress: Show a progress bar per group of units on stderr.
        sleep_config: How the sleep-time agent runs (its step budget, say); ``None`` is
            the library's default configuration.

    """

    def __init__(
        self,
        model: ModelLike,
        *,
        out: Path,
        sleep_model: ModelLike | None = None,
        model_options: ModelOptions | None = None,
        sleep_model_options: ModelOptions | None = None,
        logprob_options: ModelOptions | None = None,
        progress: bool = True,
        sleep_config: SleepConfig | None = None,
    ) -> None:
        super().__init__(
            model,
            out=out,
            sleep_model=sleep_model,
            model_options=model_options,
            sleep_model_options=sleep_model_options,
            progress=progress,
            sleep_config=sleep_config,
        )
        self._logprob_options = logprob_options or model_options or ModelOptions()
        self._scorer: openai.OpenAI | None = None

    # --- models ----------------------------------------------------------------

    def _logprob_client(self) -> openai.OpenAI:
        with self._models_lock:
            if self._scorer is None:
                options = self._logprob_options
                self._scorer = make_client(
                    base_url=options.base_url,
                    api_key=options.api_key,
                    timeout=options.timeout,
                    max_retries=options.max_retries,
                )
            return self._scorer

    # --- units -----------------------------------------------------------------

    def _logprob(self, example: Example, index: int, model: str) -> dict[str, Any]:
        import openai

        question = example.questions[index].text
        started = time.perf_counter()
        try:
            score = score_question(self._logprob_client(), model, example.context, question)
        except openai.OpenAIError as error:
            # Wrapped like a chat model's failure; the client has already retried it.
            raise ModelCallError(phase="logprob", cause=error) from error
        return {
            "kind": "logprob",
            "key": logprob_key(example.id, index),
            "example": example.id,
            "question_index": index,
            "question": question,
            "model": model,
            "logprob": score.mean,
            "tokens": score.tokens,
            "status": "unavailable" if score.mean is None else "ok",
            "reason": score.reason,
            "wall_s": round(time.perf_counter() - started, 4),
        }

    def _sleep(self, example: Example, rep: int, effort: str | None) -> dict[str, Any]:
        thread = f"bench-sleep-{example.id}-{effort or 'default'}-r{rep}"
        sleeper = self._sleep_model(effort)
        started = time.perf_counter()
        with SleepTimeAgent(
            sleeper, sleep_model=sleeper, config=self._sleep_config, db=None, scheduler=None
        ) as agent:
            result = agent.add_context(example.context, thread_id=thread)
            learned = agent.memory(thread_id=thread)[LEARNED].value
        return {
            "kind": "sleep",
            "key": sleep_key(example.id, rep, effort),
            "example": example.id,
            "source": example.source,
            "rep": rep,
            "sleep_effort": effort,
            "context": example.context,
            "learned_context": learned,
            "samples": self._sleep_config.sleep_samples,
            "reasoning": list(result.reasoning),
            "sleep_usage": _usage(result.usage),
            "outcome": result.outcome.value,
            "wall_s": round(time.perf_counter() - started, 4),
        }

    def _answer(
        self,
        example: Example,
        condition: Condition,
        budget: Budget,
        index: int,
        learned: Sequence[str],
    ) -> dict[str, Any]:
        question = example.questions[index]
        thread = f"bench-{condition.name}-{budget.name}-{example.id}-q{index}"
        blocks: tuple[MemoryBlock, ...] = DEFAULT_BLOCKS
        if condition.kind is Kind.SLEEP_TIME:
            value = _concatenate(learned)
            blocks = tuple(
                dataclasses.replace(b, value=value, limit=max(DEFAULT_LIMIT, len(value)))
                if b.label == LEARNED
                else b
                for b in DEFAULT_BLOCKS
            )
        config = SleepConfig(
            blocks=blocks, system_prompt=budget.system_prompt, show_raw_context=condition.raw
        )
        if condition.kind is Kind.TEST_TIME:
            message = prompts.TEST_TIME_MESSAGE.format(
                context=example.context, question=question.text
            )
        elif condition.kind is Kind.CONTEXT_ONLY:
            message = prompts.CONTEXT_ONLY_MESSAGE.format(context=example.context)
        else:
            message = question.text
        model = self._chat_model(budget.effort)
        with SleepTimeAgent(model, config=config, db=None, scheduler=None) as agent:
            if condition.raw:
                # The raw context reaches the prompt the way add_context leaves it, but
                # without a second sleep run: the learned context is already seeded.
                scope = agent.scope(thread_id=thread)
                agent.blocks.append(
                    scope,
                    thread,
                    [("context", example.context, None)],
                    at="1970-01-01T00:00:00+00:00",
                    context_text=example.context,
                )
            started = time.perf_counter()
            reply = agent.chat(message, thread_id=thread)
            wall = time.perf_counter() - started
        predicted = extract_answer(reply.reply)
        paper_predicted, paper_right = paper_correct(
            reply.reply, question.gold_text, example.answer_format
        )
        return {
            "kind": "answer",
            "key": answer_key(example.id, condition.name, budget.name, index),
            "example": example.id,
            "source": example.source,
            "no_context": not example.has_context,
            "condition": condition.name,
            "condition_kind": condition.kind.value,
            "k": condition.k if condition.kind is Kind.SLEEP_TIME else 0,
            "samples": condition.samples,
            "raw": condition.raw,
            "sleep_effort": condition.sleep_effort,
            "budget": budget.name,
            "verbosity": budget.verbosity,
            "effort": budget.effort,
            "question_index": index,
            "question": question.text,
            "gold": format_number(question.answer),
            "gold_text": question.gold_text,
            "answer_format": example.answer_format.value,
            "reply": reply.reply,
            "predicted": format_number(predicted) if predicted is not None else None,
            "correct": is_correct(predicted, question.answer),
            "predicted_paper": paper_predicted,
            "correct_paper": paper_right,
            "test_usage": _usage(reply.usage),
            "sleep_keys": [
                sleep_key(example.id, r, condition.sleep_effort) for r in range(len(learned))
            ],
            "samples_of": self._sleep_config.sleep_samples if condition.samples else 0,
            "wall_s": round(wall, 4),
        }

    def _units(self, spec: RunSpec, finished: Mapping[str, Record]) -> Iterator[Unit]:
        """Every unit of the spec, sleep units first; answers name the sleep units they need.

        An example without a context has nothing to sleep on: it gets test-time-only
        answers, flagged ``no_context`` so the summary counts them apart.
        """
        with_context = [e for e in spec.examples if e.has_context]
        for effort, runs in spec.sleep_runs().items():
            group = "sleep" + (f"@{effort}" if effort else "")
            for example in with_context:
                for rep in range(runs):
                    yield Unit(
                        sleep_key(example.id, rep, effort),
                        _bind_sleep(self._sleep, example, rep, effort),
                        group,
                    )
        if spec.logprob_model is not None:
            model = spec.logprob_model.removeprefix("openai:")
            for example in with_context:
                # Every question some condition answers, each scored once for all of them.
                count = max(
                    (
                        min(spec.queries, len(example.questions)) if c.multi_query else 1
                        for c in spec.conditions
                    ),
                    default=0,
                )
                for index in range(count):
                    yield Unit(
                        logprob_key(example.id, index),
                        _bind_logprob(self._logprob, example, index, model),
                        "logprob",
                    )
        for condition in spec.conditions:
            for example in spec.examples:
                if not example.has_context and condition.kind is not Kind.TEST_TIME:
                    continue
                count = min(spec.queries, len(example.questions)) if condition.multi_query else 1
                needs = tuple(
                    sleep_key(example.id, rep, condition.sleep_effort)
                    for rep in range(condition.k if condition.kind is Kind.SLEEP_TIME else 0)
                )
                for budget in spec.budgets:
                    for index in range(count):
                        key = answer_key(example.id, condition.name, budget.name, index)
                        work = _bind_answer(
                            self._answer, example, condition, budget, index, needs, finished
                        )
                        yield Unit(key, work, condition.name, needs)

    # --- running ---------------------------------------------------------------

    def run(
        self, spec: RunSpec, *, on_unit: Callable[[RunOutcome], None] | None = None
    ) -> RunOutcome:
        """Run every unit not yet in ``results.jsonl``, group by group, sleep units first.

        Args:
            spec: What to run.
            on_unit: Called with the counts so far after each unit ends, so a caller can
                keep a record that survives a kill.

        Returns:
            Counts of units done, skipped and failed, and the wall time.

        """
        counts = sorted({c.samples for c in spec.conditions if c.samples})
        if counts and counts[-1] > self._sleep_config.sleep_samples:
            raise ConfigurationError(
                f"sleep_time_s{counts[-1]} agrees {counts[-1]} reasoning samples, but each "
                f"sleep run makes {self._sleep_config.sleep_samples}: set "
                f"SleepConfig.sleep_samples (--sleep-samples) to {counts[-1]} or more"
            )
        finished = self._finished()
        return self._execute(
            self._units(spec, finished), finished, concurrency=spec.concurrency, on_unit=on_unit
        )


def _concatenate(learned: Sequence[str]) -> str:
    if len(learned) == 1:
        return learned[0]
    return "\n\n".join(
        f"{prompts.LEARNED_CONTEXT_RUN_HEADER.format(index=i, k=len(learned))}\n{text}"
        for i, text in enumerate(learned, start=1)
    )


def _bind_sleep(
    work: Callable[[Example, int, str | None], dict[str, Any]],
    example: Example,
    rep: int,
    effort: str | None,
) -> Callable[[], dict[str, Any]]:
    return lambda: work(example, rep, effort)


def _bind_logprob(
    work: Callable[[Example, int, str], dict[str, Any]], example: Example, index: int, model: str
) -> Callable[[], dict[str, Any]]:
    return lambda: work(example, index, model)


def _bind_answer(
    work: Callable[[Example, Condition, Budget, int, Sequence[str]], dict[str, Any]],
    example: Example,
    condition: Condition,
    budget: Budget,
    index: int,
    needs: Iterable[str],
    finished: Mapping[str, Record],
) -> Callable[[], dict[str, Any]]:
    # The learned contexts are looked up when the unit runs, after its sleep units.
    keys = tuple(needs)
    return lambda: work(
        example,
        condition,
        budget,
        index,
        [learned_of(finished[key], condition.samples) for key in keys],
    )


def learned_of(sleep: Mapping[str, Any], samples: int = 0) -> str:
    """The learned context a sleep record gives: the one it wrote, or its first ``samples``'.

    With ``samples``, the agreement of the run's first ``samples`` reasoning samples is
    worked out again (:func:`~sleepagent.sleep.thinking.agreed_lines`), with no model
    call. When they agree on nothing readable it is empty: the library would have gone
    on to an edit round, which is not replayed here.

    Raises:
        ConfigurationError: When the run made fewer samples than asked for.

    """
    if not samples:
        return str(sleep["learned_context"])
    made = sleep.get("samples", 1)
    if samples > made:
        raise ConfigurationError(
            f"{sleep['key']} made {made} reasoning samples; sleep_time_s{samples} needs "
            f"{samples}: run its sleep units again with --sleep-samples {samples}"
        )
    return "\n".join(agreed_lines(sleep.get("reasoning", [])[:samples]))
