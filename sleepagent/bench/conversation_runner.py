"""LoCoMo end to end: ingest each conversation session by session, then answer from memory.

Three kinds of unit, each one line of ``results.jsonl`` when finished (run by the
shared loop of :mod:`sleepagent.bench.units`, so a run resumes and retries the same way
as the paper's benchmark):

- an **ingest** unit logs one session of one conversation with
  :meth:`~sleepagent.SleepTimeAgent.import_messages` (the session's date as its date,
  the speakers named) and runs sleep-time compute over it at once, as the quiet
  between two sessions would. It records the memory blocks after the run and the
  sleep-time tokens. The next session's unit starts a fresh agent whose blocks hold
  that memory, so a killed run redoes at most the sessions in flight.
- a **qa** unit answers one question under one :class:`System`, through the chat
  path of a fresh agent on the same model, and records the reply, LoCoMo's F1 and the
  tokens of the answer (prompt and completion).
- a **judge** unit (with a judge model) grades one answer as CORRECT or WRONG.

The systems differ only in what the chat model is given besides the question: nothing
(``no_memory``), the end of the conversation (``recent_turns``, as many turns as fit in
the characters the memory blocks hold, unless a number is given), the whole
conversation when it fits the model's window (``full_context``), the memory blocks
sleep-time compute wrote (``sleep_memory``), the earlier messages recall finds for the
question (``recall``: the whole conversation imported with its dates into the agent's
store, searched by full text; no memory blocks), or both (``sleep_memory_recall``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from sleepagent.agent.facades import SleepTimeAgent
from sleepagent.bench import prompts
from sleepagent.bench.conversations import Category, Conversation, Question, Session, Turn
from sleepagent.bench.grading import locomo_abstained, locomo_score, token_f1
from sleepagent.bench.units import Record, RunOutcome, Unit, UnitRunner, with_effort
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError, ModelCallError
from sleepagent.graph.context import iso
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.imported import ImportedMessage
from sleepagent.memory.recall import ARCHIVE_THREAD, archive_rows
from sleepagent.memory.transcript import message_text
from sleepagent.models import ModelLike, ModelOptions
from sleepagent.scope import Scope
from sleepagent.store.recallindex import recall_index_for
from sleepagent.usage import Usage

__all__ = [
    "CHARS_PER_TOKEN",
    "PROMPT_RESERVE_TOKENS",
    "ConversationRunner",
    "ConversationSpec",
    "System",
    "estimate_tokens",
    "ingest_key",
    "judge_key",
    "matched_turns",
    "parse_systems",
    "qa_key",
    "render_turns",
]

CHARS_PER_TOKEN = 3.5
"""Characters per token when deciding whether a conversation fits the model's window:
English text runs about 4 per token with GPT tokenizers; 3.5 leaves a margin."""

PROMPT_RESERVE_TOKENS = 1_024
"""Tokens kept free beside the conversation: the system prompt and the reply."""


class System(Enum):
    """What the chat model is given besides the question."""

    NO_MEMORY = "no_memory"
    """Nothing: the floor."""
    RECENT_TURNS = "recent_turns"
    """The conversation's last turns, with their session dates (a recency window)."""
    FULL_CONTEXT = "full_context"
    """The whole conversation, when it fits the model's window."""
    SLEEP_MEMORY = "sleep_memory"
    """The memory blocks sleep-time compute wrote, session after session."""
    RECALL = "recall"
    """Recall alone: the conversation's messages that best match the question, found by
    full-text search over the whole conversation (``SleepConfig.recall_messages``)."""
    SLEEP_MEMORY_RECALL = "sleep_memory_recall"
    """The memory blocks of ``sleep_memory`` and the messages of ``recall``."""


_WITH_BLOCKS = (System.SLEEP_MEMORY, System.SLEEP_MEMORY_RECALL)
"""The systems shown the memory blocks sleep-time compute wrote."""
_WITH_RECALL = (System.RECALL, System.SLEEP_MEMORY_RECALL)
"""The systems that recall earlier messages."""


