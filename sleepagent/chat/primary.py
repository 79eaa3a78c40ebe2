"""The primary agent: answers the user from memory rendered into its system prompt.

It is on the user's path, so it does the least it can: one batched store read,
one model call, one batched store write that logs the turn for the sleep-time
agent. It has no memory-writing tools unless ``chat_memory_tools`` is set;
then its edits go through the same staged commit as the sleep-time agent's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.graph import END
from langgraph.types import Command

from sleepagent._twins import Flow, call
from sleepagent.config import SleepConfig
from sleepagent.errors import ModelCallError
from sleepagent.graph.context import RunTarget, current_target, iso
from sleepagent.graph.state import SleepAgentState
from sleepagent.memory.blockstore import CommitOutcome, TurnRead
from sleepagent.memory.recall import RecallRow, chosen, chosen_facts, query_terms
from sleepagent.memory.render import render_system_prompt
from sleepagent.memory.sizes import require_within_limit
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.storable import require_storable, storable
from sleepagent.memory.transcript import entries_from_messages, message_text
from sleepagent.models import model_errors
from sleepagent.sleep.consolidation import PageEvidence
from sleepagent.sleep.toolrecovery import memory_tool_args, recover_tool_calls
from sleepagent.sleep.tools import ToolRound, memory_tool_schemas, run_tool_calls
from sleepagent.store.recallindex import recall_index_for
from sleepagent.usage import Usage

__all__ = ["PrimaryAgent", "trim_history", "unusable", "window_removals"]

_CHAT_TOOLS = ("memory_replace", "memory_insert", "memory_rethink")
_EVIDENCE_MESSAGES = 50
"""The user's latest messages a primary agent's memory edit may be grounded in."""
_CHAT_TOOL_ARGS = memory_tool_args(finish=False)
_UNUSABLE_RETRIES = 1
"""How often a reply with nothing to show is asked for again before the turn fails."""
_UNUSABLE_ADVICE = (
    "The model was asked twice and nothing was logged. Send the message again; if this "
    "repeats, the model does not follow this prompt: try another model"
)

NodeResult = dict[str, Any] | Command[str]
"""What the ``agent`` node returns: a state update, or one with where to go next."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recalled:
    """What a turn's search of the recall index found to show, each part oldest first."""

    messages: Sequence[RecallRow] = ()
    facts: Sequence[RecallRow] = ()


