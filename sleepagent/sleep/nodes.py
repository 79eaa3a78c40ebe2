"""The sleep-time agent: reads new transcript pages and rewrites memory on a staged copy.

One run walks the thread's log from its watermark, a page at a time. For each
page the model loops with the memory tools (``sleep`` ⇄ ``sleep_tools``) up to
the step budget, or, in the text format (``SleepEditMode.TEXT``, or ``AUTO``
once a page's first reply made no tool call), answers with whole blocks as
tagged text, with one repair round for a malformed answer; then
``sleep_commit`` writes the page's edits and advances the watermark in one
atomic batch. A commit that finds a block changed under edits
that no longer apply redoes the page on fresh memory, up to
``max_commit_retries`` times, and on the last try commits what merges and
reports the rest as conflicts.

Run progress lives in graph state as plain data (the ``sleep`` channel), so the
run can be inspected, and a crashed run simply starts again from the watermark.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langgraph.graph import END
from langgraph.types import Command

from sleepagent import prompts
from sleepagent._twins import Flow, call
from sleepagent.config import SleepConfig, SleepEditMode, SleepThinking, UserFacts
from sleepagent.errors import BlockLimitError, MemoryEditError, ModelCallError
from sleepagent.graph.context import RunTarget, current_target, iso
from sleepagent.graph.state import SleepAgentState
from sleepagent.memory.blocks import BlockRole, InsertEdit, MemoryBlock
from sleepagent.memory.blockstore import CommitOutcome, PageAttempt
from sleepagent.memory.recall import ARCHIVE_THREAD, archive_rows, rows_of
from sleepagent.memory.render import render_memory, render_transcript_page
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.transcript import LogEntry, message_text
from sleepagent.models import is_malformed_reply, model_errors, sample_options
from sleepagent.results import BlockDiff, Conflict, RunRecord, SleepOutcome
from sleepagent.scheduling.policy import TIMER_REASONS, too_few_new_messages
from sleepagent.sleep import run as transitions
from sleepagent.sleep.consolidation import (
    PageEvidence,
    review_edit,
    said_text,
)
from sleepagent.sleep.facts import prepared_facts, read_fact_lines, stage_facts
from sleepagent.sleep.run import RunState, SpanRequest, as_run, merge_diffs
from sleepagent.sleep.textedits import stage_text_reply, text_page_prompt
from sleepagent.sleep.thinking import agreed_lines, read_notes
from sleepagent.sleep.toolrecovery import memory_tool_args, recover_tool_calls
from sleepagent.sleep.tools import memory_tool_schemas, run_tool_calls
from sleepagent.store.recallindex import recall_index_for
from sleepagent.usage import Usage

__all__ = ["SleepTimeRunner", "merge_diffs"]

logger = logging.getLogger("sleepagent.sleep")

FACTS_TOKENS = 400
"""Reply cap of the fact pass: a list of short lines (about 10 tokens each)."""

FACTS_MESSAGES_PER_CALL = 6
"""User messages one fact-pass call reads. On a whole session of a long two-person
conversation (18-23 messages) the 1.5B model listed a handful of facts, half of them
about the wrong person, and looped; six at a time it listed the facts that answer
about half the questions on those sessions (see ``prompts.SLEEP_FACTS_SPEAKERS_PROMPT``)."""


class SleepTimeRunner:
    """The ``sleep``, ``sleep_tools`` and ``sleep_commit`` nodes.

    Each node is a thin flow: read or write the store, call the model, and
    hand the result to a pure transition of :mod:`sleepagent.sleep.run`. The
    nodes that do I/O are written once, as flows (see :mod:`sleepagent._twins`),
    and the graph drives them in the mode it is invoked in.

    Args:
        model: The sleep-time chat model.
        config: Behaviour settings.
        clock: Source of the current POSIX time.

    """

    def __init__(
        self, model: BaseChatModel, config: SleepConfig, clock: Callable[[], float]
    ) -> None:
        self._config = config
        self._clock = clock
        self._mode = config.sleep_edit_mode
        # AUTO remembers, per runner (one per agent and sleep model), that the model
        # answered a tool prompt with no tool call: such a first reply costs a whole
        # prompt (about 45 s on a CPU-bound local server), so the next runs start in
        # the text format. Not for ever: a server's tool parsing can be fixed, so
        # tools are tried again after `text_fallback_runs` runs.
        self._text_runs_left = 0
        self._model = model.bind_tools(memory_tool_schemas(finish=True))
        self._text_model = model
        # The first reasoning sample is greedy (alone, it measured best); the others
        # sample at `sleep_sample_temperature`, so that they can disagree.
        self._think_models = [
            model.bind(
                **sample_options(
                    model,
                    max_tokens=config.sleep_think_tokens,
                    temperature=0.0 if index == 0 else config.sleep_sample_temperature,
                )
            )
            for index in range(config.sleep_samples)
        ]
        # Asked once more when no sample concluded anything readable: sampled, since a
        # greedy sample asked again would write the same.
        self._think_again_model = model.bind(
            **sample_options(
                model,
                max_tokens=config.sleep_think_tokens,
                temperature=config.sleep_sample_temperature,
            )
        )
        self._facts_model = model.bind(
            **sample_options(model, max_tokens=FACTS_TOKENS, temperature=0.0)
        )
        self._offered = memory_tool_args(finish=True)

    # --- decisions (pure) ------------------------------------------------------

    def _where(self) -> RunTarget:
        return current_target(self._config)

    def _current(self, state: SleepAgentState, where: RunTarget) -> RunState:
        """The run in progress, or a new one when the request is new."""
        request = state.get("sleep_request") or {}
        run = state.get("sleep")
        request_id = request.get("run_id")
        if run is None or run["done"] or (request_id and run["run_id"] != request_id):
            span = request.get("span")
            edit_format = self._first_format()
            if self._mode is SleepEditMode.AUTO and edit_format == "text":
                self._text_runs_left -= 1
            return transitions.new_run(
                run_id=request_id or where.run_id or str(uuid.uuid4()),
                reason=request.get("reason", "manual"),
                thread_id=where.identity.thread_id,
                scope=where.scope.key,
                at=iso(self._clock()),
                span=SpanRequest(first=span["first"], last=span["last"]) if span else None,
                edit_format=edit_format,
            )
        return as_run(run)

    def _first_format(self) -> str:
        """The edit format a new run starts in."""
        text = self._mode is SleepEditMode.TEXT or (
            self._mode is SleepEditMode.AUTO and self._text_runs_left > 0
        )
        return "text" if text else "tools"

    def _span(self, run: RunState) -> tuple[int, int] | None:
        span = run["span"]
        return (span["first"], span["last"]) if span else None

    def _too_little(self, run: RunState, watermark: int, head: int) -> bool:
        """Whether a timer-started run should skip: fewer new messages than ``min_new_messages``.

        The local scheduler checks this before it starts a run; checking here too
        gives LangGraph Server's delayed runs the same rule. Runs asked for by
        hand or for context always proceed.
        """
        timed = run["reason"] in {reason.value for reason in TIMER_REASONS}
        return timed and run["pages"] == 0 and too_few_new_messages(head - watermark, self._config)

    def _open_page(
        self,
        run: RunState,
        blocks: Sequence[MemoryBlock],
        entries: Sequence[LogEntry],
        watermark: int,
        head: int,
    ) -> tuple[RunState, list[BaseMessage]]:
        evidence = PageEvidence.of(entries, blocks)
        transcript = _with_notes(render_transcript_page(entries, total=head), blocks, entries)
        blocks = _writable_on_page(blocks, evidence)
        run = transitions.open_page(
            {**run, "watermark": watermark}, blocks, entries, head, transcript, evidence
        )
        if run["edit_format"] == "text":
            return run, _text_messages(blocks, transcript, len(entries))
        prompt = prompts.SLEEP_PAGE_PROMPT.format(
            memory=render_memory(blocks),
            count=len(entries),
            transcript=transcript,
            steps=self._config.max_sleep_steps,
        )
        messages: list[BaseMessage] = [
            SystemMessage(prompts.SLEEP_SYSTEM_PROMPT),
            HumanMessage(prompt),
        ]
        return run, messages

    def _model_for(self, where: RunTarget, run: RunState) -> Runnable[Any, BaseMessage]:
        page = run["page"]
        text = page is not None and page["edit_format"] == "text"
        model: Runnable[Any, BaseMessage] = self._text_model if text else self._model
        return self._tagged(model, where, run, "sleepagent:sleep")

    @staticmethod
    def _tagged(
        model: Runnable[Any, BaseMessage], where: RunTarget, run: RunState, name: str
    ) -> Runnable[Any, BaseMessage]:
        return model.with_config(
            run_name=name,
            tags=["sleepagent", name],
            metadata={
                "sleepagent_phase": "sleep",
                "sleepagent_run_id": run["run_id"],
                "thread_id": where.identity.thread_id,
                "memory_scope": where.scope.key,
            },
        )

    def _after_model(
        self, run: RunState, messages: list[BaseMessage], reply: BaseMessage | Exception
    ) -> Command[str]:
        if isinstance(reply, Exception):
            # The reply could not be read (a malformed response): tell the model, as a
            # refused call, and let it try again within its step budget.
            run = transitions.after_unreadable_reply(run)
            cause = reply.cause if isinstance(reply, ModelCallError) else reply
            note = HumanMessage(prompts.SLEEP_MALFORMED_REPLY.format(error=_brief(cause)))
            goto = (
                "sleep_commit"
                if transitions.commit_ready(run, self._config.max_sleep_steps)
                else "sleep"
            )
            return Command(update={"sleep": run, "sleep_messages": [*messages, note]}, goto=goto)
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the sleep model returned {type(reply).__name__}, expected AIMessage")
        run = transitions.after_reply(run, Usage.of_message(reply))
        page = run["page"]
        assert page is not None
        if page["edit_format"] == "text":
            return self._after_text(run, messages, reply)
        reply = recover_tool_calls(reply, self._offered)
        wants_tools = bool(reply.tool_calls or reply.invalid_tool_calls)
        if not wants_tools and self._mode is SleepEditMode.AUTO and page["steps"] == 1:
            return self._fall_back(run, messages, reply)
        return Command(
            update={"sleep": run, "sleep_messages": [*messages, reply]},
            goto="sleep_tools" if wants_tools else "sleep_commit",
        )

    def _after_text(
        self, run: RunState, messages: list[BaseMessage], reply: AIMessage
    ) -> Command[str]:
        """Stage a tagged-text reply; ask once for a repair when part of it was unusable."""
        round_ = stage_text_reply(
            transitions.staged_of(run), reply.text, transitions.evidence_of(run)
        )
        run = transitions.after_text_reply(run, round_)
        page = run["page"]
        assert page is not None
        history: list[BaseMessage] = [*messages, reply]
        if (
            round_.parsed.problems
            and not page["repaired"]
            and page["steps"] < self._config.max_sleep_steps
        ):
            run = transitions.after_repair_request(run)
            repair = round_.parsed.repair_prompt(round_.staged.blocks())
            history.append(HumanMessage(repair))
            return Command(update={"sleep": run, "sleep_messages": history}, goto="sleep")
        return Command(update={"sleep": run, "sleep_messages": history}, goto="sleep_commit")

    def _fall_back(
        self, run: RunState, messages: list[BaseMessage], reply: AIMessage
    ) -> Command[str]:
        """AUTO: the page's first reply made no tool call, so ask for the text format."""
        self._text_runs_left = self._config.text_fallback_runs
        logger.warning(
            "the sleep model answered a tool prompt with no tool call: run %s writes memory "
            "as tagged text, and so do the next %d runs before tools are tried again",
            run["run_id"],
            self._config.text_fallback_runs,
        )
        staged = transitions.staged_of(run)
        already = stage_text_reply(staged, reply.text, transitions.evidence_of(run))
        if already.accepted and already.parsed.well_formed:
            # The model wrote the blocks as tagged text unasked: take them as they are.
            run = transitions.after_text_reply(transitions.fall_back_to_text(run), already)
            return Command(
                update={"sleep": run, "sleep_messages": [*messages, reply]}, goto="sleep_commit"
            )
        return self._ask_in_text(run, [*messages, reply])

    def _ask_in_text(self, run: RunState, history: list[BaseMessage]) -> Command[str]:
        """Ask for the open page again, fresh, in the text format (budget allowing)."""
        page = run["page"]
        assert page is not None
        if page["steps"] >= self._config.max_sleep_steps:
            return Command(update={"sleep": run, "sleep_messages": history}, goto="sleep_commit")
        staged = transitions.staged_of(run)
        run = transitions.fall_back_to_text(run)
        # A fresh conversation in the text format: the tool prompt and the reply that
        # ignored it would only pull a small model back to writing tool calls.
        fresh = _text_messages(list(staged.base.values()), page["transcript"], page["count"])
        return Command(update={"sleep": run, "sleep_messages": fresh}, goto="sleep")

    def _finish(self, run: RunState) -> Command[str]:
        run = {**run, "done": True, "page": None}
        return Command(
            update={
                "sleep": run,
                "sleep_result": transitions.result_of(run),
                "sleep_request": None,
                "sleep_messages": [],
            },
            goto=END,
        )

    def _record(self, run: RunState) -> RunRecord | None:
        """The run's record for the store, once it has read something."""
        if not run["pages"]:
            return None
        result = transitions.result_of(run)
        return RunRecord(
            run_id=run["run_id"],
            scope=run["scope"],
            thread_id=run["thread_id"],
            reason=run["reason"],
            outcome=SleepOutcome(result["outcome"]),
            started_at=run["started_at"],
            finished_at=iso(self._clock()),
            messages=run["processed"],
            pages=run["pages"],
            steps=run["steps"],
            usage=Usage.from_dict(run["usage"]),
            diffs=tuple(BlockDiff.from_dict(diff) for diff in result["diffs"]),
            conflicts=tuple(map(Conflict.from_dict, run["conflicts"])),
            error=_last_error(run),
        )

    def _commit_args(self, run: RunState) -> tuple[SleepOutcome, dict[str, Any]]:
        page = run["page"]
        assert page is not None
        outcome = transitions.page_outcome(page, self._config.max_sleep_steps)
        failure = None if outcome.processed else transitions.failure_text(outcome)
        attempt = PageAttempt(
            first=page["first"],
            last=page["last"]["seq"],
            failure=failure,
            limit=self._config.sleep_retries + 1,
            retry=run["span"] is not None,
        )
        return outcome, {
            "run_id": run["run_id"],
            "phase": "sleep",
            "reason": run["reason"],
            "at": iso(self._clock()),
            "thread_id": run["thread_id"],
            "allow_partial": run["attempt"] >= self._config.max_commit_retries,
            "watermark": LogEntry.from_dict(page["last"]),
            "sleep_usage": Usage.from_dict(run["uncommitted_usage"]),
            "page": attempt,
        }

    def _after_commit(
        self, run: RunState, outcome: SleepOutcome, committed: CommitOutcome
    ) -> tuple[Command[str], RunRecord | None]:
        if not outcome.processed:
            transitions.warn_unprocessed(
                run, outcome, committed.attempts, self._config.sleep_retries + 1
            )
        run, more = transitions.after_commit(
            run,
            outcome=outcome,
            committed=committed.committed,
            diffs=committed.diffs,
            conflicts=committed.conflicts,
            failed_page=committed.failed_page,
        )
        if more:
            return Command(update={"sleep": run, "sleep_messages": []}, goto="sleep"), None
        return self._finish(run), self._record(run)

    # --- think, then write ---------------------------------------------------------

    def _thinks(self, entries: Sequence[LogEntry], evidence: PageEvidence) -> bool:
        """Whether this page gets a reasoning pass (see :class:`SleepThinking`)."""
        mode = self._config.sleep_thinking
        if mode is SleepThinking.NEVER or not evidence.learned_labels:
            return False
        return mode is SleepThinking.ALWAYS or any(entry.role == "context" for entry in entries)

    def _think(
        self, where: RunTarget, run: RunState, entries: Sequence[LogEntry]
    ) -> Flow[RunState]:
        """The reasoning pass: ``sleep_samples`` free-text samples, agreed, staged as lines.

        A sample whose reply cannot be read is left out; any other model error
        ends the run as it would in the edit round. When no sample concluded
        anything readable, one more is asked for, sampled, before the page goes
        to the edit round: that round costs many times one sample, and is where
        the 1.5B model restated a context with a wrong total (the held-out garden
        context of ``benchmarks/real_model_eval.py``), while the same reasoning
        prompt, asked again by hand, worked the total out twice.
        """
        messages = _think_messages(entries, transitions.page_transcript(run))
        texts: list[str] = []
        usage = Usage()
        for sample in self._think_models:
            model = self._tagged(sample, where, run, "sleepagent:sleep-think")
            reply = yield from _readable_reply(model, messages)
            if reply is None:
                continue
            usage += Usage.of_message(reply)
            texts.append(message_text(reply))
        lines = agreed_lines(texts)
        if all(read_notes(text).empty for text in texts):
            model = self._tagged(self._think_again_model, where, run, "sleepagent:sleep-think")
            reply = yield from _readable_reply(model, messages)
            if reply is not None:
                usage += Usage.of_message(reply)
                texts.append(message_text(reply))
                lines = agreed_lines(texts[-1:])
        staged = _stage_learned(transitions.staged_of(run), lines, transitions.evidence_of(run))
        return transitions.after_thinking(run, usage, staged, texts)

    # --- the fact pass ---------------------------------------------------------------

    def _facts_label(self, run: RunState) -> str | None:
        """The block a fact pass writes this page's user facts to, or None for no pass.

        A pass runs under ``UserFacts.EXTRACT`` on a page where the user spoke, into
        the first writable ``FACTS`` block; not when the user spoke about how the
        assistant should behave (the edit round may change the persona then).
        """
        evidence = transitions.evidence_of(run)
        if self._config.user_facts is not UserFacts.EXTRACT or not evidence.said.strip():
            return None
        if evidence.asks_the_assistant:
            return None
        blocks = transitions.staged_of(run).blocks()
        return next(
            (b.label for b in blocks if b.role is BlockRole.FACTS and not b.read_only), None
        )

    def _extract_facts(
        self, where: RunTarget, run: RunState, label: str, entries: Sequence[LogEntry]
    ) -> Flow[RunState]:
        """The fact pass: the model lists facts in plain text, code adds them line by line.

        The user's messages go ``FACTS_MESSAGES_PER_CALL`` at a time, each call shown
        the block as the calls before left it. The pass concludes the page when
        every call answered with a list (or "nothing new"): what the checks refused
        from a list is not a fact to store, and an edit round would cost far more
        to reach the same. A call whose reply cannot be read, or a line the block
        has no room for, leaves the page to the edit round (which shows the model
        why an edit was refused, and can rewrite the block to make room). With
        the archive on, code makes that room instead (``sleep/archive.py``).
        """
        evidence = transitions.evidence_of(run)
        staged = transitions.staged_of(run)
        users = [entry for entry in entries if entry.role == "user"]
        usage, accepted, concluded = Usage(), 0, True
        archive, archived = self._config.archive_facts > 0, list[str]()
        for start in range(0, len(users), FACTS_MESSAGES_PER_CALL):
            part = users[start : start + FACTS_MESSAGES_PER_CALL]
            # Shown dated: a fact the model copies then keeps its time when it is read.
            chunk = "\n".join(said_text(entry, dated=True) for entry in part)
            messages = _facts_messages(evidence, _unquoted(chunk), staged.block(label).value)
            model = self._tagged(self._facts_model, where, run, "sleepagent:sleep-facts")
            reply = yield from _readable_reply(model, messages)
            if reply is None:
                concluded = False
                continue
            usage += Usage.of_message(reply)
            found = read_fact_lines(message_text(reply))
            concluded = concluded and found.readable
            lines = prepared_facts(found.lines, part)
            result = stage_facts(staged, label, lines, evidence, archive=archive)
            staged, accepted = result.staged, accepted + result.accepted
            archived.extend(result.archived)
            concluded = concluded and not result.full
        if accepted or concluded:
            return transitions.after_facts(run, usage, staged, accepted=accepted, archived=archived)
        return transitions.after_facts(run, usage, None, accepted=0)

    def _archive(self, where: RunTarget, run: RunState, at: str) -> Flow[None]:
        """Write the lines the page moved out of the facts block to the scope's archive.

        Before the block is committed: a line is in the archive before it leaves
        the block, so a commit that fails after this loses nothing (the line is in
        both, and a turn shows it once). The run holds the scope's run lock, so no
        other archive write and no ``forget`` of the scope runs meanwhile.
        """
        lines = transitions.archived_of(run)
        if not lines:
            return
        index = recall_index_for(where.blocks.store)
        held = yield from call(index.rows, where.scope.key, [ARCHIVE_THREAD])
        rows = archive_rows(where.scope, lines, held=held, at=at)
        yield from call(index.add, rows)

    def _index(self, where: RunTarget, entries: Sequence[LogEntry]) -> Flow[None]:
        """Add the page's messages to the scope's recall index (recall on only).

        Here, off the user's path, every message a sleep run reads is indexed
        once (a page read again adds nothing: rows are keyed by their log position).
        """
        if not self._config.recall_messages:
            return
        rows = rows_of(where.scope, where.identity.thread_id, entries)
        if rows:
            yield from call(recall_index_for(where.blocks.store).add, rows)

    # --- sleep node: one flow, driven sync or async (see sleepagent._twins) ----

    def step(self, state: SleepAgentState) -> Flow[Command[str]]:
        """One model call; reads the next page first when none is open."""
        where = self._where()
        run = self._current(state, where)
        messages: list[BaseMessage] = list(state.get("sleep_messages") or [])
        if run["page"] is None:
            blocks, entries, watermark, head = yield from call(
                where.blocks.read_page,
                where.scope,
                where.identity.thread_id,
                max_messages=self._config.page_messages,
                max_chars=self._config.page_chars,
                span=self._span(run),
            )
            if not entries or self._too_little(run, watermark, head):
                return self._finish({**run, "watermark": watermark})
            yield from self._index(where, entries)
            run, messages = self._open_page(run, blocks, entries, watermark, head)
            if self._thinks(entries, transitions.evidence_of(run)):
                run = yield from self._think(where, run, entries)
            facts = self._facts_label(run)
            if facts is not None and not transitions.commit_ready(
                run, self._config.max_sleep_steps
            ):
                run = yield from self._extract_facts(where, run, facts, entries)
            if transitions.commit_ready(run, self._config.max_sleep_steps):
                # A page a pass concluded on: nothing is left for an edit round.
                return Command(
                    update={"sleep": run, "sleep_messages": messages}, goto="sleep_commit"
                )
        reply: BaseMessage | Exception
        try:
            with model_errors("sleep"):
                reply = yield from call(self._model_for(where, run).invoke, messages)
        except ModelCallError as failed:
            if not is_malformed_reply(failed.cause):
                raise
            reply = failed
        return self._after_model(run, messages, reply)

    # --- sleep_tools node (no I/O) ---------------------------------------------

    def tools(self, state: SleepAgentState) -> Command[str]:
        """Apply the model's tool calls to the staged copy."""
        run = as_run(_open_run(state))
        messages = list(state["sleep_messages"])
        reply = messages[-1]
        if not isinstance(reply, AIMessage):
            raise TypeError(f"sleep_tools expects an AI message last, got {type(reply).__name__}")
        # Every refusal goes back to the model as its tool result: a model that
        # calls tools reads why, and corrects the call within its step budget.
        round_ = run_tool_calls(
            transitions.staged_of(run), reply, evidence=transitions.evidence_of(run)
        )
        run = transitions.after_tools(run, round_)
        ready = transitions.commit_ready(run, self._config.max_sleep_steps)
        return Command(
            update={"sleep": run, "sleep_messages": [*messages, *round_.replies]},
            goto="sleep_commit" if ready else "sleep",
        )

    # --- sleep_commit node -----------------------------------------------------

    def commit(self, state: SleepAgentState) -> Flow[Command[str]]:
        """Commit the page's edits and advance the watermark, atomically."""
        where = self._where()
        run = as_run(_open_run(state))
        outcome, args = self._commit_args(run)
        yield from self._archive(where, run, args["at"])
        committed = yield from call(
            where.blocks.commit, where.scope, transitions.staged_of(run), **args
        )
        command, record = self._after_commit(run, outcome, committed)
        if record is not None:
            yield from call(where.blocks.put_run, where.scope, record)
        return command


