"""Exceptions raised by sleepagent.

Every error derives from :class:`SleepAgentError`, and also from the builtin
that fits it, so callers can catch either. Messages say what went wrong and
how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BlockLimitError",
    "ConfigurationError",
    "LayoutVersionError",
    "MemoryConflictError",
    "MemoryEditError",
    "MessageRecordError",
    "MessageTooLongError",
    "ModelCallError",
    "ReadOnlyBlockError",
    "ScopeBusyError",
    "ScopeMismatchError",
    "ScriptExhaustedError",
    "SleepAgentError",
    "StorageError",
    "UnknownBlockError",
    "WrongModeError",
]


class SleepAgentError(Exception):
    """Base class of every error raised by sleepagent."""


class ConfigurationError(SleepAgentError, ValueError):
    """A configuration value or argument is invalid."""


class LayoutVersionError(ConfigurationError):
    """The database was written by a newer sleepagent, whose store layout this one cannot read.

    Attributes:
        found: The layout version stored in the database.
        supported: The newest layout this release reads and writes.

    """

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"this database has store layout {found}, written by a newer sleepagent; this "
            f"release reads layouts up to {supported}. Upgrade sleepagent (pip install -U "
            "sleepagent) in every process that opens this database"
        )
        self.found = found
        self.supported = supported


class ScopeBusyError(SleepAgentError, RuntimeError):
    """Another process is running sleep-time compute for this memory scope.

    Raised only to the scheduler, which sets the run again a little later.
    """

    def __init__(self, scope: str) -> None:
        super().__init__(f"a sleep run for {scope} is already running in another process")
        self.scope = scope


class ScopeMismatchError(ConfigurationError):
    """A thread already holds the conversation of another memory scope.

    A thread's log is read by the sleep runs of one scope; letting a second
    scope write to it would put one user's messages into another's memory.

    Attributes:
        thread_id: The thread.
        bound_to: Key of the scope the thread belongs to.
        requested: Key of the scope the call asked for.

    """

    def __init__(self, *, thread_id: str, bound_to: str, requested: str) -> None:
        super().__init__(
            f"thread {thread_id!r} belongs to memory scope {bound_to}, not {requested}. "
            f"{_likely_fix(bound_to)}. {_other_fix(requested)}. A thread serves one memory "
            "scope, or its sleep runs would read one scope's messages into another's memory."
        )
        self.thread_id = thread_id
        self.bound_to = bound_to
        self.requested = requested


class MessageRecordError(ConfigurationError):
    """A message given to ``import_messages`` cannot be imported; nothing was written.

    Every message is checked before the first write, so one bad record leaves the
    thread, its log and its pending work as they were.

    Attributes:
        index: The record's position in what was passed, from 0.
        reason: What is wrong with it, and how to fix it.

    """

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"message {index}: {reason}; nothing was imported")
        self.index = index
        self.reason = reason


class MessageTooLongError(ConfigurationError):
    """A message or context text is longer than the configured limit; nothing was stored.

    A :class:`ConfigurationError` (so also a ``ValueError``), like the other refusals
    of bad input, so code that catches those catches this too.

    Attributes:
        length: Characters in the refused text.
        limit: The limit it exceeded.
        setting: The :class:`~sleepagent.SleepConfig` field that sets the limit.

    """

    def __init__(self, *, what: str, length: int, limit: int, setting: str) -> None:
        super().__init__(
            f"{what} is {length:,} characters long, over the limit of {limit:,} "
            f"(SleepConfig.{setting}); nothing was stored and no model was called. Shorten "
            f"or split it, or raise SleepConfig.{setting} (None accepts any length)"
        )
        self.length = length
        self.limit = limit
        self.setting = setting


def _likely_fix(bound_to: str) -> str:
    """The call that most likely was meant: the thread's own user id, or none."""
    kind, _, owner = bound_to.partition(":")
    if kind == "user":
        return f"If this is {owner}'s conversation, pass user_id={owner!r}, as when it began"
    return (
        "If this is the same conversation, pass no user_id, as when it began (or "
        "SleepConfig(scope=ScopePolicy.THREAD) for one memory shared by everyone in a thread)"
    )


