"""The command line, run as a real process (``python -m sleepagent``)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

import sleepagent
from sleepagent.bench import __main__ as bench_main
from sleepagent.cli import commands as cli
from tests.conftest import POSTGRES_URL, empty_postgres, with_password

TIMEOUT_S = 120
COMMANDS = (
    [],
    ["demo"],
    ["chat"],
    ["import"],
    ["memory"],
    ["memory", "list"],
    ["memory", "show"],
    ["memory", "history"],
    ["bench"],
)


def sleepagent_(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEEPAGENT_"))}
    return subprocess.run(
        [sys.executable, "-m", "sleepagent", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        cwd=cwd,
    )


def run(capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (quicker than a new one; same code from ``main`` on)."""
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """A demo database, kept, and what the demo printed (run once, as a real process)."""
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    done = sleepagent_("demo", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return db, done.stdout


@pytest.fixture
def demo_db(demo) -> Path:
    return demo[0]


# --- the program ---------------------------------------------------------------------


def test_version_is_the_package_version_in_one_place():
    done = sleepagent_("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"sleepagent {sleepagent.__version__}"
    assert version("sleepagent") == sleepagent.__version__, "pyproject reads _version.py"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: sleepagent {' '.join(command)}".rstrip())
    assert "``" not in text and "memory_command" not in text and "python -m" not in text


def test_chat_help_says_any_provider_works(capsys):
    with pytest.raises(SystemExit):
        cli.main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "PROVIDER:MODEL" in text and "anthropic:" in text
    assert "openai:MODEL" not in text


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


@pytest.mark.parametrize("build", [cli.build_parser, bench_main.build_parser])
def test_every_option_and_command_has_help(build):
    for parser in parsers(build()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                assert all(helps.values()), f"{parser.prog}: commands without help: {helps}"
            else:
                assert action.help, f"{parser.prog} {action.option_strings}: no help"


def test_no_command_prints_the_help_and_fails(capsys):
    done = run(capsys)
    assert done.returncode == 2
    assert "sleepagent demo" in done.stdout


# --- demo --------------------------------------------------------------------------------


def test_demo_runs_offline_and_shows_sleep_time_compute(demo):
    _, out = demo
    assert "SCRIPTED" in out
    assert "[sleep-time compute] finished (edited)" in out
    assert "block 'human' v0 -> v1:" in out
    assert "+My name is Ada.\n" in out and "+I'm vegetarian." in out
    assert "Since you're vegetarian" in out, "the turn after sleep should use the new memory"


def test_demo_answers_the_same_questions_both_ways_and_shows_the_tokens_of_each(demo):
    _, out = demo
    part = out[out.index("== Part 2") :]
    assert "Test-time only: the context comes with each question" in part
    assert "20 rolls go to the shelter." in part, "worked out at test time"
    assert "bot>  20." in part, "read from learned_context"
    rows = re.findall(r"(\d+) in \+ (\d+) out\s+(\d+) in \+ (\d+) out", part)
    assert len(rows) == 4
    for _, test_time_out, _, sleep_time_out in rows:
        assert int(sleep_time_out) < int(test_time_out)
    assert re.search(r"sleep-time compute, once, before any question .*: \d+ tokens", part)
    assert re.search(r"output tokens per question.*\(\d+x fewer\)", part)


def test_demo_shows_the_reasoning_pass_whose_final_values_become_the_learned_context(demo):
    _, out = demo
    part = out[out.index("Sleep-time: the context is given first") :]
    assert "it thinks first (free text, no tools)" in part
    assert "Left at noon: 240 - 180 = 60" in part, "the worked reasoning, shown as it runs"
    assert "[sleep-time compute] finished (edited): 1 model call," in part, "no edit round"
    learned = part[part.index("block 'learned_context'") : part.index("user>")]
    assert "Given to the shelter: 20" in learned and "Shelter's share of the rolls: 1/12" in learned
    assert "240 - 180 = 60" not in learned, "the working stays out of memory"


def test_demo_with_db_prints_commands_that_work_on_the_kept_database(demo):
    _, out = demo
    hints = [line.strip() for line in out.splitlines() if "sleepagent memory" in line]
    assert len(hints) == 3
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEEPAGENT_"))}
    for hint in hints:
        command = re.split(r"\s{2,}", hint)[0]  # then the comment
        assert command.startswith(f"{sys.executable} -m sleepagent "), "as the demo was run"
        ran = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=TIMEOUT_S, env=env
        )
        assert ran.returncode == 0, (hint, ran.stderr)
        assert ran.stdout.strip()


@pytest.mark.parametrize(
    ("argv0", "on_path", "typed"),
    [
        (".venv/bin/sleepagent", None, ".venv/bin/sleepagent"),
        ("/home/ada/.venv/bin/sleepagent", "/home/ada/.venv/bin/sleepagent", "sleepagent"),
        ("/home/ada/.venv/bin/sleepagent", "/usr/bin/sleepagent", "/home/ada/.venv/bin/sleepagent"),
        ("/src/sleepagent/__main__.py", "/usr/bin/python",
         "/home/ada/.venv/bin/python -m sleepagent"),
        ("/src/sleepagent/__main__.py", "/home/ada/.venv/bin/python", "python -m sleepagent"),
    ],
)  # fmt: skip
def test_hints_start_with_the_command_as_the_user_can_type_it_again(argv0, on_path, typed):
    from sleepagent.cli.invocation import invoked_as

    found = invoked_as(argv0, "/home/ada/.venv/bin/python", which=lambda name: on_path)
    assert found == typed


def test_the_demo_ends_with_no_pending_work(demo):
    db, out = demo
    assert "(everyone goes quiet) the idle timer covers the 18 messages no" in out
    assert "in 9 conversations: 9 runs" in out and "no messages pending now" in out
    listed = json.loads(sleepagent_("memory", "list", "--db", str(db), "--json").stdout)
    assert [scope["pending"] for scope in listed["scopes"]] == [0] * len(listed["scopes"])


def test_demo_without_db_names_no_deleted_file_and_says_how_to_keep_one():
    done = sleepagent_("demo")
    assert done.returncode == 0, done.stderr
    assert "(temporary)" in done.stdout
    assert "sleepagent demo --db demo.db" in done.stdout
    assert not re.search(r"memory \w+ --db /", done.stdout), "no hint at a deleted file"


def test_demo_refuses_a_database_that_already_holds_conversations(demo_db, capsys):
    done = run(capsys, "demo", "--db", str(demo_db))
    assert done.returncode == 2
    assert "already holds conversations" in done.stderr
    assert "Traceback" not in done.stderr


# --- memory ------------------------------------------------------------------------------


def test_memory_list_shows_scopes_threads_pending_work_and_usage(own_db, capsys):
    done = run(capsys, "memory", "list", "--db", str(own_db))
    assert done.returncode == 0, done.stderr
    assert re.search(r"user:ada\s+human\s+2\s+0\s+0\s", done.stdout)
    assert re.search(r"user:ada .* idle: unchanged", done.stdout), "the last run and its outcome"
    assert "user:reader" in done.stdout
    assert "no thread has pending work" in done.stdout
    from sleepagent import SleepTimeAgent
    from sleepagent.testing import ScriptedChatModel

    with SleepTimeAgent(ScriptedChatModel(["ok"]), db=str(own_db), scheduler=None) as agent:
        agent.chat("one more thing", thread_id="demo-thread", user_id="ada")
    done = run(capsys, "memory", "list", "--db", str(own_db))
    assert re.search(r"user:ada\s+human\s+2\s+2\s+0\s", done.stdout)
    pending = done.stdout[done.stdout.index("threads with pending work") :]
    assert re.search(r"\n\s+demo-thread\s+user:ada\s+2\s", pending)


def test_memory_list_shows_a_run_in_flight_and_since_when(tmp_path, capsys):
    from sleepagent import SleepTimeAgent
    from sleepagent.testing import ScriptedChatModel

    entered, release = threading.Event(), threading.Event()

    def held(prompt):
        entered.set()
        assert release.wait(TIMEOUT_S), "the test never released the run"
        return "NOTHING NEW"

    db = str(tmp_path / "bot.db")
    sleep_model = ScriptedChatModel([held])
    with SleepTimeAgent(
        ScriptedChatModel(["Noted."]), sleep_model=sleep_model, db=db, scheduler=None
    ) as agent:
        agent.chat("I live in Lisbon.", thread_id="t1", user_id="ada")
        running = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        running.start()
        try:
            assert entered.wait(TIMEOUT_S)
            during = run(capsys, "memory", "list", "--db", db)
            listed = run(capsys, "memory", "list", "--db", db, "--json")
        finally:
            release.set()
            running.join(TIMEOUT_S)
        assert not running.is_alive()
    assert during.returncode == 0, during.stderr
    assert re.search(r"user:ada .* running since \d\d:\d\d:\d\d manual", during.stdout)
    (ada,) = json.loads(listed.stdout)["scopes"]
    assert (ada["running"]["thread_id"], ada["running"]["reason"]) == ("t1", "manual")
    assert ada["last_run"] is None, "no run had ended yet"

    after = run(capsys, "memory", "list", "--db", db)
    assert "running since" not in after.stdout
    assert re.search(r"user:ada .* manual: unchanged", after.stdout)


def test_memory_list_as_json_has_the_last_run_and_usage_per_phase(demo_db, capsys):
    done = run(capsys, "memory", "list", "--db", str(demo_db), "--json")
    scopes = {scope["scope"]: scope for scope in json.loads(done.stdout)["scopes"]}
    ada = scopes["user:ada"]
    assert (ada["last_run"]["reason"], ada["last_run"]["outcome"]) == ("idle", "unchanged")
    assert ada["failed_pages"] == []
    assert ada["usage"]["sleep"]["calls"] == 2, "the first run's fact pass, one when all went quiet"
    assert {thread["thread_id"] for thread in ada["threads"]} == {"demo-thread", "demo-thread-2"}
    assert scopes["user:reader"]["last_run"]["outcome"] == "unchanged"


def test_memory_show_prints_only_the_stored_blocks(demo_db, capsys):
    shown = run(capsys, "memory", "show", "--db", str(demo_db), "--user", "reader")
    assert shown.returncode == 0, shown.stderr
    assert "[learned_context] v1" in shown.stdout
    assert "shelter: 20" in shown.stdout
    assert "[persona]" not in shown.stdout and "[human]" not in shown.stdout


def test_memory_show_with_blocks_overlays_an_agents_declared_blocks(demo_db, tmp_path, capsys):
    config = tmp_path / "bot_config.py"
    config.write_text(
        "from sleepagent import MemoryBlock, SleepConfig\n"
        "CONFIG = SleepConfig(blocks=[MemoryBlock(label='rules', value='be brief'),"
        " MemoryBlock(label='learned_context')])\n"
    )
    spec = f"{config}:CONFIG"
    shown = run(
        capsys, "memory", "show", "--db", str(demo_db), "--user", "reader", "--blocks", spec
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.index("[rules] v0") < shown.stdout.index("[learned_context] v1")
    assert "be brief" in shown.stdout
    default = run(
        capsys, "memory", "show", "--db", str(demo_db), "--user", "reader", "--blocks", "default"
    )
    assert "[persona] v0" in default.stdout


def test_memory_show_as_json(demo_db, capsys):
    shown = run(capsys, "memory", "show", "--db", str(demo_db), "--user", "ada", "--json")
    data = json.loads(shown.stdout)
    assert data["scope"] == "user:ada"
    human = next(block for block in data["blocks"] if block["label"] == "human")
    assert human["version"] == 1
    assert "vegetarian" in human["value"]


def test_memory_show_of_an_unknown_scope_fails_and_points_at_memory_list(demo_db, capsys):
    shown = run(capsys, "memory", "show", "--db", str(demo_db), "--user", "nobody")
    assert shown.returncode == 1
    assert shown.stdout == ""
    assert "no memory scope user:nobody" in shown.stderr
    assert "sleepagent memory list" in shown.stderr


def test_memory_history_shows_each_version_with_its_diff_and_reason(demo_db, capsys):
    done = run(capsys, "memory", "history", "human", "--db", str(demo_db), "--user", "ada")
    assert done.returncode == 0, done.stderr
    assert re.search(r"v1 \S+ \S+ by sleep \(idle\), thread demo-thread, run ", done.stdout)
    assert "+I'm training for a half marathon on 15 March" in done.stdout
    as_json = run(
        capsys, "memory", "history", "human", "--db", str(demo_db), "--user", "ada", "--json"
    )
    (first,) = json.loads(as_json.stdout)["versions"]
    assert first["reason"] == "idle" and "+My name is Ada." in first["diff"]


def test_memory_history_shows_an_unchanged_last_line_as_context_when_a_line_is_added(
    own_db, capsys
):
    from sleepagent import SleepTimeAgent
    from sleepagent.testing import ScriptedChatModel

    with SleepTimeAgent(ScriptedChatModel([]), db=str(own_db), scheduler=None) as agent:
        before = agent.memory(thread_id="demo-thread", user_id="ada")["human"].value
        last = before.splitlines()[-1]
        agent.write_memory(
            "human", f"{before}\nFavourite colour: teal.", thread_id="demo-thread", user_id="ada"
        )
    done = run(capsys, "memory", "history", "human", "--db", str(own_db), "--user", "ada")
    assert done.returncode == 0, done.stderr
    newest = done.stdout[done.stdout.index("v2 ") :]
    assert f"  -{last}" not in newest, "the unchanged line is not shown as removed"
    assert f"   {last}\n  +Favourite colour: teal." in newest


def test_memory_history_of_a_block_never_written_says_which_are(demo_db, capsys):
    done = run(capsys, "memory", "history", "persona", "--db", str(demo_db), "--user", "ada")
    assert done.returncode == 1
    assert "stored blocks: human)" in done.stderr


@pytest.fixture
def own_db(demo_db, tmp_path) -> Path:
    """A copy of the demo's database that a test may change."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(demo_db, copy)
    return copy


def test_memory_export_writes_everything_stored_for_a_user_as_json(own_db, tmp_path, capsys):
    out = tmp_path / "ada.json"
    done = run(capsys, "memory", "export", "--db", str(own_db), "--user", "ada", "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["scope"] == "user:ada"
    assert sorted(document["threads"]) == ["demo-thread", "demo-thread-2"]
    assert "Ada" in document["memory"]["blocks"]["human"]["value"]


def test_memory_forget_asks_first_and_removes_nothing_unattended(own_db, capsys):
    done = run(capsys, "memory", "forget", "--db", str(own_db), "--user", "ada")
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    assert "user:ada" in run(capsys, "memory", "list", "--db", str(own_db)).stdout


def test_memory_forget_with_yes_removes_the_user_and_keeps_the_others(own_db, capsys):
    done = run(capsys, "memory", "forget", "--db", str(own_db), "--user", "ada", "--yes")
    assert done.returncode == 0, done.stderr
    assert "forgot user:ada: its memory, 2 threads (demo-thread, demo-thread-2)" in done.stdout
    listing = run(capsys, "memory", "list", "--db", str(own_db)).stdout
    assert "user:ada" not in listing and "user:reader" in listing
    assert run(capsys, "memory", "show", "--db", str(own_db), "--user", "ada").returncode == 1
    again = run(capsys, "memory", "forget", "--db", str(own_db), "--user", "ada", "--yes")
    assert again.returncode == 1 and "nothing is stored for user:ada" in again.stderr


def test_memory_forget_and_export_ask_whose_data(own_db, capsys):
    for action in ("forget", "export"):
        done = run(capsys, "memory", action, "--db", str(own_db))
        assert done.returncode == 2 and "--user USER, --thread THREAD" in done.stderr


def test_memory_commands_accept_sqlite_urls(demo_db, capsys):
    done = run(capsys, "memory", "list", "--db", f"sqlite:///{demo_db}")
    assert done.returncode == 0, done.stderr
    assert "user:ada" in done.stdout


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("none.db", "no database at"),
        ("notes.txt", "is not a SQLite database"),
        ("mysql://x/y", "cannot use mysql:// databases"),
    ],
)
def test_memory_commands_explain_a_bad_database_without_a_traceback(
    tmp_path, db, says, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a database")
    done = run(capsys, "memory", "list", "--db", db)
    assert done.returncode in (1, 2)
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "none.db").exists(), "a missing file is not created"


@pytest.mark.skipif(POSTGRES_URL is None, reason="SLEEPAGENT_TEST_POSTGRES_URL is not set")
def test_demo_and_memory_commands_on_a_postgres_url(capsys):
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    assert run(capsys, "demo", "--db", POSTGRES_URL).returncode == 0
    listed = run(capsys, "memory", "list", "--db", POSTGRES_URL)
    assert listed.returncode == 0, listed.stderr
    assert "user:ada" in listed.stdout
    shown = run(capsys, "memory", "show", "--db", POSTGRES_URL, "--user", "ada")
    assert "vegetarian" in shown.stdout
    history = run(capsys, "memory", "history", "human", "--db", POSTGRES_URL, "--user", "ada")
    assert "by sleep (idle)" in history.stdout
    empty_postgres(POSTGRES_URL)


@pytest.mark.skipif(POSTGRES_URL is None, reason="SLEEPAGENT_TEST_POSTGRES_URL is not set")
def test_memory_commands_never_print_the_password_of_a_postgres_url(capsys):
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    url = with_password(POSTGRES_URL, "topsecret")
    listed = run(capsys, "memory", "list", "--db", url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("no memory in postgresql://postgres:***@")
    unknown = run(capsys, "memory", "show", "--db", url, "--user", "nobody")
    assert unknown.returncode == 1
    assert ":***@" in unknown.stderr
    for done in (listed, unknown):
        assert "topsecret" not in done.stdout + done.stderr


def test_an_unreachable_postgres_url_is_one_line_naming_the_url(capsys):
    done = run(capsys, "memory", "list", "--db", "postgresql://me:pw@127.0.0.1:1/none")
    assert done.returncode == 1
    assert done.stderr.startswith("sleepagent: cannot connect to PostgreSQL at ")
    assert "postgresql://me:***@127.0.0.1:1/none" in done.stderr
    assert "--db" in done.stderr, "the hint names the flag"
    assert "Traceback" not in done.stderr


# --- bench -------------------------------------------------------------------------------


def test_bench_is_a_subcommand_with_its_own_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    shown = capsys.readouterr()
    assert shown.out.startswith("usage: sleepagent bench")
    assert "--dataset" in shown.out
    assert "--concurrency" in shown.out
