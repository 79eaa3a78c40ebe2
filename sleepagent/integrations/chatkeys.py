"""Where a chat-platform message belongs: its conversation thread and its memory scope.

Pure functions over plain data, so each platform adapter stays a few lines and
the mapping is tested without the platform's library. The rule is the same on
every platform:

- one platform thread (or one direct-message channel) is one conversation:
  its messages are answered in order, in that place;
- one platform user is one memory scope, so what the bot learns about a person
  follows them across channels and threads;
- in a place several people share, each person's exchange with the bot is its
  own agent thread (:func:`shared_thread_id`). A sleep run reads a thread's
  whole log into one memory scope, so the agent refuses a second person's
  scope on a thread (:class:`~sleepagent.ScopeMismatchError`) rather than write
  one person's words into another's memory.

Ids are prefixed with the platform and, on Slack, the workspace, so two
platforms (or two workspaces) sharing one store never share a thread or a scope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sleepagent.errors import ConfigurationError

__all__ = [
    "SLACK_ANSWERED_SUBTYPES",
    "ChatKey",
    "discord_key",
    "is_slack_bot_event",
    "merge_texts",
    "shared_thread_id",
    "slack_key",
    "slack_reply_thread",
    "strip_mentions",
]

_SLACK_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_DISCORD_MENTION = re.compile(r"<@!?(\d+)>")

SLACK_ANSWERED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
"""Slack message subtypes that are a person talking; every other subtype (bot messages,
edits, deletions, joins) is not."""


@dataclass(frozen=True)
class ChatKey:
    """The identity a platform message is answered under.

    Attributes:
        place: The platform conversation (a thread or a DM): the key to queue
            its messages under, so they are answered in order.
        thread_id: The agent's conversation thread (``chat(thread_id=...)``).
        user_id: The memory scope's user (``chat(user_id=...)``).

    """

    place: str
    thread_id: str
    user_id: str


def shared_thread_id(place: str, user_id: str | None) -> str:
    """The agent thread of ``user_id`` in a place several people share.

    One agent thread per person and place keeps each sleep run's transcript to
    one person's words, so it writes only that person's memory scope.
    """
    return place if user_id is None else f"{place}:{user_id}"


def slack_key(event: Mapping[str, Any], *, team_id: str) -> ChatKey:
    """The conversation and memory scope of a Slack ``message`` or ``app_mention`` event.

    A direct message channel is one conversation; in other channels each
    thread is one (a top-level message starts the thread the bot answers in).

    Args:
        event: The ``event`` object of a Slack Events API payload.
        team_id: The workspace id (the payload's ``team_id``).

    Raises:
        ConfigurationError: If the event has no user, channel or timestamp.

    """
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (user and channel and ts and team_id):
        raise ConfigurationError(
            "a Slack message event needs 'user', 'channel' and 'ts', and a team_id; "
            f"got user={user!r} channel={channel!r} ts={ts!r} team_id={team_id!r}"
        )
    user_id = f"slack:{team_id}:{user}"
    if _is_slack_dm(event):
        place = f"slack:{team_id}:{channel}"
        return ChatKey(place=place, thread_id=place, user_id=user_id)
    place = f"slack:{team_id}:{channel}:{event.get('thread_ts') or ts}"
    return ChatKey(place=place, thread_id=shared_thread_id(place, user_id), user_id=user_id)


def slack_reply_thread(event: Mapping[str, Any]) -> str | None:
    """The ``thread_ts`` to reply with: the event's thread, none in a DM, else a new thread."""
    thread_ts = event.get("thread_ts")
    if thread_ts:
        return str(thread_ts)
    return None if _is_slack_dm(event) else str(event["ts"])


def is_slack_bot_event(event: Mapping[str, Any], *, bot_user_id: str | None) -> bool:
    """Whether a Slack event must not be answered: it comes from a bot or is not a message.

    Covers the bot's own messages (by user id), other bots and apps (``bot_id``,
    ``bot_message``) and edits, deletions and joins, which Slack delivers as
    ``message`` events with a subtype.
    """
    if event.get("bot_id") or event.get("subtype") not in SLACK_ANSWERED_SUBTYPES:
        return True
    user = event.get("user")
    return not user or (bot_user_id is not None and user == bot_user_id)


def discord_key(*, channel_id: int, author_id: int, guild_id: int | None) -> ChatKey:
    """The conversation and memory scope of a Discord message.

    A Discord thread has its own channel id, so a thread, a text channel and a
    DM channel are each one place; in a server each person in it is their own
    agent thread (see :func:`shared_thread_id`).

    Args:
        channel_id: ``message.channel.id``.
        author_id: ``message.author.id``.
        guild_id: ``message.guild.id``, or ``None`` in a direct message.

    """
    user_id = f"discord:{author_id}"
    if guild_id is None:
        place = f"discord:dm:{channel_id}"
        return ChatKey(place=place, thread_id=place, user_id=user_id)
    place = f"discord:{guild_id}:{channel_id}"
    return ChatKey(place=place, thread_id=shared_thread_id(place, user_id), user_id=user_id)


def strip_mentions(text: str, *, bot_user_id: str | int | None) -> str:
    """``text`` without mentions of the bot (Slack ``<@U1>`` or Discord ``<@1>``), trimmed.

    Mentions of other people are kept: they are part of what was said.
    """
    if bot_user_id is None:
        return text.strip()
    bot = str(bot_user_id)

    def drop_bot(match: re.Match[str]) -> str:
        return "" if match.group(1) == bot else match.group(0)

    text = _SLACK_MENTION.sub(drop_bot, text)
    text = _DISCORD_MENTION.sub(drop_bot, text)
    return " ".join(text.split())


def merge_texts(texts: Sequence[str]) -> str:
    """Several messages sent while the bot was busy, as one turn, in the order sent."""
    return "\n".join(text for text in texts if text.strip())


def _is_slack_dm(event: Mapping[str, Any]) -> bool:
    # Slack marks DMs with channel_type "im"; DM channel ids also start with "D".
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")