def _readable_reply(
    model: Runnable[Any, BaseMessage], messages: list[BaseMessage]
) -> Flow[BaseMessage | None]:
    """One plain-text pass call: its reply, or None when the reply could not be read.

    Any other model error ends the run, as it would in the edit round.
    """
    try:
        with model_errors("sleep"):
            return (yield from call(model.invoke, messages))
    except ModelCallError as failed:
        if not is_malformed_reply(failed.cause):
            raise
        return None


def _unquoted(text: str) -> str:
    """``text`` with no triple quote, which would end the quoted part of the fact prompt."""
    return text.replace('"""', '"')


def _with_notes(transcript: str, blocks: Sequence[MemoryBlock], entries: Sequence[LogEntry]) -> str:
    """The rendered page, followed by where its kind of content belongs (by block role)."""
    writable = [block for block in blocks if not block.read_only]
    learned = next((b.label for b in writable if b.role is BlockRole.LEARNED), None)
    facts = next((b.label for b in writable if b.role is BlockRole.FACTS), None)
    roles = {entry.role for entry in entries}
    notes = []
    if "context" in roles and learned is not None:
        notes.append(prompts.SLEEP_CONTEXT_NOTE.format(label=learned))
    if facts is not None and "user" in roles:
        notes.append(prompts.SLEEP_USER_FACTS_NOTE.format(label=facts))
    elif facts is not None and "context" in roles:
        # A 1.5B model copied a context document into the user's block.
        notes.append(prompts.SLEEP_CONTEXT_ONLY_NOTE.format(label=facts))
    if any(entry.speaker or entry.said_at for entry in entries):
        notes.append(prompts.SLEEP_DATED_SPEAKERS_NOTE)
    return "\n\n".join([transcript, *notes])


