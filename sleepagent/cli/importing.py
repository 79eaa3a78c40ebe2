"""``sleepagent import FILE``: earlier history from a JSONL file, into an agent's database.

One JSON object a line, oldest first: ``text`` (or ``content``) and optionally
``role`` (``user`` or ``assistant``), ``speaker`` and ``timestamp``, as
:func:`~sleepagent.memory.imported.read_messages` takes them; and optionally
``thread`` and ``user``, which override ``--thread`` and ``--user`` for that line.
Lines of one thread are imported in one batch, threads in the order they first
appear. Every line of the file is checked (JSON, fields, thread owner) before
the first write, so a bad line names itself and nothing is imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sleepagent._jsonl import json_objects
from sleepagent.agent.facades import SleepTimeAgent
from sleepagent.errors import ConfigurationError, MessageRecordError
from sleepagent.models import ModelLike, ModelOptions
from sleepagent.results import ImportResult

__all__ = [
    "ImportFileError",
    "ThreadLines",
    "import_file",
    "print_results",
    "read_import_file",
]

_WHO = ("thread", "user")


class ImportFileError(ConfigurationError):
    """A line of an import file is unusable; nothing was imported.

    Attributes:
        path: The file.
        line: The 1-based line number, or ``None`` for the file as a whole.

    """

    def __init__(self, message: str, *, path: Path, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}; nothing was imported")
        self.path = path
        self.line = line


@dataclass
class ThreadLines:
    """The lines of one thread and user, in file order.

    Attributes:
        thread_id: The thread they go to.
        user_id: The user, or ``None``.
        records: The message records (``thread`` and ``user`` taken out).
        lines: The line number of each record.

    """

    thread_id: str
    user_id: str | None
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def read_import_file(path: Path, *, thread: str | None, user: str | None) -> list[ThreadLines]:
    """The file's messages, grouped by thread and user in order of first appearance.

    Raises:
        ImportFileError: For a missing or empty file, a line that is not a JSON
            object, or a line with no thread (neither ``thread`` nor ``--thread``).

    """
    if not path.is_file():
        raise ImportFileError("no such file", path=path)
    groups: dict[tuple[str, str | None], ThreadLines] = {}
    for number, record in json_objects(path, ImportFileError):
        thread_id = _who(record, "thread", thread, path, number)
        if thread_id is None:
            raise ImportFileError(
                "no thread: give the line a 'thread' field, or pass --thread",
                path=path,
                line=number,
            )
        user_id = _who(record, "user", user, path, number)
        group = groups.setdefault(
            (thread_id, user_id), ThreadLines(thread_id=thread_id, user_id=user_id)
        )
        group.records.append({k: v for k, v in record.items() if k not in _WHO})
        group.lines.append(number)
    if not groups:
        raise ImportFileError("the file has no messages", path=path)
    return list(groups.values())


def _who(
    record: Mapping[str, Any], key: str, default: str | None, path: Path, number: int
) -> str | None:
    value = record.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ImportFileError(f"'{key}' must be non-empty text", path=path, line=number)
    return value


def import_file(
    path: Path,
    *,
    db: str,
    thread: str | None = None,
    user: str | None = None,
    session_date: str | None = None,
    model: ModelLike | None = None,
    sleep_model: ModelLike | None = None,
    options: ModelOptions | None = None,
) -> list[ImportResult]:
    """Import every thread of ``path`` into ``db``; with ``model``, run sleep-time compute too.

    Without a model the messages stay pending in the database: the idle timer of
    the next agent that opens it covers them (its start-up recovery). No idle timer
    runs here; the command ends when the messages are written.

    Raises:
        ImportFileError: For an unusable line, naming it; nothing is written.
        ScopeMismatchError: For a thread that holds another scope's conversation,
            found before anything is written.

    """
    groups = read_import_file(path, thread=thread, user=user)
    with SleepTimeAgent(
        model if model is not None else _never_called(),
        sleep_model=sleep_model,
        db=db,
        scheduler=None,
        model_options=options,
    ) as agent:
        for group in groups:
            # The agent's own checks, without I/O, on every thread before the first write.
            try:
                agent._import_call(
                    group.records, group.thread_id, group.user_id, session_date, None
                )
            except MessageRecordError as error:
                line = group.lines[error.index]
                raise ImportFileError(error.reason, path=path, line=line) from error
            scope = agent.scope(thread_id=group.thread_id, user_id=group.user_id)
            agent.blocks.check_owner(scope, group.thread_id)
        return [
            agent.import_messages(
                group.records,
                thread_id=group.thread_id,
                user_id=group.user_id,
                session_date=session_date,
                sleep=model is not None,
            )
            for group in groups
        ]


def _never_called() -> ModelLike:
    """The model of an import without sleep-time compute: a stand-in that is never called.

    Any call fails the command loudly instead of spending tokens.
    """
    from sleepagent.testing import ScriptedChatModel

    return ScriptedChatModel([])


def print_results(results: list[ImportResult], out: TextIO, *, as_json: bool) -> None:
    """What the command prints: one line per thread, or JSON."""
    if as_json:
        data = [
            {
                "thread_id": r.thread_id,
                "scope": r.scope,
                "messages": r.messages,
                "first_seq": r.first_seq,
                "last_seq": r.last_seq,
                "sleep": None
                if r.sleep is None
                else {"outcome": r.sleep.outcome.value, "usage": r.sleep.usage.to_dict()},
            }
            for r in results
        ]
        out.write(json.dumps(data, indent=2) + "\n")
        return
    for r in results:
        line = (
            f"imported {r.messages} messages into thread {r.thread_id} ({r.scope}), "
            f"log {r.first_seq}-{r.last_seq}"
        )
        if r.sleep is None:
            line += "; sleep-time compute runs when an agent next opens this database"
        else:
            usage = r.sleep.usage
            line += (
                f"; sleep run {r.sleep.outcome.value}, "
                f"{usage.input_tokens + usage.output_tokens} tokens"
            )
        out.write(line + "\n")
