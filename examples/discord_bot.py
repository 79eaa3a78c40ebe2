"""A Discord bot with sleep-time compute (discord.py).

Each Discord channel, thread or DM is one conversation, answered in order:
messages sent while the bot is answering there are answered next, together,
never lost. Each Discord user is one memory scope, so what the bot learns
about a person follows them across servers and channels; in a shared channel
each person's exchange with the bot is its own agent thread, so nobody's words
reach someone else's memory. Messages from bots (this one included) are
ignored. Between turns the idle timer runs sleep-time compute.

The bot answers direct messages, and messages that mention it in servers.

Environment variables:
    DISCORD_TOKEN          The bot token. Required. Enable the Message Content intent.
    SLEEPAGENT_MODEL       Primary model spec (default ``openai:gpt-4o-mini``).
    SLEEPAGENT_SLEEP_MODEL Sleep-time model spec (default: the primary model).
    SLEEPAGENT_DB          SQLite file for conversations and memory (default ``discord-bot.db``).
    SLEEPAGENT_IDLE_SECONDS  Quiet seconds before sleep-time compute runs (default 30).
    OPENAI_API_KEY         For ``openai:`` models.

Run it with ``pip install 'sleepagent[integrations]'`` then ``python examples/discord_bot.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import discord

from sleepagent import AsyncSleepTimeAgent, SleepConfig
from sleepagent.integrations import (
    ConversationQueue,
    discord_key,
    merge_texts,
    runs_by,
    strip_mentions,
)

logger = logging.getLogger("sleepagent.examples.discord")

MessageHandler = Callable[[discord.Message], Coroutine[Any, Any, None]]


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
            await last.reply(result.reply)

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
    return client, queue


async def main() -> None:
    """Connect to the gateway and answer until interrupted."""
    logging.basicConfig(level=logging.INFO)
    config = SleepConfig(idle_seconds=float(os.environ.get("SLEEPAGENT_IDLE_SECONDS", "30")))
    async with AsyncSleepTimeAgent(
        os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
        sleep_model=os.environ.get("SLEEPAGENT_SLEEP_MODEL") or None,
        config=config,
        db=os.environ.get("SLEEPAGENT_DB", "discord-bot.db"),
    ) as agent:
        client, queue = create_client(agent)
        try:
            async with client:
                await client.start(os.environ["DISCORD_TOKEN"])
        finally:
            for place, message in await queue.aclose():
                logger.warning("unanswered at shutdown in %s: %r", place, message.content)


if __name__ == "__main__":
    asyncio.run(main())
