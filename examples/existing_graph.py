"""Add sleep-time compute to a LangGraph graph you already have.

Your graph keeps its own state, nodes and checkpointer. One node,
``chat_node(agent)``, answers with a ``SleepTimeAgent``: it reads your newest
human message, answers from the memory blocks of the user in your state, and
logs the turn, so the agent's idle timer runs sleep-time compute between turns.
The conversation thread is your run's ``thread_id``.

    python examples/existing_graph.py            # needs OPENAI_API_KEY
    python examples/existing_graph.py --offline  # scripted models, no key, no network

(Lower level: ``sleepagent.build_graph(...)`` is a plain ``StateGraph``; compile it
with your checkpointer and store and invoke it from a node with
``context=SleepContext(thread_id=..., user_id=...)``. ``chat_node`` does that for
you through the agent, which also owns the idle timer.)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph

from sleepagent import SleepTimeAgent
from sleepagent.integrations import chat_node
from sleepagent.testing import (
    ScriptedChatModel,
    ai_tool_calls,
    memory_in_prompt,
    said_in_facts_prompt,
    tool_call,
)


class SupportState(TypedDict, total=False):
    """Your app's own state: messages plus whatever else it tracks."""

    messages: Annotated[list[AnyMessage], add_messages]
    user_id: str
    urgent: bool


def triage(state: SupportState) -> dict[str, Any]:
    """Your own node: flags urgent messages before the assistant answers."""
    return {"urgent": "urgent" in str(state["messages"][-1].content).lower()}


def build_support_graph(agent: SleepTimeAgent) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Your graph, with the sleep-time agent as its ``assistant`` node."""
    graph = StateGraph(SupportState)
    graph.add_node("triage", triage)
    graph.add_node("assistant", chat_node(agent))
    graph.add_edge(START, "triage")
    graph.add_edge("triage", "assistant")
    graph.add_edge("assistant", END)
    return graph.compile(checkpointer=InMemorySaver())


def offline_models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """Stand-ins for real models: the bot answers from its memory; the note-taker
    lists what the user said as facts for the ``human`` block."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        known = memory_in_prompt(messages).get("human") or "nothing yet"
        return f"(memory about you: {known})"

    def take_notes(messages: Sequence[BaseMessage]) -> AIMessage | str:
        said = said_in_facts_prompt(messages)
        if said is None:  # the edit round (a request about the assistant): no edit
            return ai_tool_calls(tool_call("memory_finish"))
        # The fact pass: each message listed as a fact; the library checks every line.
        return "\n".join(f"- {line}" for line in said if line.strip()) or "NOTHING NEW"

    return ScriptedChatModel([reply] * 100), ScriptedChatModel([take_notes] * 100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="use scripted models")
    args = parser.parse_args(argv)

    model: Any = "openai:gpt-4o-mini"
    sleep_model: Any = None
    if args.offline or not os.environ.get("OPENAI_API_KEY"):
        print("Offline: scripted models, no OPENAI_API_KEY used. Replies are canned.\n")
        model, sleep_model = offline_models()

    config: RunnableConfig = {"configurable": {"thread_id": "ticket-42"}}
    with SleepTimeAgent(model, sleep_model=sleep_model, db=None) as agent:
        app = build_support_graph(agent)
        for text in ("My printer is an HP LaserJet 4000 on Windows 11.", "Urgent: it jams again."):
            state = app.invoke({"messages": [HumanMessage(text)], "user_id": "ada"}, config)
            print(
                f"user> {text}\nbot>  {state['messages'][-1].content}  [urgent={state['urgent']}]"
            )

        # The idle timer would do this after 30 s of quiet; run it now for the demo.
        result = agent.sleep(thread_id="ticket-42", user_id="ada")
        print(f"\nsleep-time compute changed: {[diff.label for diff in result.diffs]}\n")

        text = "Any tips?"
        state = app.invoke({"messages": [HumanMessage(text)], "user_id": "ada"}, config)
        print(f"user> {text}\nbot>  {state['messages'][-1].content}")
        print(f"\nyour graph's thread holds {len(state['messages'])} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
