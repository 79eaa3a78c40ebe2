"""Recall: earlier messages of a memory scope found by full-text search, decided without I/O.

The primary agent's memory blocks hold what the sleep-time agent judged worth
keeping; a long conversation holds more than fits there. With
``SleepConfig.recall_messages`` set, each turn searches the scope's earlier
messages with the user's message and shows the best matches in the system
prompt. Everything here is pure: what a message becomes in the index
(:class:`RecallRow`), what a user's text becomes as a query (:func:`query_terms`,
plain terms only, whatever operators it holds), how the in-process index ranks
(:func:`overlap_ranked`), and which matches the prompt shows (:func:`chosen`).
The stores' own searches are :mod:`sleepagent.store.recallindex`.

What is indexed, and when (never on the user's path):

* the user and assistant messages of every transcript page a sleep run reads
  (context entries are documents, not messages, and are left out);
* every message ``import_messages`` logs, as it is imported.

The same index holds the scope's **archive** (``SleepConfig.archive_facts``):
lines a full facts block moved out (:mod:`sleepagent.sleep.archive`), as rows of
role :data:`ARCHIVED_ROLE` under the thread id :data:`ARCHIVE_THREAD` (which no
thread can have: thread ids are never empty), numbered in the order they were
archived. A turn's one search finds both kinds; :func:`chosen` and
:func:`chosen_facts` pick what the prompt shows of each.

The newest messages, not yet read by a sleep run, are in the thread's graph
state, which the model is sent anyway. A row is keyed by (scope, thread, log
position), so indexing a page again (a retried run, a page read twice) adds
nothing.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sleepagent.memory.transcript import LogEntry
from sleepagent.scope import Scope

__all__ = [
    "ARCHIVED_ROLE",
    "ARCHIVE_THREAD",
    "MAX_QUERY_TERMS",
    "RecallRow",
    "archive_rows",
    "chosen",
    "chosen_facts",
    "fts5_query",
    "overlap_ranked",
    "query_terms",
    "rows_of",
    "words_of",
]

ARCHIVE_THREAD = ""
"""The thread id of a scope's archived facts: no thread has it (thread ids are non-empty),
so forgetting a thread of a user's scope keeps them, as it keeps the scope's blocks."""
ARCHIVED_ROLE = "fact"
"""The role of an archived fact's row (messages are ``user`` or ``assistant``)."""

MAX_QUERY_TERMS = 24
"""Terms a query keeps: a 32,000-character message must not become a query of thousands."""
_MAX_TERM_CHARS = 40
"""Longer runs of letters are cut: no real word is that long, and a term bounds its index key."""
_SCAN_CHARS = 64_000
"""Characters of a message read for terms (messages are at most 32,000 by default)."""

_WORD = re.compile(r"[^\W_]+")
"""A run of letters or digits: everything else (quotes, operators, ``:``, ``*``, ``^``,
``-``, NUL, punctuation) separates terms and never reaches a query."""

_STOPWORDS = frozenset(
    {
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "near",
    }
)
"""Words too common to tell messages apart (English, plus the FTS5 operator ``near``)."""


@dataclass(frozen=True, kw_only=True)
class RecallRow:
    """One message in a scope's recall index.

    Attributes:
        scope: The memory scope's key (``user:<id>`` or ``thread:<id>``); a search
            matches it exactly, so ``user:ada`` never finds ``user:adam``'s rows.
        thread_id: The thread the message was said in.
        seq: Its position in that thread's log (with scope and thread, the row's key).
        role: ``user`` or ``assistant``.
        text: What was said.
        speaker: Who said it, when the history named speakers.
        said_at: When it was said, as an import gave it.
        at: When it was logged (ISO 8601).
        message_id: Id of the message it came from.

    """

    scope: str
    thread_id: str
    seq: int
    role: str
    text: str
    speaker: str | None = None
    said_at: str | None = None
    at: str | None = None
    message_id: str | None = None

    @property
    def when(self) -> str | None:
        """When it was said, as well as it is known: the import's time, else the log's."""
        return self.said_at or self.at

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (exports)."""
        return {
            "scope": self.scope,
            "thread_id": self.thread_id,
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "speaker": self.speaker,
            "said_at": self.said_at,
            "at": self.at,
            "message_id": self.message_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecallRow:
        """Inverse of :meth:`to_dict`."""
        return cls(
            scope=data["scope"],
            thread_id=data["thread_id"],
            seq=data["seq"],
            role=data["role"],
            text=data["text"],
            speaker=data.get("speaker"),
            said_at=data.get("said_at"),
            at=data.get("at"),
            message_id=data.get("message_id"),
        )


def rows_of(scope: Scope, thread_id: str, entries: Iterable[LogEntry]) -> list[RecallRow]:
    """The rows ``entries`` of a thread's log add to ``scope``'s index: messages with text."""
    return [
        RecallRow(
            scope=scope.key,
            thread_id=thread_id,
            seq=entry.seq,
            role=entry.role,
            text=entry.text,
            speaker=entry.speaker,
            said_at=entry.said_at,
            at=entry.at,
            message_id=entry.message_id,
        )
        for entry in entries
        if entry.role in ("user", "assistant") and entry.text.strip()
    ]


def archive_rows(
    scope: Scope, lines: Iterable[str], *, held: Iterable[RecallRow], at: str
) -> list[RecallRow]:
    """The rows archiving ``lines`` adds to ``scope``'s archive, which holds ``held`` already.

    A line the archive holds already adds nothing (a page committed twice archives
    its lines once); the others are numbered after the newest archived row.
    """
    held = list(held)
    known = {row.text for row in held}
    seq = max((row.seq for row in held), default=0)
    rows = []
    for line in dict.fromkeys(lines):
        if line in known:
            continue
        seq += 1
        rows.append(
            RecallRow(
                scope=scope.key,
                thread_id=ARCHIVE_THREAD,
                seq=seq,
                role=ARCHIVED_ROLE,
                text=line,
                at=at,
            )
        )
    return rows


def words_of(text: str) -> list[str]:
    """The words of ``text``, normalised (NFKC, case-folded), in order, repeats kept."""
    normal = unicodedata.normalize("NFKC", text[:_SCAN_CHARS]).casefold()
    return [word[:_MAX_TERM_CHARS] for word in _WORD.findall(normal)]


def query_terms(text: str, *, limit: int = MAX_QUERY_TERMS) -> tuple[str, ...]:
    """The plain search terms of a user's message: letters and digits only, never an operator.

    Whatever ``text`` holds (quotes, ``NEAR``/``AND``/``OR``/``NOT``, ``*``, ``^``,
    ``-``, ``column:``, NUL, odd unicode, 32,000 characters), the result is a few
    words, each made only of letters and digits, so it cannot change a query's
    meaning. Stop words and one-letter words go; repeats count once. When more
    than ``limit`` are left, the longest are kept (longer words tell messages
    apart better), in the order they were said.

    Returns:
        The terms; empty when the text has none (then nothing is searched).

    """
    seen: dict[str, int] = {}
    for word in words_of(text):
        if word in seen or word in _STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen[word] = len(seen)
    if len(seen) > limit:
        longest = sorted(seen, key=lambda word: (-len(word), seen[word]))[:limit]
        return tuple(sorted(longest, key=seen.__getitem__))
    return tuple(seen)


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 ``MATCH`` expression: any of ``terms``, each a quoted string.

    A quoted FTS5 string is a phrase of plain tokens; only a ``"`` could end it,
    and :func:`query_terms` never yields one (checked here, as it decides the
    query's meaning).
    """
    if any('"' in term for term in terms):
        raise ValueError("a recall term holds a quote: build terms with query_terms()")
    return " OR ".join(f'"{term}"' for term in terms)


