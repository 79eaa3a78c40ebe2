"""The layer of run exclusion no other test pins alone: the store's in-process run lock.

The table in :mod:`sleepagent.store.locking` lists every layer and its test.
Two agents on one ``InMemoryStore`` object share no coordinator, no agent lock
and no file or database lock: only the lock the store's commit backend holds
in the process keeps their runs of one scope apart.
"""

from __future__ import annotations

import threading

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from sleepagent import SleepConfig, SleepTimeAgent
from sleepagent.testing import ManualScheduler, ScriptedChatModel, ai_tool_calls, tool_call
from tests.conftest import machinery

WAIT_S = 30
FINISH = tool_call("memory_finish")


def insert(text: str):
    return ai_tool_calls(tool_call("memory_insert", label="human", text=text), FINISH)


def test_a_scheduled_run_is_set_again_while_another_agent_on_the_same_store_runs_its_scope():
    entered, release = threading.Event(), threading.Event()

    def slow(prompt):
        entered.set()
        assert release.wait(WAIT_S), "the test never released the first run"
        return insert("from A")

    store = InMemoryStore()
    clock = ManualScheduler()
    second_model = ScriptedChatModel([insert("from B")])
    with (
        SleepTimeAgent(
            ScriptedChatModel(["a"]),
            sleep_model=ScriptedChatModel([slow]),
            checkpointer=InMemorySaver(),
            store=store,
            scheduler=None,
            config=machinery(),
        ) as first,
        SleepTimeAgent(
            ScriptedChatModel(["b"]),
            sleep_model=second_model,
            checkpointer=InMemorySaver(),
            store=store,
            scheduler=clock,
            config=machinery(SleepConfig(idle_seconds=30, retry_backoff_seconds=5)),
        ) as second,
    ):
        first.chat("hi", thread_id="t1", user_id="ada")
        second.chat("hello", thread_id="t2", user_id="ada")
        running = threading.Thread(target=first.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        running.start()
        assert entered.wait(WAIT_S)

        clock.advance(30)
        assert second_model.calls == [], "the scope is busy in the other agent"
        assert [job.due_at - clock.now() for job in clock.pending] == [5.0], "set again, later"

        release.set()
        running.join(WAIT_S)
        assert not running.is_alive()
        clock.advance(5)
        assert len(second_model.calls) == 1
        assert second.memory(thread_id="t2", user_id="ada")["human"].value == "from A\nfrom B"
