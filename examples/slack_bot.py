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

Set up the Slack app (once):
    1. https://api.slack.com/apps -> Create New App -> From a manifest; paste
       ``slack_app_manifest.yaml`` (beside this file). It asks for the bot scopes
       app_mentions:read, channels:history, groups:history, im:history and chat:write,
       and subscribes to the bot events app_mention, message.channels, message.groups
       and message.im.
    2. Install to Workspace; copy the Bot User OAuth Token (``xoxb-...``).
    3. Socket Mode (local development, no public URL): Basic Information -> App-Level
       Tokens -> Generate, scope ``connections:write``; copy the token (``xapp-...``).
       HTTP instead: turn Socket Mode off, copy Basic Information -> Signing Secret, and
       set Event Subscriptions -> Request URL to ``https://<your host>/slack/events``.
    4. Invite the bot to a channel (``/invite @sleepagent``) or message it directly.

Environment variables:
    SLACK_BOT_TOKEN        Bot token (``xoxb-...``). Required.
    SLACK_APP_TOKEN        App-level token (``xapp-...``): run in Socket Mode.
    SLACK_SIGNING_SECRET   The app's signing secret: run over HTTP (without SLACK_APP_TOKEN).
    SLEEPAGENT_MODEL       Primary model spec (default ``openai:gpt-4o-mini``).
    SLEEPAGENT_SLEEP_MODEL Sleep-time model spec (default: the primary model).
    SLEEPAGENT_DB          Database for conversations and memory (default: ``slack-bot.db`` in
                           ``$XDG_STATE_HOME/sleepagent``, else ``~/.local/state/sleepagent``).
    SLEEPAGENT_IDLE_SECONDS  Quiet seconds before sleep-time compute runs (default 30).
    PORT                   HTTP port for Slack's Events API (default 3000; path /slack/events).
    OPENAI_API_KEY         For ``openai:`` models.

Run it with ``pip install 'sleepagent[integrations]'`` then ``python examples/slack_bot.py``.
Credentials, the model's included, are checked before anything is created; without
them it says which are missing, in one line, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

try:
    from aiohttp import web
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
except ImportError as missing:
    sys.exit(f"slack_bot.py: {missing.name} is missing: pip install 'sleepagent[integrations]'")

from langchain_core.language_models import BaseChatModel

from sleepagent import AsyncSleepTimeAgent, ConfigurationError, SleepConfig
from sleepagent.integrations import (
    ChatKey,
    ConversationQueue,
    bot_db,
    is_slack_bot_event,
    merge_texts,
    runs_by,
    slack_key,
    slack_reply_thread,
    strip_mentions,
)
from sleepagent.models import resolve_models

logger = logging.getLogger("sleepagent.examples.slack")

BOT_SCOPES = ("app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write")
"""The OAuth scopes the bot token needs (``slack_app_manifest.yaml`` asks for these)."""
BOT_EVENTS = ("app_mention", "message.channels", "message.groups", "message.im")
"""The bot events the app subscribes to."""


class MissingCredentials(Exception):
    """Slack credentials are missing or malformed; the message says which, in one line."""


@dataclass(frozen=True)
class SlackSettings:
    """How to reach Slack: the bot token, and Socket Mode's app token or HTTP's secret."""

    bot_token: str
    app_token: str | None = None
    signing_secret: str | None = None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


def settings_from_env(env: Mapping[str, str]) -> SlackSettings:
    """Read and check the credentials; raises MissingCredentials before anything is built."""
    bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
    secret = env.get("SLACK_SIGNING_SECRET", "").strip() or None
    missing = [] if bot_token else ["SLACK_BOT_TOKEN (xoxb-...)"]
    if app_token is None and secret is None:
        missing.append("SLACK_APP_TOKEN (xapp-..., Socket Mode) or SLACK_SIGNING_SECRET (HTTP)")
    if missing:
        raise MissingCredentials(
            f"set {' and '.join(missing)}; the setup steps are at the top of {__file__}"
        )
    if not bot_token.startswith("xoxb-"):
        raise MissingCredentials("SLACK_BOT_TOKEN must be the Bot User OAuth Token (xoxb-...)")
    if app_token is not None and not app_token.startswith("xapp-"):
        raise MissingCredentials("SLACK_APP_TOKEN must be an app-level token (xapp-...)")
    return SlackSettings(bot_token=bot_token, app_token=app_token, signing_secret=secret)


def models_from_env(env: Mapping[str, str]) -> tuple[BaseChatModel, BaseChatModel]:
    """The chat and sleep-time models, built now: a missing key is told before anything runs."""
    try:
        return resolve_models(
            env.get("SLEEPAGENT_MODEL", "openai:gpt-4o-mini"),
            env.get("SLEEPAGENT_SLEEP_MODEL") or None,
        )
    except ConfigurationError as error:
        raise MissingCredentials(str(error)) from error


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
    signing_secret: str | None,
    client: AsyncWebClient,
) -> tuple[AsyncApp, ConversationQueue[str, SlackMessage]]:
    """The Bolt app and its per-thread queue (close the queue on shutdown).

    Nothing connects until Slack sends the first request. ``client`` carries
    the bot token (and, in tests, a ``base_url`` pointing at a local fake).
    ``signing_secret`` is None in Socket Mode, where Slack's requests arrive
    on the app's own authenticated connection instead of signed HTTP.
    """
    # Listeners only queue the message, so acknowledging after them is quick,
    # and Slack's acknowledgement then means the message is safely queued.
    app = AsyncApp(
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        client=client,
        process_before_response=True,
    )
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


async def serve(app: AsyncApp, settings: SlackSettings) -> None:
    """Take Slack's events until cancelled: over Socket Mode, or over HTTP on $PORT."""
    if settings.socket_mode:
        handler = AsyncSocketModeHandler(app, settings.app_token)
        await handler.connect_async()
        logger.info("connected to Slack in Socket Mode")
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()
        return
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    port = int(os.environ.get("PORT", "3000"))
    await web.TCPSite(runner, port=port).start()
    logger.info("taking Slack's events at http://0.0.0.0:%d/slack/events", port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def run(settings: SlackSettings, models: tuple[BaseChatModel, BaseChatModel]) -> None:
    """Answer Slack until interrupted."""
    config = SleepConfig(idle_seconds=float(os.environ.get("SLEEPAGENT_IDLE_SECONDS", "30")))
    chat_model, sleep_model = models
    async with AsyncSleepTimeAgent(
        chat_model, sleep_model=sleep_model, config=config, db=bot_db("slack-bot")
    ) as agent:
        app, queue = create_app(
            agent,
            signing_secret=None if settings.socket_mode else settings.signing_secret,
            client=AsyncWebClient(token=settings.bot_token),
        )
        try:
            await serve(app, settings)
        finally:
            for place, message in await queue.aclose():
                logger.warning("unanswered at shutdown in %s: %r", place, message.text)


def main() -> int:
    """Check the credentials, then run; a missing one is a one-line message and exit 2."""
    try:
        settings = settings_from_env(os.environ)
        models = models_from_env(os.environ)
    except MissingCredentials as error:
        print(f"slack_bot.py: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        asyncio.run(run(settings, models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
