"""The memory inspector as an ASGI app, read with a plain ASGI test client.

The scenario is a scripted bot on a real SQLite file: two users, a few turns,
sleep runs that rewrite blocks (one of them with hostile text), and a thread
with pending work. The browser tests (test_inspector_browser.py) and the
LangGraph Server test reuse it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from langgraph.store.base import BaseStore
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from sleepagent import SleepConfig, SleepEditMode, SleepTimeAgent
from sleepagent.inspector import create_app
from sleepagent.inspector.chart import TokenEvent, layout
from sleepagent.inspector.cli import is_loopback, no_auth_warning
from sleepagent.inspector.views import diff_lines
from sleepagent.scheduling import ManualClock
from sleepagent.store.layout import decode_id as decode_label
from sleepagent.store.layout import encode_id as encode_label
from sleepagent.store.persistence import open_async_persistence, open_persistence
from sleepagent.testing import ScriptedChatModel, ai_tool_calls, tool_call
from tests.conftest import POSTGRES_URL, empty_postgres, machinery

# The scenario gives up bob's page on purpose, to show a failed page.
pytestmark = pytest.mark.sleep_failures_expected


HOSTILE_SCRIPT = "<script>window.__pwned = 'script'</script>"
HOSTILE_ATTRIBUTE = (
    "\" onmouseover=\"window.__pwned='attr'\" x=\"<img src=x onerror=window.__pwned='img'>"
)
LONG_LINE = "L" * 3000
HOSTILE = f"Name: Mallory {HOSTILE_SCRIPT}\nNote: {HOSTILE_ATTRIBUTE}\n{LONG_LINE}"
HOSTILE_THREAD = 'x"><img src=x onerror="alert(\'thread id\')">'
ADA_FACTS = "Name: Ada. Lives in Lisbon. Vegetarian."
ADA_PLAN = "Half marathon on 15 March; runs 4x/week."


@dataclass
class Scenario:
    """A scripted bot's database, and the agent still open on it for more turns."""

    db: Path | str
    agent: SleepTimeAgent
    clock: ManualClock
    chat_model: ScriptedChatModel
    sleep_model: ScriptedChatModel

    def tick(self, seconds: float = 45.0) -> None:
        self.clock.set(self.clock.now() + seconds)

    def new_sleep_run(self) -> None:
        """One more turn of Ada's, and a sleep run that records her training plan."""
        self.chat_model.extend(["Good luck with the training!"])
        self.sleep_model.extend(
            [
                ai_tool_calls(
                    tool_call("memory_insert", label="human", text=ADA_PLAN, line=-1),
                    tool_call("memory_finish"),
                )
            ]
        )
        self.tick()
        self.agent.chat("I run four times a week.", thread_id="ada-1", user_id="ada")
        self.tick()
        self.agent.sleep(thread_id="ada-1", user_id="ada")


def build_scenario(db: Path | str) -> Iterator[Scenario]:
    clock = ManualClock()
    chat = ScriptedChatModel(
        [
            "Welcome, Ada!",
            "Noted.",
            "Hello Mallory.",
            "Hi again.",
            "Hm.",
            "Sure.",
        ]
    )
    sleep = ScriptedChatModel(
        [
            ai_tool_calls(
                tool_call("memory_rethink", label="human", new_value=ADA_FACTS),
                tool_call("memory_finish"),
            ),
            ai_tool_calls(
                tool_call("memory_rethink", label="human", new_value=HOSTILE),
                tool_call("memory_finish"),
            ),
            # Bob's run: plain text, no memory tool: the page fails (no retries configured).
            "I would rather not touch memory.",
        ]
    )
    agent = SleepTimeAgent(
        chat,
        sleep_model=sleep,
        db=str(db),
        # Tool calls only: a plain-text reply is then the no_tool_call outcome the page shows.
        # The scripted edits stand for whatever a run writes (hostile text included), not
        # for facts the users said, so the user's block is free text (see `machinery`).
        config=machinery(SleepConfig(sleep_retries=0, sleep_edit_mode=SleepEditMode.TOOLS)),
        scheduler=None,
        clock=clock.now,
    )
    scenario = Scenario(db, agent, clock, chat, sleep)
    with agent:
        agent.chat("Hi, I'm Ada from Lisbon.", thread_id="ada-1", user_id="ada")
        scenario.tick()
        agent.chat("I'm vegetarian.", thread_id="ada-1", user_id="ada")
        scenario.tick()
        agent.sleep(thread_id="ada-1", user_id="ada")
        scenario.tick()
        agent.chat(f"I am {HOSTILE_SCRIPT}", thread_id="evil-1", user_id="mallory")
        scenario.tick()
        agent.sleep(thread_id="evil-1", user_id="mallory")
        scenario.tick()
        agent.chat("Remember my cat.", thread_id="bob-1", user_id="bob")
        scenario.tick()
        agent.sleep(thread_id="bob-1", user_id="bob")
        scenario.tick()
        agent.chat("<b>hi</b>", thread_id=HOSTILE_THREAD)
        scenario.tick()
        # A thread-scoped conversation that no sleep run has read yet: pending work.
        agent.chat("Just passing by.", thread_id="drive-by")
        yield scenario


