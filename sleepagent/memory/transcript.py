"""The per-thread log the sleep-time agent reads.

The primary agent appends each turn (the user's message and its reply) to a
log in the store, numbered from 1. The sleep-time agent reads the entries
after the thread's watermark, a page at a time. Keeping this log in the store
(and not only in the chat thread's checkpoints) lets a sleep run execute on its
own companion thread, locally or on LangGraph Server, without touching the
checkpoints of the conversation it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

__all__ = [
    "LogEntry",
    "LogText",
    "Role",
    "entries_from_messages",
    "message_text",
    "take_page",
]

Role = Literal["user", "assistant", "context"]


@dataclass(frozen=True)
class LogEntry:
    """One message of a thread, as the sleep-time agent sees it.

    Attributes:
        seq: Position in the thread's log, from 1.
        role: ``user``, ``assistant``, or ``context`` (text added with ``add_context``).
        text: The message text.
        message_id: Id of the LangChain message it came from, if any.
        at: When it was logged (ISO 8601).
        speaker: Who said it, for imported history with named speakers.
        said_at: When it was said, as the import gave it (imported history only;
            a chat turn is said when it is logged).

    """

    seq: int
    role: Role
    text: str
    message_id: str | None = None
    at: str | None = None
    speaker: str | None = None
    said_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as kept in the store."""
        data: dict[str, Any] = {
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "message_id": self.message_id,
            "at": self.at,
        }
        # Only imported entries carry these: a chat turn's record stays as small as before.
        if self.speaker is not None:
            data["speaker"] = self.speaker
        if self.said_at is not None:
            data["said_at"] = self.said_at
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(
            seq=data["seq"],
            role=data["role"],
            text=data["text"],
            message_id=data.get("message_id"),
            at=data.get("at"),
            speaker=data.get("speaker"),
            said_at=data.get("said_at"),
        )


class LogText(NamedTuple):
    """What a writer hands :meth:`~sleepagent.memory.blockstore.BlockStore.append` per entry.

    A plain ``(role, text, message_id)`` triple is accepted too; the two last
    fields are for imported history.
    """

    role: str
    text: str
    message_id: str | None = None
    speaker: str | None = None
    said_at: str | None = None


def message_text(message: BaseMessage) -> str:
    """The plain text of a message, joining text parts of multimodal content."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def entries_from_messages(
    messages: Sequence[BaseMessage], *, first_seq: int, at: str
) -> list[LogEntry]:
    """Log entries for the user and assistant messages that carry text.

    Tool calls and tool results are left out: what the sleep-time agent needs
    is the conversation, and memory edits already show in the blocks.
    """
    entries: list[LogEntry] = []
    for message in messages:
        text = message_text(message)
        role: Role
        if isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage) and text:
            role = "assistant"
        else:
            continue
        entries.append(
            LogEntry(
                seq=first_seq + len(entries), role=role, text=text, message_id=message.id, at=at
            )
        )
    return entries


def take_page(entries: Sequence[LogEntry], *, max_chars: int) -> list[LogEntry]:
    """The longest prefix of ``entries`` within ``max_chars`` (always at least one)."""
    page: list[LogEntry] = []
    used = 0
    for entry in entries:
        if page and used + len(entry.text) > max_chars:
            break
        page.append(entry)
        used += len(entry.text)
    return page
