"""The offline demo: a scripted conversation that shows sleep-time compute at work.

The models are scripted (no key, no network): their replies are written
below. Everything else is real: the LangGraph graph, the SQLite checkpointer
and store, the staged commit and the prompt rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TextIO

from langchain_core.messages import BaseMessage

from sleepagent.agent import SleepTimeAgent
from sleepagent.config import SleepConfig
from sleepagent.persistence import DbPath
from sleepagent.results import BlockDiff
from sleepagent.scheduling import EventKind, ManualScheduler, SleepEvent
from sleepagent.testing import ScriptedChatModel, ai_tool_calls, tool_call

__all__ = ["run_demo"]

THREAD, USER = "demo-thread", "ada"
IDLE_SECONDS = 30.0

TURNS_BEFORE_SLEEP = (
    "Hi! I'm Ada. I just moved to Lisbon and I'm vegetarian.",
    "I'm training for a half marathon on 15 March. I run four times a week, 32 km in total.",
)
QUESTION_AFTER_SLEEP = "What should I eat the evening before my long run?"

CONTEXT = (
    "A bakery bakes 240 rolls every morning. It sells 3/4 of them before noon and 2/3 of "
    "the rest in the afternoon. Leftover rolls are given to a shelter."
)
CONTEXT_QUESTIONS = (
    "How many rolls go to the shelter each day?",
    "How many rolls are sold in the afternoon?",
)


def _memory_value(prompt: Sequence[BaseMessage], label: str) -> str:
    """A block's value as rendered in the system prompt (empty if absent)."""
    system = str(prompt[0].content)
    found = re.search(rf'<block label="{label}"[^>]*>.*?<value>\n(.*?)\n</value>', system, re.S)
    return found.group(1).strip() if found else ""


def _answer_from_memory(prompt: Sequence[BaseMessage]) -> str:
    human = _memory_value(prompt, "human")
    if "vegetarian" not in human.lower():
        return "A carbohydrate-rich dinner you know well, not too late, and plenty of water."
    return (
        "Since you're vegetarian and running your long run tomorrow: a big bowl of pasta with "
        "lentil bolognese, some bread, and water. Keep fibre and fat moderate, eat by 19:00. "
        "(Recalled from memory, not from this conversation's recent messages.)"
    )


def _answer_from_learned_context(number_label: str) -> Callable[[Sequence[BaseMessage]], str]:
    def answer(prompt: Sequence[BaseMessage]) -> str:
        learned = _memory_value(prompt, "learned_context")
        found = re.search(rf"{number_label}: (\d+)", learned)
        return f"{found.group(1)}." if found else "I would need to work that out."

    return answer


def _chat_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        [
            "Welcome to Lisbon, Ada! Happy to help with anything, vegetarian food included.",
            "A half marathon in March, great goal. Four runs and 32 km a week is a solid base.",
            _answer_from_memory,
            _answer_from_learned_context("shelter"),
            _answer_from_learned_context("sold in the afternoon"),
        ]
    )


def _sleep_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        [
            # Sleep run 1, after the first two turns.
            ai_tool_calls(
                tool_call(
                    "memory_rethink",
                    label="human",
                    new_value=(
                        "Name: Ada. Lives in Lisbon (recently moved). Vegetarian.\n"
                        "Training for a half marathon on 15 March; runs 4x/week, 32 km/week."
                    ),
                ),
                tool_call(
                    "memory_insert",
                    label="learned_context",
                    text=(
                        "Average run: 32 km / 4 = 8 km; the long run is likely 12-16 km.\n"
                        "Pre-run dinner for a vegetarian: pasta with lentils, rice with beans; "
                        "moderate fibre and fat, eat 12-14 h before the run.\n"
                        "Anticipated questions: pre-run meals; weekly plan to March; "
                        "vegetarian protein sources; running routes in Lisbon."
                    ),
                    line=-1,
                ),
            ),
            ai_tool_calls(tool_call("memory_finish")),
            # Sleep run 2, on context given before any question.
            ai_tool_calls(
                tool_call(
                    "memory_rethink",
                    label="learned_context",
                    new_value=(
                        "Bakery: 240 rolls a day.\n"
                        "sold before noon: 180 (3/4 of 240)\n"
                        "left at noon: 60\n"
                        "sold in the afternoon: 40 (2/3 of 60)\n"
                        "shelter: 20 (60 - 40)\n"
                        "Anticipated questions: rolls to the shelter, afternoon sales, "
                        "total sold (220), share given away (1/12)."
                    ),
                ),
                tool_call("memory_finish"),
            ),
        ]
    )


