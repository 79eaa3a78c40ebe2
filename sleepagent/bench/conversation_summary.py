"""LoCoMo's tables, from ``results.jsonl`` alone, by pure functions (``--report-only`` agrees).

F1 is LoCoMo's own metric (:func:`~sleepagent.bench.grading.locomo_score`), as a mean
per category and over categories 1-4 (each answered question once, the mean the
published tables give); category 5 (adversarial) is reported apart, as the share of
replies that decline and the share that give the trap answer. A judge's verdicts,
when there are any, are a second table, with the judge's model named and its prompt
in ``prompts.json``. Tokens are the answer's (prompt plus completion, per query),
and, for sleep-time memory, what building the memory cost per session.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from sleepagent.bench.conversations import CATEGORY_ORDER, Category
from sleepagent.bench.runlog import Failures, RunInfo
from sleepagent.bench.summary import info_lines

__all__ = [
    "ANSWERED_CATEGORIES",
    "PUBLISHED",
    "ConversationSummary",
    "JudgeRow",
    "MemoryRow",
    "SystemRow",
    "TRAP_F1",
    "is_conversation_run",
    "render_conversation_markdown",
    "summarize_conversations",
]

Record = Mapping[str, Any]

ANSWERED_CATEGORIES = tuple(c for c in CATEGORY_ORDER if c is not Category.ADVERSARIAL)
"""The categories with a gold answer, pooled in the overall figure."""

TRAP_F1 = 0.5
"""A category 5 reply with at least this F1 against the trap answer gave the trap."""

SYSTEM_ORDER = (
    "no_memory",
    "recent_turns",
    "full_context",
    "sleep_memory",
    "recall",
    "sleep_memory_recall",
)

PUBLISHED = (
    "J scores (an LLM judge; gpt-4o-mini answering; categories 1-4) published in the Mem0 "
    "paper (Chhikara et al., 2025, arXiv 2504.19413): full context 72.9, Mem0 66.9, Zep "
    "66.0, LangMem 58.1, OpenAI memory 52.9; Mem0 reports about 90% fewer tokens than "
    "full context. Judge scores move with the judge's prompt (the same answers scored 91% "
    "and 35% under two prompts, mem0ai/memory-benchmarks issue 29) and some gold answers "
    "are wrong, so compare J only under one prompt; F1 is the dataset's own metric. No "
    "published system reports what building its memory cost."
)
"""The published numbers the summary sets a run beside, with their source."""

CHOICES = (
    "A turn that shares an image is shown as its text and `[shares <blip_caption>]`, as "
    "LoCoMo's own baselines show it; the image search `query` is not shown.",
    "Every system answers through the same chat path on the same model, one question at a "
    "time, under one instruction (`prompts.json`) that names the phrase for an unanswerable "
    "question; a temporal question (category 2) gets LoCoMo's hint to answer with a date.",
    "Category 5 is asked as an open question and scored by LoCoMo's rule (the reply "
    "declines); LoCoMo's own evaluation asked it as a choice between 'not mentioned' and "
    "the trap answer. `locomo10.json` gives only the trap (`adversarial_answer`).",
    "sleep_memory: each session is imported with its date (`import_messages`), followed "
    "by one sleep-time run, as the quiet between sessions would bring; answers see the "
    "memory blocks after the last session, and no transcript.",
    "recent_turns: the last N turns, N chosen per conversation so the window's characters "
    "match the final memory blocks' (about the same prompt tokens), unless "
    "`--recent-turns` sets it. full_context: the whole conversation, where its estimated "
    "tokens (3.5 characters a token, 1,024 kept for the rest) fit `--context-window`.",
    "recall: the whole conversation is imported with its session dates into the answering "
    "agent's store, and the messages that best match the question's words (full-text "
    "search, `--recall-messages` of them, `--recall-chars` characters at most, 4,000 by "
    "default) are shown with speaker and date; no memory blocks. sleep_memory_recall: the "
    "final memory blocks and the same recall. shown chars/query counts the blocks only; "
    "recalled text is in the prompt tokens.",
    "With `--archive-facts N`, a full facts block moves its oldest lines to an archive "
    "during ingestion instead of asking the model to make room, and the systems with "
    "memory blocks also see up to N archived facts that share the question's words "
    "(`--recall-chars` at most); the recency window then matches the blocks' characters "
    "plus `--recall-chars`.",
    "Questions are a seeded sample per category (`--per-category`), not every question.",
)
"""What ``summary.md`` says about choices that differ from LoCoMo's evaluation."""


