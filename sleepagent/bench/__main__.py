"""``python -m sleepagent.bench``: run the paper's experiments, or LoCoMo, and write the report.

Examples::

    python -m sleepagent.bench --dataset generated --n 20 --model openai:gpt-4o-mini --out runs/x
    python -m sleepagent.bench --dataset locomo --data locomo10.json --out runs/locomo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sleepagent.bench import prompts
from sleepagent.bench.conversation_runner import (
    ConversationRunner,
    ConversationSpec,
    System,
    parse_systems,
)
from sleepagent.bench.conversations import chosen_conversations, draw_questions, load_locomo
from sleepagent.bench.datasets import DATASETS, DatasetError, Example, load_examples, load_files
from sleepagent.bench.generator import Level
from sleepagent.bench.grading import GradingRule
from sleepagent.bench.report import write_report
from sleepagent.bench.runlog import RunInfo, Session, read_run_info
from sleepagent.bench.runner import (
    DEFAULT_CONDITIONS,
    Budget,
    Runner,
    RunOutcome,
    RunSpec,
    default_concurrency,
    parse_conditions,
    with_sleep_scaling,
)
from sleepagent.bench.sampling import SampleRecord, describe, draw, resume_sample
from sleepagent.config import SleepConfig, SleepEditMode, SleepThinking, UserFacts
from sleepagent.errors import ConfigurationError
from sleepagent.models import ModelOptions, sleep_reply_cap

__all__ = ["LOCOMO_GRADING", "build_parser", "main"]

LOCOMO_GRADING = "locomo-f1"
"""What ``run.json`` records as the grading of a LoCoMo run: LoCoMo's token F1."""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser(prog: str = "python -m sleepagent.bench") -> argparse.ArgumentParser:
    """The command-line options; ``prog`` is the command shown in the help."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the sleep-time compute experiments (Lin et al., 2025) and write "
        "results.jsonl, summary.md and plots to a run folder. Re-running with the same "
        "folder resumes: the recorded sample, and only the units not yet finished.",
    )
    parser.add_argument(
        "--dataset", choices=DATASETS, default="generated", help="question set (default generated)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=[],
        help="local file(s): JSONL for gsm-symbolic (P1 and/or P2) or aime (2024 and/or "
        "2025); locomo10.json for locomo",
    )
    parser.add_argument(
        "--n", type=int, default=20, help="examples to draw, across templates (default 20)"
    )
    parser.add_argument(
        "--level",
        choices=[lv.value for lv in Level],
        default="base",
        help="difficulty of the generated dataset (default base)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the draw, or of the generated dataset"
    )
    parser.add_argument("--model", default="openai:gpt-4o-mini", help="test-time model spec")
    parser.add_argument("--sleep-model", help="sleep-time model spec (default: --model)")
    parser.add_argument("--base-url", help="OpenAI-compatible server (default: OpenAI)")
    parser.add_argument(
        "--logprob-model",
        help="base model that scores each question's log-probability given its context, "
        "through the legacy /v1/completions endpoint with echo and logprobs (vLLM); "
        "recorded as unavailable where the server cannot",
    )
    parser.add_argument(
        "--logprob-base-url", help="server of --logprob-model (default: --base-url)"
    )
    parser.add_argument(
        "--conditions",
        default=",".join(c.name for c in DEFAULT_CONDITIONS),
        help="comma list of test_time, sleep_time, sleep_time_raw, sleep_time_k<K>, "
        "context_only, with @EFFORT on a sleep-time one for its sleep effort "
        "(default: all, with k = 2 and 5)",
    )
    parser.add_argument(
        "--k",
        default="",
        help="comma list of k: adds sleep_time_k<K> per value (k parallel sleep runs, "
        "concatenated; e.g. 2,5,10)",
    )
    parser.add_argument(
        "--sleep-efforts",
        default="",
        help="comma list of sleep-time reasoning efforts (low,medium,high): runs every "
        "sleep-time condition at each, as its own axis",
    )
    parser.add_argument(
        "--budgets", default="0,1,2,3,4", help="verbosity prompts to use, 0-4 (default: all)"
    )
    parser.add_argument(
        "--efforts", help="comma list of reasoning efforts (low,medium,high) for reasoning models"
    )
    parser.add_argument(
        "--queries", type=int, default=1, help="questions per context (multi-query; up to 10)"
    )
    parser.add_argument(
        "--grading",
        choices=[rule.value for rule in GradingRule],
        help="accuracy by our rule, the paper's exact rule, or both side by side "
        "(default: both, or what run.json records)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="units in flight (default: 1 for a server on this machine, else 4)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=5,
        help="retries per request, in the model client (backoff, retry-after); the only "
        "retry layer: a unit still failing is retried by the next run",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument(
        "--max-tokens",
        type=int,
        help="cap on completion tokens per test-time request (default: none); a capped "
        "reply is graded as it stands",
    )
    parser.add_argument(
        "--sleep-steps",
        type=int,
        default=10,
        help="model calls a sleep-time run may make (default 10, the paper's rethink limit)",
    )
    parser.add_argument(
        "--sleep-edit-mode",
        choices=[mode.value for mode in SleepEditMode],
        default=SleepEditMode.AUTO.value,
        help="how the sleep-time agent writes: memory tools, tagged text, or auto "
        "(default: auto, tools falling back to text)",
    )
    parser.add_argument(
        "--sleep-thinking",
        choices=[mode.value for mode in SleepThinking],
        default=SleepThinking.CONTEXT.value,
        help="which pages get a reasoning pass before memory is written (default: context)",
    )
    parser.add_argument(
        "--user-facts",
        choices=[choice.value for choice in UserFacts],
        default=SleepConfig().user_facts.value,
        help="how the sleep-time agent records what a speaker says about themselves: the "
        "edit round, or a plain-text fact pass (default: %(default)s)",
    )
    parser.add_argument(
        "--sleep-request-field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra field in every sleep-time request body (repeatable; the value is read "
        "as JSON when it is), e.g. frequency_penalty=0.5 for a server that takes it",
    )
    parser.add_argument(
        "--block-limit",
        type=int,
        help="characters each memory block may hold (default: the library's 5,000); a long "
        "conversation's facts outgrow it",
    )
    parser.add_argument(
        "--archive-facts",
        type=int,
        default=0,
        help="archived facts recalled per question (SleepConfig.archive_facts; default 0, "
        "off): a full facts block then moves its oldest lines to an archive",
    )
    parser.add_argument(
        "--think-tokens",
        type=int,
        default=SleepConfig().sleep_think_tokens,
        help="token budget of each reasoning sample: the sleep effort for models without "
        "a reasoning setting (default %(default)s); not --sleep-efforts, which sets "
        "reasoning_effort on models that have one",
    )
    parser.add_argument(
        "--sleep-samples",
        default="1",
        help="independent reasoning samples per context, combined by agreement (default 1); "
        "a comma list (1,3,5) makes the largest and adds sleep_time_s<N> for each N, scored "
        "from the first N samples of the same run; not --k, which concatenates k whole "
        "sleep runs as the paper did",
    )
    parser.add_argument(
        "--sleep-max-tokens",
        type=int,
        help="cap on completion tokens per sleep-time request (default: none, or 2048 for a "
        "server on this machine or network)",
    )
    parser.add_argument(
        "--t", type=float, help="test-time / sleep-time token price (default 10, or run.json's)"
    )
    locomo = parser.add_argument_group("LoCoMo (--dataset locomo)")
    locomo.add_argument(
        "--per-category",
        type=int,
        default=15,
        help="questions drawn per category, seeded by --seed (default 15; 0 = every question)",
    )
    locomo.add_argument(
        "--conversations",
        type=int,
        help="only the first N conversations of the file (default: all)",
    )
    locomo.add_argument(
        "--conversation",
        action="append",
        dest="conversation_ids",
        metavar="ID",
        help="only this conversation, by its sample_id (for example conv-30); repeat for "
        "more (default: all)",
    )
    locomo.add_argument(
        "--systems",
        default=",".join(system.value for system in System),
        help="comma list of no_memory, recent_turns, full_context, sleep_memory, recall, "
        "sleep_memory_recall (default: all)",
    )
    locomo.add_argument(
        "--recall-messages",
        type=int,
        default=10,
        help="messages recalled per question by recall and sleep_memory_recall (default 10)",
    )
    locomo.add_argument(
        "--recall-chars",
        type=int,
        default=4_000,
        help="most characters of recalled messages, and of archived facts, per question "
        "(default 4000)",
    )
    locomo.add_argument(
        "--recent-turns",
        type=int,
        help="turns in the recency window (default: as many as fit in the characters of "
        "each conversation's final memory blocks)",
    )
    locomo.add_argument(
        "--context-window",
        type=int,
        default=128_000,
        help="the chat model's window in tokens: full_context answers only conversations "
        "that fit (default 128000)",
    )
    locomo.add_argument(
        "--judge-model",
        help="model spec of an LLM judge that grades each answer CORRECT or WRONG "
        "(default: none; its prompt is written to prompts.json)",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the report from the folder"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _budgets(verbosity: str, efforts: str | None) -> tuple[Budget, ...]:
    levels = _ints(verbosity)
    chosen: list[str | None] = list(_names(efforts)) if efforts else [None]
    return tuple(Budget(level, effort) for level in levels for effort in chosen)


def _examples(args: argparse.Namespace) -> list[Example]:
    """The run's examples: the recorded sample of the folder, else a new draw, recorded."""
    generated = args.dataset == "generated"
    if generated:
        available = load_examples("generated", n=args.n, seed=args.seed, level=Level(args.level))
        drawn = available
    else:
        available = load_files(args.dataset, args.data)
        drawn = draw(available, args.n, seed=args.seed)
    request = SampleRecord(
        dataset=args.dataset,
        files=tuple(Path(p).name for p in args.data),
        n=args.n,
        seed=args.seed,
        level=args.level if generated else None,
        keys=tuple(e.id for e in drawn),
    )
    examples, resumed = resume_sample(args.out, request, available)
    print(describe(examples, resumed=resumed), file=sys.stderr)
    return examples


