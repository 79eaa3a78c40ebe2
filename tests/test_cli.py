"""The command line, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

TIMEOUT_S = 120


def sleepagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleepagent.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_demo_runs_offline_and_shows_sleep_time_compute(tmp_path):
    done = sleepagent("demo", "--db", str(tmp_path / "demo.db"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SCRIPTED" in out
    assert "[sleep-time compute]" in out
    assert "block 'human' v0 -> v1:" in out
    assert "+Name: Ada. Lives in Lisbon (recently moved). Vegetarian." in out
    assert "Since you're vegetarian" in out, "the turn after sleep should use the new memory"
    assert "OPENAI_API_KEY" in out


def test_demo_without_a_db_uses_a_temporary_file():
    done = sleepagent("demo")
    assert done.returncode == 0, done.stderr
    assert "sleepagent-demo.db" in done.stdout


def test_memory_show_prints_a_scope_as_json(tmp_path):
    db = tmp_path / "demo.db"
    assert sleepagent("demo", "--db", str(db)).returncode == 0
    shown = sleepagent("memory", "show", "--db", str(db), "--user", "ada", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["scope"] == "user:ada"
    human = next(block for block in data["blocks"] if block["label"] == "human")
    assert human["version"] == 1
    assert "Vegetarian" in human["value"]


def test_memory_show_prints_blocks_as_text(tmp_path):
    db = tmp_path / "demo.db"
    assert sleepagent("demo", "--db", str(db)).returncode == 0
    shown = sleepagent("memory", "show", "--db", str(db), "--thread", "bakery")
    assert shown.returncode == 0, shown.stderr
    assert "[learned_context] v1" in shown.stdout
    assert "shelter: 20" in shown.stdout


def test_memory_show_says_when_the_database_is_missing(tmp_path):
    shown = sleepagent("memory", "show", "--db", str(tmp_path / "none.db"), "--user", "x")
    assert shown.returncode == 1
    assert "no database" in shown.stderr


def test_bench_is_a_subcommand_with_its_own_options():
    shown = sleepagent("bench", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--dataset" in shown.stdout
    assert "--concurrency" in shown.stdout
