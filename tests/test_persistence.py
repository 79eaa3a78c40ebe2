"""SQLite persistence: reopening, and processes killed mid-way (DESIGN invariant 4)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sleepagent import SleepTimeAgent
from sleepagent.testing import ScriptedChatModel

CHILD_TIMEOUT_S = 60


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


def test_memory_history_and_conversation_survive_a_restart(tmp_path):
    db = tmp_path / "agent.db"
    sleep = ScriptedChatModel(["- I'm Ada."])
    with SleepTimeAgent(ScriptedChatModel(["hello"]), sleep_model=sleep, db=db) as agent:
        agent.chat("I'm Ada", thread_id="t1")
        agent.sleep(thread_id="t1")

    chat = ScriptedChatModel(["welcome back"])
    with SleepTimeAgent(chat, sleep_model=ScriptedChatModel(), db=db) as agent:
        agent.chat("remember me?", thread_id="t1")
        assert agent.memory(thread_id="t1")["human"].value == "I'm Ada."
        assert [m.content for m in chat.calls[0].messages[1:]] == [
            "I'm Ada",
            "hello",
            "remember me?",
        ]
        assert len(agent.history("human", thread_id="t1")) == 1
        assert agent.usage(thread_id="t1")["sleep"].calls == 1


def test_a_process_killed_after_a_turn_leaves_its_work_pending(tmp_path):
    db = tmp_path / "agent.db"
    child = run_child(
        f"""
        import os, signal
        from sleepagent import SleepTimeAgent
        from sleepagent.testing import ScriptedChatModel
        agent = SleepTimeAgent(ScriptedChatModel(["noted"]), db={str(db)!r})
        agent.chat("I moved to Porto", thread_id="t1", user_id="ada")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert child.returncode == -9, child.stderr

    sleep = ScriptedChatModel(["- I moved to Porto."])
    with SleepTimeAgent(ScriptedChatModel(), sleep_model=sleep, db=db) as agent:
        pending = agent.blocks.pending_threads()
        assert [(p.thread_id, p.scope, p.pending) for p in pending] == [("t1", "user:ada", 2)]
        assert agent.sleep(thread_id="t1", user_id="ada").changed == ("human",)
        assert agent.sleep(thread_id="t1", user_id="ada").skipped
        assert agent.blocks.pending_threads() == []


def test_a_process_killed_inside_a_sleep_run_commits_nothing_and_loses_nothing(tmp_path):
    db = tmp_path / "agent.db"
    child = run_child(
        f"""
        import os, signal
        from sleepagent import SleepConfig, SleepTimeAgent, UserFacts
        from sleepagent.testing import ScriptedChatModel, ai_tool_calls, tool_call

        def die(prompt):
            os.kill(os.getpid(), signal.SIGKILL)

        sleep = ScriptedChatModel([
            ai_tool_calls(tool_call("memory_rethink", label="human", new_value="half done")),
            die,
        ])
        # The edit round: an edit is staged, and the process dies on the next call.
        config = SleepConfig(user_facts=UserFacts.EDIT)
        agent = SleepTimeAgent(
            ScriptedChatModel(["noted"]), sleep_model=sleep, db={str(db)!r}, config=config
        )
        agent.chat("I like jazz", thread_id="t1")
        agent.sleep(thread_id="t1")
        """
    )
    assert child.returncode == -9, child.stderr

    sleep = ScriptedChatModel(["- I like jazz."])
    with SleepTimeAgent(ScriptedChatModel(), sleep_model=sleep, db=db) as agent:
        assert agent.memory(thread_id="t1")["human"].version == 0
        assert agent.blocks.pending_threads()[0].pending == 2
        result = agent.sleep(thread_id="t1")
        assert result.messages_processed == 2
        assert agent.memory(thread_id="t1")["human"].value == "I like jazz."
        assert [entry.value for entry in agent.history("human", thread_id="t1")] == ["I like jazz."]