def parse_systems(text: str) -> tuple[System, ...]:
    """Systems from a comma list of their names.

    Raises:
        ConfigurationError: For a name that is not a system.

    """
    found = []
    for name in (part.strip() for part in text.split(",")):
        try:
            found.append(System(name))
        except ValueError:
            names = ", ".join(system.value for system in System)
            raise ConfigurationError(f"unknown system {name!r}: use {names}") from None
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, kw_only=True)
class ConversationSpec:
    """What to run on LoCoMo.

    Attributes:
        conversations: The conversations to ingest (those the questions are about).
        questions: The questions to answer, each under every system.
        systems: The systems to compare.
        recent_turns: Turns in the recency window; ``None`` matches the window to
            the characters of each conversation's final memory blocks.
        context_window: The chat model's window, in tokens; a conversation that
            does not fit (estimated) is not answered by ``full_context``.
        recall_messages: Messages recalled per question (``recall`` systems).
        recall_chars: Most characters of recalled text per question.
        concurrency: Units in flight at once.

    """

    conversations: Sequence[Conversation]
    questions: Sequence[Question]
    systems: Sequence[System] = tuple(System)
    recent_turns: int | None = None
    context_window: int = 128_000
    recall_messages: int = 10
    recall_chars: int = 4_000
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.context_window < 1:
            raise ConfigurationError("concurrency and context_window must be >= 1")
        if self.recall_messages < 1 or self.recall_chars < 1:
            raise ConfigurationError("recall_messages and recall_chars must be >= 1")
        if self.recent_turns is not None and self.recent_turns < 1:
            raise ConfigurationError(f"recent_turns must be >= 1, got {self.recent_turns}")
        known = {conversation.id for conversation in self.conversations}
        missing = sorted({q.conversation for q in self.questions} - known)
        if missing:
            raise ConfigurationError(f"questions about conversations not given: {missing}")


def ingest_key(conversation: str, session: int) -> str:
    """Key of the ingest unit of one session."""
    return f"ingest|{conversation}|s{session}"


def qa_key(question: str, system: System) -> str:
    """Key of the answer to one question under one system."""
    return f"qa|{question}|{system.value}"


def judge_key(question: str, system: System) -> str:
    """Key of the judgement of one answer."""
    return f"judge|{question}|{system.value}"


# --- what a prompt shows (pure) ------------------------------------------------------------


def _line(turn: Turn) -> str:
    return f"{turn.speaker}: {turn.said}"


def render_turns(sessions: Sequence[Session], last: int | None = None) -> str:
    """The conversation as a prompt shows it, session by session under their dates.

    Args:
        sessions: The sessions, in order.
        last: Show only the last ``last`` turns (a recency window); ``None`` shows all.

    """
    every = [(session, turn) for session in sessions for turn in session.turns]
    shown = every if last is None else every[max(0, len(every) - last) :]
    parts: list[str] = [prompts.LOCOMO_LEFT_OUT] if len(shown) < len(every) else []
    current: Session | None = None
    for session, turn in shown:
        if session is not current:
            if current is not None:
                parts.append("")
            header = prompts.LOCOMO_SESSION_HEADER
            parts.append(header.format(number=session.number, date_time=session.date_time))
            current = session
        parts.append(_line(turn))
    return "\n".join(parts)


def matched_turns(turns: Sequence[Turn], chars: int) -> int:
    """The most recent turns whose lines fit in ``chars`` characters (at least one).

    The same characters cost about the same prompt tokens, so a window of this
    many turns costs about what memory blocks of ``chars`` characters cost.
    """
    used = count = 0
    for turn in reversed(turns):
        size = len(_line(turn)) + 1
        if count and used + size > chars:
            break
        used, count = used + size, count + 1
    return count


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated from its length (:data:`CHARS_PER_TOKEN`)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _question_text(question: Question) -> str:
    hint = prompts.LOCOMO_TEMPORAL_HINT if question.category is Category.TEMPORAL else ""
    return question.text + hint


def _seeded(blocks: Sequence[MemoryBlock], memory: Mapping[str, str]) -> tuple[MemoryBlock, ...]:
    """``blocks`` holding the values of ``memory`` (the memory a run recorded)."""
    return tuple(
        dataclasses.replace(
            block,
            value=memory[block.label],
            limit=max(block.limit, len(memory[block.label])),
        )
        if block.label in memory
        else block
        for block in blocks
    )


