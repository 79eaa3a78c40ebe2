"""The README's usage, type-checked with ``mypy --strict`` (not collected by pytest).

If a public signature drifts from what the documentation shows, this stops
type-checking.
"""

from __future__ import annotations

from sleepagent import (
    AsyncSleepTimeAgent,
    BlockDiff,
    ChatResult,
    Forgotten,
    MemoryBlock,
    ScopePolicy,
    SleepConfig,
    SleepResult,
    SleepTimeAgent,
    Usage,
)
from sleepagent.scheduling import EventKind, SleepEvent
from sleepagent.testing import ManualScheduler, ScriptedChatModel, ai_tool_calls, tool_call


def sync_usage() -> None:
    config = SleepConfig(
        blocks=[MemoryBlock(label="human", description="About the user", limit=2_000)],
        scope=ScopePolicy.USER,
        idle_seconds=30,
        max_wait_turns=5,
        recall_messages=10,
        recall_chars=4_000,
    )
    clock = ManualScheduler()
    model = ScriptedChatModel(["hi"])
    sleep_model = ScriptedChatModel([ai_tool_calls(tool_call("memory_finish"))])
    with SleepTimeAgent(
        model, sleep_model=sleep_model, config=config, db=None, scheduler=clock
    ) as agent:
        unsubscribe = agent.subscribe(lambda event: print(event.kind is EventKind.FINISHED))
        reply: ChatResult = agent.chat("Hi, I'm Ada.", thread_id="t1", user_id="ada")
        tokens: int = reply.usage.total_tokens
        clock.advance(60)
        result: SleepResult = agent.sleep(thread_id="t1", user_id="ada")
        diffs: tuple[BlockDiff, ...] = result.diffs
        text: str = agent.memory(thread_id="t1", user_id="ada")["human"].value
        per_phase = agent.usage(thread_id="t1")
        kept: dict[str, object] = agent.export(user_id="ada")
        gone: Forgotten = agent.forget(user_id="ada")
        chat_usage: Usage = per_phase["chat"]
        unsubscribe()
        print(tokens, diffs, text, chat_usage, per_phase["sleep"].calls, kept["scope"], gone.items)


async def async_usage() -> None:
    clock = ManualScheduler()
    async with AsyncSleepTimeAgent(ScriptedChatModel(["hi"]), db=None, scheduler=clock) as agent:
        reply = await agent.chat("Hi", thread_id="t1")
        await clock.aadvance(60)
        learned: str = (await agent.memory(thread_id="t1"))["learned_context"].value
        print(reply.reply, learned)


def on_event(event: SleepEvent) -> None:
    print(event.thread_id, event.scope, event.reason, event.duration, event.usage, event.diffs)
