"""A sleep run's progress as plain data, and the pure transitions between its steps.

The graph nodes in :mod:`sleepagent.sleep.nodes` do the I/O (store reads, model
calls, commits); every decision about what happens next is a function here,
over :class:`RunState` and :class:`PageState`. They are TypedDicts, so graph
state stays plain data for any checkpoint serialiser and still type-checks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.transcript import LogEntry
from sleepagent.results import BlockDiff, Conflict, FailedPage, SleepOutcome
from sleepagent.sleep.consolidation import PageEvidence
from sleepagent.sleep.textedits import ProblemKind, TextRound
from sleepagent.sleep.tools import ToolRound
from sleepagent.usage import Usage

__all__ = [
    "PageState",
    "RunState",
    "SpanRequest",
    "after_commit",
    "after_reply",
    "after_repair_request",
    "after_facts",
    "after_thinking",
    "after_text_reply",
    "after_tools",
    "fall_back_to_text",
    "after_unreadable_reply",
    "commit_ready",
    "merge_diffs",
    "new_run",
    "open_page",
    "page_outcome",
    "result_of",
    "run_outcome",
]

logger = logging.getLogger("sleepagent.sleep")


class SpanRequest(TypedDict):
    """A span of the log to process again (a failed page re-run on purpose)."""

    first: int
    last: int


class PageState(TypedDict):
    """The transcript page a run is working on.

    ``staged`` is the run's working copy of the blocks; the counters say what
    the model did with its tools on this page, which decides the page's outcome.
    """

    first: int
    last: dict[str, Any]
    count: int
    head: int
    steps: int
    staged: dict[str, Any]
    tool_calls: int
    accepted: int
    refused: int
    finished: bool
    edit_format: str
    transcript: str
    repaired: bool
    malformed: bool
    evidence: dict[str, Any]
    thought: bool
    archived: list[str]


class RunState(TypedDict):
    """One sleep run, from its request to its result."""

    run_id: str
    reason: str
    thread_id: str
    scope: str
    started_at: str
    span: SpanRequest | None
    steps: int
    pages: int
    processed: int
    watermark: int
    attempt: int
    diffs: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    failed_pages: list[dict[str, Any]]
    outcomes: list[str]
    left_pending: bool
    usage: dict[str, Any]
    uncommitted_usage: dict[str, Any]
    page: PageState | None
    done: bool
    edit_format: str
    fell_back: bool
    reasoning: list[str]


def new_run(
    *,
    run_id: str,
    reason: str,
    thread_id: str,
    scope: str,
    at: str,
    span: SpanRequest | None = None,
    edit_format: str = "tools",
) -> RunState:
    """A run that has read nothing yet; its pages start in ``edit_format`` (tools or text)."""
    return RunState(
        run_id=run_id,
        reason=reason,
        thread_id=thread_id,
        scope=scope,
        started_at=at,
        span=span,
        steps=0,
        pages=0,
        processed=0,
        watermark=0,
        attempt=0,
        diffs=[],
        conflicts=[],
        failed_pages=[],
        outcomes=[],
        left_pending=False,
        usage=Usage().to_dict(),
        uncommitted_usage=Usage().to_dict(),
        page=None,
        done=False,
        edit_format=edit_format,
        fell_back=False,
        reasoning=[],
    )


def open_page(
    run: RunState,
    blocks: Sequence[MemoryBlock],
    entries: Sequence[LogEntry],
    head: int,
    transcript: str = "",
    evidence: PageEvidence | None = None,
) -> RunState:
    """Start work on the page ``entries`` (non-empty), on a fresh working copy of ``blocks``.

    ``transcript`` is the page as rendered for the model, kept so the page can be
    asked again in the text format without reading the store; ``evidence`` is
    what the consolidation checks read (see :mod:`sleepagent.sleep.consolidation`).
    """
    evidence = evidence or PageEvidence.of(entries, blocks)
    page = PageState(
        first=entries[0].seq,
        last=entries[-1].to_dict(),
        count=len(entries),
        head=head,
        steps=0,
        staged=StagedMemory.of(blocks).to_dict(),
        tool_calls=0,
        accepted=0,
        refused=0,
        finished=False,
        edit_format=run.get("edit_format", "tools"),
        transcript=transcript,
        repaired=False,
        malformed=False,
        evidence=evidence.to_dict(),
        thought=False,
        archived=[],
    )
    return {**run, "page": page}


def page_transcript(run: RunState) -> str:
    """The open page as it was rendered for the model."""
    return _page(run)["transcript"]


def evidence_of(run: RunState) -> PageEvidence:
    """What the open page shows, for the consolidation checks."""
    return PageEvidence.from_dict(_page(run)["evidence"])


def after_thinking(
    run: RunState, usage: Usage, staged: StagedMemory | None, samples: Sequence[str] = ()
) -> RunState:
    """Take the reasoning pass's tokens, its samples' text, and what it staged, if any.

    The samples' tokens count in the run's usage but not as steps: the step
    budget bounds edit rounds. A context page whose pass staged results is
    finished: it has nothing else to write (only learned blocks change there).
    """
    page = _page(run)
    wrote = staged is not None
    finished = page["finished"] or (wrote and evidence_of(run).context_only)
    return {
        **run,
        "usage": (Usage.from_dict(run["usage"]) + usage).to_dict(),
        "uncommitted_usage": (Usage.from_dict(run["uncommitted_usage"]) + usage).to_dict(),
        "reasoning": [*run.get("reasoning", []), *samples],
        "page": {
            **page,
            "thought": True,
            "staged": staged.to_dict() if staged is not None else page["staged"],
            "accepted": page["accepted"] + int(wrote),
            "tool_calls": page["tool_calls"] + int(wrote),
            "finished": finished,
        },
    }


def after_facts(
    run: RunState,
    usage: Usage,
    staged: StagedMemory | None,
    *,
    accepted: int,
    archived: Sequence[str] = (),
) -> RunState:
    """Take the fact pass's tokens, and the user's facts it staged (see ``sleep/facts.py``).

    A pass that staged ``accepted`` facts, or said there were none (``staged``
    is then the page's copy unchanged), concludes the page; ``None`` leaves the
    page to the edit round. Its tokens count in the run's usage but not as
    steps, like the reasoning pass's. ``archived`` are the lines ``staged``
    moved out of the facts block, for the commit to write to the archive first.
    """
    page = _page(run)
    concluded = staged is not None
    wrote = concluded and accepted > 0
    return {
        **run,
        "usage": (Usage.from_dict(run["usage"]) + usage).to_dict(),
        "uncommitted_usage": (Usage.from_dict(run["uncommitted_usage"]) + usage).to_dict(),
        "page": {
            **page,
            "staged": staged.to_dict() if staged is not None else page["staged"],
            "accepted": page["accepted"] + int(wrote),
            "tool_calls": page["tool_calls"] + int(concluded),
            "finished": page["finished"] or concluded,
            "archived": [*archived_of(run), *archived] if concluded else archived_of(run),
        },
    }


def archived_of(run: RunState) -> list[str]:
    """Lines the open page's working copy moved out to the archive (see ``sleep/archive.py``).

    A page opened by an older release has none.
    """
    page = run["page"]
    return list(page.get("archived", ())) if page is not None else []


def _page(run: RunState) -> PageState:
    page = run["page"]
    if page is None:
        raise RuntimeError("no sleep run page is open: start a run with a sleep_request input")
    return page


def after_reply(run: RunState, usage: Usage) -> RunState:
    """Count one model call of the open page and its tokens."""
    page = _page(run)
    return {
        **run,
        "page": {**page, "steps": page["steps"] + 1},
        "steps": run["steps"] + 1,
        "usage": (Usage.from_dict(run["usage"]) + usage).to_dict(),
        "uncommitted_usage": (Usage.from_dict(run["uncommitted_usage"]) + usage).to_dict(),
    }


def after_unreadable_reply(run: RunState) -> RunState:
    """Count a model call whose reply could not be read as a step with one refused call."""
    run = after_reply(run, Usage())
    page = _page(run)
    return {
        **run,
        "page": {**page, "tool_calls": page["tool_calls"] + 1, "refused": page["refused"] + 1},
    }


def after_tools(run: RunState, round_: ToolRound) -> RunState:
    """Take the working copy and counters after one round of tool calls."""
    page = _page(run)
    return {
        **run,
        "page": {
            **page,
            "staged": round_.staged.to_dict(),
            "tool_calls": page["tool_calls"] + len(round_.replies),
            "accepted": page["accepted"] + round_.accepted,
            "refused": page["refused"] + round_.refused,
            "finished": page["finished"] or round_.finished,
        },
    }


def after_text_reply(run: RunState, round_: TextRound) -> RunState:
    """Take the working copy and counters after one tagged-text reply.

    Each block the reply wrote counts as one call, accepted or refused. A reply
    with no problem finishes the page (with no edits, the model changed nothing);
    a reply whose only news is a format problem marks the page malformed.
    """
    page = _page(run)
    parsed = round_.parsed
    accepted = page["accepted"] + round_.accepted
    return {
        **run,
        "page": {
            **page,
            "staged": round_.staged.to_dict(),
            "tool_calls": page["tool_calls"] + len(parsed.edits) + len(parsed.problems),
            "accepted": accepted,
            "refused": page["refused"] + len(parsed.problems),
            "finished": page["finished"] or parsed.well_formed,
            "malformed": not accepted and any(p.kind in _FORMAT_PROBLEMS for p in parsed.problems),
        },
    }


def after_repair_request(run: RunState) -> RunState:
    """Mark the page's one repair round as used."""
    return {**run, "page": {**_page(run), "repaired": True}}


def fall_back_to_text(run: RunState) -> RunState:
    """Switch the open page, and the pages after it, to the text format.

    A ``memory_finish`` from the tools round is dropped: the page is asked again.
    """
    page: PageState = {**_page(run), "edit_format": "text", "finished": False}
    return {**run, "edit_format": "text", "fell_back": True, "page": page}


_FORMAT_PROBLEMS = frozenset(
    {
        ProblemKind.EMPTY_REPLY,
        ProblemKind.NO_BLOCKS,
        ProblemKind.UNCLOSED,
        ProblemKind.NESTED,
        ProblemKind.DUPLICATE,
    }
)


def commit_ready(run: RunState, max_steps: int) -> bool:
    """Whether the page is done: the model finished, or the step budget is spent."""
    page = _page(run)
    return page["finished"] or page["steps"] >= max_steps


def page_outcome(page: PageState, max_steps: int) -> SleepOutcome:
    """How the model's work on a page ended, before its commit.

    ``EDITED`` here means edits were accepted; the commit may still find them
    unchanged or in conflict (see :func:`after_commit`).
    """
    if page["accepted"]:
        return SleepOutcome.EDITED
    if page["finished"] and not page["refused"]:
        return SleepOutcome.UNCHANGED
    if page.get("malformed"):
        return SleepOutcome.MALFORMED
    if not page["tool_calls"]:
        return SleepOutcome.NO_TOOL_CALL
    if not page["finished"] and page["steps"] >= max_steps:
        return SleepOutcome.STEP_BUDGET
    return SleepOutcome.ONLY_REFUSED


_LIKELY_CAUSE = {
    SleepOutcome.NO_TOOL_CALL: (
        "the sleep-time model answered in plain text without calling a memory tool; "
        "models served without tool-call parsing (llama.cpp, some Ollama models, small "
        "fine-tunes) often write the call as text instead; SleepConfig(sleep_edit_mode="
        "SleepEditMode.AUTO) (the default) or TEXT lets them write memory as tagged text"
    ),
    SleepOutcome.ONLY_REFUSED: "every memory edit the sleep-time model tried was refused",
    SleepOutcome.MALFORMED: (
        "the sleep-time model's answer in the text format held no usable block, even "
        "after a repair round"
    ),
    SleepOutcome.STEP_BUDGET: (
        "the sleep-time model spent its step budget (max_sleep_steps) without an accepted edit"
    ),
}


def failure_text(outcome: SleepOutcome) -> str:
    """Why a page with an unprocessed outcome counts as a failed attempt."""
    return f"{outcome.value}: {_LIKELY_CAUSE.get(outcome, outcome.value)}"


def warn_unprocessed(run: RunState, outcome: SleepOutcome, attempts: int, limit: int) -> None:
    """Log a page left pending, naming the likely cause."""
    page = _page(run)
    logger.warning(
        "sleep run %s on thread %r left messages %d-%d pending (attempt %d of %d): %s",
        run["run_id"],
        run["thread_id"],
        page["first"],
        page["last"]["seq"],
        attempts,
        limit,
        failure_text(outcome),
    )


def after_commit(
    run: RunState,
    *,
    outcome: SleepOutcome,
    committed: bool,
    diffs: Iterable[BlockDiff],
    conflicts: Iterable[Conflict],
    failed_page: FailedPage | None,
) -> tuple[RunState, bool]:
    """The run after a page's commit, and whether it goes on to another page.

    Args:
        run: The run, its page still open.
        outcome: The page's outcome before the commit (see :func:`page_outcome`).
        committed: Whether the commit wrote (False with conflicts: redo the page).
        diffs: Blocks the commit changed.
        conflicts: Edits it dropped.
        failed_page: Set when this attempt gave the page up as failed.

    """
    page = _page(run)
    diffs, conflicts = tuple(diffs), tuple(conflicts)
    if outcome is SleepOutcome.EDITED and not committed and conflicts:
        # Memory changed under edits that no longer apply: redo the page on fresh memory.
        return {**run, "attempt": run["attempt"] + 1, "page": None}, True
    if outcome is SleepOutcome.EDITED and not diffs:
        outcome = SleepOutcome.CONFLICTED if conflicts else SleepOutcome.UNCHANGED
    moved_on = outcome.processed or failed_page is not None
    done = dict(run)
    done.update(
        diffs=[*run["diffs"], *(diff.to_dict() for diff in diffs)],
        conflicts=[*run["conflicts"], *(conflict.to_dict() for conflict in conflicts)],
        failed_pages=[*run["failed_pages"], *([failed_page.to_dict()] if failed_page else [])],
        outcomes=[*run["outcomes"], outcome.value],
        left_pending=not moved_on,
        pages=run["pages"] + 1,
        processed=run["processed"] + (page["count"] if moved_on else 0),
        watermark=page["last"]["seq"] if moved_on and run["span"] is None else run["watermark"],
        attempt=0,
        uncommitted_usage=Usage().to_dict(),
        page=None,
    )
    more = moved_on and run["span"] is None and page["last"]["seq"] < page["head"]
    return done, more  # type: ignore[return-value]


def run_outcome(outcomes: Sequence[str]) -> SleepOutcome:
    """One outcome for a run: the first page that was not processed decides, else edits do."""
    parsed = [SleepOutcome(value) for value in outcomes]
    for outcome in parsed:
        if not outcome.processed:
            return outcome
    for wanted in (SleepOutcome.EDITED, SleepOutcome.CONFLICTED, SleepOutcome.UNCHANGED):
        if wanted in parsed:
            return wanted
    return SleepOutcome.NOTHING_NEW


def result_of(run: RunState) -> dict[str, Any]:
    """The run's result as plain data (``SleepResult`` fields)."""
    return {
        "run_id": run["run_id"],
        "thread_id": run["thread_id"],
        "scope": run["scope"],
        "reason": run["reason"],
        "diffs": [diff.to_dict() for diff in merge_diffs(map(BlockDiff.from_dict, run["diffs"]))],
        "conflicts": run["conflicts"],
        "usage": run["usage"],
        "messages_processed": run["processed"],
        "pages": run["pages"],
        "steps": run["steps"],
        "watermark": run["watermark"],
        "outcome": run_outcome(run["outcomes"]).value,
        "failed_pages": run["failed_pages"],
        "covered": not run["left_pending"],
        "text_fallback": run.get("fell_back", False),
        "reasoning": run.get("reasoning", []),
    }


def merge_diffs(diffs: Iterable[BlockDiff]) -> list[BlockDiff]:
    """One diff per label: from its first ``before`` to its last ``after``."""
    merged: dict[str, BlockDiff] = {}
    for diff in diffs:
        first = merged.get(diff.label)
        merged[diff.label] = (
            diff
            if first is None
            else BlockDiff(
                label=diff.label,
                before=first.before,
                after=diff.after,
                version_before=first.version_before,
                version_after=diff.version_after,
                reapplied=first.reapplied or diff.reapplied,
            )
        )
    return list(merged.values())


def staged_of(run: RunState) -> StagedMemory:
    """The open page's working copy."""
    return StagedMemory.from_dict(_page(run)["staged"])


def as_run(data: Mapping[str, Any]) -> RunState:
    """A run read back from graph state (a plain dict there)."""
    return data  # type: ignore[return-value]
