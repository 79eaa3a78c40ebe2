"""The tool-free sleep-time format: whole blocks as tagged plain text, both ways.

Many local models and gateways call tools unreliably, but nearly every model can
answer ``<human>Name: Ada</human>``. In this format the sleep-time agent writes
each block it changes in full between its own tags (the paper's own sleep-time
step, ``rethink_memory``, was such whole-block rewrites); blocks it leaves out
stay as they are. :func:`parse_text_edits` turns a reply into
:class:`~sleepagent.memory.blocks.RethinkEdit` values, checked against the blocks as
the run sees them, and names every problem in a message meant for the model, so
one repair round can fix it.

Parsing rules, chosen for what models actually write:

- Text outside block tags (a preamble, a code fence, a closing remark) is
  ignored and kept in :attr:`TextEdits.ignored` for diagnostics.
- Attributes in an opening tag (``<human limit="5000">``) are ignored.
- Inside a value, anything but the block's own closing tag is text: ``<``,
  ``x < 3`` and tags of other names (``<b>``) are kept. The one exception is the
  opening tag of another block, which means the model nested blocks or forgot
  to close one; that is reported, never guessed at.
- The memory shown to the model is escaped (``&lt;``), so values are unescaped
  once after parsing: a user who typed ``</human>`` in the chat cannot close a
  block, and stored text keeps its ``<`` when the model copies it back.
- A reasoning section (``<think>...</think>``) at the top level is skipped whole,
  tags and all: models that think aloud mention block tags there. So is a copy of
  the prompt's own sections (``<transcript>``, ``<message>``), at the top level and
  inside a block's value: small models echo the transcript before they answer, or
  paste it into the user's block.
- A block written with its current value, or with no text at all, is left as it
  is: small models echo every block, and write empty tags for blocks they keep. Such
  an echo does not count as a second version when the block is also rewritten.
- ``<no_changes/>`` says the model chose to change nothing. The prompts do not offer
  it (small models take that way out of any work); a reply that echoes the blocks
  as they are says the same.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sleepagent import prompts
from sleepagent.errors import MemoryEditError
from sleepagent.memory.blocks import MemoryBlock, RethinkEdit
from sleepagent.memory.render import escape
from sleepagent.memory.staging import StagedMemory
from sleepagent.sleep.consolidation import PageEvidence, review_edit

__all__ = [
    "NO_CHANGES_TAG",
    "ProblemKind",
    "TextEdits",
    "TextProblem",
    "TextRound",
    "parse_text_edits",
    "stage_text_reply",
    "text_page_prompt",
    "render_block_catalogue",
    "render_text_memory",
]

NO_CHANGES_TAG = "no_changes"
"""``<no_changes/>``: the model's way to say that no block needs to change."""

_REASONING_TAGS = frozenset({"think", "thinking", "reasoning", "analysis", "scratchpad"})

_ECHOED_TAGS = frozenset(
    {"transcript", "message", "memory_blocks", "block", "raw_context", "context"}
)
"""Sections of the prompt itself: a model that copies the transcript back is echoing
its input, not naming a block, so the section is skipped instead of repaired."""

_TAG = re.compile(
    r"<(?P<close>/)?(?P<name>[A-Za-z_][A-Za-z0-9_-]{0,63})(?:\s[^<>]*?)?\s*(?P<self>/)?>"
)

