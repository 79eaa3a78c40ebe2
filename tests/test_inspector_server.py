"""The memory inspector as a LangGraph Server custom route (``http.app``), under ``langgraph dev``.

The server runs ``graphs/langgraph_inspector.json``: the sleepagent graph and the
inspector mounted at ``/inspector/``, reading the server's own store. The model
is the loopback OpenAI-compatible server with scripted replies.
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

import httpx
import pytest

from sleepagent.graph.build import sleep_request, sleep_thread_id
from sleepagent.scope import Scope
from sleepagent.testing.loopback import Completion, LoopbackOpenAI

langgraph_sdk = pytest.importorskip("langgraph_sdk")
pytest.importorskip("jinja2")

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
LANGGRAPH = shutil.which("langgraph", path=str(Path(sys.executable).parent))
START_TIMEOUT_S = 90
# Markup the user typed, grounded in what they said, so the default (facts) human block
# keeps it: the page must show it escaped.
SAID = "Hi, I'm Ada <u>bold?</u>. I'm vegetarian."
MEMORY = "I'm Ada <u>bold?</u>.\nI'm vegetarian."

pytestmark = pytest.mark.skipif(LANGGRAPH is None, reason="langgraph-cli[inmem] is not installed")


@pytest.fixture
def model_server() -> Iterator[LoopbackOpenAI]:
    script = [
        "Hello Ada!",
        Completion("\n".join(f"- {line}" for line in MEMORY.splitlines())),  # the fact pass
    ]
    with LoopbackOpenAI(script) as server:
        yield server


@pytest.fixture
def server_url(model_server: LoopbackOpenAI, tmp_path: Path) -> Iterator[str]:
    """``langgraph dev`` with the inspector route, in a fresh folder, stopped at the end."""
    for name in ("sleepagent_graph.py", "inspector_app.py"):
        shutil.copy(GRAPHS / name, tmp_path)
    spec = json.loads((GRAPHS / "langgraph_inspector.json").read_text())
    spec["dependencies"] = [str(GRAPHS.parent)]
    (tmp_path / "langgraph.json").write_text(json.dumps(spec))
    port = free_port()
    env = {
        **os.environ,
        "SLEEPAGENT_MODEL": "openai:loopback",
        # No delayed run fires during the test: the sleep run is started by hand.
        "SLEEPAGENT_IDLE_SECONDS": "3600",
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_inspector_route_reads_the_servers_store(server_url: str, model_server: LoopbackOpenAI):
    client = langgraph_sdk.get_sync_client(url=server_url, api_key=None)
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "sleepagent", input={"messages": [{"role": "user", "content": SAID}]})
    scope = Scope("thread", thread)
    client.runs.wait(
        sleep_thread_id(scope),
        "sleepagent",
        input=sleep_request(),
        context={"thread_id": thread, "user_id": None},
        if_not_exists="create",
    )
    model_server.assert_exhausted()

    with httpx.Client(base_url=f"{server_url}/inspector", timeout=30) as http:
        overview = http.get("/api/overview").json()
        assert [s["key"] for s in overview["scopes"]] == [scope.key]
        assert overview["scopes"][0]["usage"]["chat"] > 0

        detail = http.get("/api/scope", params={"key": scope.key}).json()
        assert [(b["label"], b["value"], b["version"]) for b in detail["blocks"]] == [
            ("human", MEMORY, 1)
        ]
        assert detail["timeline"][0]["phase"] == "sleep"
        assert [run["outcome"] for run in detail["runs"]] == ["edited"]
        assert detail["timeline"][0]["run"]["run_id"] == detail["runs"][0]["run_id"]

        page = http.get("/scope", params={"key": scope.key})
        assert page.status_code == 200
        assert "I&#39;m Ada &lt;u&gt;bold?&lt;/u&gt;." in page.text
        assert 'src="/inspector/static/inspector.js"' in page.text
        assert http.get("/static/inspector.js").status_code == 200
        assert http.post("/api/overview").status_code == 405
