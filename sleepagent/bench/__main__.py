"""``python -m sleepagent.bench``: run the paper's experiments and write the report.

Example::

    python -m sleepagent.bench --dataset generated --n 20 --model openai:gpt-4o-mini --out runs/x
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sleepagent.bench.datasets import DATASETS, DatasetError, load_examples
from sleepagent.bench.generator import Level
from sleepagent.bench.report import write_report
from sleepagent.bench.runner import DEFAULT_CONDITIONS, Budget, Runner, RunSpec, parse_conditions
from sleepagent.errors import ConfigurationError
from sleepagent.models import ModelOptions

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "python -m sleepagent.bench") -> argparse.ArgumentParser:
    """The command-line options; ``prog`` is the command shown in the help."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the sleep-time compute experiments (Lin et al., 2025) and write "
        "results.jsonl, summary.md and plots to a run folder. Re-running with the same "
        "folder skips finished work.",
    )
    parser.add_argument(
        "--dataset", choices=DATASETS, default="generated", help="question set (default generated)"
    )
    parser.add_argument("--data", type=Path, help="local JSONL file for gsm-symbolic or aime")
    parser.add_argument("--n", type=int, default=20, help="contexts to use (default 20)")
    parser.add_argument(
        "--level",
        choices=[lv.value for lv in Level],
        default="base",
        help="difficulty of the generated dataset (default base)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated dataset")
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
        "context_only (default: all, with k = 2 and 5)",
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
    parser.add_argument("--concurrency", type=int, default=4, help="units run at once (default 4)")
    parser.add_argument("--retries", type=int, default=5, help="retries after a rate limit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--t", type=float, default=10.0, help="test-time / sleep-time token price")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _budgets(verbosity: str, efforts: str | None) -> tuple[Budget, ...]:
    levels = [int(v) for v in verbosity.split(",") if v.strip()]
    chosen = [e.strip() for e in efforts.split(",")] if efforts else [None]
    return tuple(Budget(level, effort) for level in levels for effort in chosen)


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m sleepagent.bench") -> int:
    """Run the benchmark; returns the process exit status."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    failed = 0
    try:
        if not args.report_only:
            examples = load_examples(
                args.dataset, n=args.n, path=args.data, seed=args.seed, level=Level(args.level)
            )
            spec = RunSpec(
                examples=examples,
                conditions=parse_conditions(args.conditions),
                budgets=_budgets(args.budgets, args.efforts),
                queries=args.queries,
                concurrency=args.concurrency,
                retries=args.retries,
                logprob_model=args.logprob_model,
            )
            options = ModelOptions(base_url=args.base_url, timeout=args.timeout)
            runner = Runner(
                args.model,
                out=args.out,
                sleep_model=args.sleep_model,
                model_options=options,
                logprob_options=ModelOptions(
                    base_url=args.logprob_base_url or args.base_url, timeout=args.timeout
                ),
                progress=not args.no_progress,
            )
            outcome = runner.run(spec)
            failed = outcome.failed
            print(
                f"{outcome.done} units done, {outcome.skipped} already done, "
                f"{outcome.failed} failed",
                file=sys.stderr,
            )
        write_report(args.out, t=args.t)
    except (ConfigurationError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {args.out / 'summary.md'}", file=sys.stderr)
    # A failed unit is retried by the next run in the same folder; say so by the status.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
