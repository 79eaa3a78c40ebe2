"""A Slack bot with sleep-time compute (slack-bolt, asyncio).

Each Slack thread (or direct-message channel) is one conversation, answered in
order: messages sent while the bot is answering there are answered next,
together, never lost. Each Slack user is one memory scope, so what the bot
learns about a person follows them across channels; in a shared thread each
person's exchange with the bot is its own agent thread, so nobody's words reach
someone else's memory (see ``sleepagent.integrations.shared_thread_id``).
Messages from this bot and from other bots are ignored. Between turns the idle
timer runs sleep-time compute.

The bot answers direct messages, mentions (``@bot ...``) and replies in
threads where it was mentioned.

Environment variables:
    SLACK_BOT_TOKEN        Bot token (``xoxb-...``). Required.
    SLACK_SIGNING_SECRET   The app's signing secret. Required.
    SLEEPAGENT_MODEL       Primary model spec (default ``openai:gpt-4o-mini``).
    SLEEPAGENT_SLEEP_MODEL Sleep-time model spec (default: the primary model).
    SLEEPAGENT_DB          SQLite file for conversations and memory (default ``slack-bot.db``).
    SLEEPAGENT_IDLE_SECONDS  Quiet seconds before sleep-time compute runs (default 30).
    PORT                   HTTP port for Slack's Events API (default 3000; path /slack/events).
    OPENAI_API_KEY         For ``openai:`` models.

Run it with ``pip install 'sleepagent[integrations]'`` then ``python examples/slack_bot.py``,
and point the app's Event Subscriptions at ``https://<host>/slack/events`` with the
bot events ``message.im``, ``message.channels`` and ``app_mention``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from sleepagent import AsyncSleepTimeAgent, SleepConfig
from sleepagent.integrations import (
    ChatKey,
    ConversationQueue,
    is_slack_bot_event,
    merge_texts,
    runs_by,
    slack_key,
    slack_reply_thread,
    strip_mentions,
)

logger = logging.getLogger("sleepagent.examples.slack")


@dataclass(frozen=True)
class SlackMessage:
    """One message to answer: who and where, the text, and where the reply goes."""

    key: ChatKey
    channel: str
    reply_thread: str | None
    text: str


def create_app(
    agent: AsyncSleepTimeAgent,
    *,
    signing_secret: str,
    client: AsyncWebClient,
) -> tuple[AsyncApp, ConversationQueue[str, SlackMessage]]:
    """The Bolt app and its per-thread queue (close the queue on shutdown).

    Nothing connects until Slack sends the first request. ``client`` carries
    the bot token (and, in tests, a ``base_url`` pointing at a local fake).
    """
    # Listeners only queue the message, so acknowledging after them is quick,
    # and Slack's 200 then means the message is safely queued.
    app = AsyncApp(signing_secret=signing_secret, client=client, process_before_response=True)
    # Threads where the bot was mentioned: later replies there need no mention.
    joined: set[str] = set()

    async def answer(place: str, messages: Sequence[SlackMessage]) -> None:
        # Each person's consecutive messages are one turn, in their own memory scope.
        for run in runs_by(messages, key=lambda message: message.key.user_id):
            result = await agent.chat(
                merge_texts([message.text for message in run]),
                thread_id=run[0].key.thread_id,
                user_id=run[0].key.user_id,
            )
            await app.client.chat_postMessage(
                channel=run[0].channel, thread_ts=run[-1].reply_thread, text=result.reply
            )

    queue: ConversationQueue[str, SlackMessage] = ConversationQueue(answer)

    def enqueue(event: dict[str, Any], team_id: str, bot_user_id: str | None) -> None:
        key = slack_key(event, team_id=team_id)
        text = strip_mentions(event.get("text", ""), bot_user_id=bot_user_id)
        if not text:
            return
        joined.add(key.place)
        message = SlackMessage(key, event["channel"], slack_reply_thread(event), text)
        # Slack redelivers an event whose acknowledgement was late: answer it once.
        queue.put(key.place, message, item_id=(event["channel"], event["ts"]))

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        if not is_slack_bot_event(event, bot_user_id=context.bot_user_id):
            enqueue(event, body["team_id"], context.bot_user_id)

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        bot = context.bot_user_id
        if is_slack_bot_event(event, bot_user_id=bot):
            return
        if event.get("channel_type") == "im":
            enqueue(event, body["team_id"], bot)
            return
        mentioned = bot is not None and f"<@{bot}>" in event.get("text", "")
        # A mention arrives twice (app_mention and message); answer it once.
        in_joined_thread = (
            event.get("thread_ts") and slack_key(event, team_id=body["team_id"]).place in joined
        )
        if in_joined_thread and not mentioned:
            enqueue(event, body["team_id"], bot)

    return app, queue


async def main() -> None:
    """Serve the Events API until interrupted."""
    logging.basicConfig(level=logging.INFO)
    model = os.environ.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini")
    config = SleepConfig(idle_seconds=float(os.environ.get("SLEEPAGENT_IDLE_SECONDS", "30")))
    async with AsyncSleepTimeAgent(
        model,
        sleep_model=os.environ.get("SLEEPAGENT_SLEEP_MODEL") or None,
        config=config,
        db=os.environ.get("SLEEPAGENT_DB", "slack-bot.db"),
    ) as agent:
        app, queue = create_app(
            agent,
            signing_secret=os.environ["SLACK_SIGNING_SECRET"],
            client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"]),
        )
        runner = web.AppRunner(app.web_app(path="/slack/events"))
        await runner.setup()
        await web.TCPSite(runner, port=int(os.environ.get("PORT", "3000"))).start()
        try:
            await asyncio.Event().wait()  # serve until cancelled (Ctrl-C)
        finally:
            await runner.cleanup()
            for place, message in await queue.aclose():
                logger.warning("unanswered at shutdown in %s: %r", place, message.text)


if __name__ == "__main__":
    asyncio.run(main())
