"""Real-model evaluation: fixed multi-session scenarios against any OpenAI-compatible server.

Each scenario is played through the public API (``SleepTimeAgent.chat``,
``add_context``, memory reads) with the idle timer on virtual time, so the quiet
periods between sessions cost nothing but the sleep runs they trigger are real
model calls. Per sleep-time edit mode it prints: facts captured in memory out of
those expected, corrections applied, later answers that used memory, tokens per
phase, sleep runs by outcome, and wall time.

    python benchmarks/real_model_eval.py --base-url http://127.0.0.1:8088/v1 \
        --model openai:qwen2.5-coder-1.5b --modes auto,text,tools --out runs/real.json

The checks are plain substring tests on memory and answers: they count what the
model wrote, not whether it reasoned well. A small model fails some of them; the
table says how many.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleepagent import SleepConfig, SleepTimeAgent
from sleepagent.config import SleepEditMode
from sleepagent.models import ModelOptions, sleep_reply_cap
from sleepagent.scheduling.events import EventKind, SleepEvent
from sleepagent.testing import ManualScheduler
from sleepagent.usage import Usage

QUIET_S = 120.0
"""Virtual quiet time between sessions: past the idle delay, so a sleep run fires."""


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """A user message on a thread (a new thread is a new session)."""

    thread: str
    text: str


@dataclass(frozen=True)
class Quiet:
    """The user goes away: the idle timer fires the sleep runs that are due."""


@dataclass(frozen=True)
class Context:
    """Context given before any question (``add_context``)."""

    thread: str
    text: str


@dataclass(frozen=True)
class Ask:
    """A later question whose answer should use memory: any of ``expect`` in the reply."""

    thread: str
    text: str
    expect: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """Steps, then what memory should hold afterwards.

    Attributes:
        name: Short name for the table.
        steps: What happens, in order.
        facts: Each fact is a tuple of alternatives; one found in memory counts it.
        corrections: (new, old) pairs: the new value is in memory and the old one is not.
        learned_context: Whether ``learned_context`` must end non-empty.

    """

    name: str
    steps: tuple[Say | Quiet | Context | Ask, ...]
    facts: tuple[tuple[str, ...], ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    learned_context: bool = False


SCENARIOS = (
    Scenario(
        "facts",
        (
            Say("s1", "Hi, I'm Ada, I'm vegetarian and live in Lisbon"),
            Quiet(),
            Say("s2", "I work as a nurse. My sister Maria visits next week."),
            Quiet(),
        ),
        facts=(("ada",), ("vegetarian",), ("lisbon",), ("nurse",), ("maria",)),
    ),
    Scenario(
        "preference",
        (
            Say("p1", "My favourite colour is green, I love it."),
            Quiet(),
            Ask("p2", "Suggest a colour for my new bike, in one word.", ("green",)),
        ),
        facts=(("green",),),
    ),
    Scenario(
        "correction",
        (
            Say("c1", "I live in Lisbon and drive a red car."),
            Quiet(),
            Say("c2", "Update: I moved to Porto last month, I no longer live in Lisbon."),
            Quiet(),
            Ask("c3", "Which city do I live in? One word.", ("porto",)),
        ),
        facts=(("porto",),),
        corrections=(("porto", "lisbon"),),
    ),
    Scenario(
        "context",
        (
            Context(
                "w1",
                "A bakery sells muffins for $3 each and cookies for $2 each. On Monday it "
                "sold 40 muffins and 25 cookies.",
            ),
            Ask("w1", "How much money did the bakery make on Monday?", ("170",)),
        ),
        facts=(("muffin",),),
        learned_context=True,
    ),
)


# --- running ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one mode's run of all scenarios produced."""

    mode: str
    facts: int = 0
    facts_expected: int = 0
    corrections: int = 0
    corrections_expected: int = 0
    answers: int = 0
    answers_expected: int = 0
    learned_context: int = 0
    learned_context_expected: int = 0
    chat: Usage = field(default_factory=Usage)
    sleep: Usage = field(default_factory=Usage)
    outcomes: Counter[str] = field(default_factory=Counter)
    sleep_seconds: float = 0.0
    wall_seconds: float = 0.0
    details: list[dict[str, Any]] = field(default_factory=list)


