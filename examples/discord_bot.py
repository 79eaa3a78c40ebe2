"""A Discord bot with sleep-time compute (discord.py).

Each Discord channel, thread or DM is one conversation, answered in order:
messages sent while the bot is answering there are answered next, together,
never lost. Each Discord user is one memory scope, so what the bot learns
about a person follows them across servers and channels; in a shared channel
each person's exchange with the bot is its own agent thread, so nobody's words
reach someone else's memory. Messages from bots (this one included) are
ignored. Between turns the idle timer runs sleep-time compute.

The bot answers direct messages, and messages that mention it in servers.
Replies longer than Discord's 2,000-character limit are sent in several
messages, split at paragraph, line or word boundaries.

Set up the Discord application (once):
    1. https://discord.com/developers/applications -> New Application.
    2. Bot -> Reset Token; copy it into DISCORD_TOKEN. On the same page turn on
       "Message Content Intent" (the bot must read what people write).
    3. Invite the bot: OAuth2 -> URL Generator, scope ``bot``, permissions View
       Channels, Send Messages, Send Messages in Threads and Read Message History;
       open the URL and pick a server. At start the bot logs the same URL
       (``invite_url()`` below builds it from the application id).

Environment variables:
    DISCORD_TOKEN          The bot token. Required.
    SLEEPAGENT_MODEL       Primary model spec (default ``openai:gpt-4o-mini``).
    SLEEPAGENT_SLEEP_MODEL Sleep-time model spec (default: the primary model).
    SLEEPAGENT_DB          Database for conversations and memory (default: ``discord-bot.db`` in
                           ``$XDG_STATE_HOME/sleepagent``, else ``~/.local/state/sleepagent``).
    SLEEPAGENT_IDLE_SECONDS  Quiet seconds before sleep-time compute runs (default 30).
    OPENAI_API_KEY         For ``openai:`` models.

Run it with ``pip install 'sleepagent[integrations]'`` then ``python examples/discord_bot.py``.
Without DISCORD_TOKEN, or without the model's key, it says so in one line and exits,
creating nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

try:
    import discord
except ImportError as missing:
    sys.exit(f"discord_bot.py: {missing.name} is missing: pip install 'sleepagent[integrations]'")

from langchain_core.language_models import BaseChatModel

from sleepagent import AsyncSleepTimeAgent, ConfigurationError, SleepConfig
from sleepagent.integrations import (
    ConversationQueue,
    bot_db,
    discord_key,
    merge_texts,
    runs_by,
    strip_mentions,
)
from sleepagent.models import resolve_models

logger = logging.getLogger("sleepagent.examples.discord")

MessageHandler = Callable[[discord.Message], Coroutine[Any, Any, None]]

MESSAGE_LIMIT = 2000
"""Discord's most characters in one message."""


def bot_permissions() -> discord.Permissions:
    """What the bot needs in a channel: see it, read its history, and write (in threads too)."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        read_message_history=True,
    )


def invite_url(application_id: int) -> str:
    """The link that adds the bot to a server, with the permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=bot_permissions(), scopes=("bot",))


def split_reply(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut where a reader expects it.

    A piece ends at the last paragraph break that fits, else the last line break,
    else the last space; a word longer than ``limit`` is cut. Nothing is dropped
    except the whitespace at a cut.
    """
    pieces = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = next(
            (at for at in (window.rfind("\n\n"), window.rfind("\n"), window.rfind(" ")) if at > 0),
            limit,
        )
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces or [text]


class MissingToken(Exception):
    """DISCORD_TOKEN or the model's key is missing; the message says which, in one line."""


def token_from_env(env: Mapping[str, str]) -> str:
    """The bot token; raises MissingToken before anything is built."""
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise MissingToken(
            "set DISCORD_TOKEN to the bot's token (Developer Portal -> your application -> "
            f"Bot); the setup steps are at the top of {__file__}"
        )
    return token


def models_from_env(env: Mapping[str, str]) -> tuple[BaseChatModel, BaseChatModel]:
    """The chat and sleep-time models, built now: a missing key is told before anything runs."""
    try:
        return resolve_models(
            env.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
            env.get("SLEEPAGENT_SLEEP_MODEL") or None,
        )
    except ConfigurationError as error:
        raise MissingToken(str(error)) from error


def create_handler(
    agent: AsyncSleepTimeAgent, *, bot_id: Callable[[], int | None]
) -> tuple[MessageHandler, ConversationQueue[str, discord.Message]]:
    """The ``on_message`` handler and its per-conversation queue (close it on shutdown).

    ``bot_id`` returns the bot's user id once logged in (``client.user.id``).
    """

    async def answer(place: str, messages: Sequence[discord.Message]) -> None:
        # Each person's consecutive messages are one turn, in their own memory scope.
        for run in runs_by(messages, key=lambda message: message.author.id):
            last = run[-1]
            key = discord_key(
                channel_id=last.channel.id,
                author_id=last.author.id,
                guild_id=last.guild.id if last.guild else None,
            )
            text = merge_texts([strip_mentions(m.content, bot_user_id=bot_id()) for m in run])
            result = await agent.chat(text, thread_id=key.thread_id, user_id=key.user_id)
            first, *more = split_reply(result.reply)
            await last.reply(first)
            for piece in more:
                await last.channel.send(piece)

    queue: ConversationQueue[str, discord.Message] = ConversationQueue(answer)

    async def on_message(message: discord.Message) -> None:
        me = bot_id()
        if message.author.bot or message.author.id == me:
            return
        direct = message.guild is None
        if not direct and not any(user.id == me for user in message.mentions):
            return
        if not strip_mentions(message.content, bot_user_id=me):
            return
        key = discord_key(
            channel_id=message.channel.id,
            author_id=message.author.id,
            guild_id=None if direct else message.guild.id,  # type: ignore[union-attr]
        )
        queue.put(key.place, message)

    return on_message, queue


def create_client(
    agent: AsyncSleepTimeAgent,
) -> tuple[discord.Client, ConversationQueue[str, discord.Message]]:
    """A Discord client wired to ``agent``; nothing connects until ``client.start(token)``."""
    intents = discord.Intents.default()
    intents.message_content = True  # the bot must read what people write
    client = discord.Client(intents=intents)
    on_message, queue = create_handler(
        agent, bot_id=lambda: client.user.id if client.user else None
    )
    client.event(on_message)

    @client.event
    async def on_ready() -> None:
        if client.application_id is not None:
            logger.info("invite the bot with %s", invite_url(client.application_id))

    return client, queue


async def run(token: str, models: tuple[BaseChatModel, BaseChatModel]) -> None:
    """Connect to the gateway and answer until interrupted."""
    config = SleepConfig(idle_seconds=float(os.environ.get("SLEEPAGENT_IDLE_SECONDS", "30")))
    chat_model, sleep_model = models
    async with AsyncSleepTimeAgent(
        chat_model, sleep_model=sleep_model, config=config, db=bot_db("discord-bot")
    ) as agent:
        client, queue = create_client(agent)
        try:
            async with client:
                await client.start(token)
        finally:
            for place, message in await queue.aclose():
                logger.warning("unanswered at shutdown in %s: %r", place, message.content)


def main() -> int:
    """Check the token and the model, then run (Ctrl-C stops it); else one line and exit 2."""
    try:
        token = token_from_env(os.environ)
        models = models_from_env(os.environ)
    except MissingToken as error:
        print(f"discord_bot.py: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(token, models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
