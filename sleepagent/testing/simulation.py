"""Multi-turn simulations on virtual time: what the bot learned, and when.

A scenario is a list of steps: :class:`Say` (a scripted user message),
:class:`Ask` (a model playing a persona writes the next message) and
:class:`Wait` (a quiet period, during which the idle timer runs sleep-time
compute). :func:`simulate` plays it against an agent whose scheduler is a
:class:`~sleepagent.scheduling.ManualScheduler`, so an hour of quiet takes
microseconds, and returns the transcript and the timeline of memory versions::

    clock = ManualScheduler()
    with SleepTimeAgent(chat_model, sleep_model=sleep_model, db=None, scheduler=clock) as agent:
        run = simulate(agent, [Say("I'm vegetarian", user="ada"), Wait(60)])
    assert "vegetarian" in run.versions("human", user="ada")[-1].value
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from sleepagent.agent.facades import AsyncSleepTimeAgent, SleepTimeAgent
from sleepagent.errors import ConfigurationError, WrongModeError
from sleepagent.integrations.chatkeys import shared_thread_id
from sleepagent.memory.blockstore import HistoryEntry
from sleepagent.memory.transcript import message_text
from sleepagent.results import ChatResult
from sleepagent.scheduling.manual import ManualScheduler
from sleepagent.scope import Scope

__all__ = [
    "SIMULATED_USER_PROMPT",
    "Ask",
    "MemoryVersion",
    "Say",
    "SimulatedUser",
    "Simulation",
    "Step",
    "Turn",
    "Wait",
    "asimulate",
    "memory_in_prompt",
    "said_in_facts_prompt",
    "simulate",
    "transcript_in_prompt",
]

SIMULATED_USER_PROMPT = """\
You are role-playing a person chatting with an assistant, to test it.
Stay in character. Write only your next message to the assistant: one short chat message,
no quotes, no narration.

Who you are:
{persona}"""
"""System prompt of a :class:`SimulatedUser`; ``{persona}`` is replaced by its persona."""

SIMULATED_USER_OPENING = "(The conversation starts. Write your first message.)"
"""The user-side prompt when a simulated user speaks first."""

_BLOCK = re.compile(
    r'<block label="([^"]+)"[^>]*>\n<description>.*?</description>\n<value>\n(.*?)\n</value>',
    re.DOTALL,
)
_MESSAGE = re.compile(r'<message n="\d+" role="(\w+)"[^>]*>(.*?)</message>', re.DOTALL)
_FACTS_PROMPT = re.compile(
    r'\A(?:The user said:|Part of a conversation between [^\n]*:)\n"""\n(.*?)\n"""', re.DOTALL
)


@dataclass(frozen=True)
class Say:
    """A scripted user message.

    Attributes:
        text: What the user says.
        user: The user's id (their memory scope under the default policy), or none.
        thread: The conversation thread.

    """

    text: str
    user: str | None = None
    thread: str = "main"


@dataclass(frozen=True)
class Wait:
    """A quiet period: virtual time moves on and due sleep runs execute.

    Attributes:
        seconds: How long nobody says anything.

    """

    seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int | float) or self.seconds < 0:
            raise ConfigurationError(f"Wait needs seconds >= 0, got {self.seconds!r}")


class SimulatedUser:
    """A model playing a person, who writes their next message from the conversation so far.

    Args:
        model: Any LangChain chat model (a :class:`~sleepagent.testing.ScriptedChatModel`
            in offline tests).
        persona: Who the person is and what they want, in plain words.
        user: Their user id.
        thread: The conversation thread they talk in.

    """

    def __init__(
        self, model: BaseChatModel, persona: str, *, user: str | None = None, thread: str = "main"
    ) -> None:
        if not persona.strip():
            raise ConfigurationError("a SimulatedUser needs a persona")
        self.model = model
        self.persona = persona
        self.user = user
        self.thread = thread

    def prompt(self, transcript: Sequence[Turn]) -> list[BaseMessage]:
        """The messages sent to the model: the persona, then its own turns seen from its side.

        The roles are swapped (the bot's replies are the model's input), so any
        chat model can play the user.
        """
        messages: list[BaseMessage] = [
            SystemMessage(SIMULATED_USER_PROMPT.format(persona=self.persona)),
            HumanMessage(SIMULATED_USER_OPENING),
        ]
        for turn in transcript:
            if (turn.thread, turn.user) == (self.thread, self.user):
                messages += [AIMessage(turn.said), HumanMessage(turn.reply)]
        return messages

    def next_message(self, transcript: Sequence[Turn]) -> str:
        """The person's next message."""
        return _said(self.model.invoke(self.prompt(transcript)))

    async def anext_message(self, transcript: Sequence[Turn]) -> str:
        """Async :meth:`next_message`."""
        return _said(await self.model.ainvoke(self.prompt(transcript)))