def _conversation_spec(args: argparse.Namespace) -> ConversationSpec:
    """LoCoMo's conversations and drawn questions: the folder's sample, else a new one."""
    if len(args.data) != 1:
        raise DatasetError("the locomo dataset needs --data PATH to locomo10.json (one file)")
    conversations = load_locomo(args.data[0])
    if args.conversations is not None:
        if args.conversations < 1:
            raise ConfigurationError(f"--conversations must be >= 1, got {args.conversations}")
        conversations = conversations[: args.conversations]
    if args.conversation_ids:
        conversations = chosen_conversations(conversations, args.conversation_ids)
    available = [q for c in conversations for q in c.questions]
    drawn = draw_questions(conversations, args.per_category, seed=args.seed)
    request = SampleRecord(
        dataset="locomo",
        files=(Path(args.data[0]).name,),
        n=args.per_category,
        seed=args.seed,
        level=None,
        keys=tuple(q.id for q in drawn),
        conversations=args.conversations,
        conversation_ids=tuple(args.conversation_ids or ()),
    )
    questions, resumed = resume_sample(args.out, request, available)
    verb = "resumed the recorded sample of" if resumed else "drew"
    print(
        f"{verb} {len(questions)} questions from {len(conversations)} conversations",
        file=sys.stderr,
    )
    return ConversationSpec(
        conversations=conversations,
        questions=questions,
        systems=parse_systems(args.systems),
        recent_turns=args.recent_turns,
        context_window=args.context_window,
        recall_messages=args.recall_messages,
        recall_chars=args.recall_chars,
        concurrency=args.concurrency or default_concurrency(args.base_url),
    )