def run_mode(
    mode: SleepEditMode,
    model: str,
    options: ModelOptions,
    log: Callable[[str], None],
    scenarios: Sequence[Scenario] = SCENARIOS,
    sleep_options: ModelOptions | None = None,
) -> Tally:
    """Play ``scenarios``, each with a fresh agent, in ``mode``."""
    tally = Tally(mode=mode.value)
    started = time.perf_counter()
    for scenario in scenarios:
        log(f"[{mode.value}] {scenario.name}")
        _play(scenario, mode, model, (options, sleep_options or options), tally, log)
        tally.wall_seconds = time.perf_counter() - started
        # The table so far: a slow model's long run still leaves figures behind.
        log(table([tally]))
        log(json.dumps(tally.details[-1], default=str))
    tally.wall_seconds = time.perf_counter() - started
    return tally


def _play(
    scenario: Scenario,
    mode: SleepEditMode,
    model: str,
    options: tuple[ModelOptions, ModelOptions],
    tally: Tally,
    log: Callable[[str], None],
) -> None:
    clock = ManualScheduler()
    # No retries: a failed run is counted once, not paid for four times.
    config = SleepConfig(sleep_edit_mode=mode, idle_seconds=30.0, sleep_retries=0)
    user = "ada"
    threads: list[str] = []
    answers: list[dict[str, Any]] = []

    def on_event(event: SleepEvent) -> None:
        if event.kind is EventKind.FINISHED:
            outcome = getattr(event, "outcome", None)
            tally.outcomes[getattr(outcome, "value", str(outcome))] += 1
            tally.sleep_seconds += event.duration or 0.0
            log(f"  sleep run: {getattr(outcome, 'value', outcome)} in {event.duration:.1f}s")
        elif event.kind is EventKind.FAILED:
            tally.outcomes["error"] += 1
            log(f"  sleep run failed: {event.error}")

    chat_options, sleep_options = options
    with SleepTimeAgent(
        model,
        model_options=chat_options,
        sleep_model_options=sleep_options,
        config=config,
        db=None,
        scheduler=clock,
    ) as agent:
        agent.subscribe(on_event)
        for step in scenario.steps:
            if isinstance(step, Say | Ask):
                threads.append(step.thread)
                reply = agent.chat(step.text, thread_id=step.thread, user_id=user).reply
                log(f"  {step.thread} user: {step.text}\n  {step.thread} bot: {reply[:200]}")
                if isinstance(step, Ask):
                    used = any(word in reply.lower() for word in step.expect)
                    answers.append({"question": step.text, "reply": reply, "used_memory": used})
                    tally.answers_expected += 1
                    tally.answers += used
            elif isinstance(step, Context):
                threads.append(step.thread)
                result = agent.add_context(step.text, thread_id=step.thread, user_id=user)
                on_event_outcome = getattr(result, "outcome", None)
                log(f"  add_context: {getattr(on_event_outcome, 'value', on_event_outcome)}")
            else:
                clock.advance(QUIET_S)
        memory = agent.memory(thread_id=threads[0], user_id=user)
        for thread in dict.fromkeys(threads):
            usage = agent.usage(thread_id=thread, user_id=user)
            tally.chat += usage.get("chat", Usage())
            tally.sleep += usage.get("sleep", Usage())
    _grade(scenario, memory, tally, answers)