@pytest.fixture(params=["sqlite", *(["postgres"] if POSTGRES_URL else [])])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        empty_postgres(POSTGRES_URL)
        yield from build_scenario(POSTGRES_URL)
    else:
        yield from build_scenario(tmp_path / "bot.db")


@pytest.fixture
def client(scenario: Scenario) -> Iterator[TestClient]:
    with TestClient(create_app(str(scenario.db), refresh_seconds=1)) as test_client:
        yield test_client


# --- pure parts -------------------------------------------------------------------


def test_decode_label_inverts_encode_label():
    for text in ("a.b", "100%", "%2E.", "x\x00y", "plain"):
        assert decode_label(encode_label(text)) == text


def test_diff_lines_classify_added_and_removed_lines():
    lines = diff_lines("one\ntwo\n", "one\nthree\n")
    assert [(line.kind, line.text) for line in lines if line.kind != "same"] == [
        ("hunk", "@@ -1,2 +1,2 @@"),
        ("del", "-two"),
        ("add", "+three"),
    ]


def test_chart_accumulates_tokens_per_phase_over_time():
    chart = layout(
        [
            TokenEvent("2026-01-01T00:00:00+00:00", "chat", 100, "a"),
            TokenEvent("2026-01-01T00:01:00+00:00", "sleep", 300, "b"),
            TokenEvent("2026-01-01T00:02:00+00:00", "chat", 50, "c"),
        ]
    )
    chat, sleep = chart.series
    assert [point.total for point in chat.points] == [100, 150]
    assert [point.total for point in sleep.points] == [300]
    assert chat.points[0].x < sleep.points[0].x < chat.points[1].x
    assert sleep.points[0].y < chat.points[1].y, "more tokens are drawn higher"


def test_no_auth_warning_only_off_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert "NO AUTHENTICATION" in no_auth_warning("0.0.0.0")


# --- the app ------------------------------------------------------------------------


def test_overview_lists_scopes_with_pending_work_and_tokens_per_phase(client: TestClient):
    data = client.get("/api/overview").json()
    by_key = {scope["key"]: scope for scope in data["scopes"]}
    assert set(by_key) == {
        "user:ada",
        "user:mallory",
        "user:bob",
        "thread:drive-by",
        f"thread:{HOSTILE_THREAD}",
    }
    assert by_key["thread:drive-by"]["pending"] == 2
    assert by_key["user:ada"]["pending"] == 0
    assert by_key["user:ada"]["last_run"] is not None
    assert by_key["user:ada"]["usage"]["chat"] > 0 and by_key["user:ada"]["usage"]["sleep"] > 0
    assert data["scopes"][0]["key"] == "thread:drive-by", "pending work comes first"
    assert data["pending"] == 4
    assert by_key["user:ada"]["last_outcome"] == "edited"
    assert (by_key["user:bob"]["last_outcome"], by_key["user:bob"]["failed_pages"]) == (
        "no_tool_call",
        1,
    )
    assert data["failed_pages"] == 1
    assert [run["scope"] for run in data["runs"]] == ["user:bob", "user:mallory", "user:ada"]


def test_scope_shows_its_runs_and_failed_pages(client: TestClient):
    data = client.get("/api/scope", params={"key": "user:bob"}).json()
    (run,) = data["runs"]
    assert (run["outcome"], run["messages"], run["steps"]) == ("no_tool_call", 2, 1)
    assert run["tokens"] > 0 and "plain text" in run["error"]
    (page,) = data["failed"]
    assert (page["thread_id"], page["span"], page["attempts"]) == ("bob-1", "1-2", 1)
    html = client.get("/scope", params={"key": "user:bob"}).text
    assert 'class="outcome bad">no_tool_call<' in html


def test_overview_page_escapes_hostile_scope_ids(client: TestClient):
    html = client.get("/").text
    assert "<img" not in html
    assert "x&#34;&gt;&lt;img src=x onerror=" in html
    assert "key=thread%3Ax%22%3E%3Cimg" in html, "the link carries the id url-encoded"