class PrimaryAgent:
    """The ``agent`` and ``agent_tools`` nodes, each written once as a flow.

    Args:
        model: The chat model.
        config: Behaviour settings.
        clock: Source of the current POSIX time.
        after_turn: The node that follows an answered turn (``END`` unless the
            graph schedules sleep runs on LangGraph Server).

    """

    def __init__(
        self,
        model: BaseChatModel,
        config: SleepConfig,
        clock: Callable[[], float],
        *,
        after_turn: str = END,
    ) -> None:
        self._config = config
        self._after_turn = after_turn
        self._clock = clock
        self._plain = model
        self._with_tools: Runnable[Any, BaseMessage] | None = None
        if config.chat_memory_tools:
            self._with_tools = model.bind_tools(memory_tool_schemas(finish=False))

    # --- decisions (pure) ------------------------------------------------------

    def _turn(self) -> RunTarget:
        return current_target(self._config)

    def _offers_tools(self, state: SleepAgentState) -> bool:
        """Whether this step's request offers the memory tools (never on the last step)."""
        steps_taken = sum(1 for _ in _this_turn_ai(state["messages"]))
        return self._with_tools is not None and steps_taken < self._config.max_chat_steps - 1

    def _model_for(self, state: SleepAgentState) -> Runnable[Any, BaseMessage]:
        model = self._with_tools if self._offers_tools(state) else self._plain
        assert model is not None
        return model

    @staticmethod
    def _call_config(turn: RunTarget) -> RunnableConfig:
        """The model call's run name, tags and metadata, merged into the node's config.

        Passed to ``invoke`` rather than bound with ``with_config``, which builds a
        binding object per turn.
        """
        return {
            "run_name": "sleepagent:chat",
            "tags": ["sleepagent", "sleepagent:chat"],
            "metadata": {
                "sleepagent_phase": "chat",
                "thread_id": turn.identity.thread_id,
                "memory_scope": turn.scope.key,
            },
        }

    def _prompt(
        self,
        state: SleepAgentState,
        blocks: Sequence[Any],
        contexts: Sequence[str],
        found: Recalled = Recalled(),
    ) -> list[BaseMessage]:
        system = render_system_prompt(
            blocks,
            instructions=self._config.system_prompt,
            contexts=contexts,
            recalled=found.messages,
            archived=found.facts,
        )
        history = trim_history(state["messages"], self._config.history_messages)
        return [SystemMessage(system), *history]

    def _recall_query(self, state: SleepAgentState) -> tuple[tuple[str, ...], list[str | None]]:
        """The search terms of the newest user message, and the ids the model is sent anyway.

        Returns:
            ``((), [])`` when recall is off or the message has no searchable word:
            then the turn makes no query at all.

        """
        if not self._config.uses_recall_index:
            return (), []
        newest = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
        terms = query_terms(message_text(newest)) if newest is not None else ()
        if not terms:
            return (), []
        history = trim_history(state["messages"], self._config.history_messages)
        return terms, [message.id for message in history]

    def _recall(self, state: SleepAgentState, turn: RunTarget, read: TurnRead) -> Flow[Recalled]:
        """Earlier messages and archived facts matching the newest user message (one query)."""
        terms, shown = self._recall_query(state)
        if not terms:
            return Recalled()
        index = recall_index_for(turn.blocks.store)
        config = self._config
        # Ask for as many more as the model is sent anyway: leaving those out still
        # leaves recall_messages.
        limit = config.recall_messages + config.archive_facts + len(shown)
        found = yield from call(index.search, turn.scope.key, terms, limit=limit)
        messages = chosen(
            found, shown=shown, limit=config.recall_messages, max_chars=config.recall_chars
        )
        if not config.archive_facts:
            return Recalled(messages=messages)
        known = "\n".join(block.value for block in read.blocks)
        facts = chosen_facts(
            found, known=known, limit=config.archive_facts, max_chars=config.recall_chars
        )
        return Recalled(messages=messages, facts=facts)

    def _reply(self, state: SleepAgentState, message: BaseMessage) -> AIMessage:
        """The model's reply as the turn keeps it.

        Tool calls in a request that offered no tools are dropped (logged), never
        run: a model may name a tool it was not given. When tools were offered,
        calls written as JSON in the text are recovered (see
        :mod:`sleepagent.sleep.toolrecovery`). A refusal (OpenAI's ``refusal``
        field, empty content) is the reply's text. Text no backend can store
        is replaced, so logging the reply cannot fail after the model was paid.
        """
        reply = _with_id(message)
        if self._offers_tools(state):
            # Models that write a memory call as JSON in their answer: run it when it
            # names a chat tool and validates, as the sleep-time agent does.
            reply = recover_tool_calls(reply, _CHAT_TOOL_ARGS)
        elif reply.tool_calls or reply.invalid_tool_calls:
            names = [call["name"] for call in reply.tool_calls]
            logger.warning(
                "the chat model called %s although no tools were offered; the calls were "
                "ignored and its text served as the reply",
                ", ".join(names) or "a tool",
            )
            reply = reply.model_copy(update={"tool_calls": [], "invalid_tool_calls": []})
        refusal = reply.additional_kwargs.get("refusal")
        if isinstance(refusal, str) and refusal.strip() and not reply.text.strip():
            # The model's answer, in a field of its own: the user should read it.
            reply = reply.model_copy(update={"content": refusal})
        text = reply.content
        if isinstance(text, str) and storable(text) != text:
            reply = reply.model_copy(update={"content": storable(text)})
        return reply

    def _admit(self, state: SleepAgentState, read: TurnRead) -> None:
        """Refuse the turn's new user messages when one is too long or cannot be stored.

        ``chat()`` checks its message before the graph runs; this covers a graph
        input with user messages sent to the compiled graph directly, before the
        model is paid and before the log is written (without it, text with a NUL
        was logged on SQLite and failed the log write on PostgreSQL with a driver
        error, after the model call).
        """
        what = "a user message of the graph input"
        for message in _unlogged(state["messages"], read):
            if isinstance(message, HumanMessage):
                text = message_text(message)
                limit = self._config.max_message_chars
                require_within_limit(text, limit, what=what, setting="max_message_chars")
                require_storable(text, what=what)

    @staticmethod
    def _wants_tools(reply: AIMessage) -> bool:
        return bool(reply.tool_calls or reply.invalid_tool_calls)

    def _log_texts(
        self, state: SleepAgentState, read: TurnRead, reply: AIMessage
    ) -> list[tuple[str, str, str | None]]:
        unlogged = _unlogged(state["messages"], read)
        entries = entries_from_messages([*unlogged, reply], first_seq=1, at="")
        return [(entry.role, entry.text, entry.message_id) for entry in entries]

    def _turn_usage(
        self, state: SleepAgentState, reply: AIMessage, discarded: Sequence[AIMessage]
    ) -> Usage:
        return Usage.of_messages([*_this_turn_ai(state["messages"]), *discarded, reply])

    def _start_of_turn(self, state: SleepAgentState) -> dict[str, Any]:
        # A turn starts when the newest message is the user's: reset per-turn data
        # (only when there is some: an unchanged channel costs the checkpoint nothing).
        starts = isinstance(state["messages"][-1], HumanMessage)
        return {"turn_diffs": []} if starts and state.get("turn_diffs") else {}

    def _request(
        self,
        state: SleepAgentState,
        turn: RunTarget,
        read: TurnRead,
        found: Recalled,
    ) -> tuple[Runnable[Any, BaseMessage], list[BaseMessage], RunnableConfig]:
        """The model to call, its prompt and its call config."""
        prompt = self._prompt(state, read.blocks, read.contexts, found)
        return self._model_for(state), prompt, self._call_config(turn)

    def _answered(
        self,
        state: SleepAgentState,
        turn: RunTarget,
        read: TurnRead,
        reply: AIMessage,
        discarded: Sequence[AIMessage],
    ) -> tuple[NodeResult, dict[str, Any] | None]:
        """The node's result, and the log append to make (None: a tool step).

        Once the turn is answered, messages older than ``state_messages`` leave the
        state (see :func:`window_removals`); the log keeps them. ``discarded``
        replies were asked for again; only their usage is kept.
        """
        update = {**self._start_of_turn(state), "messages": [reply]}
        if self._wants_tools(reply):
            return Command(update=update, goto="agent_tools"), None
        log = {
            "scope": turn.scope,
            "thread_id": turn.identity.thread_id,
            "texts": self._log_texts(state, read, reply),
            "at": iso(self._clock()),
            "head": read.head,
            "logged_until": read.logged_until,
            "logged_ids": read.logged_ids,
            "chat_usage": read.chat_usage + self._turn_usage(state, reply, discarded),
        }
        removed = window_removals([*state["messages"], reply], self._config.state_messages)
        update = {**update, "messages": [*removed, reply]}
        return self._then(update), log

    def _then(self, update: dict[str, Any]) -> NodeResult:
        """An answered turn ends (a plain update), or goes on to ``after_turn``."""
        return update if self._after_turn == END else Command(update=update, goto=self._after_turn)

    # --- agent node: one flow, driven sync or async (see sleepagent._twins) -------

    def step(self, state: SleepAgentState) -> Flow[NodeResult]:
        """Answer (or call a memory tool); log the turn once answered."""
        turn = self._turn()
        read = yield from call(
            turn.blocks.read_turn,
            turn.scope,
            turn.identity.thread_id,
            with_contexts=self._config.show_raw_context,
        )
        self._admit(state, read)
        found = yield from self._recall(state, turn, read)
        model, prompt, call_config = self._request(state, turn, read, found)
        # A reply with nothing to show is asked for once more (a sampled model often
        # answers the second time), then the turn fails: bounded by _UNUSABLE_RETRIES.
        discarded: list[AIMessage] = []
        while True:
            with model_errors("chat"):
                message = yield from call(model.invoke, prompt, call_config)
            reply = self._reply(state, message)
            problem = unusable(message, reply)
            if problem is None:
                break
            if len(discarded) == _UNUSABLE_RETRIES:
                raise ModelCallError(
                    phase="chat", cause=ValueError(problem), advice=_UNUSABLE_ADVICE
                )
            discarded.append(reply)
        update, log = self._answered(state, turn, read, reply, discarded)
        if log is not None:
            yield from call(turn.blocks.append, **log)
        return update

    # --- agent_tools node --------------------------------------------------------

    def _apply(self, state: SleepAgentState, staged: StagedMemory) -> ToolRound:
        reply = state["messages"][-1]
        if not isinstance(reply, AIMessage):
            raise TypeError(f"agent_tools expects an AI message last, got {type(reply).__name__}")
        # The primary agent's edits pass the same checks as the sleep-time agent's:
        # grounded in what the user said in the thread, no repeats, no guesses.
        said = [m for m in state["messages"] if isinstance(m, HumanMessage)]
        entries = entries_from_messages(said[-_EVIDENCE_MESSAGES:], first_seq=1, at="")
        evidence = PageEvidence.of(entries, staged.blocks())
        return run_tool_calls(staged, reply, allowed=_CHAT_TOOLS, evidence=evidence)

    def _commit_args(self, turn: RunTarget, round_: ToolRound) -> dict[str, Any]:
        return {
            "scope": turn.scope,
            "staged": round_.staged,
            "run_id": _run_id(),
            "phase": "chat",
            "at": iso(self._clock()),
            "thread_id": turn.identity.thread_id,
        }

    def _tools_update(
        self, state: SleepAgentState, round_: ToolRound, outcome: CommitOutcome
    ) -> dict[str, Any]:
        replies = list(round_.replies)
        if outcome.conflicts and replies:
            # Rare: a sleep commit landed between this node's read and its commit.
            note = "; ".join(conflict.reason for conflict in outcome.conflicts)
            last = replies[-1]
            replies[-1] = last.model_copy(
                update={"content": f"{last.content}\nNot saved, memory changed meanwhile: {note}"}
            )
        diffs = [diff.to_dict() for diff in outcome.diffs]
        return {"messages": replies, "turn_diffs": [*state.get("turn_diffs", []), *diffs]}

    def tools(self, state: SleepAgentState) -> Flow[dict[str, Any]]:
        """Apply the primary agent's memory tool calls and commit them at once."""
        turn = self._turn()
        blocks = yield from call(turn.blocks.load, turn.scope)
        round_ = self._apply(state, StagedMemory.of(blocks))
        outcome = yield from call(turn.blocks.commit, **self._commit_args(turn, round_))
        return self._tools_update(state, round_, outcome)