def _other_fix(requested: str) -> str:
    kind, _, who = requested.partition(":")
    if kind == "user":
        return (
            f"Otherwise give {who}'s conversations thread ids of their own (in a shared "
            "channel: sleepagent.integrations.shared_thread_id(place, user))"
        )
    return "Otherwise use another thread id for this conversation"


class WrongModeError(SleepAgentError, TypeError):
    """A sync API was used from async code, or the other way round."""


class MemoryEditError(SleepAgentError, ValueError):
    """A memory edit was refused; the block is unchanged.

    The message is written for the model that asked for the edit: it says what
    was wrong and what to do instead.

    Attributes:
        label: The block the edit targeted.

    """

    def __init__(self, message: str, *, label: str) -> None:
        super().__init__(message)
        self.label = label


class UnknownBlockError(MemoryEditError, KeyError):
    """The edit names a block that does not exist in this memory scope."""

    def __str__(self) -> str:
        # KeyError would otherwise wrap the message in quotes.
        return str(self.args[0])


class BlockLimitError(MemoryEditError):
    """The edit would make a block longer than its character limit.

    Attributes:
        size: Length the block would have had after the edit.
        limit: The block's character limit.

    """

    def __init__(self, message: str, *, label: str, size: int, limit: int) -> None:
        super().__init__(message, label=label)
        self.size = size
        self.limit = limit


class ReadOnlyBlockError(MemoryEditError, PermissionError):
    """The edit targets a read-only block."""


class MemoryConflictError(SleepAgentError, RuntimeError):
    """A compare-and-set write found the block at another version; nothing was written.

    Read the block again (``memory()``), decide, and write with its new version.

    Attributes:
        label: The block.
        expected_version: The version the caller expected.
        current_version: The version the block is at.

    """

    def __init__(self, *, label: str, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"block {label!r} is at version {current_version}, not {expected_version}: "
            "someone wrote it meanwhile. Read it again and write with "
            f"expected_version={current_version}, or without expected_version to write anyway"
        )
        self.label = label
        self.expected_version = expected_version
        self.current_version = current_version


class ModelCallError(SleepAgentError, RuntimeError):
    """A model request failed after the client's bounded retries.

    Nothing was committed: a failed turn logs nothing, a failed sleep run keeps
    the pages it already committed and none of the failing page.

    Attributes:
        phase: ``"chat"`` (the primary agent) or ``"sleep"`` (the sleep-time agent).
        cause: The client's error (rate limit, server error, timeout, connection),
            or a ``ValueError`` saying why a reply that arrived cannot be used.

    """

    def __init__(self, *, phase: str, cause: BaseException, advice: str | None = None) -> None:
        timed_out = isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__
        advice = advice or (
            "The server did not answer in time: a local model on a CPU can need minutes "
            "for a long prompt. Raise the timeout: ModelOptions(timeout=SECONDS), or "
            "--timeout SECONDS for sleepagent chat and sleepagent bench"
            if timed_out
            else "Check the server and key, or raise the timeout and retries "
            "(ModelOptions(timeout=, max_retries=); in the CLI --timeout and --max-retries)"
        )
        super().__init__(
            f"the {phase} model call failed: {type(cause).__name__}: "
            f"{str(cause).rstrip('.')}. {advice}"
        )
        self.phase = phase
        self.cause = cause


class ScriptExhaustedError(SleepAgentError, AssertionError):
    """A scripted test model was called more often than its script allows."""


class StorageError(SleepAgentError, OSError):
    """The database could not be opened or reached.

    Attributes:
        target: The SQLite path or the PostgreSQL URL (password hidden).

    """

    def __init__(self, message: str, *, target: str) -> None:
        super().__init__(message)
        self.target = target