_UNESCAPE = re.compile(r"&(lt|gt|quot|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "quot": '"', "amp": "&"}


class ProblemKind(enum.Enum):
    """What was wrong with a tagged-text reply."""

    EMPTY_REPLY = "empty_reply"
    """The reply had no text at all."""
    NO_BLOCKS = "no_blocks"
    """The reply had text but no block tag and no ``<no_changes/>``."""
    UNCLOSED = "unclosed"
    """A block was opened and never closed (often a reply cut off by its token limit)."""
    NESTED = "nested"
    """A block was opened inside another one."""
    DUPLICATE = "duplicate"
    """A block was written more than once; none of its versions is used."""
    UNKNOWN_LABEL = "unknown_label"
    """A tagged section names no block of this memory scope."""
    READ_ONLY = "read_only"
    """A read-only block was written with a new value."""
    OVER_LIMIT = "over_limit"
    """A new value is longer than the block's character limit."""
    REFUSED = "refused"
    """A rewrite the consolidation checks refused whole (see its message)."""


@dataclass(frozen=True)
class TextProblem:
    """One problem in a reply, with the message that tells the model how to fix it.

    Attributes:
        kind: What was wrong.
        message: A sentence for the model.
        label: The tag the problem is about, when there is one.

    """

    kind: ProblemKind
    message: str
    label: str | None = None


@dataclass(frozen=True)
class TextEdits:
    """A parsed tagged-text reply.

    Attributes:
        edits: One whole-block rewrite per changed block, in reply order; each
            already fits its block's limit and targets a writable block.
        problems: What could not be used, in reply order.
        no_changes: Whether the reply said ``<no_changes/>``.
        ignored: The text outside block tags, stripped.

    """

    edits: tuple[RethinkEdit, ...] = ()
    problems: tuple[TextProblem, ...] = ()
    no_changes: bool = False
    ignored: str = ""

    @property
    def well_formed(self) -> bool:
        """Whether everything in the reply could be used."""
        return not self.problems

    def repair_prompt(self, blocks: Sequence[MemoryBlock]) -> str:
        """The message of the repair round: what was kept, what to fix.

        Args:
            blocks: The blocks as the run sees them, for an example tag.

        """
        accepted = ""
        if self.edits:
            names = ", ".join(f"<{edit.label}>" for edit in self.edits)
            accepted = f"Kept from your answer: {names}.\n"
        example = next(
            (p.label for p in self.problems if p.label in _writable(blocks)),
            next(iter(_writable(blocks)), "human"),
        )
        return prompts.SLEEP_TEXT_REPAIR_PROMPT.format(
            accepted=accepted,
            problems="\n".join(f"- {problem.message}" for problem in self.problems),
            example=example,
        )


def render_block_catalogue(blocks: Sequence[MemoryBlock]) -> str:
    """One line per block: its name, characters used of its limit, access, purpose."""
    lines = []
    for block in blocks:
        access = ", read-only" if block.read_only else ""
        purpose = f" {block.description}" if block.description else ""
        lines.append(f"- {block.label} ({block.chars}/{block.limit} characters{access}):{purpose}")
    return "\n".join(lines)


def render_text_memory(blocks: Sequence[MemoryBlock]) -> str:
    """The blocks in the very format the model answers in, values escaped."""
    return "\n".join(f"<{b.label}>\n{escape(b.value)}\n</{b.label}>" for b in blocks)


def parse_text_edits(reply: str, blocks: Sequence[MemoryBlock]) -> TextEdits:
    """Turn a tagged-text reply into edits, checked against ``blocks``.

    Pure: nothing is staged or stored. Well-formed blocks are kept even when
    another part of the reply has a problem, as memory tools accept one edit and
    refuse the next.

    Args:
        reply: The model's reply text.
        blocks: The blocks as the run currently sees them.

    Returns:
        The edits, the problems (each with a model-facing message), whether the
        reply said ``<no_changes/>``, and the ignored text.

    """
    by_label = {block.label: block for block in blocks}
    scan = _scan(reply, by_label)
    # Echoes (the current value, or nothing) change nothing, so they are dropped before
    # duplicates are counted: a small model often echoes a block, then rewrites it.
    changed = [
        (label, value)
        for label, value in ((label, _unescape(raw.strip())) for label, raw in scan.values)
        if value and value != by_label[label].value
    ]
    counts = Counter(label for label, _ in changed)
    edits: list[RethinkEdit] = []
    problems = list(scan.problems)
    for label, value in changed:
        if counts[label] > 1:
            if label not in {p.label for p in problems if p.kind is ProblemKind.DUPLICATE}:
                problems.append(_duplicate(label, counts[label]))
            continue
        block = by_label[label]
        if block.read_only:
            problems.append(_read_only(block, blocks))
        elif len(value) > block.limit:
            problems.append(_over_limit(block, len(value)))
        else:
            edits.append(RethinkEdit(label, value))
    if not scan.values and not scan.no_changes and not problems:
        problems.append(_nothing(reply, blocks))
    return TextEdits(
        edits=tuple(edits),
        problems=tuple(problems),
        no_changes=scan.no_changes,
        ignored="".join(scan.ignored).strip(),
    )


@dataclass(frozen=True)
class TextRound:
    """A tagged-text reply applied to a run's working copy.

    Attributes:
        staged: The working copy with the reply's accepted rewrites.
        parsed: The parse, with every problem (a refusal at staging included).
        accepted: Rewrites staged from this reply.

    """

    staged: StagedMemory
    parsed: TextEdits
    accepted: int


def stage_text_reply(
    staged: StagedMemory, reply: str, evidence: PageEvidence | None = None
) -> TextRound:
    """Parse ``reply`` against the working copy and stage its rewrites.

    The parser already refuses read-only blocks and values over the limit; the
    working copy checks again (the rule is enforced where edits are applied), and
    a refusal there becomes one more problem instead of an exception. With
    ``evidence`` (a sleep run's page), each rewrite first passes the consolidation
    checks; a rewrite they refuse whole is a problem too.
    """
    parsed = parse_text_edits(reply, staged.blocks())
    kept: list[RethinkEdit] = []
    problems = list(parsed.problems)
    for edit in parsed.edits:
        try:
            staged_edit = edit
            if evidence is not None:
                reviewed = review_edit(staged.block(edit.label), edit, evidence).edit
                # A checked rewrite is still a rewrite, of the cleaned value.
                assert isinstance(reviewed, RethinkEdit)
                staged_edit = reviewed
            staged, _ = staged.stage(staged_edit)
        except MemoryEditError as error:
            kind = ProblemKind.READ_ONLY if "read-only" in str(error) else ProblemKind.REFUSED
            problems.append(TextProblem(kind, str(error), edit.label))
            continue
        kept.append(staged_edit)
    parsed = TextEdits(
        edits=tuple(kept),
        problems=tuple(problems),
        no_changes=parsed.no_changes,
        ignored=parsed.ignored,
    )
    return TextRound(staged=staged, parsed=parsed, accepted=len(kept))


def text_page_prompt(blocks: Sequence[MemoryBlock], transcript: str, count: int) -> str:
    """The user message of a text-mode page: catalogue, memory, transcript."""
    return prompts.SLEEP_TEXT_PAGE_PROMPT.format(
        catalogue=render_block_catalogue(blocks),
        memory=render_text_memory(blocks),
        count=count,
        transcript=transcript,
    )


# --- the scanner ---------------------------------------------------------------------


@dataclass
class _Scan:
    values: list[tuple[str, str]]
    problems: list[TextProblem]
    ignored: list[str]
    no_changes: bool = False


def _scan(text: str, by_label: dict[str, MemoryBlock]) -> _Scan:
    """Walk the reply's top level: block sections, the marker, and everything else."""
    scan = _Scan(values=[], problems=[], ignored=[])
    position = 0
    while (tag := _TAG.search(text, position)) is not None:
        scan.ignored.append(text[position : tag.start()])
        name = tag["name"]
        if name == NO_CHANGES_TAG and not tag["close"]:
            scan.no_changes = True
            position = tag.end()
        elif tag["close"] or tag["self"]:
            scan.ignored.append(tag.group())
            position = tag.end()
        elif name.lower() in _REASONING_TAGS:
            close = _closing(name).search(text, tag.end())
            position = close.end() if close else len(text)
        elif name in by_label:
            position = _block(text, tag, by_label, scan)
        elif name in _ECHOED_TAGS and (close := _closing(name).search(text, tag.end())):
            scan.ignored.append(text[tag.start() : close.end()])
            position = close.end()
        else:
            close = _closing(name).search(text, tag.end())
            if close is None:
                scan.ignored.append(tag.group())
                position = tag.end()
            else:
                scan.problems.append(_unknown(name, list(by_label.values())))
                position = close.end()
    scan.ignored.append(text[position:])
    return scan


def _block(text: str, opening: re.Match[str], by_label: dict[str, MemoryBlock], scan: _Scan) -> int:
    """Read one block section; returns where scanning goes on."""
    label, start = opening["name"], opening.end()
    close = _closing(label).search(text, start)
    end = close.start() if close else len(text)
    inner = next(
        (
            tag
            for tag in _TAG.finditer(text, start, end)
            if tag["name"] in by_label and not tag["close"] and not tag["self"]
        ),
        None,
    )
    if inner is not None and close is not None:
        scan.problems.append(_nested(label, inner["name"]))
        return close.end()
    if inner is not None or close is None:
        scan.problems.append(_unclosed(label))
        # Go on at the next block, so one missing closing tag loses one block.
        return inner.start() if inner is not None else len(text)
    scan.values.append((label, _without_echoes(text[start:end])))
    return close.end()


def _without_echoes(value: str) -> str:
    """``value`` less any copy of the prompt's own sections (a transcript pasted in).

    Safe for stored text: memory and transcript are shown escaped, so a real
    ``<transcript>`` tag in a reply was written by the model, never by a user.
    """
    for name in _ECHOED_TAGS:
        value = re.sub(rf"<{name}(?:\s[^<>]*)?>.*?</{name}\s*>", "", value, flags=re.DOTALL)
    return value


def _closing(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{re.escape(name)}\s*>")


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda entity: _ENTITIES[entity[1]], text)


def _writable(blocks: Sequence[MemoryBlock]) -> list[str]:
    return [block.label for block in blocks if not block.read_only]


# --- messages for the model ---------------------------------------------------------


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels) if labels else "(none)"


