"""PostgreSQL: commits from several OS processes on one store never overwrite each other."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope, SleepConfig, SleepTimeAgent
from sleepagent.persistence import open_persistence
from sleepagent.testing import ManualScheduler, ScriptedChatModel, ai_tool_calls, tool_call
from tests.conftest import POSTGRES_URL, empty_postgres

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set SLEEPAGENT_TEST_POSTGRES_URL to run the PostgreSQL leg"
)

FINISH = tool_call("memory_finish")

WRITER = """
import sys
from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope
from sleepagent.blocks import InsertEdit
from sleepagent.persistence import open_persistence
from sleepagent.staging import StagedMemory

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
scope = Scope("user", "shared")
with open_persistence(url) as (_, store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    sys.stdin.readline()  # start together
    conflicts = 0
    for i in range(count):
        staged, _ = StagedMemory.of(blocks.load(scope)).stage(InsertEdit("human", f"{name}-{i}"))
        at = "2026-01-01T00:00:00+00:00"
        outcome = blocks.commit(scope, staged, run_id=f"{name}-{i}", phase="sleep", at=at)
        conflicts += len(outcome.conflicts)
print(conflicts)
"""


def test_two_processes_committing_to_one_scope_lose_no_edit():
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    count = 25
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), POSTGRES_URL, name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert out.strip() == "0", "inserts re-apply on a newer version; none conflict"

    with open_persistence(POSTGRES_URL) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        human = {block.label: block for block in blocks.load(Scope("user", "shared"))}["human"]
        history = blocks.history(Scope("user", "shared"), "human")
    expected = {f"{name}-{i}" for name in ("a", "b") for i in range(count)}
    assert set(human.value.splitlines()) == expected
    assert human.version == 2 * count
    assert [entry.version for entry in history] == list(range(1, 2 * count + 1))


def test_a_scheduled_run_waits_while_another_process_runs_the_same_scope():
    """Two agents on one database stand for two processes (each has its own in-process locks)."""
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    entered, release = threading.Event(), threading.Event()

    def slow(prompt):
        entered.set()
        assert release.wait(30), "the test never released the first run"
        return ai_tool_calls(tool_call("memory_insert", label="human", text="from A"), FINISH)

    clock = ManualScheduler()
    second_model = ScriptedChatModel(
        [ai_tool_calls(tool_call("memory_insert", label="human", text="from B"), FINISH)]
    )
    config = SleepConfig(idle_seconds=30, retry_backoff_seconds=5)
    with (
        SleepTimeAgent(
            ScriptedChatModel(["a"]),
            sleep_model=ScriptedChatModel([slow]),
            db=POSTGRES_URL,
            scheduler=None,
        ) as first,
        SleepTimeAgent(
            ScriptedChatModel(["b"]),
            sleep_model=second_model,
            db=POSTGRES_URL,
            scheduler=clock,
            config=config,
        ) as second,
    ):
        first.chat("hi", thread_id="t1", user_id="ada")
        second.chat("hello", thread_id="t2", user_id="ada")
        running = threading.Thread(target=first.sleep, kwargs={"thread_id": "t1", "user_id": "ada"})
        running.start()
        assert entered.wait(30)

        clock.advance(30)
        assert second_model.calls == [], "the scope is busy in the other process"
        assert [job.due_at - clock.now() for job in clock.pending] == [5.0], "set again, later"

        release.set()
        running.join(30)
        clock.advance(5)
        assert len(second_model.calls) == 1
        assert second.memory(thread_id="t2", user_id="ada")["human"].value == "from A\nfrom B"
