"""The idle timer with the real APScheduler: short timers, waits on events with timeouts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

from sleepagent import AsyncSleepTimeAgent, SleepConfig, SleepTimeAgent
from sleepagent.scheduling import EventKind, SleepEvent
from sleepagent.testing import EventRecorder, ScriptedChatModel, finish, insert
from tests.conftest import machinery

WAIT_S = 10
SHORT = machinery(SleepConfig(idle_seconds=0.05, retry_backoff_seconds=0.05))


def test_the_idle_timer_runs_sleep_time_compute_by_itself(db):
    events = EventRecorder()
    sleep = ScriptedChatModel([insert("human", "learned while idle", line=-1)])
    with SleepTimeAgent(ScriptedChatModel(["hi"]), sleep_model=sleep, db=db, config=SHORT) as agent:
        agent.subscribe(events)
        agent.chat("hello", thread_id="t1")
        assert events.wait(EventKind.FINISHED, timeout=WAIT_S)
        assert events.of(EventKind.STARTED)[0].reason == "idle"
        assert agent.memory(thread_id="t1")["human"].value == "learned while idle"


def test_quiet_conversations_of_different_scopes_sleep_concurrently(db):
    conversations = 4
    together = threading.Barrier(conversations, timeout=WAIT_S)

    def meet_the_others(prompt):
        together.wait()  # passes only if all runs are in their model call at once
        return insert("human", "met", line=-1)

    config = machinery(SleepConfig(idle_seconds=0.05, max_concurrent_sleeps=conversations))
    events = EventRecorder()
    sleep = ScriptedChatModel([meet_the_others] * conversations)
    chat = ScriptedChatModel(["hi"] * conversations)
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, config=config) as agent:
        agent.subscribe(events)
        for n in range(conversations):
            agent.chat("hello", thread_id=f"t{n}", user_id=f"user{n}")
        finished = events.wait(EventKind.FINISHED, count=conversations, timeout=WAIT_S)
        assert finished, events.of(EventKind.FAILED)
        assert events.of(EventKind.FAILED) == []


def test_a_due_run_of_a_busy_scope_waits_for_the_run_in_flight_with_real_timers(db):
    entered, release = threading.Event(), threading.Event()
    log: list[str] = []

    def first(prompt):
        log.append("t1 in")
        entered.set()
        assert release.wait(WAIT_S), "the test never released the first run"
        log.append("t1 out")
        return insert("human", "run of t1", line=-1)

    def second(prompt):
        log.append("t2 in")
        # A line of its own: the same line again would be dropped as a repeat.
        return insert("human", "run of t2", line=-1)

    events = EventRecorder()
    sleep = ScriptedChatModel([first, second])
    with SleepTimeAgent(
        ScriptedChatModel(["a", "b"]), sleep_model=sleep, db=db, config=SHORT
    ) as agent:
        agent.subscribe(events)
        agent.chat("hi", thread_id="t1", user_id="ada")
        assert entered.wait(WAIT_S)
        try:
            agent.chat("hi", thread_id="t2", user_id="ada")
            # t2's alarm falls due while t1's run is in its model call: the job finds the scope
            # claimed and waits (without one run per scope, it starts).
            assert events.wait(EventKind.WAITING, EventKind.STARTED, thread_id="t2", timeout=WAIT_S)
            t2 = events.of(EventKind.WAITING, EventKind.STARTED, thread_id="t2")
            assert [event.kind for event in t2] == [EventKind.WAITING], (
                "the second run did not wait"
            )
            assert log == ["t1 in"], "the first run holds the scope, inside its model call"
        finally:
            release.set()
        assert events.wait(EventKind.FINISHED, count=2, timeout=WAIT_S)
    assert [event.thread_id for event in events.of(EventKind.STARTED)] == ["t1", "t2"]
    assert log == ["t1 in", "t1 out", "t2 in"]


def test_a_turn_is_answered_while_the_timer_run_of_its_own_thread_is_in_its_model_call(db):
    release = threading.Event()
    in_call = threading.Event()

    def slow(prompt):
        in_call.set()
        assert release.wait(WAIT_S), "the test never released the run"
        return insert("human", "slow", line=-1)

    chat = ScriptedChatModel(["before", "during"])
    sleep = ScriptedChatModel([slow, finish()])
    config = machinery(SleepConfig(idle_seconds=0.05))
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, config=config) as agent:
        agent.chat("before", thread_id="t1")
        assert in_call.wait(WAIT_S), "the idle run did not start"
        answered = threading.Event()

        def turn() -> None:
            agent.chat("during", thread_id="t1")
            answered.set()

        worker = threading.Thread(target=turn)
        worker.start()
        # A turn that waited for the run would wait until the release below, never before.
        assert answered.wait(WAIT_S), "the turn waited for the sleep run"
        assert not release.is_set()
        release.set()
        worker.join(WAIT_S)


async def test_the_asyncio_scheduler_runs_sleep_time_compute_by_itself(db):
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_event(event: SleepEvent) -> None:
        if event.kind is EventKind.FINISHED:
            loop.call_soon_threadsafe(finished.set)

    sleep = ScriptedChatModel([insert("human", "async idle", line=-1)])
    async with AsyncSleepTimeAgent(
        ScriptedChatModel(["hi"]), sleep_model=sleep, db=db, config=SHORT
    ) as agent:
        agent.subscribe(on_event)
        await agent.chat("hello", thread_id="t1")
        await asyncio.wait_for(finished.wait(), WAIT_S)
        assert (await agent.memory(thread_id="t1"))["human"].value == "async idle"


async def test_closing_the_async_agent_lets_a_timer_run_in_its_model_call_finish(db):
    """Closing gives a run in flight time to end (CLOSE_WAIT_S), as the sync agent does.

    APScheduler's asyncio executor cancels every job task when it shuts down; a run
    cancelled there lost its model call, and APScheduler logged the cancellation as
    the job's crash. The model is released only once the timer is closed.
    """
    in_call, release = threading.Event(), threading.Event()

    def slow(prompt):
        in_call.set()
        assert release.wait(WAIT_S), "the test never released the run"
        return insert("human", "kept", line=-1)

    events = EventRecorder()
    sleep = ScriptedChatModel([slow])
    agent = AsyncSleepTimeAgent(ScriptedChatModel(["hi"]), sleep_model=sleep, db=db, config=SHORT)
    await agent.__aenter__()
    agent.subscribe(events)
    scheduler = agent.scheduler
    assert scheduler is not None
    close_timer = scheduler.close

    def close_then_release() -> None:
        close_timer()
        release.set()

    scheduler.close = close_then_release  # type: ignore[method-assign]
    await agent.chat("hello", thread_id="t1")
    assert await asyncio.to_thread(in_call.wait, WAIT_S), "the idle run did not start"
    await agent.aclose()
    assert [event.kind for event in events.of(EventKind.FINISHED)] == [EventKind.FINISHED]
    async with AsyncSleepTimeAgent(ScriptedChatModel(), db=db, scheduler=None) as reopened:
        if db is not None:
            assert (await reopened.memory(thread_id="t1"))["human"].value == "kept"
            assert (await reopened.blocks.aposition("t1")).pending == 0


@pytest.mark.sleep_failures_expected
def test_a_failed_scheduled_run_is_retried(db):
    def model_down(prompt):
        raise RuntimeError("model down")

    events = EventRecorder()
    sleep = ScriptedChatModel([model_down, insert("human", "recovered", line=-1)])
    with SleepTimeAgent(ScriptedChatModel(["hi"]), sleep_model=sleep, db=db, config=SHORT) as agent:
        agent.subscribe(events)
        agent.chat("hello", thread_id="t1")
        assert events.wait(EventKind.FINISHED, timeout=WAIT_S)
        assert [e.will_retry for e in events.of(EventKind.FAILED)] == [True]


# --- processes ------------------------------------------------------------------------


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_process_killed_before_the_idle_deadline_gets_its_sleep_run_exactly_once(tmp_path):
    db = tmp_path / "agent.db"
    child = run_python(
        f"""
        import os, signal
        from sleepagent import SleepConfig, SleepTimeAgent
        from sleepagent.testing import ScriptedChatModel
        agent = SleepTimeAgent(
            ScriptedChatModel(["a", "b"]), db={str(db)!r}, config=SleepConfig(idle_seconds=3600)
        )
        agent.chat("I moved to Porto", thread_id="t1", user_id="ada")
        agent.chat("and I cycle to work", thread_id="t1", user_id="ada")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert child.returncode == -9, child.stderr

    events = EventRecorder()
    sleep = ScriptedChatModel([insert("human", "Porto; cycles", line=-1)])
    config = machinery(SleepConfig(idle_seconds=0.05))
    with SleepTimeAgent(ScriptedChatModel(), sleep_model=sleep, db=db, config=config) as agent:
        agent.subscribe(events)
        assert events.wait(EventKind.FINISHED, timeout=WAIT_S)
        assert events.of(EventKind.STARTED)[0].reason == "recovery"
    # A third process finds nothing pending: the strict scripted model would fail on a call.
    with SleepTimeAgent(ScriptedChatModel(), sleep_model=sleep, db=db, config=config) as agent:
        assert agent.blocks.pending_threads() == []
        assert [entry.value for entry in agent.history("human", thread_id="t1", user_id="ada")] == [
            "Porto; cycles"
        ]
    assert len(sleep.calls) == 1


def test_a_script_with_a_pending_timer_exits_promptly_after_close(tmp_path):
    script = f"""
        import threading
        import time
        from sleepagent import SleepConfig, SleepTimeAgent
        from sleepagent.testing import ScriptedChatModel
        began = time.perf_counter()
        db, config = {str(tmp_path / "a.db")!r}, SleepConfig(idle_seconds=600)
        agent = SleepTimeAgent(ScriptedChatModel(["hi"]), db=db, config=config)
        agent.chat("hello", thread_id="t1")
        agent.close()
        print(f"closed after {{time.perf_counter() - began:.3f}} s")
        # The timer's thread is a daemon, so the process would exit anyway: check it ended.
        alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        print(f"threads left: {{alive}}")
        """
    done = run_python(script, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "closed after" in done.stdout
    assert "threads left: []" in done.stdout, "close() left the timer's thread running"