def _facts_messages(evidence: PageEvidence, said: str, known: str) -> list[BaseMessage]:
    """A fact-pass call: the messages ``said``, beside the facts already ``known``.

    A page of named speakers is shown without the known facts: the 1.5B model
    copied them back instead of reading the messages (sessions 4 to 14 of a long
    conversation added nothing), and code drops repeats anyway. A user's page
    shows them, so that a changed fact can be written as the new one.
    """
    if evidence.speakers:
        prompt = prompts.SLEEP_FACTS_SPEAKERS_PROMPT.format(
            speakers=" and ".join(evidence.speakers), said=said
        )
        return [SystemMessage(prompts.SLEEP_FACTS_SPEAKERS_SYSTEM_PROMPT), HumanMessage(prompt)]
    notes = prompts.SLEEP_FACTS_NOTES.format(notes=_unquoted(known)) if known.strip() else ""
    prompt = prompts.SLEEP_FACTS_PROMPT.format(said=said, notes=notes)
    return [SystemMessage(prompts.SLEEP_FACTS_SYSTEM_PROMPT), HumanMessage(prompt)]


def _writable_on_page(blocks: Sequence[MemoryBlock], evidence: PageEvidence) -> list[MemoryBlock]:
    """``blocks``, with every block but the learned ones read-only on a page of context alone.

    Context given ahead of questions (``add_context``) says nothing about the user,
    and small models copy it into the user's block (or a speaker's profile into the
    persona) instead of working it out. Shown read-only, those blocks are not
    offered, and an edit to them is refused with the place to write instead. The
    flag lives only in the page's working copy: a commit writes values onto the
    stored blocks, never this flag.
    """
    if not evidence.context_only or not evidence.learned_labels:
        return list(blocks)
    return [
        block
        if block.label in evidence.learned_labels
        else dataclasses.replace(block, read_only=True)
        for block in blocks
    ]