def overlap_ranked(
    rows: Sequence[tuple[RecallRow, frozenset[str]]], terms: Sequence[str], limit: int
) -> list[RecallRow]:
    """The in-process index's ranking: the rows sharing the most informative terms.

    Each query term a row holds counts its inverse document frequency in the
    scope (``log(1 + n / df)``): a rare shared word weighs more than a common one.
    Ties go to the newer message. Rows sharing no term are never returned.
    """
    wanted = set(terms)
    frequency = {term: 0 for term in wanted}
    for _, words in rows:
        for term in wanted & words:
            frequency[term] += 1
    total = len(rows)
    weight = {term: math.log(1 + total / count) for term, count in frequency.items() if count}
    scored = [
        (sum(weight[term] for term in wanted & words), row) for row, words in rows if wanted & words
    ]
    scored.sort(key=lambda pair: _order(pair[1]), reverse=True)  # ties: the newer first
    scored.sort(key=lambda pair: pair[0], reverse=True)  # stable: keeps that order
    return [row for _, row in scored[:limit]]


def chosen(
    found: Sequence[RecallRow],
    *,
    shown: Iterable[str | None],
    limit: int,
    max_chars: int,
) -> list[RecallRow]:
    """The messages the prompt shows of ``found`` (best first): bounded, chronological.

    Archived facts in ``found`` are left to :func:`chosen_facts`.

    Args:
        found: Matches, best first; a search asks for ``limit`` plus the number
            of ``shown`` messages, so leaving those out still leaves ``limit``.
        shown: Ids of the messages the model is sent anyway (the graph state):
            recalling them again would only spend the budget.
        limit: Most messages to show.
        max_chars: Most characters of recalled text; a message that would pass
            it is left out (the first one is cut to fit instead of dropped).

    Returns:
        The rows to render, oldest first.

    """
    skip = {message_id for message_id in shown if message_id}
    messages = [r for r in found if r.role != ARCHIVED_ROLE and r.message_id not in skip]
    return _bounded(messages, limit=limit, max_chars=max_chars)


def chosen_facts(
    found: Sequence[RecallRow], *, known: str, limit: int, max_chars: int
) -> list[RecallRow]:
    """The archived facts the prompt shows of ``found`` (best first): bounded, oldest first.

    Args:
        found: Matches, best first; messages among them are left to :func:`chosen`.
        known: The memory blocks' text as the prompt shows it: a fact that is still
            a line there (archived by a commit that then lost a conflict) is not
            shown twice.
        limit: Most facts to show.
        max_chars: Most characters of archived text.

    """
    lines = {line.strip() for line in known.splitlines()}
    seen: set[str] = set()
    facts = []
    for row in found:
        if row.role == ARCHIVED_ROLE and row.text not in lines and row.text not in seen:
            seen.add(row.text)
            facts.append(row)
    return _bounded(facts, limit=limit, max_chars=max_chars)


def _bounded(found: Sequence[RecallRow], *, limit: int, max_chars: int) -> list[RecallRow]:
    picked: list[RecallRow] = []
    used = 0
    for row in found:
        if len(picked) == limit:
            break
        if used + len(row.text) > max_chars:
            if picked:
                continue
            row = replace(row, text=row.text[:max_chars] + "…")
        picked.append(row)
        used += len(row.text)
    return sorted(picked, key=_order)


def _order(row: RecallRow) -> tuple[str, str, int]:
    # Log time orders messages across threads; within one log write (an import, a
    # turn) the log position does. said_at is free text (an import's own format):
    # it is shown, never sorted on.
    return (row.at or "", row.thread_id, row.seq)
