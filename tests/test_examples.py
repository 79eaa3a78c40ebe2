"""The plain-Python examples run offline, and say so."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parent.parent / "examples"


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # LangGraph resolves the state's annotations through the module, by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_existing_graph_runs_as_a_script_without_a_key_and_says_it_is_offline():
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "existing_graph.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Offline: scripted models")
    assert "bot>  (memory about you: My printer is an HP LaserJet 4000" in done.stdout


def test_existing_graph_keeps_the_users_own_nodes_and_state(capsys):
    assert load("existing_graph").main(["--offline"]) == 0
    out = capsys.readouterr().out
    assert "[urgent=False]" in out and "[urgent=True]" in out
    assert "sleep-time compute changed: ['human']" in out
    assert "your graph's thread holds 6 messages" in out


def test_embed_answers_from_what_sleep_time_compute_learned(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("I'm vegetarian\n/sleep\n/memory\nDinner?\n"))
    assert load("embed").main(["--offline"]) == 0
    out = capsys.readouterr().out
    assert "+I'm vegetarian" in out, "the sleep run's diff was shown"
    assert "[human] I'm vegetarian" in out
    assert out.rstrip().endswith(
        'bot> You said "Dinner?". What I remember about you: I\'m vegetarian\nyou>'
    )