def test_scope_shows_blocks_and_a_timeline_with_diffs(client: TestClient, scenario: Scenario):
    data = client.get("/api/scope", params={"key": "user:ada"}).json()
    human = next(block for block in data["blocks"] if block["label"] == "human")
    assert human["value"] == ADA_FACTS
    assert human["version"] == 1
    assert human["chars"] == len(ADA_FACTS)
    assert human["limit"] > 0 and human["read_only"] is False
    (version,) = [v for v in data["timeline"] if v["label"] == "human"]
    assert version["phase"] == "sleep" and version["reason"] == "manual"
    assert {"kind": "add", "text": f"+{ADA_FACTS}"} in version["diff"]
    (run,) = data["runs"]
    assert version["run"] == run
    assert (run["outcome"], run["messages"], run["changed"]) == ("edited", 4, ["human"])
    assert run["tokens"] == data["summary"]["usage"]["sleep"] > 0
    assert [t["thread_id"] for t in data["threads"]] == ["ada-1"]


def test_scope_page_escapes_hostile_block_text(client: TestClient):
    response = client.get("/scope", params={"key": "user:mallory"})
    assert response.status_code == 200
    html = response.text
    assert HOSTILE_SCRIPT not in html
    assert "&lt;script&gt;window.__pwned" in html
    assert 'onmouseover="window' not in html
    assert "<img src=x" not in html
    assert LONG_LINE in html, "the long line is shown whole (CSS wraps it)"
    assert not re.search(r"<script(?![^>]*src=)", html), "the only script is the app's own file"