def _think_messages(entries: Sequence[LogEntry], transcript: str) -> list[BaseMessage]:
    """The reasoning pass's prompt: the context material alone, or the conversation."""
    material = [entry.text for entry in entries if entry.role == "context"]
    if material and len(material) == len(entries):
        prompt = prompts.SLEEP_THINK_CONTEXT_PROMPT.format(material="\n\n".join(material))
    else:
        prompt = prompts.SLEEP_THINK_CHAT_PROMPT.format(transcript=transcript)
    return [SystemMessage(prompts.SLEEP_THINK_SYSTEM_PROMPT), HumanMessage(prompt)]


def _stage_learned(
    staged: StagedMemory, lines: Sequence[str], evidence: PageEvidence
) -> StagedMemory | None:
    """``lines`` added to the first writable learned block, checked; None when none fit.

    Lines that would take the block over its limit are left out, newest first:
    a learned context is never cut to make room (its history would keep it, but
    the next answer would not).
    """
    writable = [label for label in evidence.learned_labels if not staged.block(label).read_only]
    if not lines or not writable:
        return None
    label = writable[0]
    for keep in range(len(lines), 0, -1):
        edit = InsertEdit(label, "\n".join(lines[:keep]))
        try:
            reviewed = review_edit(staged.block(label), edit, evidence)
            return staged.stage(reviewed.edit)[0]
        except BlockLimitError:
            continue
        except MemoryEditError as error:  # nothing new (every line already there)
            logger.info("the reasoning pass added nothing to %r: %s", label, error)
            return None
    logger.warning("the reasoning pass's results do not fit block %r: none were kept", label)
    return None


def _text_messages(blocks: Sequence[MemoryBlock], transcript: str, count: int) -> list[BaseMessage]:
    return [
        SystemMessage(prompts.SLEEP_TEXT_SYSTEM_PROMPT),
        HumanMessage(text_page_prompt(blocks, transcript, count)),
    ]


def _open_run(state: SleepAgentState) -> dict[str, Any]:
    run = state.get("sleep")
    if run is None or run.get("page") is None:
        raise RuntimeError("no sleep run page is open: start a run with a sleep_request input")
    return run


def _last_error(run: RunState) -> str | None:
    outcome = transitions.run_outcome(run["outcomes"])
    return None if outcome.processed else transitions.failure_text(outcome)


def _brief(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 300 else text[:297] + "..."