def run_demo(out: TextIO, *, db: DbPath) -> int:
    """Run the scripted demo, printing to ``out``. Returns the exit status."""

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def show_diffs(diffs: Sequence[BlockDiff]) -> None:
        for diff in diffs:
            say(f"  block '{diff.label}' v{diff.version_before} -> v{diff.version_after}:")
            for line in diff.unified().splitlines():
                say(f"    {line}")
        if not diffs:
            say("  no block changed")

    scheduler = ManualScheduler()
    start = scheduler.now()

    def clock() -> str:
        return f"[t+{scheduler.now() - start:4.0f}s]"

    def show_event(event: SleepEvent) -> None:
        if event.kind is EventKind.SCHEDULED and event.due_at is not None:
            due = event.due_at - start
            say(f"  {clock()} idle timer set: sleep-time compute due at t+{due:.0f}s")
        elif event.kind is EventKind.STARTED:
            say(f"  {clock()} [sleep-time compute] started ({event.reason})")
        elif event.kind is EventKind.FINISHED and event.usage is not None:
            say(
                f"  {clock()} [sleep-time compute] finished: {event.usage.calls} model calls, "
                f"{event.usage.total_tokens} tokens"
            )
            show_diffs(event.diffs)

    say("sleepagent demo: the models are SCRIPTED (offline, no API key); their replies are")
    say("written in sleepagent/demo.py. The graph, SQLite persistence, staged commits, idle")
    say("timer and prompt rendering are the real library; time is virtual, so nothing waits.")
    say(f"Persistence: {db if db is not None else 'in memory'}")
    say()
    chat_model, sleep_model = _chat_model(), _sleep_model()
    config = SleepConfig(idle_seconds=IDLE_SECONDS)
    with SleepTimeAgent(
        chat_model, sleep_model=sleep_model, db=db, config=config, scheduler=scheduler
    ) as agent:
        agent.subscribe(show_event)
        say(f"== Part 1: two turns, {IDLE_SECONDS:.0f} s of quiet, and a better next turn ==")
        for text in TURNS_BEFORE_SLEEP:
            say(f"{clock()} user> {text}")
            reply = agent.chat(text, thread_id=THREAD, user_id=USER)
            say(f"{clock()} bot>  {reply.reply}")
            scheduler.advance(10)
        say(f"{clock()} (the user goes quiet)")
        scheduler.advance(60)
        again = agent.sleep(thread_id=THREAD, user_id=USER)
        say(f"  a manual run now reads {again.messages_processed} new messages: no model call")
        say()
        new_thread = f"{THREAD}-2"
        say(f"(a new conversation, thread '{new_thread}': memory follows the user)")
        say(f"{clock()} user> {QUESTION_AFTER_SLEEP}")
        reply = agent.chat(QUESTION_AFTER_SLEEP, thread_id=new_thread, user_id=USER)
        say(f"{clock()} bot>  {reply.reply}")
        say()
        say("== Part 2: context first, questions later (the paper's setting) ==")
        context_thread = "bakery"
        say(f"context> {CONTEXT}")
        agent.add_context(CONTEXT, thread_id=context_thread)
        for question in CONTEXT_QUESTIONS:
            say(f"user> {question}")
            answer = agent.chat(question, thread_id=context_thread)
            say(f"bot>  {answer.reply}  ({answer.usage.output_tokens} output tokens)")
        say()

        say("== Token usage per phase ==")
        for thread, user in ((THREAD, USER), (new_thread, USER), (context_thread, None)):
            usage = agent.usage(thread_id=thread, user_id=user)
            say(
                f"  {thread}: chat {usage['chat'].total_tokens} tokens in {usage['chat'].calls} "
                f"calls; sleep {usage['sleep'].total_tokens} tokens in {usage['sleep'].calls} calls"
            )
    chat_model.assert_exhausted()
    sleep_model.assert_exhausted()
    say()
    say("To run with a real model, set OPENAI_API_KEY (or --base-url for a local server) and:")
    say("  sleepagent chat --model openai:gpt-4o-mini")
    say('or in Python: SleepTimeAgent("openai:gpt-4o-mini") (see README.md).')
    if db is not None:
        say(f"Inspect the memory: sleepagent memory show --db {db} --user {USER}")
    return 0
