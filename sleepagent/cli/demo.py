"""The offline demo: a scripted conversation that shows sleep-time compute at work.

The models are scripted (no key, no network): their replies are written
below. Everything else is real: the LangGraph graph, the SQLite checkpointer
and store, the staged commit and the prompt rendering.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from langchain_core.messages import BaseMessage

from sleepagent.agent.facades import SleepTimeAgent
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError
from sleepagent.results import BlockDiff
from sleepagent.scheduling import EventKind, ManualScheduler, SleepEvent
from sleepagent.store.catalog import Catalog
from sleepagent.store.dburl import SqliteTarget, parse_db, redact_url
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import ScriptedChatModel
from sleepagent.usage import Usage

__all__ = ["run_demo"]

THREAD, USER = "demo-thread", "ada"
READER = "reader"
"""The user of part 2, whose memory holds what sleep-time compute learned from the context."""
IDLE_SECONDS = 30.0

TURNS_BEFORE_SLEEP = (
    "Hi! I'm Ada. I just moved to Lisbon and I'm vegetarian.",
    "I'm training for a half marathon on 15 March. I run four times a week, 32 km in total.",
)
QUESTION_AFTER_SLEEP = "What should I eat the evening before my long run?"
USER_FACTS = """\
- My name is Ada.
- I just moved to Lisbon.
- I'm vegetarian.
- I'm training for a half marathon on 15 March.
- I run four times a week, 32 km in total."""
"""What the sleep model lists when it reads the turns above for facts about the user."""

CONTEXT = (
    "A bakery bakes 240 rolls every morning. It sells 3/4 of them before noon and 2/3 of "
    "the rest in the afternoon. Leftover rolls are given to a shelter."
)
# Each question with the worked answer a model writes at test time, and the
# quantity of the learned context that the sleep-time answer reads instead.
CONTEXT_QUESTIONS = (
    (
        "How many rolls go to the shelter each day?",
        "Before noon 3/4 of 240 = 180 rolls are sold, so 240 - 180 = 60 are left. In the "
        "afternoon 2/3 of 60 = 40 are sold, so 60 - 40 = 20 are left. 20 rolls go to the shelter.",
        "Given to the shelter",
    ),
    (
        "How many rolls are sold in the afternoon?",
        "Before noon 3/4 of 240 = 180 are sold, leaving 240 - 180 = 60. In the afternoon "
        "2/3 of those 60 are sold: 60 x 2/3 = 40. So 40 rolls are sold in the afternoon.",
        "Sold in the afternoon",
    ),
    (
        "How many rolls are sold in a day?",
        "Before noon 3/4 of 240 = 180. That leaves 60, and 2/3 of 60 = 40 are sold in the "
        "afternoon. In total 180 + 40 = 220 rolls are sold each day.",
        "Total sold",
    ),
    (
        "What share of the rolls goes to the shelter?",
        "180 are sold before noon and 40 in the afternoon, 220 in all, so 240 - 220 = 20 are "
        "left. 20 out of 240 is 20/240 = 1/12 of the rolls.",
        "Shelter's share of the rolls",
    ),
)
# What the sleep model writes when it thinks the context through, ahead of any
# question: free text, no tools. The library reads its closing sections back
# (sleepagent.sleep.thinking): the FINAL STATE values become learned_context,
# and the working above them stays out of memory.
CONTEXT_WORKING = """\
Sentence 1: "A bakery bakes 240 rolls every morning."
  Baked: 240
Sentence 2: "It sells 3/4 of them before noon and 2/3 of the rest in the afternoon."
  Sold before noon: 3/4 x 240 = 180
  Left at noon: 240 - 180 = 60
  Sold in the afternoon: 2/3 x 60 = 40
  Left at closing: 60 - 40 = 20
Sentence 3: "Leftover rolls are given to a shelter."
  Given to the shelter: the 20 left at closing, 20/240 = 1/12 of the rolls"""
CONTEXT_CONCLUSIONS = """\
FINAL STATE
Rolls baked each morning: 240
Sold before noon: 180
Sold in the afternoon: 40
Total sold: 220
Given to the shelter: 20
Shelter's share of the rolls: 1/12