def trim_history(messages: Sequence[AnyMessage], keep: int | None) -> list[AnyMessage]:
    """The most recent ``keep`` messages, cut at a user message so tool calls stay paired."""
    if keep is None or len(messages) <= keep:
        return list(messages)
    start = len(messages) - keep
    while start < len(messages) and not isinstance(messages[start], HumanMessage):
        start += 1
    if start == len(messages):
        # No user message in the window: keep from the last one, however long.
        humans = [i for i, message in enumerate(messages) if isinstance(message, HumanMessage)]
        start = humans[-1] if humans else 0
    return list(messages[start:])


def window_removals(messages: Sequence[AnyMessage], keep: int | None) -> list[RemoveMessage]:
    """What leaves the state so that at most ``keep`` messages stay (cut as :func:`trim_history`).

    The newest user message and what follows it always stay, so a long tool round
    is never cut in half.
    """
    kept = len(trim_history(messages, keep))
    return [
        RemoveMessage(id=message.id) for message in messages[: len(messages) - kept] if message.id
    ]


def unusable(message: BaseMessage, reply: AIMessage) -> str | None:
    """Why ``reply`` can neither answer the user nor go on to a tool step (None: it can).

    Args:
        message: The model's message as it arrived.
        reply: The same message as the turn keeps it (see ``PrimaryAgent._reply``):
            calls it may not run are gone, a refusal is its text.

    Returns:
        What was wrong, for the error, or ``None`` when the reply has text or a tool call.

    """
    if reply.tool_calls or reply.invalid_tool_calls or reply.text.strip():
        return None
    arrived = message if isinstance(message, AIMessage) else reply
    names = [call["name"] for call in arrived.tool_calls]
    names += [call.get("name") or "(no name)" for call in arrived.invalid_tool_calls]
    if names:
        return (
            "the chat model replied with no text, only tool calls that cannot run "
            f"(not offered, or arguments that are not a JSON object): {', '.join(names)}"
        )
    return "the chat model replied with no text and no tool call"