def _memory_chars(memory: Mapping[str, str]) -> int:
    return sum(len(value) for value in memory.values())


class ConversationRunner(UnitRunner):
    """Runs a :class:`ConversationSpec` into a run folder, resumably.

    Args:
        model: The chat model that answers for every system, or a spec.
        out: The run folder.
        sleep_model: The sleep-time model; defaults to ``model``.
        model_options: Options for a spec string ``model``.
        sleep_model_options: The same for the sleep-time model.
        judge_model: A model that grades each answer CORRECT or WRONG, or ``None``.
        judge_options: Options for a spec string ``judge_model``.
        progress: Show a progress bar per group of units on stderr.
        sleep_config: How the sleep-time agent runs; ``None`` is the library's default.

    """

    def __init__(
        self,
        model: ModelLike,
        *,
        out: Path,
        sleep_model: ModelLike | None = None,
        model_options: ModelOptions | None = None,
        sleep_model_options: ModelOptions | None = None,
        judge_model: ModelLike | None = None,
        judge_options: ModelOptions | None = None,
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
        self._judge_spec = judge_model
        self._judge_options = judge_options or model_options
        self._judge_name = (
            judge_model
            if isinstance(judge_model, str) or judge_model is None
            else type(judge_model).__name__
        )

    # --- units -------------------------------------------------------------------------

    def _ingest(
        self, conversation: Conversation, session: Session, finished: Mapping[str, Record]
    ) -> Record:
        earlier = [s for s in conversation.sessions if s.number < session.number]
        before = finished[ingest_key(conversation.id, earlier[-1].number)] if earlier else {}
        memory: dict[str, str] = dict(before.get("memory", {}))
        config = dataclasses.replace(
            self._sleep_config, blocks=_seeded(self._sleep_config.blocks, memory)
        )
        thread = f"{conversation.id}-s{session.number}"
        sleeper = self._sleep_model(None)
        usage, outcome = Usage(), "no_turns"
        started = time.perf_counter()
        with SleepTimeAgent(
            sleeper, sleep_model=sleeper, config=config, db=None, scheduler=None
        ) as agent:
            _seed_archive(agent, conversation.id, before.get("archive", ()))
            if session.turns:
                result = agent.import_messages(
                    [ImportedMessage(text=t.said, speaker=t.speaker) for t in session.turns],
                    thread_id=thread,
                    user_id=conversation.id,
                    session_date=session.date_time,
                    sleep=True,
                )
                assert result.sleep is not None
                usage, outcome = result.sleep.usage, result.sleep.outcome.value
            blocks = agent.memory(thread_id=thread, user_id=conversation.id)
            memory = {label: block.value for label, block in blocks.items()}
            archive = _archive_of(agent, conversation.id)
        return {
            "kind": "ingest",
            "key": ingest_key(conversation.id, session.number),
            "conversation": conversation.id,
            "session": session.number,
            "date_time": session.date_time,
            "turns": len(session.turns),
            "chars": sum(len(_line(turn)) + 1 for turn in session.turns),
            "memory": memory,
            "memory_chars": _memory_chars(memory),
            "archive": archive,
            "archive_chars": sum(len(line) for line in archive),
            "sleep_usage": usage.to_dict(),
            "outcome": outcome,
            "wall_s": round(time.perf_counter() - started, 4),
        }

    def _answer(
        self,
        conversation: Conversation,
        question: Question,
        system: System,
        spec: ConversationSpec,
        finished: Mapping[str, Record],
    ) -> Record:
        last = finished.get(ingest_key(conversation.id, conversation.sessions[-1].number), {})
        memory: dict[str, str] = dict(last.get("memory", {}))
        archive: list[str] = list(last.get("archive", ()))
        archive_facts = self._sleep_config.archive_facts
        record: Record = {
            "kind": "qa",
            "key": qa_key(question.id, system),
            "question_id": question.id,
            "conversation": conversation.id,
            "category": question.category.value,
            "system": system.value,
            "question": question.text,
            "gold": question.answer,
            "adversarial_answer": question.adversarial_answer,
        }
        blocks = self._sleep_config.blocks
        message = _question_text(question)
        shown = 0
        if system in _WITH_BLOCKS:
            blocks = _seeded(blocks, memory)
            shown = _memory_chars(memory)
        elif system in (System.RECENT_TURNS, System.FULL_CONTEXT):
            window = None
            if system is System.RECENT_TURNS:
                # The window matches what sleep_memory can show: its blocks, and
                # as many characters of archived facts as a question may recall.
                recallable = spec.recall_chars if archive_facts and archive else 0
                window = spec.recent_turns or matched_turns(
                    conversation.turns, _memory_chars(memory) + recallable
                )
                record["recent_turns"] = window
            text = render_turns(conversation.sessions, window)
            message = prompts.LOCOMO_CONTEXT_MESSAGE.format(
                speaker_a=conversation.speaker_a,
                speaker_b=conversation.speaker_b,
                conversation=text,
                question=message,
            )
            shown = len(text)
            needed = estimate_tokens(message) + PROMPT_RESERVE_TOKENS
            if system is System.FULL_CONTEXT and needed > spec.context_window:
                return {
                    **record,
                    "skipped": f"about {needed:,} tokens needed, over the model's window of "
                    f"{spec.context_window:,} (--context-window)",
                    "reply": None,
                    "f1": None,
                    "context_chars": shown,
                    "test_usage": Usage().to_dict(),
                    "wall_s": 0.0,
                }
        recalls = system in _WITH_RECALL
        archives = system in _WITH_BLOCKS and archive_facts > 0
        config = SleepConfig(
            blocks=blocks,
            system_prompt=prompts.LOCOMO_ANSWER_INSTRUCTIONS,
            recall_messages=spec.recall_messages if recalls else 0,
            recall_chars=spec.recall_chars,
            archive_facts=archive_facts if archives else 0,
        )
        thread = f"qa-{system.value}-{question.id}"
        user = conversation.id if recalls or archives else None
        with SleepTimeAgent(
            self._chat_model(None), config=config, db=None, scheduler=None
        ) as agent:
            if recalls:
                record["recall_messages"] = spec.recall_messages
                _import_for_recall(agent, conversation)
            if archives:
                record["archive_facts"] = archive_facts
                _seed_archive(agent, conversation.id, archive)
            started = time.perf_counter()
            reply = agent.chat(message, thread_id=thread, user_id=user)
            wall = time.perf_counter() - started
        adversarial = question.category is Category.ADVERSARIAL
        return {
            **record,
            "reply": reply.reply,
            "f1": locomo_score(reply.reply, question.answer, question.category.value),
            "abstained": locomo_abstained(reply.reply),
            "trap_f1": token_f1(reply.reply, question.adversarial_answer)
            if adversarial and question.adversarial_answer
            else None,
            "context_chars": shown,
            "test_usage": reply.usage.to_dict(),
            "wall_s": round(wall, 4),
        }

    def _judge(self, question: Question, system: System, finished: Mapping[str, Record]) -> Record:
        answer = finished[qa_key(question.id, system)]
        record: Record = {
            "kind": "judge",
            "key": judge_key(question.id, system),
            "question_id": question.id,
            "conversation": question.conversation,
            "category": question.category.value,
            "system": system.value,
            "judge_model": self._judge_name,
        }
        if answer.get("reply") is None:
            return {**record, "verdict": None, "skipped": answer.get("skipped")}
        gold = question.answer if question.answer is not None else prompts.LOCOMO_ABSTAIN_GOLD
        prompt = prompts.LOCOMO_JUDGE_PROMPT.format(
            question=question.text, gold=gold, answer=answer["reply"]
        )
        assert self._judge_spec is not None
        judge = with_effort(self._judge_spec, self._judge_options, None)
        try:
            reply = judge.invoke([HumanMessage(prompt)])
        except Exception as error:
            raise ModelCallError(phase="judge", cause=error) from error
        said = message_text(reply)
        return {
            **record,
            "verdict": _verdict(said),
            "judge_reply": said,
            "judge_usage": Usage.of_message(reply).to_dict(),
        }

    # --- the run -------------------------------------------------------------------------

    def _units(self, spec: ConversationSpec, finished: Mapping[str, Record]) -> Iterator[Unit]:
        """Sessions in order (session N of every conversation is one group), then answers.

        A session needs the one before it; ``sleep_memory`` and a matched
        ``recent_turns`` need the conversation's last session; a judgement its answer.
        """
        asked = {q.conversation for q in spec.questions}
        conversations = [c for c in spec.conversations if c.id in asked]
        by_id = {c.id: c for c in conversations}
        if any(system in _WITH_BLOCKS for system in spec.systems) or (
            System.RECENT_TURNS in spec.systems and spec.recent_turns is None
        ):
            depth = max((len(c.sessions) for c in conversations), default=0)
            for position in range(depth):
                for conversation in conversations:
                    if position >= len(conversation.sessions):
                        continue
                    session = conversation.sessions[position]
                    needs = (
                        (ingest_key(conversation.id, conversation.sessions[position - 1].number),)
                        if position
                        else ()
                    )
                    yield Unit(
                        ingest_key(conversation.id, session.number),
                        _bind(self._ingest, conversation, session, finished),
                        f"ingest s{position + 1}",
                        needs,
                    )
        for system in spec.systems:
            for question in spec.questions:
                conversation = by_id[question.conversation]
                last = ingest_key(conversation.id, conversation.sessions[-1].number)
                memory_needed = system in _WITH_BLOCKS or (
                    system is System.RECENT_TURNS and spec.recent_turns is None
                )
                yield Unit(
                    qa_key(question.id, system),
                    _bind(self._answer, conversation, question, system, spec, finished),
                    system.value,
                    (last,) if memory_needed else (),
                )
        if self._judge_spec is not None:
            for system in spec.systems:
                for question in spec.questions:
                    yield Unit(
                        judge_key(question.id, system),
                        _bind(self._judge, question, system, finished),
                        "judge",
                        (qa_key(question.id, system),),
                    )

    def run(
        self, spec: ConversationSpec, *, on_unit: Callable[[RunOutcome], None] | None = None
    ) -> RunOutcome:
        """Run every unit not yet in ``results.jsonl``: sessions, then answers, then judgements.

        Args:
            spec: What to run.
            on_unit: Called with the counts so far after each unit ends.

        Returns:
            Counts of units done, skipped and failed, and the wall time.

        """
        finished = self._finished()
        return self._execute(
            self._units(spec, finished), finished, concurrency=spec.concurrency, on_unit=on_unit
        )


_VERDICT = re.compile(r"\b(CORRECT|INCORRECT|WRONG)\b", re.IGNORECASE)


def _verdict(reply: str) -> str | None:
    """``correct`` or ``wrong``: the judge's first verdict word (INCORRECT is wrong), else None."""
    found = _VERDICT.search(reply)
    if found is None:
        return None
    return "correct" if found.group(1).upper() == "CORRECT" else "wrong"


def _seed_archive(agent: SleepTimeAgent, user: str, lines: Sequence[str]) -> None:
    """The facts an earlier session archived, into ``user``'s archive in a fresh agent's store.

    Each unit runs a fresh agent on an in-memory store (so a killed run redoes only
    the sessions in flight); what the archive held travels in the unit's record.
    """
    if lines:
        scope = Scope.parse(f"user:{user}")
        rows = archive_rows(scope, lines, held=(), at=iso(time.time()))
        recall_index_for(agent.blocks.store).add(rows)


def _archive_of(agent: SleepTimeAgent, user: str) -> list[str]:
    """The lines ``user``'s archive holds, in the order they were archived."""
    rows = recall_index_for(agent.blocks.store).rows(f"user:{user}", [ARCHIVE_THREAD])
    return [row.text for row in rows]


def _import_for_recall(agent: SleepTimeAgent, conversation: Conversation) -> None:
    """Every session into the agent's store, dated, for recall (no model call, no sleep run).

    One thread of the conversation's user, apart from the question's thread: the
    question's prompt holds none of it but what recall finds.
    """
    for session in conversation.sessions:
        if session.turns:
            agent.import_messages(
                [ImportedMessage(text=t.said, speaker=t.speaker) for t in session.turns],
                thread_id=f"{conversation.id}-history",
                user_id=conversation.id,
                session_date=session.date_time,
            )


def _bind(work: Callable[..., Record], *args: Any) -> Callable[[], Record]:
    return lambda: work(*args)
