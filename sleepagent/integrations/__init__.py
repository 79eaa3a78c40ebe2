"""Glue for chat platforms and existing LangGraph apps; imports no platform library.

- :mod:`~sleepagent.integrations.chatkeys`: which conversation thread and which
  memory scope a platform message belongs to, and which messages to ignore.
- :mod:`~sleepagent.integrations.queue`: an ordered per-conversation queue, so
  messages that arrive while the bot is answering are answered next, never lost.
- :mod:`~sleepagent.integrations.langgraph`: a node that puts a sleep-time agent
  into a LangGraph graph you already have.
- :mod:`~sleepagent.integrations.statedir`: where a bot keeps its database when
  none is given (the user's state folder, not the working directory).
"""

from __future__ import annotations

from sleepagent.integrations.chatkeys import (
    ChatKey,
    discord_key,
    is_slack_bot_event,
    merge_texts,
    shared_thread_id,
    slack_key,
    slack_reply_thread,
    strip_mentions,
)
from sleepagent.integrations.langgraph import chat_node
from sleepagent.integrations.queue import ConversationQueue, runs_by
from sleepagent.integrations.statedir import bot_db, state_dir

__all__ = [
    "ChatKey",
    "ConversationQueue",
    "bot_db",
    "chat_node",
    "discord_key",
    "is_slack_bot_event",
    "merge_texts",
    "runs_by",
    "shared_thread_id",
    "slack_key",
    "slack_reply_thread",
    "state_dir",
    "strip_mentions",
]
