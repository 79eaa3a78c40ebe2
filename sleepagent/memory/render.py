"""Rendering of memory blocks and transcripts into model prompts.

Everything rendered here is deterministic: the same blocks give the same bytes,
so a provider's prompt cache keeps hitting while memory does not change. Text
that comes from users or models is escaped, so it cannot close the section it
sits in and pose as instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from sleepagent import prompts
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.memory.recall import RecallRow
from sleepagent.memory.transcript import LogEntry

__all__ = [
    "escape",
    "render_memory",
    "render_archived",
    "render_recalled",
    "render_system_prompt",
    "render_transcript_page",
]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def escape(text: str) -> str:
    """Escape markup characters so ``text`` cannot open or close a section."""
    return text.translate(_ESCAPES)


def render_block(block: MemoryBlock) -> str:
    """One block as a ``<block>`` element with its label, usage and description."""
    access = ' read_only="true"' if block.read_only else ""
    return (
        f'<block label="{block.label}" chars="{block.chars}/{block.limit}"{access}>\n'
        f"<description>{escape(block.description)}</description>\n"
        f"<value>\n{escape(block.value)}\n</value>\n"
        "</block>"
    )


def render_memory(blocks: Sequence[MemoryBlock]) -> str:
    """All blocks, in the given order, inside one ``<memory_blocks>`` section."""
    inner = "\n".join(render_block(block) for block in blocks)
    return f"<memory_blocks>\n{inner}\n</memory_blocks>"


def render_system_prompt(
    blocks: Sequence[MemoryBlock],
    *,
    instructions: str | None = None,
    contexts: Sequence[str] = (),
    recalled: Sequence[RecallRow] = (),
    archived: Sequence[RecallRow] = (),
) -> str:
    """The primary agent's system prompt.

    The static part (the library's prompt, then the bot's own instructions)
    comes first and the memory blocks after it, so the cacheable prefix stays
    the same across turns. Archived facts and recalled messages, which change
    with every question, come last.
    """
    parts = [prompts.CHAT_SYSTEM_PROMPT]
    if instructions:
        parts.append(instructions)
    parts.append(prompts.CHAT_MEMORY_INTRO)
    parts.append(render_memory(blocks))
    if contexts:
        rendered = "\n".join(f"<context>\n{escape(text)}\n</context>" for text in contexts)
        parts.append(f"{prompts.CHAT_RAW_CONTEXT_INTRO}\n<raw_context>\n{rendered}\n</raw_context>")
    if archived:
        parts.append(f"{prompts.CHAT_ARCHIVE_INTRO}\n{render_archived(archived)}")
    if recalled:
        parts.append(f"{prompts.CHAT_RECALL_INTRO}\n{render_recalled(recalled)}")
    return "\n\n".join(parts)


def render_archived(rows: Sequence[RecallRow]) -> str:
    """Archived facts, in the given order, inside one ``<archived_facts>`` section.

    Each text is escaped: an archived line cannot close the section.
    """
    facts = "".join(f"\n<fact>{escape(row.text)}</fact>" for row in rows)
    return f"<archived_facts>{facts}\n</archived_facts>"


def render_recalled(rows: Sequence[RecallRow]) -> str:
    """Recalled messages, in the given order, inside one ``<recalled_messages>`` section.

    Each ``<message>`` names who spoke (the speaker an import gave, else the role)
    and when, where known; every attribute and the text are escaped, so a recalled
    message cannot close the section or pose as the library's own markup.
    """
    lines = ["<recalled_messages>"]
    for row in rows:
        found = f'speaker="{escape(row.speaker or row.role)}"'
        if row.when:
            found += f' time="{escape(row.when)}"'
        lines.append(f"<message {found}>{escape(row.text)}</message>")
    lines.append("</recalled_messages>")
    return "\n".join(lines)


def render_transcript_page(entries: Sequence[LogEntry], *, total: int) -> str:
    """A page of the thread log for the sleep-time agent.

    Args:
        entries: The page's entries, oldest first.
        total: Sequence number of the newest entry in the thread, for orientation.

    """
    first, last = entries[0].seq, entries[-1].seq
    lines = [f'<transcript messages="{first}-{last}" of="{total}">']
    for entry in entries:
        lines.append(f"<message {_message_attributes(entry)}>{escape(entry.text)}</message>")
    lines.append("</transcript>")
    return "\n".join(lines)


def _message_attributes(entry: LogEntry) -> str:
    """A message's attributes: its place and role, and who said it when, for imported history.

    Speaker and time are given only where an import recorded them, so a chat
    turn's page renders as it always has; both are escaped like the text.
    """
    found = f'n="{entry.seq}" role="{entry.role}"'
    if entry.speaker is not None:
        found += f' speaker="{escape(entry.speaker)}"'
    if entry.said_at is not None:
        found += f' said_at="{escape(entry.said_at)}"'
    return found
