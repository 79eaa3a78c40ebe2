"""The sleep-time agent: reads new transcript pages and rewrites memory on a staged copy.

One run walks the thread's log from its watermark, a page at a time. For each
page the model loops with the memory tools (``sleep`` ⇄ ``sleep_tools``) up to
the step budget; then ``sleep_commit`` writes the page's edits and advances the
watermark in one atomic batch. A commit that finds a block changed under edits
that no longer apply redoes the page on fresh memory, up to
``max_commit_retries`` times, and on the last try commits what merges and
reports the rest as conflicts.

Run progress lives in graph state as plain data (the ``sleep`` channel), so the
run can be inspected, and a crashed run simply starts again from the watermark.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langgraph.graph import END
from langgraph.types import Command

from sleepagent import prompts
from sleepagent.blocks import MemoryBlock
from sleepagent.config import SleepConfig
from sleepagent.context import RunTarget, current_target, iso
from sleepagent.memory import CommitOutcome
from sleepagent.render import render_memory, render_transcript_page
from sleepagent.results import BlockDiff
from sleepagent.scheduling.policy import TIMER_REASONS, too_few_new_messages
from sleepagent.staging import StagedMemory
from sleepagent.state import SleepAgentState
from sleepagent.tools import memory_tool_schemas, run_tool_calls
from sleepagent.transcript import LogEntry
from sleepagent.usage import Usage

__all__ = ["SleepTimeRunner", "merge_diffs"]


class SleepTimeRunner:
    """The ``sleep``, ``sleep_tools`` and ``sleep_commit`` nodes.

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
        self._model = model.bind_tools(memory_tool_schemas(finish=True))

    # --- decisions (pure) ------------------------------------------------------

    def _where(self) -> RunTarget:
        return current_target(self._config)

    def _current(self, state: SleepAgentState, where: RunTarget) -> dict[str, Any]:
        """The run in progress, or a new one when the request is new."""
        request = state.get("sleep_request") or {}
        run = state.get("sleep")
        request_id = request.get("run_id")
        if run is None or run["done"] or (request_id and run["run_id"] != request_id):
            return {
                "run_id": request_id or where.run_id or str(uuid.uuid4()),
                "reason": request.get("reason", "manual"),
                "thread_id": where.identity.thread_id,
                "scope": where.scope.key,
                "steps": 0,
                "pages": 0,
                "processed": 0,
                "watermark": 0,
                "attempt": 0,
                "diffs": [],
                "conflicts": [],
                "usage": Usage().to_dict(),
                "uncommitted_usage": Usage().to_dict(),
                "page": None,
                "done": False,
            }
        return dict(run)

    def _too_little(self, run: dict[str, Any], watermark: int, head: int) -> bool:
        """Whether a timer-started run should skip: fewer new messages than ``min_new_messages``.

        The local scheduler checks this before it starts a run; checking here too
        gives LangGraph Server's delayed runs the same rule. Runs asked for by
        hand or for context always proceed.
        """
        timed = run["reason"] in {reason.value for reason in TIMER_REASONS}
        return timed and run["pages"] == 0 and too_few_new_messages(head - watermark, self._config)

    def _open_page(
        self,
        run: dict[str, Any],
        blocks: Sequence[MemoryBlock],
        entries: Sequence[LogEntry],
        head: int,
    ) -> tuple[dict[str, Any], list[BaseMessage]]:
        page = {
            "last": entries[-1].to_dict(),
            "count": len(entries),
            "head": head,
            "steps": 0,
            "staged": StagedMemory.of(blocks).to_dict(),
        }
        prompt = prompts.SLEEP_PAGE_PROMPT.format(
            memory=render_memory(blocks),
            count=len(entries),
            transcript=render_transcript_page(entries, total=head),
            steps=self._config.max_sleep_steps,
        )
        messages: list[BaseMessage] = [
            SystemMessage(prompts.SLEEP_SYSTEM_PROMPT),
            HumanMessage(prompt),
        ]
        return {**run, "page": page}, messages

    def _model_for(self, where: RunTarget, run: dict[str, Any]) -> Runnable[Any, BaseMessage]:
        return self._model.with_config(
            run_name="sleepagent:sleep",
            tags=["sleepagent", "sleepagent:sleep"],
            metadata={
                "sleepagent_phase": "sleep",
                "sleepagent_run_id": run["run_id"],
                "thread_id": where.identity.thread_id,
                "memory_scope": where.scope.key,
            },
        )

    def _after_model(
        self, run: dict[str, Any], messages: list[BaseMessage], reply: BaseMessage
    ) -> Command[str]:
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the sleep model returned {type(reply).__name__}, expected AIMessage")
        usage = Usage.of_message(reply)
        page = {**run["page"], "steps": run["page"]["steps"] + 1}
        run = {
            **run,
            "page": page,
            "steps": run["steps"] + 1,
            "usage": (Usage.from_dict(run["usage"]) + usage).to_dict(),
            "uncommitted_usage": (Usage.from_dict(run["uncommitted_usage"]) + usage).to_dict(),
        }
        wants_tools = bool(reply.tool_calls or reply.invalid_tool_calls)
        return Command(
            update={"sleep": run, "sleep_messages": [*messages, reply]},
            goto="sleep_tools" if wants_tools else "sleep_commit",
        )

    def _finish(self, run: dict[str, Any]) -> Command[str]:
        run = {**run, "done": True, "page": None}
        result = {
            "run_id": run["run_id"],
            "thread_id": run["thread_id"],
            "scope": run["scope"],
            "reason": run["reason"],
            "diffs": [
                diff.to_dict() for diff in merge_diffs(map(BlockDiff.from_dict, run["diffs"]))
            ],
            "conflicts": run["conflicts"],
            "usage": run["usage"],
            "messages_processed": run["processed"],
            "pages": run["pages"],
            "steps": run["steps"],
            "watermark": run["watermark"],
        }
        return Command(
            update={
                "sleep": run,
                "sleep_result": result,
                "sleep_request": None,
                "sleep_messages": [],
            },
            goto=END,
        )

    def _commit_args(self, run: dict[str, Any]) -> dict[str, Any]:
        page = run["page"]
        return {
            "run_id": run["run_id"],
            "phase": "sleep",
            "reason": run["reason"],
            "at": iso(self._clock()),
            "thread_id": run["thread_id"],
            "allow_partial": run["attempt"] >= self._config.max_commit_retries,
            "watermark": LogEntry.from_dict(page["last"]),
            "sleep_usage": Usage.from_dict(run["uncommitted_usage"]),
        }

    def _after_commit(self, run: dict[str, Any], outcome: CommitOutcome) -> Command[str]:
        page = run["page"]
        if not outcome.committed and outcome.conflicts:
            # Memory changed under edits that no longer apply: redo the page on fresh memory.
            retry = {**run, "attempt": run["attempt"] + 1, "page": None}
            return Command(update={"sleep": retry, "sleep_messages": []}, goto="sleep")
        run = {
            **run,
            "diffs": [*run["diffs"], *(diff.to_dict() for diff in outcome.diffs)],
            "conflicts": [
                *run["conflicts"],
                *(conflict.to_dict() for conflict in outcome.conflicts),
            ],
            "processed": run["processed"] + page["count"],
            "pages": run["pages"] + 1,
            "watermark": page["last"]["seq"],
            "attempt": 0,
            "uncommitted_usage": Usage().to_dict(),
            "page": None,
        }
        if page["last"]["seq"] >= page["head"]:
            return self._finish(run)
        return Command(update={"sleep": run, "sleep_messages": []}, goto="sleep")

    # --- sleep node ------------------------------------------------------------

    def step(self, state: SleepAgentState) -> Command[str]:
        """One model call; reads the next page first when none is open."""
        where = self._where()
        run = self._current(state, where)
        messages: list[BaseMessage] = list(state.get("sleep_messages") or [])
        if run["page"] is None:
            blocks, entries, watermark, head = where.blocks.read_page(
                where.scope,
                where.identity.thread_id,
                max_messages=self._config.page_messages,
                max_chars=self._config.page_chars,
            )
            if not entries or self._too_little(run, watermark, head):
                return self._finish({**run, "watermark": watermark})
            run, messages = self._open_page(run, blocks, entries, head)
        reply = self._model_for(where, run).invoke(messages)
        return self._after_model(run, messages, reply)

    async def astep(self, state: SleepAgentState) -> Command[str]:
        """Async :meth:`step`."""
        where = self._where()
        run = self._current(state, where)
        messages: list[BaseMessage] = list(state.get("sleep_messages") or [])
        if run["page"] is None:
            blocks, entries, watermark, head = await where.blocks.aread_page(
                where.scope,
                where.identity.thread_id,
                max_messages=self._config.page_messages,
                max_chars=self._config.page_chars,
            )
            if not entries or self._too_little(run, watermark, head):
                return self._finish({**run, "watermark": watermark})
            run, messages = self._open_page(run, blocks, entries, head)
        reply = await self._model_for(where, run).ainvoke(messages)
        return self._after_model(run, messages, reply)

    # --- sleep_tools node (no I/O) ---------------------------------------------

    def tools(self, state: SleepAgentState) -> Command[str]:
        """Apply the model's tool calls to the staged copy."""
        run = _open_run(state)
        page = run["page"]
        messages = list(state["sleep_messages"])
        reply = messages[-1]
        if not isinstance(reply, AIMessage):
            raise TypeError(f"sleep_tools expects an AI message last, got {type(reply).__name__}")
        round_ = run_tool_calls(StagedMemory.from_dict(page["staged"]), reply)
        run = {**run, "page": {**page, "staged": round_.staged.to_dict()}}
        out_of_steps = page["steps"] >= self._config.max_sleep_steps
        return Command(
            update={"sleep": run, "sleep_messages": [*messages, *round_.replies]},
            goto="sleep_commit" if round_.finished or out_of_steps else "sleep",
        )

    # --- sleep_commit node -----------------------------------------------------

    def commit(self, state: SleepAgentState) -> Command[str]:
        """Commit the page's edits and advance the watermark, atomically."""
        where = self._where()
        run = _open_run(state)
        staged = StagedMemory.from_dict(run["page"]["staged"])
        outcome = where.blocks.commit(where.scope, staged, **self._commit_args(run))
        return self._after_commit(run, outcome)

    async def acommit(self, state: SleepAgentState) -> Command[str]:
        """Async :meth:`commit`."""
        where = self._where()
        run = _open_run(state)
        staged = StagedMemory.from_dict(run["page"]["staged"])
        outcome = await where.blocks.acommit(where.scope, staged, **self._commit_args(run))
        return self._after_commit(run, outcome)


def _open_run(state: SleepAgentState) -> dict[str, Any]:
    run = state.get("sleep")
    if run is None or run.get("page") is None:
        raise RuntimeError("no sleep run page is open: start a run with a sleep_request input")
    return run


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