def test_pages_send_a_policy_that_allows_only_the_apps_own_script(client: TestClient):
    for path in ("/", "/scope?key=user:ada", "/static/inspector.js", "/api/overview"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_app_is_read_only(client: TestClient, scenario: Scenario):
    for path in ("/", "/scope", "/api/scope", "/live"):
        assert client.post(path).status_code == 405
    if isinstance(scenario.db, Path):
        before = scenario.db.read_bytes()
        client.get("/scope", params={"key": "user:ada"})
        client.get("/")
        assert scenario.db.read_bytes() == before


def test_a_malformed_scope_key_is_not_found(client: TestClient):
    page = client.get("/scope", params={"key": "nonsense"})
    assert page.status_code == 404
    assert "is not a memory scope: use user:&lt;id&gt; or thread:&lt;id&gt;" in page.text
    assert client.get("/api/scope", params={"key": "nonsense"}).status_code == 404


def test_a_scope_the_database_knows_nothing_of_is_a_clear_404(client: TestClient):
    page = client.get("/scope", params={"key": "user:nobody"})
    assert page.status_code == 404
    assert "<h2>Not found</h2>" in page.text
    assert "No memory scope user:nobody in " in page.text
    assert "All scopes" in page.text
    data = client.get("/api/scope", params={"key": "user:nobody"})
    assert data.status_code == 404 and "No memory scope user:nobody" in data.json()["error"]
    live = client.get("/live", params={"view": "scope", "key": "user:nobody"})
    assert live.status_code == 404
    assert client.get("/scope", params={"key": "user:ada"}).status_code == 200


def test_live_sends_a_new_body_only_after_the_data_changed(client: TestClient, scenario: Scenario):
    first = client.get("/live", params={"view": "scope", "key": "user:ada"}).json()
    assert "html" in first
    same = client.get(
        "/live", params={"view": "scope", "key": "user:ada", "since": first["revision"]}
    ).json()
    assert same == {"revision": first["revision"]}

    with scenario.agent:
        scenario.new_sleep_run()
    changed = client.get(
        "/live", params={"view": "scope", "key": "user:ada", "since": first["revision"]}
    ).json()
    assert changed["revision"] != first["revision"]
    assert ADA_PLAN in changed["html"]


def test_mounted_under_a_prefix_on_the_host_apps_own_store(scenario: Scenario):
    opened: dict[str, BaseStore] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The host application owns the store; the inspector gets it on first use.
        async with open_async_persistence(str(scenario.db)) as (_saver, store):
            opened["store"] = store
            yield

    inspector = create_app(store=lambda: opened["store"])
    host = Starlette(routes=[Mount("/memory", app=inspector)], lifespan=lifespan)
    with TestClient(host) as test_client:
        page = test_client.get("/memory/")
        assert page.status_code == 200
        assert 'href="/memory/scope?key=user%3Aada"' in page.text
        assert 'src="/memory/static/inspector.js"' in page.text
        data = test_client.get("/memory/api/scope", params={"key": "user:ada"}).json()
        assert [block["value"] for block in data["blocks"]] == [ADA_FACTS]


def test_create_app_needs_exactly_one_source():
    from sleepagent import ConfigurationError

    with pytest.raises(ConfigurationError, match="exactly one"):
        create_app()


def test_importing_sleepagent_does_not_import_the_web_stack():
    code = (
        "import json, sys\n"
        "import sleepagent, sleepagent.cli.commands\n"
        "import sleepagent.inspector, sleepagent.inspector.cli\n"
        "web = ('starlette', 'jinja2', 'uvicorn')\n"
        "print(json.dumps(sorted(name for name in web if name in sys.modules)))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == []


def start_command(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``sleepagent inspect ARGS``, and what it printed up to its URL line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sleepagent.cli.commands",
            "inspect",
            "--port",
            "0",
            "--no-browser",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:  # ends at its URL line, or when it exits
        lines.append(line)
        if " on http://" in line:
            break
    return process, lines


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_the_command_says_it_has_no_authentication_when_bound_beyond_loopback(
    tmp_path: Path, host: str, warned: bool
):
    db = tmp_path / "empty.db"
    with open_persistence(str(db)):
        pass
    process, lines = start_command("--db", str(db), "--host", host)
    try:
        assert f"on http://{host}:" in lines[-1]
        assert any("NO AUTHENTICATION" in line for line in lines) is warned
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_command_refuses_a_missing_database(tmp_path: Path):
    process, lines = start_command("--db", str(tmp_path / "missing.db"))
    assert process.wait(timeout=20) == 1
    assert "no database at" in "".join(lines)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(
    ("blocked", "says"),
    [
        ((), "cannot connect to PostgreSQL at postgresql://me:***@127.0.0.1:1/none"),
        (("psycopg", "langgraph.checkpoint.postgres"), "pip install 'sleepagent[postgres]'"),
    ],
    ids=["unreachable", "no-postgres-extra"],
)
def test_a_database_that_cannot_be_opened_is_one_line_before_anything_is_served(
    blocked: tuple[str, ...], says: str
):
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({blocked!r}))  # as if the extra were not installed\n"
        "from sleepagent.cli.commands import main\n"
        "sys.exit(main(['inspect', '--db', 'postgresql://me:pw@127.0.0.1:1/none',"
        " '--port', '0', '--no-browser']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == "", "nothing is announced"
    assert done.stderr.startswith("sleepagent inspect: ")
    assert says in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


async def test_the_server_store_refuses_writes():
    from langgraph.store.base import PutOp

    from sleepagent.inspector.server_store import ReadOnlyStoreError, ServerStore

    with pytest.raises(ReadOnlyStoreError, match="only reads"):
        await ServerStore(client=object()).abatch([PutOp(("sleepagent",), "k", {"v": 1})])


def test_the_command_names_the_extra_when_the_web_stack_is_missing(tmp_path: Path):
    db = tmp_path / "empty.db"
    with open_persistence(str(db)):
        pass
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None  # as if the inspect extra were not installed\n"
        "from sleepagent.cli.commands import main\n"
        f"sys.exit(main(['inspect', '--db', {str(db)!r}, '--no-browser']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'sleepagent[inspect]'" in done.stderr


def test_the_overview_shows_a_run_in_flight_and_since_when(tmp_path: Path):
    entered, release = threading.Event(), threading.Event()

    def held(prompt):
        entered.set()
        assert release.wait(30), "the test never released the run"
        return "NOTHING NEW"

    db = str(tmp_path / "bot.db")
    agent = SleepTimeAgent(
        ScriptedChatModel(["Noted."]),
        sleep_model=ScriptedChatModel([held]),
        db=db,
        scheduler=None,
    )
    with agent:
        agent.chat("I live in Lisbon.", thread_id="t1", user_id="ada")
        running = threading.Thread(target=agent.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        running.start()
        try:
            assert entered.wait(30)
            with TestClient(create_app(db=db)) as test_client:
                (during,) = test_client.get("/api/overview").json()["scopes"]
                html = test_client.get("/").text
        finally:
            release.set()
            running.join(30)
    assert (during["running_reason"], during["last_run"]) == ("manual", None)
    assert during["running_since"] is not None
    assert "running since" in html
    with TestClient(create_app(db=db)) as test_client:
        (after,) = test_client.get("/api/overview").json()["scopes"]
    assert (after["running_since"], after["last_outcome"]) == (None, "unchanged")