@dataclass(frozen=True)
class SystemRow:
    """One system over the run's questions.

    Attributes:
        system: The system's name.
        answered: Answers with a reply.
        not_run: Questions not answered (``full_context`` over the model's window).
        f1: Mean LoCoMo F1 per answered category (1-4), ``None`` where there is none.
        counts: Answers per category, 1-5.
        overall: Mean F1 over the answers of categories 1-4, or ``None``.
        declined: Category 5: share of replies that decline (LoCoMo's score), or ``None``.
        trapped: Category 5: share of replies that give the trap answer, or ``None``.
        prompt_tokens: Mean prompt tokens per answer.
        completion_tokens: Mean completion tokens per answer.
        shown_chars: Mean characters of what the system showed besides the question
            (memory blocks, or the conversation window).
        recent_turns: Mean turns in the window (``recent_turns`` only).

    """

    system: str
    answered: int
    not_run: int
    f1: Mapping[int, float | None]
    counts: Mapping[int, int]
    overall: float | None
    declined: float | None
    trapped: float | None
    prompt_tokens: float
    completion_tokens: float
    shown_chars: float
    recent_turns: float | None = None

    @property
    def tokens_per_query(self) -> float:
        """Prompt plus completion tokens per answer."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class JudgeRow:
    """One system's answers as one judge graded them.

    Attributes:
        system: The system's name.
        judge_model: The judge.
        judged: Answers graded.
        correct: Share judged correct per category (1-5), ``None`` where there is none.
        overall: Share correct over categories 1-4, or ``None``.
        unreadable: Verdicts that were neither CORRECT nor WRONG (counted wrong).

    """

    system: str
    judge_model: str
    judged: int
    correct: Mapping[int, float | None]
    overall: float | None
    unreadable: int


@dataclass(frozen=True)
class MemoryRow:
    """What sleep-time compute built for one conversation.

    Attributes:
        conversation: The sample id.
        sessions: Sessions ingested.
        turns: Their turns.
        memory_chars: Characters of the memory blocks after the last session ingested.
        sleep_prompt: Sleep-time prompt tokens, all sessions.
        sleep_completion: Sleep-time completion tokens, all sessions.
        outcomes: How the sessions' sleep runs ended, by outcome.
        archive_lines: Facts in the archive after the last session (archive on).
        archive_chars: Their characters.

    """

    conversation: str
    sessions: int
    turns: int
    memory_chars: int
    sleep_prompt: int
    sleep_completion: int
    outcomes: tuple[tuple[str, int], ...]
    archive_lines: int = 0
    archive_chars: int = 0

    @property
    def per_session(self) -> float:
        """Sleep-time tokens (prompt plus completion) per session."""
        return (self.sleep_prompt + self.sleep_completion) / self.sessions if self.sessions else 0


@dataclass(frozen=True)
class ConversationSummary:
    """Everything the LoCoMo ``summary.md`` and its plots show."""

    rows: tuple[SystemRow, ...]
    judges: tuple[JudgeRow, ...]
    memory: tuple[MemoryRow, ...]
    questions: tuple[tuple[int, int], ...]
    """Questions per category (1-5), over the run."""
    info: RunInfo | None = None
    failures: Failures | None = None

    def row(self, system: str) -> SystemRow | None:
        """The row of ``system``, if the run has it."""
        return next((row for row in self.rows if row.system == system), None)


def is_conversation_run(records: Iterable[Record]) -> bool:
    """Whether ``records`` come from the LoCoMo benchmark (not the paper's)."""
    return any(record.get("kind") in ("ingest", "qa", "judge") for record in records)


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return fmean(found) if found else None


def _order(name: str) -> tuple[int, str]:
    return (SYSTEM_ORDER.index(name) if name in SYSTEM_ORDER else len(SYSTEM_ORDER), name)


def _system_row(system: str, answers: Sequence[Record]) -> SystemRow:
    done = [r for r in answers if r.get("reply") is not None]
    by_category: dict[int, list[Record]] = defaultdict(list)
    for record in done:
        by_category[int(record["category"])].append(record)
    adversarial = by_category.get(Category.ADVERSARIAL.value, [])
    windows = [float(r["recent_turns"]) for r in done if r.get("recent_turns") is not None]
    return SystemRow(
        system=system,
        answered=len(done),
        not_run=len(answers) - len(done),
        f1={c.value: _mean(float(r["f1"]) for r in by_category[c.value]) for c in CATEGORY_ORDER},
        counts={c.value: len(by_category[c.value]) for c in CATEGORY_ORDER},
        overall=_mean(float(r["f1"]) for c in ANSWERED_CATEGORIES for r in by_category[c.value]),
        declined=_mean(float(bool(r.get("abstained"))) for r in adversarial),
        trapped=_mean(float((r.get("trap_f1") or 0.0) >= TRAP_F1) for r in adversarial),
        prompt_tokens=_mean(float(r["test_usage"]["input_tokens"]) for r in done) or 0.0,
        completion_tokens=_mean(float(r["test_usage"]["output_tokens"]) for r in done) or 0.0,
        shown_chars=_mean(float(r.get("context_chars", 0)) for r in done) or 0.0,
        recent_turns=_mean(windows),
    )


def _judge_rows(judgements: Sequence[Record]) -> tuple[JudgeRow, ...]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in judgements:
        if record.get("skipped") is None:
            groups[str(record["system"]), str(record["judge_model"])].append(record)
    rows = []
    for (system, model), found in sorted(groups.items(), key=lambda item: _order(item[0][0])):
        by_category: dict[int, list[float]] = defaultdict(list)
        for record in found:
            by_category[int(record["category"])].append(float(record["verdict"] == "correct"))
        rows.append(
            JudgeRow(
                system=system,
                judge_model=model,
                judged=len(found),
                correct={c.value: _mean(by_category[c.value]) for c in CATEGORY_ORDER},
                overall=_mean(v for c in ANSWERED_CATEGORIES for v in by_category[c.value]),
                unreadable=sum(record.get("verdict") is None for record in found),
            )
        )
    return tuple(rows)


def _memory_rows(ingests: Sequence[Record]) -> tuple[MemoryRow, ...]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in ingests:
        groups[str(record["conversation"])].append(record)
    rows = []
    for conversation, found in sorted(groups.items()):
        found.sort(key=lambda record: int(record["session"]))
        rows.append(
            MemoryRow(
                conversation=conversation,
                sessions=len(found),
                turns=sum(int(r["turns"]) for r in found),
                memory_chars=int(found[-1]["memory_chars"]),
                sleep_prompt=sum(int(r["sleep_usage"]["input_tokens"]) for r in found),
                sleep_completion=sum(int(r["sleep_usage"]["output_tokens"]) for r in found),
                outcomes=tuple(sorted(Counter(str(r["outcome"]) for r in found).items())),
                archive_lines=len(found[-1].get("archive", ())),
                archive_chars=int(found[-1].get("archive_chars", 0)),
            )
        )
    return tuple(rows)


def summarize_conversations(
    records: Sequence[Record], *, info: RunInfo | None = None, failures: Failures | None = None
) -> ConversationSummary:
    """Every LoCoMo table, from the records of ``results.jsonl``."""
    answers: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.get("kind") == "qa":
            answers[str(record["system"])].append(record)
    questions = {
        str(r["question_id"]): int(r["category"]) for r in records if r.get("kind") == "qa"
    }
    counted = Counter(questions.values())
    return ConversationSummary(
        rows=tuple(_system_row(system, answers[system]) for system in sorted(answers, key=_order)),
        judges=_judge_rows([r for r in records if r.get("kind") == "judge"]),
        memory=_memory_rows([r for r in records if r.get("kind") == "ingest"]),
        questions=tuple((c.value, counted[c.value]) for c in CATEGORY_ORDER),
        info=info,
        failures=failures,
    )


# --- markdown --------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _category_header(extra: str) -> tuple[str, str]:
    names = " | ".join(c.label for c in ANSWERED_CATEGORIES)
    cells = "|---" * (len(ANSWERED_CATEGORIES) + 2 + extra.count("|") + 1)
    return f"| system | {names} | overall (1-4) | {extra} |", cells + "|"


def _f1_table(summary: ConversationSummary) -> list[str]:
    head, rule = _category_header(
        "adversarial: declined | adversarial: gave the trap | answered | not run"
    )
    lines = [head, rule]
    for row in summary.rows:
        cells = " | ".join(_pct(row.f1[c.value]) for c in ANSWERED_CATEGORIES)
        lines.append(
            f"| {row.system} | {cells} | {_pct(row.overall)} | {_pct(row.declined)} "
            f"| {_pct(row.trapped)} | {row.answered} | {row.not_run} |"
        )
    return lines


def _judge_table(summary: ConversationSummary) -> list[str]:
    head, rule = _category_header("adversarial | judge | judged | unreadable")
    lines = [head, rule]
    for row in summary.judges:
        cells = " | ".join(_pct(row.correct[c.value]) for c in ANSWERED_CATEGORIES)
        adversarial = _pct(row.correct[Category.ADVERSARIAL.value])
        lines.append(
            f"| {row.system} | {cells} | {_pct(row.overall)} | {adversarial} "
            f"| `{row.judge_model}` | {row.judged} | {row.unreadable} |"
        )
    return lines


def _cost_table(summary: ConversationSummary) -> list[str]:
    sessions = sum(m.sessions for m in summary.memory)
    per_session = (
        sum(m.sleep_prompt + m.sleep_completion for m in summary.memory) / sessions
        if sessions
        else None
    )
    memory = _mean(float(m.memory_chars) for m in summary.memory)
    lines = [
        "| system | prompt tok/query | completion tok/query | total tok/query "
        "| shown chars/query | memory chars | sleep tok/session |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary.rows:
        sleeps = row.system in ("sleep_memory", "sleep_memory_recall")
        shown = _num(row.shown_chars) + (
            f" ({_num(row.recent_turns, 1)} turns)" if row.recent_turns is not None else ""
        )
        lines.append(
            f"| {row.system} | {_num(row.prompt_tokens, 1)} | {_num(row.completion_tokens, 1)} "
            f"| {_num(row.tokens_per_query, 1)} | {shown} "
            f"| {_num(memory) if sleeps else '-'} | {_num(per_session, 1) if sleeps else '-'} |"
        )
    return lines


def _memory_table(summary: ConversationSummary) -> list[str]:
    lines = [
        "| conversation | sessions | turns | memory chars | archived facts (chars) "
        "| sleep prompt tok | sleep completion tok | sleep tok/session | sleep runs ended |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in summary.memory:
        ended = ", ".join(f"{name} {n}" for name, n in m.outcomes)
        lines.append(
            f"| {m.conversation} | {m.sessions} | {m.turns} | {m.memory_chars:,} "
            f"| {m.archive_lines:,} ({m.archive_chars:,}) | {m.sleep_prompt:,} "
            f"| {m.sleep_completion:,} | {m.per_session:,.1f} | {ended} |"
        )
    return lines


def render_conversation_markdown(summary: ConversationSummary) -> str:
    """``summary.md`` of a LoCoMo run: the run, F1, the judge, tokens, memory, context."""
    asked = ", ".join(f"{Category(c).label} {n}" for c, n in summary.questions)
    total = sum(n for _, n in summary.questions)
    lines = [
        "# LoCoMo: sleep-time memory against baselines",
        "",
        "## Run",
        "",
        f"- Questions: {total} ({asked}) about {len(summary.memory) or '-'} ingested "
        f"conversations; {sum(m.sessions for m in summary.memory)} sessions ingested, each "
        "followed by one sleep-time run.",
        *info_lines(summary.info, summary.failures),
        "",
        "## LoCoMo F1 by category (%)",
        "",
        "LoCoMo's token F1 (its `task_eval/evaluation.py` rules), mean per category; overall "
        "pools every answer of categories 1-4. Adversarial questions (5) cannot be answered "
        "from the conversation: declined is LoCoMo's score for them, gave the trap the share "
        f"of replies with F1 >= {TRAP_F1:g} against the trap answer.",
        "",
        *_f1_table(summary),
    ]
    if summary.judges:
        lines += [
            "",
            "## LLM judge (J, % judged correct)",
            "",
            "The judge's prompt is in `prompts.json`; an unreadable verdict counts as wrong.",
            "",
            *_judge_table(summary),
        ]
    lines += [
        "",
        "## Tokens per query, and what memory cost to build",
        "",
        "Answer tokens are the chat model's, per question (prompt plus completion); shown "
        "chars are what the system put beside the question. Memory chars are the final "
        "memory blocks (mean per conversation); sleep tok/session is what one sleep-time run "
        "over one session cost (prompt plus completion), the price of building the memory.",
        "",
        *_cost_table(summary),
    ]
    if summary.memory:
        lines += ["", "## Memory built, per conversation", "", *_memory_table(summary)]
    lines += [
        "",
        "## Published numbers, for orientation",
        "",
        PUBLISHED,
        "",
        "## How this run differs from LoCoMo's evaluation",
        "",
        *(f"- {item}" for item in CHOICES),
        "",
        "## Plots",
        "",
        "- `f1_by_category.png`: LoCoMo F1 per category, one bar per system (adversarial: "
        "the share declined).",
        "- `tokens_per_query.png`: prompt and completion tokens per query for each system, "
        "with its overall F1.",
        "",
    ]
    return "\n".join(lines)
