"""The smallest complete chatbot with sleep-time compute, in plain Python.

Type a message and press Enter. Between turns (after 30 s of quiet) the
sleep-time agent rewrites the bot's memory; ``/sleep`` runs it now and shows
what changed, ``/memory`` shows what the bot knows about you, an empty line or
Ctrl-D quits.

    python examples/embed.py            # openai:gpt-4o-mini, needs OPENAI_API_KEY
    python examples/embed.py --offline  # scripted models, no key, no network

Without ``OPENAI_API_KEY`` it runs offline and says so.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from sleepagent import SleepTimeAgent
from sleepagent.testing import (
    ScriptedChatModel,
    ai_tool_calls,
    memory_in_prompt,
    said_in_facts_prompt,
    tool_call,
)

THREAD = "embed-demo"


def offline_models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """Stand-ins for real models: the bot answers from its memory; the note-taker
    lists what you said as facts for the ``human`` block."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        known = memory_in_prompt(messages).get("human") or "nothing yet"
        return f'You said "{messages[-1].content!s}". What I remember about you: {known}'

    def take_notes(messages: Sequence[BaseMessage]) -> AIMessage | str:
        said = said_in_facts_prompt(messages)
        if said is None:  # the edit round (a request about the assistant): no edit
            return ai_tool_calls(tool_call("memory_finish"))
        # The fact pass: each message listed as a fact; the library checks every line.
        return "\n".join(f"- {line}" for line in said if line.strip()) or "NOTHING NEW"

    return ScriptedChatModel([reply] * 1000), ScriptedChatModel([take_notes] * 1000)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="use scripted models")
    parser.add_argument("--user", default="me", help="your user id (your memory scope)")
    parser.add_argument("--db", default=None, help="SQLite file to keep memory (default: none)")
    args = parser.parse_args(argv)

    model: Any = "openai:gpt-4o-mini"
    sleep_model: Any = None
    if args.offline or not os.environ.get("OPENAI_API_KEY"):
        print("Offline: scripted models, no OPENAI_API_KEY used. Replies are canned.")
        model, sleep_model = offline_models()

    with SleepTimeAgent(model, sleep_model=sleep_model, db=args.db) as agent:
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                break
            if text == "/sleep":
                result = agent.sleep(thread_id=THREAD, user_id=args.user)
                print("\n".join(diff.unified() for diff in result.diffs) or "(nothing new)")
            elif text == "/memory":
                for label, block in agent.memory(thread_id=THREAD, user_id=args.user).items():
                    print(f"[{label}] {block.value or '(empty)'}")
            else:
                print("bot>", agent.chat(text, thread_id=THREAD, user_id=args.user).reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
