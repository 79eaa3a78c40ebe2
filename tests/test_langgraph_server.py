"""The graph on a real LangGraph Server (``langgraph dev``), driven with ``langgraph-sdk``.

The server's model is the loopback OpenAI-compatible server: real HTTP from the
server process, scripted replies. Sleep-time compute is scheduled by the chat
graph itself, as a delayed run with rollback on the scope's companion thread.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleepagent.graph.build import sleep_thread_id
from sleepagent.scope import Scope
from sleepagent.testing.loopback import Completion, LoopbackOpenAI

langgraph_sdk = pytest.importorskip("langgraph_sdk")

ROOT = Path(__file__).resolve().parent.parent
LANGGRAPH = shutil.which("langgraph", path=str(Path(sys.executable).parent))
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 60
IDLE_S = 5  # both turns must land inside this window, even on a loaded machine
MEMORY = "I'm Ada.\nI'm vegetarian."

pytestmark = pytest.mark.skipif(LANGGRAPH is None, reason="langgraph-cli[inmem] is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def model_server() -> Iterator[LoopbackOpenAI]:
    script = [
        "Hello Ada!",
        "Noted, vegetarian.",
        Completion("- I'm Ada.\n- I'm vegetarian."),  # the fact pass's list
        "Try a lentil curry.",
    ]
    with LoopbackOpenAI(script) as server:
        yield server


@pytest.fixture
def langgraph_server(model_server: LoopbackOpenAI, tmp_path: Path) -> Iterator[str]:
    """``langgraph dev`` on a free port; stopped at the end even when the test fails.

    It runs in a fresh folder (the repository's ``langgraph.json`` and ``graphs/``),
    because ``langgraph dev`` keeps its in-memory state in the folder it starts in.
    """
    shutil.copytree(ROOT / "graphs", tmp_path / "graphs")
    spec = json.loads((ROOT / "langgraph.json").read_text())
    spec["dependencies"] = [str(ROOT)]
    (tmp_path / "langgraph.json").write_text(json.dumps(spec))
    port = free_port()
    env = {
        **os.environ,
        "SLEEPAGENT_MODEL": "openai:loopback",
        "SLEEPAGENT_IDLE_SECONDS": str(IDLE_S),
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "sk-loopback",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    process = subprocess.Popen(
        [LANGGRAPH, "dev", "--port", str(port), "--no-browser", "--no-reload"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    log: list[str] = []

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if "Application started up" in line or "Application startup complete" in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            pytest.fail("langgraph dev did not start:\n" + "".join(log[-40:]))
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def test_two_turns_inside_the_idle_window_give_one_sleep_run_whose_memory_the_next_turn_uses(
    langgraph_server: str, model_server: LoopbackOpenAI
):
    client = langgraph_sdk.get_sync_client(url=langgraph_server, api_key=None)
    thread = client.threads.create()["thread_id"]
    for text in ("Hi, I'm Ada.", "I'm vegetarian."):
        client.runs.wait(
            thread, "sleepagent", input={"messages": [{"role": "user", "content": text}]}
        )

    sleep_thread = sleep_thread_id(Scope("thread", thread))
    runs = client.runs.list(sleep_thread)
    assert len(runs) == 1, "the second turn's delayed run replaced the first (rollback)"
    client.runs.join(sleep_thread, runs[0]["run_id"])
    assert client.runs.get(sleep_thread, runs[0]["run_id"])["status"] == "success"

    item = client.store.get_item(("sleepagent", "scopes", "thread", thread, "blocks"), "human")
    assert item["value"]["value"] == MEMORY
    assert item["value"]["version"] == 1

    client.runs.wait(
        thread, "sleepagent", input={"messages": [{"role": "user", "content": "Dinner?"}]}
    )
    last_prompt = model_server.requests[-1].messages[0]["content"]
    assert MEMORY in last_prompt
    model_server.assert_exhausted()


def test_the_root_langgraph_json_builds_an_image_from_the_repository_alone(tmp_path: Path):
    """``langgraph dockerfile`` at the root needs no extra build context, and skips local state."""
    done = subprocess.run(
        [LANGGRAPH, "dockerfile", "-c", "langgraph.json", str(tmp_path / "Dockerfile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    dockerfile = (tmp_path / "Dockerfile").read_text()
    added = [line for line in dockerfile.splitlines() if line.startswith("ADD ")]
    assert len(added) == 1 and added[0].startswith("ADD . /deps/"), added
    assert "graphs/sleepagent_graph.py:make_graph" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for local_state in (".venv/", ".git/", "*.db", ".langgraph_api/"):
        assert local_state in ignored