@dataclass(frozen=True)
class Ask:
    """A step where a :class:`SimulatedUser` writes the next message.

    Attributes:
        user: Who speaks.

    """

    user: SimulatedUser


Step = Say | Ask | Wait
"""One step of a scenario."""


@dataclass(frozen=True)
class Turn:
    """One exchange of the transcript.

    Attributes:
        at: Seconds since the simulation started (virtual time).
        thread: The conversation thread.
        user: The user id, if any.
        scope: Key of the memory scope the turn read (e.g. ``user:ada``).
        said: The user's message.
        reply: The bot's answer.

    """

    at: float
    thread: str
    user: str | None
    scope: str
    said: str
    reply: str


@dataclass(frozen=True)
class MemoryVersion:
    """One committed version of a memory block: which, when and why.

    Attributes:
        at: Seconds since the simulation started (virtual time).
        scope: Key of the memory scope.
        label: The block.
        version: The version this commit created.
        value: The block's text at that version.
        reason: Why a sleep run ran (``idle``, ``max_wait``, ...); ``None`` otherwise.
        phase: ``sleep``, ``chat`` or ``user``.
        thread: The conversation the run read, if any.
        run_id: The run that committed it.

    """

    at: float
    scope: str
    label: str
    version: int
    value: str
    reason: str | None
    phase: str
    thread: str | None
    run_id: str


@dataclass(frozen=True)
class Simulation:
    """What happened in a simulation.

    Attributes:
        transcript: Every turn, in order.
        timeline: Every memory version committed in the scopes the turns used,
            ordered by time.
        duration: Virtual seconds the scenario took.

    """

    transcript: tuple[Turn, ...]
    timeline: tuple[MemoryVersion, ...]
    duration: float

    def replies(self, *, user: str | None = None, thread: str | None = None) -> list[str]:
        """The bot's replies, optionally only to ``user`` or in ``thread``."""
        return [
            turn.reply
            for turn in self.transcript
            if (user is None or turn.user == user) and (thread is None or turn.thread == thread)
        ]

    def scope_of(self, user: str) -> str:
        """The memory scope key ``user``'s turns used.

        Raises:
            KeyError: If ``user`` never spoke.

        """
        for turn in self.transcript:
            if turn.user == user:
                return turn.scope
        raise KeyError(f"user {user!r} said nothing in this simulation")

    def versions(
        self, label: str, *, user: str | None = None, scope: str | None = None
    ) -> list[MemoryVersion]:
        """Versions of block ``label``, oldest first; of ``user``'s scope, or of ``scope``."""
        wanted = self.scope_of(user) if user is not None else scope
        return [
            version
            for version in self.timeline
            if version.label == label and (wanted is None or version.scope == wanted)
        ]

    def value_at(self, label: str, at: float, *, user: str | None = None) -> str:
        """The block's text as it stood ``at`` seconds into the simulation (``""`` before any)."""
        value = ""
        for version in self.versions(label, user=user):
            if version.at <= at:
                value = version.value
        return value


def simulate(
    agent: SleepTimeAgent, scenario: Iterable[Step], *, per_user_threads: bool = False
) -> Simulation:
    """Play ``scenario`` against ``agent`` on virtual time.

    Args:
        agent: An open agent created with ``scheduler=ManualScheduler()``.
        scenario: The steps, in order.
        per_user_threads: Give each user their own conversation thread inside
            a shared one (``"general"`` becomes ``"general:ada"``), as the Slack
            and Discord integrations do; see
            :func:`~sleepagent.integrations.shared_thread_id` for why.

    Returns:
        The transcript and the memory timeline.

    Raises:
        ConfigurationError: If the agent's scheduler is not a ``ManualScheduler``.
        WrongModeError: If ``agent`` is an :class:`~sleepagent.AsyncSleepTimeAgent`
            (use :func:`asimulate`).

    """
    if isinstance(agent, AsyncSleepTimeAgent):
        raise WrongModeError("simulate() got an AsyncSleepTimeAgent: use 'await asimulate(...)'")
    clock = _manual_scheduler(agent)
    start = clock.now()
    turns: list[Turn] = []
    scopes: dict[str, Scope] = {}
    for step in scenario:
        if isinstance(step, Wait):
            clock.advance(step.seconds)
            continue
        speaker = _speaker(step, per_user_threads)
        text = step.text if isinstance(step, Say) else step.user.next_message(turns)
        result = agent.chat(text, thread_id=speaker.thread, user_id=speaker.user)
        turns.append(_turn(speaker, text, result, clock.now() - start))
        scopes[result.scope] = Scope.parse(result.scope)
    timeline = [entry for scope in scopes.values() for entry in _histories(agent, scope)]
    return _simulation(turns, timeline, start, clock.now())