def _write_prompts(folder: Path, judged: bool) -> None:
    """``prompts.json``: the prompts a LoCoMo run sends, so its numbers can be read against them."""
    found = {
        "answer_instructions": prompts.LOCOMO_ANSWER_INSTRUCTIONS,
        "temporal_hint": prompts.LOCOMO_TEMPORAL_HINT,
        "context_message": prompts.LOCOMO_CONTEXT_MESSAGE,
        "session_header": prompts.LOCOMO_SESSION_HEADER,
    }
    if judged:
        found["judge"] = prompts.LOCOMO_JUDGE_PROMPT
        found["judge_gold_for_adversarial"] = prompts.LOCOMO_ABSTAIN_GOLD
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.json").write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")


def _run_conversations(
    args: argparse.Namespace, record: Callable[[RunOutcome, int], None]
) -> RunOutcome:
    spec = _conversation_spec(args)
    options, sleep_options = _model_options(args)
    runner = ConversationRunner(
        args.model,
        out=args.out,
        sleep_model=args.sleep_model,
        model_options=options,
        sleep_model_options=sleep_options,
        judge_model=args.judge_model,
        progress=not args.no_progress,
        sleep_config=_sleep_config(args),
    )
    _write_prompts(args.out, judged=args.judge_model is not None)
    return runner.run(spec, on_unit=lambda outcome: record(outcome, spec.concurrency))


def _model_options(args: argparse.Namespace) -> tuple[ModelOptions, ModelOptions]:
    options = ModelOptions(
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.retries,
        max_tokens=args.max_tokens,
    )
    # The library's own cap for a local server, made explicit so run.json records it.
    sleep_options = sleep_reply_cap(
        args.sleep_model or args.model,
        dataclasses.replace(
            options,
            max_tokens=args.sleep_max_tokens,
            request_fields=_request_fields(args.sleep_request_field) or None,
        ),
    )
    return options, sleep_options


