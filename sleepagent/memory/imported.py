"""Earlier history brought into a thread: each record checked, then what it becomes.

A bot that adopts the library usually has a conversation history already, and
``import_messages`` logs it without calling a model. Every decision is here, with
no I/O: whether each record can be imported (all are checked before the first
write, so a bad one leaves nothing half done), and what a message becomes in the
thread's log (:class:`~sleepagent.memory.transcript.LogText`, read by the
sleep-time agent) and in the chat thread's checkpoint (a LangChain message, read
by the chat model on the next turn).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from sleepagent.errors import ConfigurationError, MessageRecordError
from sleepagent.memory.storable import require_storable
from sleepagent.memory.transcript import LogText, message_text

__all__ = [
    "RECORD_KEYS",
    "ImportedMessage",
    "MessageLike",
    "Timestamp",
    "graph_message",
    "log_text",
    "read_messages",
]

Timestamp: TypeAlias = datetime | str
"""When a message was said: a ``datetime``, or text as the source writes it."""

ROLES = ("user", "assistant")

RECORD_KEYS = frozenset({"role", "speaker", "text", "content", "timestamp"})
"""The keys a mapping record may have (``content`` is another name for ``text``)."""


@dataclass(frozen=True, kw_only=True)
class ImportedMessage:
    """One message of a conversation's earlier history.

    Attributes:
        text: What was said.
        role: ``"user"`` (the default: a person speaking) or ``"assistant"`` (the
            bot's own earlier replies).
        speaker: Who said it, when the history names its speakers (a group chat,
            two people talking); the sleep-time agent sees the name, and the chat
            model sees the text after it (``"Ines: ..."``).
        timestamp: When it was said: a ``datetime``, or text as the source writes
            it (``"10:15 am on 3 March, 2024"``); the import's ``session_date`` when
            not given. The sleep-time agent sees it beside the message.

    """

    text: str
    role: str = "user"
    speaker: str | None = None
    timestamp: Timestamp | None = None


MessageLike: TypeAlias = ImportedMessage | Mapping[str, Any] | BaseMessage
"""What ``import_messages`` takes per message: an :class:`ImportedMessage`, a mapping
with :data:`RECORD_KEYS` (a line of the CLI's JSONL), or a LangChain ``HumanMessage``
(its ``name`` is the speaker) or ``AIMessage``."""


def read_messages(
    records: Iterable[MessageLike], *, session_date: Timestamp | None = None
) -> list[ImportedMessage]:
    """Every record as an :class:`ImportedMessage`, its time filled in from ``session_date``.

    Raises:
        MessageRecordError: For the first record that cannot be imported, naming its
            index and what is wrong.
        ConfigurationError: When there is no record, or ``session_date`` is unusable.

    """
    default = _when(session_date, "session_date")
    found = []
    for index, record in enumerate(records):
        try:
            message = _one(record)
            found.append(
                ImportedMessage(
                    text=message.text,
                    role=message.role,
                    speaker=message.speaker,
                    timestamp=_when(message.timestamp, "its timestamp") or default,
                )
            )
        except ConfigurationError as error:
            raise MessageRecordError(index, str(error)) from error
    if not found:
        raise ConfigurationError("there are no messages to import: pass at least one")
    return found


def graph_message(message: ImportedMessage, message_id: str) -> HumanMessage | AIMessage:
    """The message as the chat thread's checkpoint holds it, with ``message_id``.

    A named speaker is written before the text: a chat model sees message
    content on every provider, while a message ``name`` is dropped by some and
    refused by others (OpenAI accepts no space in it).
    """
    content = f"{message.speaker}: {message.text}" if message.speaker else message.text
    if message.role == "assistant":
        return AIMessage(content, id=message_id)
    return HumanMessage(content, id=message_id)


def log_text(message: ImportedMessage, message_id: str) -> LogText:
    """The message as the thread's log entry, for the sleep-time agent."""
    said_at = message.timestamp if isinstance(message.timestamp, str) else None
    return LogText(message.role, message.text, message_id, message.speaker, said_at)


# --- one record ------------------------------------------------------------------------


def _one(record: MessageLike) -> ImportedMessage:
    if isinstance(record, ImportedMessage):
        message = record
    elif isinstance(record, BaseMessage):
        message = _of_langchain(record)
    elif isinstance(record, Mapping):
        message = _of_mapping(record)
    else:
        raise ConfigurationError(
            f"a {type(record).__name__} is not a message: pass an ImportedMessage, a "
            "mapping with 'text' (and 'role', 'speaker', 'timestamp'), or a "
            "HumanMessage or AIMessage"
        )
    if message.role not in ROLES:
        raise ConfigurationError(
            f"role {message.role!r} is not one of {', '.join(ROLES)}: use 'user' for a "
            "person (name them with 'speaker') and 'assistant' for the bot's replies"
        )
    if not isinstance(message.text, str) or not message.text.strip():
        raise ConfigurationError("its text is empty: every message needs text")
    if message.speaker is not None:
        if not isinstance(message.speaker, str) or not message.speaker.strip():
            raise ConfigurationError("its speaker must be non-empty text, or left out")
        require_storable(message.speaker, what="its speaker")
    return message


def _of_langchain(record: BaseMessage) -> ImportedMessage:
    if isinstance(record, HumanMessage):
        return ImportedMessage(text=message_text(record), speaker=record.name)
    if isinstance(record, AIMessage):
        if not message_text(record).strip():
            raise ConfigurationError(
                "an AIMessage without text (only tool calls) says nothing to remember: leave it out"
            )
        return ImportedMessage(text=message_text(record), role="assistant")
    raise ConfigurationError(
        f"a {type(record).__name__} cannot be imported: only the conversation's user "
        "and assistant messages (HumanMessage, AIMessage) are history"
    )


def _of_mapping(record: Mapping[str, Any]) -> ImportedMessage:
    unknown = sorted(str(key) for key in record if key not in RECORD_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown field {unknown[0]!r}: a message has {', '.join(sorted(RECORD_KEYS))}"
        )
    if "text" in record and "content" in record:
        raise ConfigurationError("it has both 'text' and 'content': give the text once")
    if "text" not in record and "content" not in record:
        raise ConfigurationError("it has no 'text'")
    text = record.get("text", record.get("content"))
    if not isinstance(text, str):
        raise ConfigurationError(f"its text must be a string, not {type(text).__name__}")
    role = record.get("role", "user")
    speaker = record.get("speaker")
    if not isinstance(role, str):
        raise ConfigurationError(f"its role must be text, not {type(role).__name__}")
    return ImportedMessage(text=text, role=role, speaker=speaker, timestamp=record.get("timestamp"))


def _when(value: object, what: str) -> str | None:
    """A time as the log keeps it: ISO 8601 for a datetime or POSIX seconds, else as written."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    if isinstance(value, str) and value.strip():
        require_storable(value, what=what)
        return value.strip()
    raise ConfigurationError(
        f"{what} must be a datetime, POSIX seconds or non-empty text, not {value!r}"
    )
