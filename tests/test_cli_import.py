"""``sleepagent import FILE``: earlier history from JSONL into an agent's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleepagent import SleepTimeAgent
from sleepagent.cli import commands as cli
from sleepagent.testing import Completion, LoopbackOpenAI, ScriptedChatModel


def write_lines(path: Path, *records: object) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def positions(db: Path) -> dict[str, tuple[int, int, str | None]]:
    with SleepTimeAgent(ScriptedChatModel([]), db=db, scheduler=None) as agent:
        return {p.thread_id: (p.head, p.watermark, p.scope) for p in agent.blocks.positions()}


def test_a_file_is_imported_thread_by_thread_and_left_pending(tmp_path, capsys):
    db = tmp_path / "agent.db"
    history = write_lines(
        tmp_path / "history.jsonl",
        {"role": "user", "text": "I'm vegetarian."},
        {"role": "assistant", "text": "Noted!"},
        "",
        {"speaker": "Ann", "text": "Hi Bo", "thread": "group", "user": "ann"},
        {"role": "user", "text": "And I live in Lisbon."},
    )
    code, out, _ = run(capsys, "import", str(history), "--thread", "t1", "--db", str(db))
    assert code == 0
    assert out.splitlines() == [
        "imported 3 messages into thread t1 (thread:t1), log 1-3; sleep-time compute runs "
        "when an agent next opens this database",
        "imported 1 messages into thread group (user:ann), log 1-1; sleep-time compute runs "
        "when an agent next opens this database",
    ]
    assert positions(db) == {"t1": (3, 0, "thread:t1"), "group": (1, 0, "user:ann")}


def test_a_bad_line_is_named_and_no_thread_is_imported(tmp_path, capsys):
    db = tmp_path / "agent.db"
    history = write_lines(
        tmp_path / "history.jsonl",
        {"text": "fine", "thread": "a"},
        {"text": "also fine", "thread": "b"},
        {"role": "system", "text": "You are a pirate.", "thread": "b"},
    )
    code, _, err = run(capsys, "import", str(history), "--db", str(db))
    assert code == 2
    assert f"{history}, line 3: role 'system' is not one of user, assistant" in err
    assert "nothing was imported" in err
    assert positions(db) == {}


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("{not json", "line 1: not valid JSON"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"text": "hi"}', "line 1: no thread: give the line a 'thread' field, or pass --thread"),
    ],
)
def test_a_line_that_is_not_a_message_is_named(tmp_path, capsys, line, said):
    history = write_lines(tmp_path / "history.jsonl", line)
    code, _, err = run(capsys, "import", str(history), "--db", str(tmp_path / "agent.db"))
    assert code == 2
    assert said in err


def test_with_sleep_each_thread_gets_its_sleep_run_now(tmp_path, capsys):
    db = tmp_path / "agent.db"
    history = write_lines(
        tmp_path / "history.jsonl", {"speaker": "Ann", "text": "I moved to Porto.", "timestamp": 5}
    )
    with LoopbackOpenAI([Completion("- Ann moved to Porto.")]) as server:
        code, out, err = run(
            capsys,
            "import",
            str(history),
            "--thread",
            "t1",
            "--db",
            str(db),
            "--sleep",
            "--model",
            "openai:loopback",
            "--base-url",
            server.base_url,
            "--json",
        )
        server.assert_exhausted()
        prompt = str(server.requests[0].messages[-1]["content"])
    assert code == 0, err
    (result,) = json.loads(out)
    assert (result["messages"], result["sleep"]["outcome"]) == (1, "edited")
    assert "Ann 1970-01-01T00:00:05+00:00: I moved to Porto." in prompt
    assert positions(db) == {"t1": (1, 1, "thread:t1")}
