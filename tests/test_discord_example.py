"""The Discord example's message handling, with constructed messages (no gateway)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
from langchain_core.messages import BaseMessage

from sleepagent import AsyncSleepTimeAgent, SleepConfig
from sleepagent.testing import (
    ManualScheduler,
    ScriptedChatModel,
    memory_in_prompt,
    said_in_facts_prompt,
)

EXAMPLE = Path(__file__).parent.parent / "examples" / "discord_bot.py"
BOT_ID, GUILD, CHANNEL = 900, 10, 20
WAIT_S = 5.0


def bare_env(**extra: str) -> dict[str, str]:
    """An environment with no settings of a user's, only what finds Python and this package."""
    kept = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
    return {**kept, **extra}


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("discord_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


discord_bot = load_example()


@dataclass(frozen=True)
class User:
    id: int
    bot: bool = False


@dataclass
class Place:
    """A channel; ``send`` records what the bot posted there."""

    id: int
    sent: list[str] = field(default_factory=list)

    async def send(self, text: str) -> None:
        self.sent.append(text)

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass
class Message:
    """The part of ``discord.Message`` the handler uses; ``reply`` records instead of sending."""

    content: str
    author: User
    channel: Place = field(default_factory=lambda: Place(CHANNEL))
    guild: Place | None = field(default_factory=lambda: Place(GUILD))
    mentions: list[User] = field(default_factory=list)
    replies: asyncio.Queue[tuple[Message, str]] | None = None

    async def reply(self, text: str) -> None:
        assert self.replies is not None
        await self.replies.put((self, text))


def bot(messages: Sequence[BaseMessage]) -> str:
    known = memory_in_prompt(messages).get("human") or "nothing"
    return f"re: {messages[-1].content} | I know: {known}"


def note_taker(messages: Sequence[BaseMessage]) -> str:
    """Sleep model: lists each of the person's messages as a fact about them."""
    said = said_in_facts_prompt(messages)
    assert said is not None, "each run is a fact pass on what the person said"
    return "\n".join(f"- {line}" for line in said)


class Harness:
    def __init__(self, agent: AsyncSleepTimeAgent, clock: ManualScheduler) -> None:
        self.agent, self.clock = agent, clock
        self.on_message, self.queue = discord_bot.create_handler(agent, bot_id=lambda: BOT_ID)
        self.replies: asyncio.Queue[tuple[Message, str]] = asyncio.Queue()

    def message(self, content: str, *, author: int, mention: bool = False, **where: Any):
        mentions = [User(BOT_ID)] if mention else []
        text = f"<@{BOT_ID}> {content}" if mention else content
        return Message(text, User(author), mentions=mentions, replies=self.replies, **where)

    async def next_reply(self) -> tuple[Message, str]:
        return await asyncio.wait_for(self.replies.get(), WAIT_S)


@pytest.fixture
async def make(request):
    opened = []

    async def build(chat_script, sleep_script=()):
        clock = ManualScheduler()
        agent = AsyncSleepTimeAgent(
            ScriptedChatModel(chat_script),
            sleep_model=ScriptedChatModel(sleep_script),
            db=None,
            config=SleepConfig(idle_seconds=30),
            scheduler=clock,
        )
        await agent.__aenter__()
        harness = Harness(agent, clock)
        opened.append(harness)
        return harness

    yield build
    for harness in opened:
        await harness.queue.aclose(timeout=WAIT_S)
        await harness.agent.aclose()


async def test_a_direct_message_is_answered_with_a_reply(make):
    bot_ = await make([bot])
    sent = bot_.message("hello", author=1, guild=None, channel=Place(77))
    await bot_.on_message(sent)
    replied_to, text = await bot_.next_reply()
    assert replied_to is sent
    assert text == "re: hello | I know: nothing"


async def test_a_server_message_is_answered_only_when_it_mentions_the_bot(make):
    bot_ = await make([bot])
    await bot_.on_message(bot_.message("just chatting", author=1))
    await bot_.on_message(bot_.message("what's up?", author=1, mention=True))
    _, text = await bot_.next_reply()
    assert text == "re: what's up? | I know: nothing"
    assert bot_.replies.empty()


async def test_messages_from_bots_and_from_itself_are_ignored(make):
    bot_ = await make([])
    other_bot = Message(f"<@{BOT_ID}> beep", User(5, bot=True), mentions=[User(BOT_ID)])
    itself = Message("my reply", User(BOT_ID, bot=True), guild=None)
    for message in (other_bot, itself):
        await bot_.on_message(message)
    assert not bot_.queue.busy


async def test_two_quick_messages_are_answered_in_order_and_merged(make):
    entered, opened = threading.Event(), threading.Event()

    def held(messages):
        entered.set()
        assert opened.wait(WAIT_S)
        return bot(messages)

    bot_ = await make([held, bot])
    await bot_.on_message(bot_.message("first", author=1, guild=None))
    assert await asyncio.to_thread(entered.wait, WAIT_S)
    for text in ("second", "third"):
        await bot_.on_message(bot_.message(text, author=1, guild=None))
    assert bot_.queue.waiting(f"discord:dm:{CHANNEL}") == 2
    opened.set()
    texts = [(await bot_.next_reply())[1] for _ in range(2)]
    assert texts == ["re: first | I know: nothing", "re: second\nthird | I know: nothing"]


async def test_each_person_has_their_own_memory_in_a_shared_channel(make):
    bot_ = await make([bot] * 3, [note_taker] * 2)
    await bot_.on_message(bot_.message("I'm Ada, vegetarian", author=1, mention=True))
    await bot_.on_message(bot_.message("I'm Bob, steak fan", author=2, mention=True))
    await bot_.queue.join(WAIT_S)
    await bot_.clock.aadvance(60)
    answered_in_the_channel = [await bot_.next_reply(), await bot_.next_reply()]
    await bot_.on_message(bot_.message("dinner?", author=1, guild=None, channel=Place(77)))
    _, text = await bot_.next_reply()
    assert len(answered_in_the_channel) == 2
    assert text == "re: dinner? | I know: I'm Ada, vegetarian"
    bob = await bot_.agent.memory(thread_id="any", user_id="discord:2")
    assert bob["human"].value == "I'm Bob, steak fan"


def test_the_client_is_built_without_connecting():
    client, queue = discord_bot.create_client(agent=None)
    assert isinstance(client, discord.Client)
    assert client.intents.message_content
    assert not client.is_ready() and not queue.busy


def test_a_long_reply_is_split_under_discords_limit_at_word_boundaries():
    paragraph = " ".join(["word"] * 300)  # 1,499 characters
    text = f"{paragraph}\n\n{paragraph}\n\n{'x' * 4500}"
    pieces = discord_bot.split_reply(text)
    assert all(len(piece) <= 2000 for piece in pieces)
    assert pieces[0] == paragraph and pieces[1] == paragraph, "cut at the paragraph breaks"
    assert "".join(pieces[2:]) == "x" * 4500, "an unbreakable run is cut, nothing lost"
    assert discord_bot.split_reply("short") == ["short"]


async def test_a_reply_over_the_limit_goes_out_as_a_reply_then_follow_ups(make):
    long = " ".join(["word"] * 900)  # 4,499 characters
    bot_ = await make([long])
    sent = bot_.message("tell me everything", author=1, guild=None, channel=Place(77))
    await bot_.on_message(sent)
    _, first = await bot_.next_reply()
    await bot_.queue.join(WAIT_S)
    pieces = [first, *sent.channel.sent]
    assert len(pieces) == 3
    assert all(len(piece) <= 2000 for piece in pieces)
    assert " ".join(pieces) == long


def test_without_a_token_it_exits_with_one_line_and_creates_no_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=bare_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "set DISCORD_TOKEN" in line
    assert list(tmp_path.iterdir()) == [], "no database or other file was created"


def test_with_a_token_but_no_model_key_it_exits_with_one_line_and_creates_no_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=bare_env(HOME=str(tmp_path), XDG_STATE_HOME="state", DISCORD_TOKEN="token"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("discord_bot.py: cannot build 'openai:gpt-4o-mini'")
    assert "OPENAI_API_KEY" in line
    assert list(tmp_path.iterdir()) == [], "no database or other file was created"


def test_the_invite_link_asks_for_the_bot_scope_and_the_permissions_it_uses():
    url = discord_bot.invite_url(1234)
    assert "client_id=1234" in url and "scope=bot" in url
    permissions = discord_bot.bot_permissions()
    assert f"permissions={permissions.value}" in url
    assert permissions.send_messages and permissions.read_message_history
    assert not permissions.administrator


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

    monkeypatch.setattr(discord_bot, "AsyncSleepTimeAgent", agent)
    model = ScriptedChatModel([])
    with pytest.raises(Stop):
        await discord_bot.run("token", (model, model))
    assert opened["db"] == str(tmp_path / "state" / "sleepagent" / "discord-bot.db")
    assert (tmp_path / "state" / "sleepagent").is_dir()
