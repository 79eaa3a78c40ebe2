"""The README's "Use it" code, and the guides' scripts, run as written against a server.

Each Python block of the README's "Use it" section is saved to a file and run as
its own process, unchanged, in one folder (so the later blocks see what the first
one stored); so are the blocks of the guides that are whole scripts (importing
history, forget and export). Only the environment differs from a user's:
``OPENAI_BASE_URL`` points at an OpenAI-compatible loopback server and
``OPENAI_API_KEY`` is a dummy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sleepagent.testing import Completion, LoopbackOpenAI, RecordedRequest, wire_call

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
GUIDES = [
    ROOT / "docs" / "howto" / "import-history.md",
    ROOT / "docs" / "howto" / "forget-export.md",
]
"""Guides whose Python blocks are complete scripts, each run as it is written."""
TIMEOUT_S = 120
LEARNED = "Name: Ada. Vegetarian, lives in Lisbon."


def section(text: str, heading: str) -> str:
    """The text of the ``## heading`` section, up to the next ``## `` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def answer(request: RecordedRequest) -> Completion | str:
    """A model that answers any request of the examples sensibly, whatever their order."""
    prompt = str(request.messages[-1]["content"])
    if not request.tools:
        return "Try a chickpea stew." if prompt == "Dinner idea?" else "Noted."
    if "I live in Lisbon" in prompt:  # a sleep run over Ada's first turn
        return Completion.calling(
            wire_call("memory_rethink", label="human", new_value=LEARNED),
            wire_call("memory_finish"),
        )
    return Completion.calling(wire_call("memory_finish"))


def run_blocks(blocks: list[str], folder: Path, server: LoopbackOpenAI) -> list[str]:
    """Run each block as a script in ``folder``, in order, against ``server``; their outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEEPAGENT_"))}
    env |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-loopback"}
    outputs = []
    for number, block in enumerate(blocks, start=1):
        script = folder / f"block_{number}.py"
        script.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"block {number}:\n{block}\n{done.stderr}"
        outputs.append(done.stdout)
    return outputs


def test_the_use_it_examples_run_unchanged_against_an_openai_compatible_server(tmp_path):
    blocks = python_blocks(section(README.read_text(encoding="utf-8"), "Use it"))
    assert len(blocks) == 2, "the first script and the context-first one"
    with LoopbackOpenAI([answer] * 50) as server:
        outputs = run_blocks(blocks, tmp_path, server)
        assert server.unexpected == []
        requests = server.requests
    first = outputs[0]
    assert "finished manual" in first and LEARNED in first, "the sleep run and its diff"
    assert "Try a chickpea stew." in first
    assert "'sleep': Usage(" in first and "calls=1" in first
    dinner = next(r for r in requests if r.messages[-1]["content"] == "Dinner idea?")
    assert LEARNED in str(dinner.messages[0]["content"]), "the next thread answers from memory"
    total = next(r for r in requests if r.messages[-1]["content"] == "What is the total?")
    assert "pastries" not in str(total.messages[-1]["content"]), "the question comes bare"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.stem)
def test_the_guides_scripts_run_unchanged_against_an_openai_compatible_server(guide, tmp_path):
    blocks = python_blocks(guide.read_text(encoding="utf-8"))
    assert blocks, f"{guide.name} has Python blocks"
    with LoopbackOpenAI([answer] * 50) as server:
        outputs = run_blocks(blocks, tmp_path, server)
        assert server.unexpected == []
    if guide.stem == "import-history":
        assert outputs[0] == "2 SleepOutcome.UNCHANGED\n", "the group's two messages, one run"