def _grade(
    scenario: Scenario, memory: dict[str, Any], tally: Tally, answers: list[dict[str, Any]]
) -> None:
    text = "\n".join(block.value for block in memory.values() if block.label != "persona").lower()
    found = [any(word in text for word in fact) for fact in scenario.facts]
    applied = [new in text and old not in text for new, old in scenario.corrections]
    learned = (
        bool(memory["learned_context"].value.strip()) if "learned_context" in memory else False
    )
    tally.facts += sum(found)
    tally.facts_expected += len(found)
    tally.corrections += sum(applied)
    tally.corrections_expected += len(applied)
    if scenario.learned_context:
        tally.learned_context_expected += 1
        tally.learned_context += learned
    tally.details.append(
        {
            "scenario": scenario.name,
            "memory": {label: block.value for label, block in memory.items()},
            "facts_found": found,
            "corrections_applied": applied,
            "answers": answers,
        }
    )


# --- report ------------------------------------------------------------------------------------


def table(tallies: Sequence[Tally]) -> str:
    """The results as a Markdown table, one row per mode."""
    head = (
        "| mode | facts in memory | corrections | answers using memory | learned_context "
        "| chat tokens (in/out) | sleep tokens (in/out) | sleep runs by outcome | sleep time "
        "| wall time |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for t in tallies:
        outcomes = ", ".join(f"{name} {count}" for name, count in sorted(t.outcomes.items()))
        rows.append(
            f"| {t.mode} | {t.facts}/{t.facts_expected} | {t.corrections}/{t.corrections_expected} "
            f"| {t.answers}/{t.answers_expected} "
            f"| {t.learned_context}/{t.learned_context_expected} "
            f"| {t.chat.input_tokens}/{t.chat.output_tokens} "
            f"| {t.sleep.input_tokens}/{t.sleep.output_tokens} | {outcomes or '-'} "
            f"| {t.sleep_seconds:.0f} s | {t.wall_seconds:.0f} s |"
        )
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url",
        default=os.environ.get("SLEEPAGENT_TEST_REAL_MODEL_URL", "http://127.0.0.1:8088/v1"),
        help="OpenAI-compatible server (default: $SLEEPAGENT_TEST_REAL_MODEL_URL or :8088)",
    )
    parser.add_argument("--model", default="openai:qwen2.5-coder-1.5b", help="model spec")
    parser.add_argument(
        "--modes",
        default="auto,text,tools",
        help="comma-separated sleep edit modes (default: auto,text,tools)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(s.name for s in SCENARIOS),
        help="comma-separated scenario names (default: all: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, help="seconds per request (default: sized)")
    parser.add_argument(
        "--max-tokens", type=int, default=300, help="tokens per chat reply (bounds a runaway)"
    )
    parser.add_argument(
        "--sleep-max-tokens",
        type=int,
        help="tokens per sleep-time reply (default: the library's, 2048 on a local server)",
    )
    parser.add_argument("--out", type=Path, help="write the figures and memory as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    options = ModelOptions(base_url=args.base_url, max_tokens=args.max_tokens, temperature=0.0)
    if args.timeout:
        options = dataclasses.replace(options, timeout=args.timeout)
    sleep_options = sleep_reply_cap(
        args.model, dataclasses.replace(options, max_tokens=args.sleep_max_tokens)
    )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    chosen = {name.strip() for name in args.scenarios.split(",")}
    scenarios = [scenario for scenario in SCENARIOS if scenario.name in chosen]
    tallies = []
    for name in args.modes.split(","):
        mode = SleepEditMode(name.strip())
        tally = run_mode(mode, args.model, options, log, scenarios, sleep_options)
        tallies.append(tally)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps([_as_json(t) for t in tallies], indent=2, default=str) + "\n"
            )
    print(table(tallies))
    return 0


def _as_json(tally: Tally) -> dict[str, Any]:
    data = {key: value for key, value in vars(tally).items() if key not in ("chat", "sleep")}
    data["chat"] = tally.chat.to_dict()
    data["sleep"] = tally.sleep.to_dict()
    data["outcomes"] = dict(tally.outcomes)
    return data


if __name__ == "__main__":
    raise SystemExit(main())