def _nothing(reply: str, blocks: Sequence[MemoryBlock]) -> TextProblem:
    writable = _writable(blocks)
    example = writable[0] if writable else "human"
    if not reply.strip():
        return TextProblem(
            ProblemKind.EMPTY_REPLY,
            f"Your answer was empty. Write each block you change between its tags, such as "
            f"<{example}>...</{example}>.",
        )
    return TextProblem(
        ProblemKind.NO_BLOCKS,
        f"Your answer held no block. Write each block you change between its tags, such as "
        f"<{example}>...</{example}>, using only these names: {_names(writable)}.",
    )


def _unclosed(label: str) -> TextProblem:
    return TextProblem(
        ProblemKind.UNCLOSED,
        f"<{label}> was opened but not closed: end its text with </{label}>.",
        label,
    )


def _nested(label: str, inner: str) -> TextProblem:
    return TextProblem(
        ProblemKind.NESTED,
        f"<{inner}> was opened inside <{label}>: write blocks one after another, each "
        "closed before the next one opens, never one inside another.",
        label,
    )


def _duplicate(label: str, count: int) -> TextProblem:
    return TextProblem(
        ProblemKind.DUPLICATE,
        f"<{label}> was written {count} times: write it once, with its complete new text.",
        label,
    )


def _unknown(name: str, blocks: Sequence[MemoryBlock]) -> TextProblem:
    writable = _writable(blocks)
    closest = difflib.get_close_matches(name, writable, n=1)
    hint = f" (closest: {closest[0]})" if closest else ""
    return TextProblem(
        ProblemKind.UNKNOWN_LABEL,
        f"There is no block named <{name}>: put that text into one of these blocks "
        f"instead: {_names(writable)}{hint}.",
        name,
    )


def _read_only(block: MemoryBlock, blocks: Sequence[MemoryBlock]) -> TextProblem:
    return TextProblem(
        ProblemKind.READ_ONLY,
        f"<{block.label}> is read-only and cannot be changed: leave it out, and put what "
        f"you wanted to record into a writable block ({_names(_writable(blocks))}).",
        block.label,
    )


def _over_limit(block: MemoryBlock, size: int) -> TextProblem:
    return TextProblem(
        ProblemKind.OVER_LIMIT,
        f"<{block.label}> would hold {size} characters, over its limit of {block.limit} "
        f"(by {size - block.limit}): write it shorter, keeping the most useful facts.",
        block.label,
    )