def _this_turn_ai(messages: Sequence[AnyMessage]) -> list[AIMessage]:
    """AI messages after the newest user message."""
    found: list[AIMessage] = []
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage):
            found.append(message)
    return found[::-1]


def _unlogged(messages: Sequence[AnyMessage], read: TurnRead) -> Sequence[AnyMessage]:
    """The messages the thread's log does not hold yet, oldest first.

    The log head names the newest message it holds, and every message its last
    turn logged; what follows the newest of them the state holds is new. A process
    killed after a turn's log write and before its checkpoint leaves the state with
    that turn's user message and without its reply: the next turn starts after the
    user message, instead of logging it a second time. When the state holds none of
    them (a turn the log kept but the thread dropped, as when a reply stream fails
    after logging), the new messages are this turn's: from the run of user messages
    that opens it.
    """
    if read.head == 0:
        return messages
    logged = {read.logged_until, *read.logged_ids} - {None}
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].id in logged:
            return messages[index + 1 :]
    start = len(messages)
    while start > 0 and not isinstance(messages[start - 1], HumanMessage):
        start -= 1
    while start > 0 and isinstance(messages[start - 1], HumanMessage):
        start -= 1
    return messages[start:]


def _with_id(message: BaseMessage) -> AIMessage:
    if not isinstance(message, AIMessage):
        raise TypeError(f"the chat model returned {type(message).__name__}, expected AIMessage")
    return message if message.id else message.model_copy(update={"id": f"run-{uuid.uuid4()}"})


def _run_id() -> str:
    return str(uuid.uuid4())
