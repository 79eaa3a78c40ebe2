"""The README's "Use it" code runs as written, against an OpenAI-compatible server.

Each Python block of the section is saved to a file and run as its own process,
unchanged, in one folder (so the later blocks see what the first one stored). Only
the environment differs from a user's: ``OPENAI_BASE_URL`` points at the loopback
server and ``OPENAI_API_KEY`` is a dummy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sleepagent.testing import Completion, LoopbackOpenAI, RecordedRequest, wire_call

README = Path(__file__).parent.parent / "README.md"
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


def test_the_use_it_examples_run_unchanged_against_an_openai_compatible_server(tmp_path):
    blocks = python_blocks(section(README.read_text(encoding="utf-8"), "Use it"))
    assert blocks, "the section has Python blocks"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEEPAGENT_"))}
    with LoopbackOpenAI([answer] * 50) as server:
        env |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-loopback"}
        outputs = []
        for number, block in enumerate(blocks, start=1):
            script = tmp_path / f"use_it_{number}.py"
            script.write_text(block, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, script.name],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
            assert done.returncode == 0, f"block {number}:\n{block}\n{done.stderr}"
            outputs.append(done.stdout)
        assert server.unexpected == []
        requests = server.requests
    first = outputs[0]
    assert "finished manual" in first and LEARNED in first, "the sleep run and its diff"
    assert "Try a chickpea stew." in first
    assert "'sleep': Usage(" in first and "calls=1" in first
    dinner = next(r for r in requests if r.messages[-1]["content"] == "Dinner idea?")
    assert LEARNED in str(dinner.messages[0]["content"]), "the next thread answers from memory"