Q: How many rolls go to the shelter each day?
A: 240 - 180 - 40 = 20
Q: How many rolls are sold in the afternoon?
A: 2/3 x (240 - 180) = 40
Q: How many rolls are sold in a day?
A: 180 + 40 = 220
Q: What share of the rolls goes to the shelter?
A: 20/240 = 1/12"""


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


def _answer_from_learned_context(name: str) -> Callable[[Sequence[BaseMessage]], str]:
    """The answer the learned-context line of quantity ``name`` gives: its value."""

    def answer(prompt: Sequence[BaseMessage]) -> str:
        learned = _memory_value(prompt, "learned_context")
        found = re.search(rf"^(?:- )?{re.escape(name)}: (\S+)$", learned, re.M)
        return f"{found.group(1)}." if found else "I would need to work that out."

    return answer


def _chat_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        [
            "Welcome to Lisbon, Ada! Happy to help with anything, vegetarian food included.",
            "A half marathon in March, great goal. Four runs and 32 km a week is a solid base.",
            _answer_from_memory,
            # Test-time only: the context comes with each question; the model works it out.
            *(worked for _, worked, _ in CONTEXT_QUESTIONS),
            # From sleep-time memory: the answer is already in learned_context.
            *(_answer_from_learned_context(name) for _, _, name in CONTEXT_QUESTIONS),
        ]
    )


def _sleep_model(show_thinking: Callable[[str], None]) -> ScriptedChatModel:
    """The sleep-time model; ``show_thinking`` gets its reasoning when it is asked for it."""

    def think(prompt: Sequence[BaseMessage]) -> str:
        show_thinking(CONTEXT_WORKING)
        return f"{CONTEXT_WORKING}\n\n{CONTEXT_CONCLUSIONS}"

    return ScriptedChatModel(
        [
            # Sleep run 1, after the first two turns: the fact pass, a plain list of
            # what the user said about themselves; code checks each line and adds it.
            USER_FACTS,
            # Sleep run 2, on context given before any question: one reasoning call,
            # free text with no tools. Its conclusions are the learned context, so the
            # page needs no edit round.
            think,
        ]
    )


def run_demo(out: TextIO, *, db: str | None, command: str = "sleepagent") -> int:
    """Run the scripted demo, printing to ``out``. Returns the exit status.

    Args:
        out: Where to print.
        db: A database to keep (SQLite file or URL) for ``sleepagent memory`` to
            read afterwards; ``None`` uses a temporary SQLite file, deleted at the end.
        command: How the user runs ``sleepagent``, for the closing hints
            (see :func:`sleepagent.cli.invocation.invoked_as`).

    Raises:
        ConfigurationError: When ``db`` already holds conversations.
        StorageError: When ``db`` cannot be opened.

    """
    if db is None:
        with tempfile.TemporaryDirectory() as folder:
            temporary = str(Path(folder) / "sleepagent-demo.db")
            return _run(out, db=temporary, kept=False, command=command)
    if _holds_memory(db):
        raise ConfigurationError(
            f"{redact_url(db)} already holds conversations; the scripted demo needs a new "
            "database: pass another --db FILE"
        )
    return _run(out, db=db, kept=True, command=command)


def _holds_memory(db: str) -> bool:
    target = parse_db(db)
    if isinstance(target, SqliteTarget) and not target.path.exists():
        return False
    with open_persistence(db) as (_, store):
        return bool(Catalog(store).threads())


def _run(out: TextIO, *, db: str, kept: bool, command: str) -> int:
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

    timer_lines = [True]  # part 2 sets no alarm that matters: keep its output short
    # The closing quiet runs one sleep run per conversation: counted, not told one by one.
    quiet_runs: list[SleepEvent] | None = None

    def show_event(event: SleepEvent) -> None:
        if quiet_runs is not None:
            if event.kind is EventKind.FINISHED:
                quiet_runs.append(event)
            return
        if event.kind is EventKind.SCHEDULED and event.due_at is not None:
            if not timer_lines[0]:
                return
            due = event.due_at - start
            say(f"  {clock()} idle timer set: sleep-time compute due at t+{due:.0f}s")
        elif event.kind is EventKind.STARTED:
            say(f"  {clock()} [sleep-time compute] started ({event.reason})")
        elif event.kind is EventKind.FINISHED and event.usage is not None:
            outcome = event.outcome.value if event.outcome is not None else "done"
            calls = event.usage.calls
            say(
                f"  {clock()} [sleep-time compute] finished ({outcome}): {calls} model "
                f"call{'' if calls == 1 else 's'}, {event.usage.total_tokens} tokens"
            )
            show_diffs(event.diffs)

    say("sleepagent demo: the models are SCRIPTED (offline, no API key); their replies are")
    say("written in sleepagent/cli/demo.py, and their token counts are estimates (4 characters a")
    say("token). The graph, storage, staged commits, idle timer and prompts are the real")
    say("library; time is virtual, so nothing waits.")
    say(f"Database: {redact_url(db)}" + ("" if kept else " (temporary)"))
    say()

    def show_thinking(working: str) -> None:
        say("    it thinks first (free text, no tools), one sentence of the context at a time:")
        for line in working.splitlines():
            say(f"      {line}")
        say("    ...then a FINAL STATE section and likely questions with their answers. The")
        say("    library writes the final values into learned_context; no edit round is needed.")

    chat_model, sleep_model = _chat_model(), _sleep_model(show_thinking)
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
        say(
            f"  a manual run now reads {again.messages_processed} new messages: no model call "
            f"({again.outcome.value})"
        )
        say()
        new_thread = f"{THREAD}-2"
        say(f"(a new conversation, thread '{new_thread}': memory follows the user)")
        say(f"{clock()} user> {QUESTION_AFTER_SLEEP}")
        reply = agent.chat(QUESTION_AFTER_SLEEP, thread_id=new_thread, user_id=USER)
        say(f"{clock()} bot>  {reply.reply}")
        say()

        timer_lines[0] = False
        say("== Part 2: the same questions, test-time only and from sleep-time memory ==")
        say(f"context> {CONTEXT}")
        say()
        say("Test-time only: the context comes with each question, the model works it out.")
        baseline = []
        for index, (question, _, _) in enumerate(CONTEXT_QUESTIONS, start=1):
            answer = agent.chat(f"{CONTEXT}\n\n{question}", thread_id=f"test-time-{index}")
            baseline.append(answer.usage)
            say(f"  user> {question}")
            say(f"  bot>  {answer.reply}")
        say()
        say("Sleep-time: the context is given first; sleep-time compute works it out once.")
        learned = agent.add_context(CONTEXT, thread_id="bakery", user_id=READER)
        from_memory = []
        for index, (question, _, _) in enumerate(CONTEXT_QUESTIONS, start=1):
            # Each question in a new conversation, as above; memory follows the user.
            answer = agent.chat(question, thread_id=f"bakery-{index}", user_id=READER)
            from_memory.append(answer.usage)
            say(f"  user> {question}")
            say(f"  bot>  {answer.reply}")
        say()
        _say_tokens(say, baseline, from_memory, learned.usage)
        # Every turn above set its thread's idle alarm. In the quiet that follows they
        # cover what no run has read yet, so the kept database has no pending work.
        left = agent.blocks.pending_threads()
        # Each of them asked a question and said nothing about themselves.
        sleep_model.extend(["NOTHING NEW"] * len(left))
        quiet_runs = []
        scheduler.advance(2 * IDLE_SECONDS)
        tokens = sum(event.usage.total_tokens for event in quiet_runs if event.usage)
        still = sum(position.pending for position in agent.blocks.pending_threads())
        say()
        unread = sum(position.pending for position in left)
        say(f"{clock()} (everyone goes quiet) the idle timer covers the {unread} messages no")
        say(
            f"  sleep run has read yet, in {len(left)} conversations: {len(quiet_runs)} runs, "
            f"{tokens} tokens; {still or 'no'} messages pending now"
        )
    chat_model.assert_exhausted()
    sleep_model.assert_exhausted()
    say()
    say("Next:")
    db = redact_url(db)  # a hint never shows a password; the user knows it
    hints = [
        ("chat --offline", "the terminal chat, on scripted models"),
        ("chat --model openai:gpt-4o-mini", "with OPENAI_API_KEY set, or --base-url URL"),
    ]
    if kept:
        hints += [
            (f"memory list --db {db}", "scopes, threads and runs"),
            (f"memory show --db {db} --user {USER}", f"what {USER}'s memory holds"),
            (f"memory history human --db {db} --user {USER}", "every version, with diffs"),
        ]
    else:
        hints += [
            ("demo --db demo.db", "keep the database, then:"),
            ("memory list --db demo.db", "what sleep-time compute wrote"),
        ]
    width = max(len(f"{command} {hint}") for hint, _ in hints)
    for hint, what in hints:
        say(f"  {f'{command} {hint}':<{width}}  {what}")
    return 0


def _say_tokens(
    say: Callable[[str], None], baseline: list[Usage], from_memory: list[Usage], sleep: Usage
) -> None:
    """Test-time tokens per question both ways, and what the sleep run cost once."""
    say("== Tokens ==")
    say(f"  {'':<46}{'test-time only':>22}{'from sleep-time memory':>26}")
    for (question, _, _), before, after in zip(
        CONTEXT_QUESTIONS, baseline, from_memory, strict=True
    ):
        say(f"  {question:<46}{_tokens(before):>22}{_tokens(after):>26}")
    n = len(CONTEXT_QUESTIONS)
    out_before = sum(usage.output_tokens for usage in baseline) / n
    out_after = sum(usage.output_tokens for usage in from_memory) / n
    total_before = sum(usage.total_tokens for usage in baseline)
    total_after = sum(usage.total_tokens for usage in from_memory) + sleep.total_tokens
    say(
        f"  sleep-time compute, once, before any question (off the user's path): "
        f"{sleep.total_tokens} tokens ({sleep.input_tokens} in, {sleep.output_tokens} out)"
    )
    say(
        f"  output tokens per question, the work the user waits for: {out_before:.0f} "
        f"test-time only, {out_after:.0f} from memory ({out_before / max(out_after, 1):.0f}x fewer)"
    )
    say(
        f"  all tokens for these {n} questions: {total_before} test-time only, {total_after} "
        "with sleep-time compute (its run included)"
    )
    saved = (total_before - total_after + sleep.total_tokens) / n
    if saved > 0:
        say(
            f"  each question from memory saves {saved:.0f} tokens, so the one sleep run pays "
            f"for itself from question {math.ceil(sleep.total_tokens / saved)} on, counting "
            "every token alike (the paper weighs test-time tokens more: the user waits for them)"
        )


def _tokens(usage: Usage) -> str:
    return f"{usage.input_tokens} in + {usage.output_tokens} out"
