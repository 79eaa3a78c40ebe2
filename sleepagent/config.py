"""Configuration: one frozen, keyword-only dataclass and its policy enums."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sleepagent.errors import ConfigurationError
from sleepagent.memory.blocks import DEFAULT_BLOCKS, MemoryBlock, validate_declarations

__all__ = ["ScopePolicy", "SleepConfig", "SleepEditMode", "SleepThinking", "UserFacts"]


class ScopePolicy(enum.Enum):
    """Who owns the memory blocks a conversation reads and the sleep-time agent writes."""

    AUTO = "auto"
    """The user across all their threads when a ``user_id`` is given, else the thread."""
    THREAD = "thread"
    """Always the thread: each conversation has its own blocks."""
    USER = "user"
    """Always the user; a call without ``user_id`` is an error."""


class SleepEditMode(enum.Enum):
    """How the sleep-time agent writes its edits."""

    TOOLS = "tools"
    """Memory tools (``memory_replace`` / ``insert`` / ``rethink`` / ``finish``). Calls a
    model wrote as JSON in its text are recovered when they validate."""
    TEXT = "text"
    """No tools: the model answers with each changed block written whole between its
    tags (``<human>...</human>``); a malformed answer gets one repair round."""
    AUTO = "auto"
    """Tools first. When a page's first reply carries no tool call at all (a call written
    as JSON in the text counts as one), that page and the rest of the run use the text
    format, and so do the next ``text_fallback_runs`` runs of the agent; then tools are
    tried again. A refused edit is always sent back to a tool-calling model as its tool
    result, never a reason to leave the tools. Works with tool-calling models and with
    models that call tools unreliably."""


class SleepThinking(enum.Enum):
    """Which transcript pages get a reasoning pass before memory is written.

    The pass is free text with no tools (see :mod:`sleepagent.sleep.thinking`): the
    model works out what is likely to be asked and the answers, and code writes the
    results into the learned-context block.
    """

    CONTEXT = "context"
    """Pages of context given ahead of questions (``add_context``): the paper's setting,
    where a context page needs no edit round at all once the pass has concluded."""
    ALWAYS = "always"
    """Chat pages too: the pass runs before the edit round that records user facts."""
    NEVER = "never"
    """No reasoning pass: the edit round alone writes memory."""


class UserFacts(enum.Enum):
    """How the sleep-time agent records what the user says about themselves (``FACTS`` blocks).

    See :mod:`sleepagent.sleep.facts`.
    """

    EDIT = "edit"
    """The edit round: the model edits the block itself, with the memory tools or as
    tagged text, and every edit passes the consolidation checks."""
    EXTRACT = "extract"
    """The default. A fact pass first: the model lists the new or changed facts in plain
    text, one per line, and code adds each line through the same checks (a correction
    replaces the fact it corrects; a relative time is dated from the day it was said).
    The edit round runs only when the pass gave nothing usable, or the user spoke about
    how the assistant should behave (the persona). A small model records more facts this
    way, at a fraction of the edit round's sleep-time tokens."""