async def asimulate(
    agent: AsyncSleepTimeAgent, scenario: Iterable[Step], *, per_user_threads: bool = False
) -> Simulation:
    """Async :func:`simulate`, for an :class:`~sleepagent.AsyncSleepTimeAgent`."""
    if not isinstance(agent, AsyncSleepTimeAgent):
        raise WrongModeError("asimulate() needs an AsyncSleepTimeAgent: use simulate(...)")
    clock = _manual_scheduler(agent)
    start = clock.now()
    turns: list[Turn] = []
    scopes: dict[str, Scope] = {}
    for step in scenario:
        if isinstance(step, Wait):
            await clock.aadvance(step.seconds)
            continue
        speaker = _speaker(step, per_user_threads)
        text = step.text if isinstance(step, Say) else await step.user.anext_message(turns)
        result = await agent.chat(text, thread_id=speaker.thread, user_id=speaker.user)
        turns.append(_turn(speaker, text, result, clock.now() - start))
        scopes[result.scope] = Scope.parse(result.scope)
    timeline = []
    for scope in scopes.values():
        for label in agent.config.block_labels:
            timeline += [(scope, entry) for entry in await agent.blocks.ahistory(scope, label)]
    return _simulation(turns, timeline, start, clock.now())


def memory_in_prompt(messages: Sequence[BaseMessage]) -> dict[str, str]:
    """The memory blocks rendered into a prompt, by label (for scripted models).

    Lets a scripted chat model answer *from its memory*, so a test's assertion
    on the reply shows what the bot knew::

        def reply(messages):
            return f"I know: {memory_in_prompt(messages)['human']}"

    Returns:
        Each block's value, unescaped; empty when the prompt shows no memory.

    """
    for message in messages:
        text = message_text(message)
        if "<memory_blocks>" in text:
            return {label: html.unescape(value) for label, value in _BLOCK.findall(text)}
    return {}


def transcript_in_prompt(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """The transcript page shown to the sleep-time agent, as ``(role, text)`` pairs.

    Lets a scripted sleep model write memory from what was actually said.
    """
    for message in reversed(messages):
        found = _MESSAGE.findall(message_text(message))
        if found:
            return [(role, html.unescape(text)) for role, text in found]
    return []


def said_in_facts_prompt(messages: Sequence[BaseMessage]) -> list[str] | None:
    """The messages a fact-pass prompt shows, one per line; None for any other prompt.

    Lets a scripted sleep model answer the fact pass (``UserFacts.EXTRACT``, the
    default) from what was said, for example with ``"- " + line`` for each line.
    An imported message shows its speaker and time before it (``"Ann 8 May 2023:
    ..."``), and a message of several lines gives several.
    """
    if not messages:
        return None
    found = _FACTS_PROMPT.match(message_text(messages[-1]))
    return found.group(1).splitlines() if found else None


@dataclass(frozen=True)
class _Speaker:
    user: str | None
    thread: str
    """The agent's conversation thread."""
    place: str
    """The thread as the scenario names it."""


def _speaker(step: Say | Ask, per_user_threads: bool) -> _Speaker:
    user, thread = (
        (step.user, step.thread) if isinstance(step, Say) else (step.user.user, step.user.thread)
    )
    return _Speaker(user, shared_thread_id(thread, user) if per_user_threads else thread, thread)


def _turn(speaker: _Speaker, text: str, result: ChatResult, at: float) -> Turn:
    return Turn(at, speaker.place, speaker.user, result.scope, text, result.reply)


def _manual_scheduler(agent: SleepTimeAgent | AsyncSleepTimeAgent) -> ManualScheduler:
    scheduler = agent.scheduler
    if not isinstance(scheduler, ManualScheduler):
        raise ConfigurationError(
            "simulate() runs on virtual time: create the agent with scheduler=ManualScheduler() "
            f"(it has {type(scheduler).__name__})"
        )
    return scheduler


def _histories(agent: SleepTimeAgent, scope: Scope) -> list[tuple[Scope, HistoryEntry]]:
    return [
        (scope, entry)
        for label in agent.config.block_labels
        for entry in agent.blocks.history(scope, label)
    ]


def _simulation(
    turns: list[Turn], entries: list[tuple[Scope, HistoryEntry]], start: float, end: float
) -> Simulation:
    versions = [
        MemoryVersion(
            at=datetime.fromisoformat(entry.at).timestamp() - start,
            scope=scope.key,
            label=entry.label,
            version=entry.version,
            value=entry.value,
            reason=entry.reason,
            phase=entry.phase,
            thread=entry.thread_id,
            run_id=entry.run_id,
        )
        for scope, entry in entries
    ]
    versions.sort(key=lambda version: (version.at, version.scope, version.label, version.version))
    return Simulation(tuple(turns), tuple(versions), end - start)


def _said(reply: BaseMessage) -> str:
    text = message_text(reply).strip()
    if not text:
        raise ConfigurationError("the simulated user's model returned an empty message")
    return text
