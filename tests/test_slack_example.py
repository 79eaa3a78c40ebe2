"""The Slack example end to end, without the network.

Signed Events API payloads go to the Bolt app's dispatcher exactly as Slack
would send them, and Socket Mode envelopes arrive over a loopback WebSocket;
the app's Web API client talks to a loopback fake of ``slack.com/api`` that
records ``chat.postMessage``. Sleep-time compute runs on virtual time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import WSMsgType, web
from langchain_core.messages import BaseMessage
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sleepagent import AsyncSleepTimeAgent, SleepConfig
from sleepagent.testing import (
    ManualScheduler,
    ScriptedChatModel,
    memory_in_prompt,
    said_in_facts_prompt,
)

EXAMPLE = Path(__file__).parent.parent / "examples" / "slack_bot.py"
MANIFEST = EXAMPLE.parent / "slack_app_manifest.yaml"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, BOT = "T0001", "UBOT"
WAIT_S = 5.0


def bare_env(**extra: str) -> dict[str, str]:
    """An environment with no settings of a user's, only what finds Python and this package."""
    kept = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
    return {**kept, **extra}


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("slack_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


slack_bot = load_example()


class FakeSlackApi:
    """A loopback stand-in for the Slack Web API that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.posted: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sockets: asyncio.Queue[web.WebSocketResponse] = asyncio.Queue()
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        self.calls.append((method, args))
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "team_id": TEAM, "user_id": BOT, "bot_id": "B0BOT", "team": "test"}
            )
        if method == "apps.connections.open":
            socket_url = self.base_url.replace("http://", "ws://").replace("/api/", "/socket")
            return web.json_response({"ok": True, "url": socket_url})
        if method == "chat.postMessage":
            await self.posted.put(args)
            return web.json_response({"ok": True, "channel": args["channel"], "ts": self.ts()})
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: greet the app, hand the socket to the test, record acknowledgements."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        await self.sockets.put(socket)
        async for frame in socket:
            if frame.type is WSMsgType.TEXT:
                await self.acks.put(json.loads(frame.data))
        return socket

    async def next_socket(self) -> web.WebSocketResponse:
        return await asyncio.wait_for(self.sockets.get(), WAIT_S)

    async def next_ack(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.acks.get(), WAIT_S)

    def ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    async def next_post(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.posted.get(), WAIT_S)


def signed(payload: dict[str, Any], *, secret: str = SECRET) -> AsyncBoltRequest:
    """A request as Slack sends it: body signed with the v0 HMAC-SHA256 scheme."""
    body = json.dumps(payload)
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    headers = {
        "content-type": "application/json",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": f"v0={digest.hexdigest()}",
    }
    return AsyncBoltRequest(body=body, headers=headers)


_event_ids = itertools.count(1)


def message(
    text: str,
    *,
    user: str = "UADA",
    channel: str = "C0GENERAL",
    ts: str,
    thread_ts: str | None = None,
    kind: str = "message",
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "user": user,
        "text": text,
        "channel": channel,
        "channel_type": "im" if channel.startswith("D") else "channel",
        "ts": ts,
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": f"Ev{next(_event_ids):04d}",
        "event_time": int(time.time()),
        "event": event,
    }


def bot(messages: Sequence[BaseMessage]) -> str:
    """Chat model: echoes what it was asked and what its memory says about the person."""
    known = memory_in_prompt(messages).get("human") or "nothing"
    return f"re: {messages[-1].content} | I know: {known}"


def note_taker(messages: Sequence[BaseMessage]) -> str:
    """Sleep model: lists each of the person's messages as a fact about them."""
    said = said_in_facts_prompt(messages)
    assert said is not None, "each run is a fact pass on what the person said"
    return "\n".join(f"- {line}" for line in said)


class Gate:
    """Holds the chat model inside a call until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, messages: Sequence[BaseMessage]) -> str:
        self.entered.set()
        assert self.opened.wait(WAIT_S), "the test never opened the gate"
        return bot(messages)


@pytest.fixture
async def slack_api():
    api = FakeSlackApi()
    await api.start()
    yield api
    await api.close()


@pytest.fixture
async def make_bot(slack_api):
    opened = []

    async def build(chat_script: list[Any], sleep_script: list[Any] = ()):
        clock = ManualScheduler()
        agent = AsyncSleepTimeAgent(
            ScriptedChatModel(chat_script),
            sleep_model=ScriptedChatModel(sleep_script),
            db=None,
            config=SleepConfig(idle_seconds=30),
            scheduler=clock,
        )
        await agent.__aenter__()
        client = AsyncWebClient(token="xoxb-test", base_url=slack_api.base_url)
        app, queue = slack_bot.create_app(agent, signing_secret=SECRET, client=client)
        opened.append((agent, queue))
        return app, queue, agent, clock

    yield build
    for agent, queue in opened:
        await queue.aclose(timeout=WAIT_S)
        await agent.aclose()


async def test_the_signing_scheme_is_slack_sdks():
    request = signed({"hello": "world"})
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        request.raw_body,
        request.headers["x-slack-request-timestamp"][0],
        request.headers["x-slack-signature"][0],
    )


async def test_a_direct_message_is_answered_in_the_dm(make_bot, slack_api):
    app, queue, *_ = await make_bot([bot])
    response = await app.async_dispatch(signed(message("hello", channel="D0ADA", ts="1.1")))
    assert response.status == 200
    post = await slack_api.next_post()
    assert post["channel"] == "D0ADA"
    assert post["text"] == "re: hello | I know: nothing"
    assert "thread_ts" not in post or post["thread_ts"] is None


async def test_a_mention_in_a_channel_is_answered_in_a_thread_under_it(make_bot, slack_api):
    app, *_ = await make_bot([bot])
    payload = message(f"<@{BOT}> what's up?", ts="5.5", kind="app_mention")
    assert (await app.async_dispatch(signed(payload))).status == 200
    post = await slack_api.next_post()
    assert (post["channel"], post["thread_ts"], post["text"]) == (
        "C0GENERAL",
        "5.5",
        "re: what's up? | I know: nothing",
    )


async def test_a_request_with_a_bad_signature_is_refused_and_not_answered(make_bot):
    app, queue, agent, _ = await make_bot([])
    response = await app.async_dispatch(
        signed(message("hi", channel="D0ADA", ts="1.1"), secret="wrong")
    )
    assert response.status == 401
    assert not queue.busy


async def test_an_event_slack_delivers_twice_is_answered_once(make_bot, slack_api):
    app, queue, *_ = await make_bot([bot, bot])
    payload = message("hello", channel="D0ADA", ts="1.1")
    await app.async_dispatch(signed(payload))
    retry = signed(payload)
    retry.headers["x-slack-retry-num"] = ["1"]
    assert (await app.async_dispatch(retry)).status == 200
    await queue.join(WAIT_S)
    posts = [args["text"] for call, args in slack_api.calls if call == "chat.postMessage"]
    assert posts == ["re: hello | I know: nothing"]


async def test_messages_from_bots_are_ignored(make_bot, slack_api):
    app, queue, agent, _ = await make_bot([bot])
    from_self = message("my own reply", user=BOT, channel="D0ADA", ts="1.1")
    from_other_bot = message(
        "beep", user="UOTHER", channel="D0ADA", ts="1.2", bot_id="B0OTHER", subtype="bot_message"
    )
    for payload in (from_self, from_other_bot):
        assert (await app.async_dispatch(signed(payload))).status == 200
    await app.async_dispatch(signed(message("a person", channel="D0ADA", ts="1.3")))
    post = await slack_api.next_post()
    assert post["text"] == "re: a person | I know: nothing", "only the person was answered"
    assert slack_api.posted.empty()


async def test_two_quick_messages_in_one_thread_are_answered_in_order_none_lost(
    make_bot, slack_api
):
    gate = Gate()
    app, queue, *_ = await make_bot([gate, bot])
    await app.async_dispatch(signed(message("first", channel="D0ADA", ts="1.1")))
    assert await asyncio.to_thread(gate.entered.wait, WAIT_S), "the first turn started"
    await app.async_dispatch(signed(message("second", channel="D0ADA", ts="1.2")))
    await app.async_dispatch(signed(message("third", channel="D0ADA", ts="1.3")))
    assert queue.waiting("slack:T0001:D0ADA") == 2, "queued while the bot was answering"
    gate.opened.set()
    replies = [(await slack_api.next_post())["text"] for _ in range(2)]
    assert replies == [
        "re: first | I know: nothing",
        "re: second\nthird | I know: nothing",
    ]


async def test_memory_follows_each_person_across_channels_and_never_crosses(make_bot, slack_api):
    app, queue, agent, clock = await make_bot([bot] * 4, [note_taker] * 2)
    ada = message(f"<@{BOT}> I'm Ada, vegetarian", user="UADA", ts="2.1", kind="app_mention")
    bob = message(f"<@{BOT}> I'm Bob, I love steak", user="UBOB", ts="2.2", kind="app_mention")
    for payload in (ada, bob):
        await app.async_dispatch(signed(payload))
    await slack_api.next_post()
    await slack_api.next_post()
    await queue.join(WAIT_S)
    await clock.aadvance(60)  # quiet: sleep-time compute runs for each person

    elsewhere = message(
        f"<@{BOT}> dinner?", user="UADA", channel="C0RANDOM", ts="3.1", kind="app_mention"
    )
    await app.async_dispatch(signed(elsewhere))
    post = await slack_api.next_post()
    assert post["text"] == "re: dinner? | I know: I'm Ada, vegetarian"
    ada_memory = await agent.memory(thread_id="any", user_id=f"slack:{TEAM}:UADA")
    bob_memory = await agent.memory(thread_id="any", user_id=f"slack:{TEAM}:UBOB")
    assert ada_memory["human"].value == "I'm Ada, vegetarian"
    assert bob_memory["human"].value == "I'm Bob, I love steak"


async def test_a_reply_in_a_thread_the_bot_joined_needs_no_mention(make_bot, slack_api):
    app, *_ = await make_bot([bot] * 2)
    await app.async_dispatch(signed(message(f"<@{BOT}> hi", ts="4.1", kind="app_mention")))
    await slack_api.next_post()
    await app.async_dispatch(signed(message("and then?", ts="4.2", thread_ts="4.1")))
    post = await slack_api.next_post()
    assert (post["thread_ts"], post["text"]) == ("4.1", "re: and then? | I know: nothing")


def test_importing_the_example_needs_no_settings_and_builds_nothing(monkeypatch):
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    module = load_example()
    assert callable(module.create_app) and callable(module.main)
    assert not hasattr(module, "app"), "the app is built by create_app(), not at import"


# --- credentials, modes and the manifest ------------------------------------------------


def test_without_credentials_it_exits_with_one_line_and_creates_no_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=bare_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert "SLACK_BOT_TOKEN" in line and "SLACK_APP_TOKEN" in line
    assert "SLACK_SIGNING_SECRET" in line
    assert list(tmp_path.iterdir()) == [], "no database or other file was created"


def test_with_slack_tokens_but_no_model_key_it_exits_with_one_line_and_creates_no_file(tmp_path):
    env = bare_env(HOME=str(tmp_path), XDG_STATE_HOME="state")
    env |= {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("slack_bot.py: cannot build 'openai:gpt-4o-mini'")
    assert "OPENAI_API_KEY" in line
    assert list(tmp_path.iterdir()) == [], "no database or other file was created"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SLACK_APP_TOKEN": "xapp-1"}, "set SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN (xapp-..., Socket Mode) or"),
        ({"SLACK_BOT_TOKEN": "xoxp-1", "SLACK_APP_TOKEN": "xapp-1"}, "Bot User OAuth Token"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "app-level token"),
    ],
)
def test_missing_or_wrong_credentials_are_named(env, says):
    with pytest.raises(slack_bot.MissingCredentials, match=re.escape(says)):
        slack_bot.settings_from_env(env)


def test_an_app_token_means_socket_mode_and_a_signing_secret_means_http():
    socket = slack_bot.settings_from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    http = slack_bot.settings_from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert socket.socket_mode and not http.socket_mode
    assert http.signing_secret == "s"


def test_the_manifest_asks_for_the_scopes_and_events_the_bot_uses():
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == slack_bot.BOT_SCOPES
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert tuple(events) == slack_bot.BOT_EVENTS
    assert manifest["settings"]["socket_mode_enabled"] is True
    for name in (*slack_bot.BOT_SCOPES, *slack_bot.BOT_EVENTS):
        assert name in slack_bot.__doc__, f"{name} is listed in the setup steps"


async def test_socket_mode_takes_events_over_the_websocket_and_acknowledges_them(
    slack_api, make_bot
):
    app, *_ = await make_bot([bot])
    settings = slack_bot.SlackSettings(bot_token="xoxb-test", app_token="xapp-test")
    serving = asyncio.create_task(slack_bot.serve(app, settings))
    try:
        socket = await slack_api.next_socket()
        envelope = {
            "envelope_id": "env-1",
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "payload": message("hello over the socket", channel="D0ADA", ts="7.1"),
        }
        await socket.send_json(envelope)
        assert (await slack_api.next_ack())["envelope_id"] == "env-1"
        post = await slack_api.next_post()
        assert (post["channel"], post["text"]) == (
            "D0ADA",
            "re: hello over the socket | I know: nothing",
        )
        opened = [args for call, args in slack_api.calls if call == "apps.connections.open"]
        assert len(opened) == 1
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_the_default_database_is_in_the_users_state_folder_not_the_working_one(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("SLEEPAGENT_DB", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    opened: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def agent(*args: Any, **kwargs: Any) -> None:
        opened.update(kwargs)
        raise Stop

    monkeypatch.setattr(slack_bot, "AsyncSleepTimeAgent", agent)
    model = ScriptedChatModel([])
    settings = slack_bot.SlackSettings(bot_token="xoxb-1", app_token="xapp-1")
    with pytest.raises(Stop):
        await slack_bot.run(settings, (model, model))
    assert opened["db"] == str(tmp_path / "state" / "sleepagent" / "slack-bot.db")
    assert (tmp_path / "state" / "sleepagent").is_dir()