@dataclass(frozen=True, kw_only=True)
class SleepConfig:
    """How the primary agent and the sleep-time agent behave.

    All fields are keyword-only and validated on construction.
    """

    blocks: Sequence[MemoryBlock] = DEFAULT_BLOCKS
    """Blocks a new memory scope starts with, in the order they are rendered."""

    scope: ScopePolicy = ScopePolicy.AUTO
    """Which memory scope a call reads and writes (see :class:`ScopePolicy`)."""

    max_sleep_steps: int = 10
    """Model calls the sleep-time agent may make per transcript page."""

    page_messages: int = 50
    """Most transcript messages shown to the sleep-time agent in one page."""

    page_chars: int = 20_000
    """Most transcript characters in one page (a longer single message is still shown whole)."""

    max_commit_retries: int = 2
    """Times a page is redone on fresh memory when its edits no longer apply."""

    history_messages: int | None = 40
    """Most recent conversation messages sent to the primary model; ``None`` sends all.

    Older turns reach the model through the memory blocks the sleep-time agent writes.
    """

    state_messages: int | None = 40
    """Most recent messages a chat thread keeps in its graph state; ``None`` keeps all.

    By default the state holds what the model is sent (``history_messages``).
    After each answered turn, older messages are removed from the checkpointed state
    (the cut falls on a user message, so tool calls stay with their results), which
    keeps every checkpoint, and so every turn, the same size however long the
    conversation grows. The whole transcript stays in the store's thread log, which
    is what the sleep-time agent reads. Code that reads the graph state directly sees
    only this window. Must be at least ``history_messages``.
    """

    max_message_chars: int | None = 32_000
    """Longest user message a turn accepts, in characters; ``None`` accepts any length.

    A longer message is refused with :class:`~sleepagent.MessageTooLongError` before any
    model call or write, in ``chat``, ``chat_stream`` and a graph input's new user
    messages. 32,000 characters (about 8,000 tokens) is far more than anyone types, and
    keeps one turn from filling the model's window or the database: a message is
    stored in the thread's log and its checkpoints, and a 1 MB one made an 8.4 MB
    database in one turn. ``None`` is for callers that bound their input themselves.
    """

    max_context_chars: int | None = 200_000
    """Longest text ``add_context`` accepts, in characters; ``None`` accepts any length.

    A limit of its own, because context is a document given ahead of questions and
    is rightly longer than a chat message. It is still bounded: a context entry is
    shown whole on its sleep-time page (and, with ``show_raw_context``, in every chat
    prompt), so 200,000 characters (about 50,000 tokens) keeps it within one prompt of
    a 128K-token model. Split a longer document into several ``add_context`` calls.
    """

    sleep_edit_mode: SleepEditMode = SleepEditMode.AUTO
    """How the sleep-time agent edits memory (see :class:`SleepEditMode`)."""

    sleep_thinking: SleepThinking = SleepThinking.CONTEXT
    """Which pages get a reasoning pass before memory is written (see :class:`SleepThinking`)."""

    sleep_think_tokens: int = 1024
    """Token budget of each reasoning sample: the sleep-time effort, the paper's axis for
    models without a reasoning setting of their own."""

    sleep_samples: int = 1
    """Independent reasoning samples per page, combined by agreement: a result most
    samples share is kept, a disagreement is written down as uncertain. Every sample's
    tokens count in the sleep phase."""

    sleep_sample_temperature: float | None = 0.7
    """Sampling temperature of every reasoning sample after the first (identical samples
    cannot disagree); ``None`` keeps the model's own. The first sample is greedy
    (temperature 0): alone, it measured best, and on a tie its value wins."""

    user_facts: UserFacts = UserFacts.EXTRACT
    """How facts the user states about themselves are recorded (see :class:`UserFacts`)."""

    text_fallback_runs: int = 20
    """AUTO: runs of the agent that keep the text format after the sleep model answered
    a tool prompt with no tool call; tools are then tried again."""

    chat_memory_tools: bool = False
    """Give the primary agent the memory-editing tools too (same commit path)."""

    max_chat_steps: int = 5
    """Model calls the primary agent may make in one turn when it has memory tools."""

    show_raw_context: bool = False
    """Show context added with ``add_context`` to the primary agent as well as
    the learned context (the paper's released harness does this)."""

    recall_messages: int = 0
    """Earlier messages recalled into each turn's system prompt; 0 turns recall off.

    With recall on, each turn searches the memory scope's earlier messages (every
    message a sleep run has read, and every imported one) with the words of the
    user's message, using the database's own full-text search (FTS5 on SQLite,
    ``tsvector`` on PostgreSQL), and shows up to this many of the best matches,
    oldest first, in a section of the system prompt. It costs one query per turn;
    indexing happens in sleep runs and imports, never in a turn. Off, a turn makes
    no extra query and a sleep run no extra write.
    """

    recall_chars: int = 4_000
    """Most characters of recalled text in one prompt (about 1,000 tokens), per section.

    A recalled message that would pass it is left out, so the section stays bounded
    however long the messages were (the best match alone is cut to fit). Archived
    facts (``archive_facts``) have a section and a budget of this size of their own.
    """

    archive_facts: int = 0
    """Archived facts recalled into each turn's system prompt; 0 turns the archive off.

    With the archive on, a fact pass that finds the user's facts block full moves
    the block's oldest lines to the memory scope's archive (until the block is at
    most three quarters full) instead of leaving the page to the model to make
    room, which small models do by dropping facts. Each turn then searches the
    archive with the words of the user's message, in the same full-text index and
    the same one query as ``recall_messages``, and shows up to this many matching
    facts, oldest first, in a section of its own. The block keeps the newest facts;
    a correction of an archived fact is written to the block, which the prompt
    presents as the newer. Off, a full block is left to the edit round.
    """

    system_prompt: str | None = None
    """Your bot's own instructions, placed before the memory blocks."""

    idle_seconds: float = 30.0
    """Quiet time after a turn before sleep-time compute runs; each new turn restarts it."""

    max_wait_turns: int | None = None
    """Run after this many turns without one, even if the user never goes quiet."""

    max_wait_seconds: float | None = None
    """Run at most this long after the first turn not yet covered, even without a quiet period."""

    min_new_messages: int = 1
    """Skip a due run while fewer new messages than this are waiting (they stay pending)."""

    max_concurrent_sleeps: int = 32
    """Scheduled sleep runs (of different memory scopes) that may execute at once.

    The idle scheduler enforces it; ``sleep()`` called by hand is not counted."""

    turn_precedence_seconds: float = 0.5
    """Longest one step of a sleep run waits for the agent's turns in flight; 0 turns it off.

    Turns go first: before each model call and each commit, a sleep run waits while
    the agent is answering a turn (``chat``, ``chat_stream``), so on a busy process
    sleep-time work takes the gaps between turns rather than the turns' CPU (asyncio
    has no priorities, and a step of a run costs about as much as a turn). The wait
    ends once no turn is in flight, or after this many seconds however many turns
    follow, so a due run still starts within this long and each of its later steps
    likewise: sleep work is delayed, never starved. A turn never waits for it, and
    closing the agent ends every wait at once. A graph from ``build_graph`` yields
    only to the turns passed to it as ``turns=``.
    """

    sleep_retries: int = 3
    """Times a failed scheduled run is retried before it is left for the next turn."""

    retry_backoff_seconds: float = 5.0
    """Delay before the first retry; it doubles with each further retry."""

    block_labels: tuple[str, ...] = field(init=False, repr=False)

    @property
    def uses_recall_index(self) -> bool:
        """Whether turns search the recall index: recall or the archive is on."""
        return bool(self.recall_messages or self.archive_facts)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        validate_declarations(self.blocks)
        object.__setattr__(self, "block_labels", tuple(b.label for b in self.blocks))
        if not isinstance(self.scope, ScopePolicy):
            raise ConfigurationError(
                f"scope must be a ScopePolicy, got {self.scope!r}; "
                "use ScopePolicy.AUTO, ScopePolicy.THREAD or ScopePolicy.USER"
            )
        if not isinstance(self.sleep_edit_mode, SleepEditMode):
            raise ConfigurationError(
                f"sleep_edit_mode must be a SleepEditMode, got {self.sleep_edit_mode!r}; "
                "use SleepEditMode.AUTO, SleepEditMode.TOOLS or SleepEditMode.TEXT"
            )
        if not isinstance(self.sleep_thinking, SleepThinking):
            raise ConfigurationError(
                f"sleep_thinking must be a SleepThinking, got {self.sleep_thinking!r}; use "
                "SleepThinking.CONTEXT, SleepThinking.ALWAYS or SleepThinking.NEVER"
            )
        temperature = self.sleep_sample_temperature
        if temperature is not None and (
            not isinstance(temperature, int | float) or temperature < 0
        ):
            raise ConfigurationError(
                f"sleep_sample_temperature must be 0 or more, or None, got {temperature!r}"
            )
        if self.recall_messages < 0:
            raise ConfigurationError(
                f"recall_messages must be 0 (off) or more, got {self.recall_messages}"
            )
        _require_positive("recall_chars", self.recall_chars)
        if self.archive_facts < 0:
            raise ConfigurationError(
                f"archive_facts must be 0 (off) or more, got {self.archive_facts}"
            )
        for name in ("sleep_think_tokens", "sleep_samples", "text_fallback_runs"):
            _require_positive(name, getattr(self, name))
        for name in ("max_sleep_steps", "page_messages", "page_chars", "max_chat_steps"):
            _require_positive(name, getattr(self, name))
        if self.max_commit_retries < 0:
            raise ConfigurationError(
                f"max_commit_retries must be 0 or more, got {self.max_commit_retries}"
            )
        if self.history_messages is not None:
            _require_positive("history_messages", self.history_messages)
        if self.state_messages is not None:
            _require_positive("state_messages", self.state_messages)
            if self.history_messages is not None and self.state_messages < self.history_messages:
                raise ConfigurationError(
                    f"state_messages ({self.state_messages}) must be at least history_messages "
                    f"({self.history_messages}): the model is sent messages from the state"
                )
        for name in ("max_message_chars", "max_context_chars"):
            if getattr(self, name) is not None:
                _require_positive(name, getattr(self, name))
        for name in ("min_new_messages", "max_concurrent_sleeps"):
            _require_positive(name, getattr(self, name))
        if self.max_wait_turns is not None:
            _require_positive("max_wait_turns", self.max_wait_turns)
        if not isinstance(self.sleep_retries, int) or self.sleep_retries < 0:
            raise ConfigurationError(f"sleep_retries must be 0 or more, got {self.sleep_retries!r}")
        bound = self.turn_precedence_seconds
        if not isinstance(bound, int | float) or not 0 <= bound < math.inf:
            # An endless bound would let a steady stream of turns starve sleep work.
            raise ConfigurationError(
                f"turn_precedence_seconds must be seconds >= 0 (0 turns it off), got {bound!r}"
            )
        for name in ("idle_seconds", "max_wait_seconds", "retry_backoff_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigurationError(f"{name} must be seconds >= 0, got {value!r}")


def _require_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
