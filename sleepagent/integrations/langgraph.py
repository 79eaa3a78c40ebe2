"""Put a sleep-time agent into a LangGraph graph you already have.

Your graph keeps its own state, nodes and checkpointer. :func:`chat_node`
returns a node that answers the newest human message of your state with a
:class:`~sleepagent.SleepTimeAgent` (or the async one), which owns the memory
blocks, the sleep-time agent and the idle timer. Its conversation thread is
your run's ``thread_id``, and its memory scope your state's (or config's)
``user_id``, so memory follows the identity your app already has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda

from sleepagent.agent.facades import AsyncSleepTimeAgent, SleepTimeAgent
from sleepagent.errors import ConfigurationError, WrongModeError
from sleepagent.memory.transcript import message_text

__all__ = ["chat_node"]


def chat_node(
    agent: SleepTimeAgent | AsyncSleepTimeAgent,
    *,
    messages_key: str = "messages",
    user_id_key: str | None = "user_id",
    name: str = "sleepagent",
) -> RunnableLambda[Any, dict[str, list[BaseMessage]]]:
    """A graph node that answers the newest human message with ``agent``.

    Add it with ``graph.add_node("assistant", chat_node(agent))``. The node
    reads ``state[messages_key]`` and returns ``{messages_key: [AIMessage]}``,
    which suits a ``messages`` channel with the ``add_messages`` reducer. With
    an :class:`~sleepagent.AsyncSleepTimeAgent`, run your graph with
    ``ainvoke``/``astream``.

    Args:
        agent: An open agent; it keeps its own copy of the conversation and the
            memory, and runs sleep-time compute on its idle timer.
        messages_key: The state key of your message list.
        user_id_key: The state key holding the user id; when absent from the
            state, ``config["configurable"]["user_id"]`` is used, then none.
        name: The runnable's name, for tracing.

    Raises:
        ConfigurationError: At run time, when the run has no ``thread_id`` or
            the state holds no human message.
        WrongModeError: At run time, when a graph with an async agent is run
            with ``invoke``.

    """

    def identity(state: Mapping[str, Any], config: RunnableConfig) -> tuple[str, str, str | None]:
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if not thread_id:
            raise ConfigurationError(
                "chat_node needs the run's thread_id: invoke your graph with "
                'config={"configurable": {"thread_id": ...}}'
            )
        user_id = state.get(user_id_key) if user_id_key else None
        user_id = user_id or configurable.get("user_id")
        return _last_human_text(state.get(messages_key) or ()), str(thread_id), user_id

    def answer(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        if not isinstance(agent, SleepTimeAgent):
            raise WrongModeError(
                "chat_node got an AsyncSleepTimeAgent: run your graph with ainvoke/astream"
            )
        text, thread_id, user_id = identity(state, config)
        result = agent.chat(text, thread_id=thread_id, user_id=user_id)
        return {messages_key: [AIMessage(result.reply)]}

    async def aanswer(
        state: Mapping[str, Any], config: RunnableConfig
    ) -> dict[str, list[BaseMessage]]:
        text, thread_id, user_id = identity(state, config)
        if isinstance(agent, AsyncSleepTimeAgent):
            result = await agent.chat(text, thread_id=thread_id, user_id=user_id)
        else:
            # A synchronous agent blocks; keep the event loop free while it answers.
            result = await asyncio.to_thread(agent.chat, text, thread_id=thread_id, user_id=user_id)
        return {messages_key: [AIMessage(result.reply)]}

    return RunnableLambda(answer, afunc=aanswer, name=name)


def _last_human_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message)
    raise ConfigurationError("chat_node found no human message in the state to answer")