def _request_fields(pairs: Sequence[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs as request fields, each value read as JSON when it is JSON."""
    fields: dict[str, object] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(f"--sleep-request-field wants KEY=VALUE, got {pair!r}")
        try:
            fields[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            fields[key.strip()] = text
    return fields


def _sleep_config(args: argparse.Namespace) -> SleepConfig:
    blocks = SleepConfig().blocks
    if args.block_limit is not None:
        blocks = tuple(dataclasses.replace(block, limit=args.block_limit) for block in blocks)
    return SleepConfig(
        blocks=blocks,
        max_sleep_steps=args.sleep_steps,
        sleep_edit_mode=SleepEditMode(args.sleep_edit_mode),
        sleep_thinking=SleepThinking(args.sleep_thinking),
        sleep_think_tokens=args.think_tokens,
        sleep_samples=max(_ints(args.sleep_samples), default=1),
        user_facts=UserFacts(args.user_facts),
        archive_facts=args.archive_facts,
    )


def _run_examples(
    args: argparse.Namespace, record: Callable[[RunOutcome, int], None]
) -> RunOutcome:
    examples = _examples(args)
    concurrency = args.concurrency or default_concurrency(args.base_url)
    sample_counts = _ints(args.sleep_samples)
    conditions = with_sleep_scaling(
        parse_conditions(args.conditions),
        ks=_ints(args.k),
        efforts=_names(args.sleep_efforts),
        samples=sample_counts if len(sample_counts) > 1 else (),
    )
    spec = RunSpec(
        examples=examples,
        conditions=conditions,
        budgets=_budgets(args.budgets, args.efforts),
        queries=args.queries,
        concurrency=concurrency,
        logprob_model=args.logprob_model,
    )
    options, sleep_options = _model_options(args)
    runner = Runner(
        args.model,
        out=args.out,
        sleep_model=args.sleep_model,
        model_options=options,
        sleep_model_options=sleep_options,
        logprob_options=ModelOptions(
            base_url=args.logprob_base_url or args.base_url,
            timeout=args.timeout,
            max_retries=args.retries,
        ),
        progress=not args.no_progress,
        sleep_config=_sleep_config(args),
    )
    return runner.run(spec, on_unit=lambda outcome: record(outcome, concurrency))


def _run(args: argparse.Namespace, argv: Sequence[str]) -> RunOutcome:
    locomo = args.dataset == "locomo"
    _, sleep_options = _model_options(args)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    # Options given now override the recorded ones, so --report-only later agrees.
    recorded = read_run_info(args.out)
    grading = LOCOMO_GRADING if locomo else GradingRule.BOTH.value
    info = RunInfo(
        grading=args.grading or (recorded.grading if recorded else grading),
        t=args.t if args.t is not None else recorded.t if recorded else 10.0,
        sessions=recorded.sessions if recorded else (),
    )

    def record(outcome: RunOutcome, concurrency: int) -> None:
        # Rewritten after every unit: a killed session still counts its time and units.
        session = Session(
            started=started,
            command=shlex.join(["python", "-m", "sleepagent.bench", *argv]),
            model=args.model,
            sleep_model=args.sleep_model or args.model,
            server=args.base_url or "default",
            concurrency=concurrency,
            max_retries=args.retries,
            timeout=args.timeout,
            max_tokens=args.max_tokens,
            sleep_max_tokens=sleep_options.max_tokens,
            sleep_steps=args.sleep_steps,
            judge_model=args.judge_model if locomo else None,
            context_window=args.context_window if locomo else None,
            wall_s=round(outcome.wall_s, 1),
            done=outcome.done,
            failed=outcome.failed,
        )
        info.with_session(session).write(args.out)

    run = _run_conversations if locomo else _run_examples
    outcome = run(args, record)
    concurrency = args.concurrency or default_concurrency(args.base_url)
    record(outcome, concurrency)
    print(
        f"{outcome.done} units done, {outcome.skipped} already done, {outcome.failed} failed "
        f"in {outcome.wall_s:.0f} s",
        file=sys.stderr,
    )
    return outcome


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m sleepagent.bench") -> int:
    """Run the benchmark; returns the process exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    failed = 0
    try:
        if args.report_only:
            if not (args.out / "results.jsonl").exists():
                raise ConfigurationError(f"{args.out} has no results.jsonl to report on")
        else:
            failed = _run(args, arguments).failed
        write_report(
            args.out,
            t=args.t,
            grading=GradingRule(args.grading) if args.grading else None,
        )
    except (ConfigurationError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {args.out / 'summary.md'}", file=sys.stderr)
    # A failed unit is retried by the next run in the same folder; say so by the status.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
