"""The idle timer on virtual time: when sleep-time compute runs, and what it covers."""

from __future__ import annotations

import asyncio
import gc

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from sleepagent import AsyncSleepTimeAgent, SleepConfig, SleepTimeAgent
from sleepagent.scheduling import EventKind, ManualScheduler, SleepEvent
from sleepagent.testing import EventRecorder, ScriptedChatModel, finish, insert
from tests.conftest import machinery


@pytest.fixture
def make(make_agent):
    """Build an agent on virtual time, on each backend, sync and async.

    Returns (agent, scheduler, chat, sleep, events); move time with ``agent.advance``.
    """

    def build(chat=(), sleep=(), **config):
        scheduler = ManualScheduler()
        agent, chat_model, sleep_model = make_agent(
            list(chat), list(sleep), config=SleepConfig(**config), scheduler=scheduler
        )
        recorder = EventRecorder()
        agent.subscribe(recorder)
        return agent, scheduler, chat_model, sleep_model, recorder

    return build


def offsets(events: list[SleepEvent], start: float) -> list[float]:
    return [event.at - start for event in events]


# --- triggers ---------------------------------------------------------------------


def test_each_turn_pushes_the_idle_deadline_back(make):
    agent, clock, _, sleep, events = make(chat=["a", "b", "c"], sleep=[finish()], idle_seconds=30)
    start = clock.now()
    for _ in range(3):
        agent.chat("hi", thread_id="t1")
        agent.advance(10)
    agent.advance(19)
    assert sleep.calls == [], "no run before 30 s of quiet after the last turn"
    agent.advance(1)
    started = events.of(EventKind.STARTED)
    assert offsets(started, start) == [50.0]
    assert started[0].reason == "idle"
    assert agent.history("human", thread_id="t1") == [], "finish() changed nothing"
    agent.advance(600)
    assert len(sleep.calls) == 1


def test_a_conversation_that_never_goes_quiet_runs_after_max_wait_turns(make):
    agent, clock, _, sleep, events = make(
        chat=["x"] * 3,
        sleep=[insert("human", "busy talker", line=-1)],
        idle_seconds=30,
        max_wait_turns=3,
    )
    start = clock.now()
    for _ in range(3):
        agent.chat("hi", thread_id="t1")
        agent.advance(10)
    started = events.of(EventKind.STARTED)
    assert [event.reason for event in started] == ["max_wait"]
    assert offsets(started, start) == [20.0], "due at once after the third turn"
    assert agent.history("human", thread_id="t1")[0].reason == "max_wait"


def test_a_conversation_that_never_goes_quiet_runs_after_max_wait_seconds(make):
    agent, clock, _, sleep, events = make(
        chat=["x"] * 8, sleep=[finish(), finish()], idle_seconds=30, max_wait_seconds=60
    )
    start = clock.now()
    for _ in range(8):
        agent.chat("hi", thread_id="t1")
        agent.advance(20)
    started = events.of(EventKind.STARTED)
    assert [event.reason for event in started] == ["max_wait", "max_wait"]
    assert offsets(started, start)[0] == 60.0


def test_too_few_new_messages_are_skipped_and_stay_pending(make):
    agent, clock, _, sleep, events = make(
        chat=["a", "b"], sleep=[finish()], idle_seconds=30, min_new_messages=4
    )
    agent.chat("hi", thread_id="t1")
    agent.advance(31)
    assert [event.kind for event in events.of(EventKind.SKIPPED, EventKind.STARTED)] == [
        EventKind.SKIPPED
    ]
    assert sleep.calls == []
    assert agent.position("t1").pending == 2
    agent.chat("more", thread_id="t1")
    agent.advance(31)
    assert len(sleep.calls) == 1
    assert agent.position("t1").pending == 0


# --- what a run covers ---------------------------------------------------------------


def test_a_turn_during_a_run_is_covered_by_a_later_run(make):
    holder = {}

    def chat_during_the_run(prompt):
        holder["agent"].chat("one more thing", thread_id="t1")
        return insert("human", "first", line=-1)

    agent, clock, _, sleep, events = make(
        chat=["a", "b"],
        sleep=[chat_during_the_run, insert("human", "second", line=-1)],
        idle_seconds=30,
    )
    holder["agent"] = agent
    agent.chat("hi", thread_id="t1")
    agent.advance(31)
    assert agent.position("t1").pending == 2, "the turn during the run is still pending"
    agent.advance(31)
    finished = events.of(EventKind.FINISHED)
    assert len(finished) == 2
    assert agent.position("t1").pending == 0
    assert agent.memory(thread_id="t1")["human"].value == "first\nsecond"


def test_a_job_due_while_its_scope_is_busy_waits_for_that_run(make):
    holder = {}
    overlap = []

    def first_run(prompt):
        # While this run is in flight, let the other thread of the same user fall due.
        overlap.append(len(holder["agent"].advance(5)))
        return insert("human", "from t1", line=-1)

    agent, clock, _, sleep, events = make(
        chat=["a", "b"], sleep=[first_run, insert("human", "from t2", line=-1)], idle_seconds=30
    )
    holder["agent"] = agent
    agent.chat("hi", thread_id="t1", user_id="ada")
    agent.advance(1)
    agent.chat("hello", thread_id="t2", user_id="ada")
    agent.advance(29.5)
    assert overlap == [1], "the second job fell due during the first run"
    assert [job.thread_id for job in clock.pending] == ["t2"], "deferred until the run ended"
    agent.advance(0)
    started = events.of(EventKind.STARTED)
    assert [event.thread_id for event in started] == ["t1", "t2"]
    assert agent.memory(thread_id="t2", user_id="ada")["human"].value == "from t1\nfrom t2"


def test_a_job_deferred_behind_a_run_of_its_scope_is_reported_as_waiting(make):
    holder = {}

    def first_run(prompt):
        holder["agent"].advance(5)  # t2, of the same user, falls due during this run
        return finish()

    agent, clock, _, _, events = make(chat=["a", "b"], sleep=[first_run, finish()], idle_seconds=30)
    holder["agent"] = agent
    agent.chat("hi", thread_id="t1", user_id="ada")
    agent.advance(1)
    agent.chat("hello", thread_id="t2", user_id="ada")
    agent.advance(29.5)
    agent.advance(0)
    assert [(e.kind, e.thread_id) for e in events.of(EventKind.WAITING, EventKind.STARTED)] == [
        (EventKind.STARTED, "t1"),
        (EventKind.WAITING, "t2"),
        (EventKind.STARTED, "t2"),
    ]


def test_scopes_are_independent(make):
    agent, clock, _, sleep, events = make(
        chat=["a", "b"],
        sleep=[insert("human", "ada", line=-1), insert("human", "bob", line=-1)],
        idle_seconds=30,
    )
    agent.chat("hi", thread_id="t1", user_id="ada")
    agent.chat("hi", thread_id="t2", user_id="bob")
    agent.advance(30)
    assert sorted(event.scope for event in events.of(EventKind.FINISHED)) == [
        "user:ada",
        "user:bob",
    ]


# --- failures -------------------------------------------------------------------------


def model_down(prompt):
    raise RuntimeError("model down")


@pytest.mark.sleep_failures_expected
def test_a_failed_run_is_retried_with_backoff(make):
    agent, clock, _, sleep, events = make(
        chat=["a"],
        sleep=[model_down, model_down, insert("human", "third time lucky", line=-1)],
        idle_seconds=30,
        retry_backoff_seconds=5,
    )
    start = clock.now()
    agent.chat("hi", thread_id="t1")
    agent.advance(100)
    failed = events.of(EventKind.FAILED)
    assert [(e.attempt, e.will_retry) for e in failed] == [(1, True), (2, True)]
    assert "model down" in failed[0].error
    started = events.of(EventKind.STARTED)
    assert offsets(started, start) == [30.0, 35.0, 45.0]
    assert agent.memory(thread_id="t1")["human"].value == "third time lucky"


@pytest.mark.sleep_failures_expected
def test_a_page_that_keeps_failing_is_recorded_and_never_paid_for_again(make):
    agent, clock, _, sleep, events = make(
        chat=["a", "b", "c"],
        sleep=[model_down, model_down, insert("human", "after the next turn", line=-1)],
        idle_seconds=30,
        sleep_retries=1,
        retry_backoff_seconds=5,
    )
    agent.chat("hi", thread_id="t1")
    agent.advance(1000)
    assert [e.will_retry for e in events.of(EventKind.FAILED)] == [True, False]
    [given_up] = events.of(EventKind.PAGE_FAILED)
    page = given_up.failed_page
    assert (page.first_seq, page.last_seq, page.attempts) == (1, 2, 2)
    assert "model down" in page.error
    assert agent.failed_pages(thread_id="t1") == [page]
    assert clock.pending == []
    assert agent.position("t1").pending == 0, "the watermark moved past the failed page"

    agent.chat("again", thread_id="t1")
    agent.advance(30)
    assert agent.position("t1").pending == 0
    assert sleep.remaining == 0 and len(sleep.calls) == 1, "the failed page was not retried"
    assert 'messages="3-4"' in str(sleep.calls[-1].messages[-1].content)


@pytest.mark.sleep_failures_expected
def test_new_turns_do_not_reset_the_attempts_of_a_failing_page(make):
    agent, clock, _, sleep, events = make(
        chat=["a", "b", "c", "d"],
        sleep=[model_down, model_down, model_down, finish()],
        idle_seconds=30,
        sleep_retries=2,
        retry_backoff_seconds=5,
    )
    for text in ("one", "two", "three"):
        agent.chat(text, thread_id="t1")
        agent.advance(31)  # each turn's run fails once; a new turn sets a fresh alarm
    [given_up] = events.of(EventKind.PAGE_FAILED)
    assert given_up.failed_page.attempts == 3
    assert sleep.remaining == 1, "three paid attempts in all, whatever the turns did"
    assert [e.will_retry for e in events.of(EventKind.FAILED)][-1] is False
    agent.chat("four", thread_id="t1")
    agent.advance(31)
    assert sleep.remaining == 0
    assert 'messages="7-8"' in str(sleep.calls[-1].messages[-1].content)


@pytest.mark.sleep_failures_expected
def test_a_failed_page_can_be_run_again_on_purpose(make):
    agent, clock, _, sleep, events = make(
        chat=["a"],
        sleep=[model_down, insert("human", "second try", line=-1)],
        idle_seconds=30,
        sleep_retries=0,
    )
    agent.chat("hi", thread_id="t1")
    agent.advance(31)
    assert len(agent.failed_pages(thread_id="t1")) == 1
    [result] = agent.retry_failed(thread_id="t1")
    assert result.changed == ("human",)
    assert agent.failed_pages(thread_id="t1") == []
    assert agent.memory(thread_id="t1")["human"].value == "second try"


@pytest.mark.sleep_failures_expected
def test_the_chat_path_is_untouched_by_a_failing_run(make):
    agent, clock, _, sleep, events = make(
        chat=["a", "b"], sleep=[model_down] * 4, idle_seconds=30, retry_backoff_seconds=1
    )
    agent.chat("hi", thread_id="t1")
    agent.advance(1000)
    assert agent.chat("still there?", thread_id="t1").reply == "b"


def test_a_failing_subscriber_does_not_stop_the_scheduler(make):
    agent, clock, _, sleep, events = make(chat=["a"], sleep=[finish()], idle_seconds=30)

    def broken(event):
        raise ValueError("subscriber bug")

    agent.subscribe(broken)
    agent.chat("hi", thread_id="t1")
    agent.advance(30)
    assert len(events.of(EventKind.FINISHED)) == 1


# --- recovery and closing -------------------------------------------------------------


def test_a_new_agent_recovers_pending_work_and_runs_it_once(db):
    saver, store = InMemorySaver(), InMemoryStore()
    shared = {"db": db} if db is not None else {"checkpointer": saver, "store": store}
    first_clock = ManualScheduler()
    with SleepTimeAgent(ScriptedChatModel(["a"]), scheduler=first_clock, **shared) as agent:
        agent.chat("hi", thread_id="t1", user_id="ada")
        first_clock.advance(10)  # closed before the idle deadline

    clock = ManualScheduler()
    clock.clock.set(first_clock.now() + 5)
    sleep = ScriptedChatModel([insert("human", "recovered", line=-1)])
    events = EventRecorder()
    config = machinery(SleepConfig(idle_seconds=30))
    with SleepTimeAgent(
        ScriptedChatModel(), sleep_model=sleep, scheduler=clock, config=config, **shared
    ) as agent:
        agent.subscribe(events)
        clock.advance(3600)
        assert [event.reason for event in events.of(EventKind.STARTED)] == ["recovery"]
        assert agent.memory(thread_id="t1", user_id="ada")["human"].value == "recovered"
    sleep.assert_exhausted()


class _CollectorWatch(ManualScheduler):
    """Records whether Python's garbage collector was on as each alarm was set."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: list[bool] = []

    def set(self, job) -> None:
        self.collector_on.append(gc.isenabled())
        super().set(job)


@pytest.mark.parametrize("collector_was_on", [True, False])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_recovery_sets_its_alarms_with_the_collector_paused_and_leaves_it_as_it_was(
    tmp_path, mode, collector_was_on
):
    db = tmp_path / "agent.db"
    with SleepTimeAgent(ScriptedChatModel(["a", "b"]), db=db, scheduler=ManualScheduler()) as agent:
        agent.chat("hi", thread_id="t1")
        agent.chat("hi", thread_id="t2")
    watch = _CollectorWatch()
    if not collector_was_on:
        gc.disable()
    try:
        if mode == "sync":
            SleepTimeAgent(ScriptedChatModel(), db=db, scheduler=watch).close()
        else:

            async def open_and_close() -> None:
                async with AsyncSleepTimeAgent(ScriptedChatModel(), db=db, scheduler=watch):
                    pass

            asyncio.run(open_and_close())
        assert gc.isenabled() is collector_was_on
    finally:
        gc.enable()
    assert watch.collector_on == [False, False], "both recovered alarms set while paused"


def test_closing_drops_pending_alarms(make):
    agent, clock, _, _, _ = make(chat=["a"], idle_seconds=30)
    agent.chat("hi", thread_id="t1")
    assert len(clock.pending) == 1
    agent.close()
    assert clock.pending == []


def test_a_manual_sleep_that_covers_everything_cancels_the_alarm(make):
    agent, clock, _, sleep, _ = make(chat=["a"], sleep=[finish()], idle_seconds=30)
    agent.chat("hi", thread_id="t1")
    agent.sleep(thread_id="t1")
    assert clock.pending == []


def test_finished_events_carry_usage_diffs_and_scope(make):
    agent, clock, _, _, events = make(
        chat=["a"], sleep=[insert("human", "Likes tea", line=-1)], idle_seconds=30
    )
    agent.chat("I like tea", thread_id="t1", user_id="ada")
    agent.advance(30)
    (finished,) = events.of(EventKind.FINISHED)
    assert finished.scope == "user:ada"
    assert finished.usage.calls == 1
    assert [diff.after for diff in finished.diffs] == ["Likes tea"]
    assert finished.run_id
    assert finished.duration >= 0


def test_unsubscribing_stops_delivery(make):
    agent, clock, _, _, events = make(chat=["a"], sleep=[finish()], idle_seconds=30)
    later = EventRecorder()
    unsubscribe = agent.subscribe(later)
    unsubscribe()
    agent.chat("hi", thread_id="t1")
    agent.advance(30)
    assert later.events == []
    assert events.events


# --- async agent ----------------------------------------------------------------------


async def test_the_async_agent_runs_on_virtual_time_too(db):
    clock = ManualScheduler()
    sleep = ScriptedChatModel([insert("human", "async", line=-1)])
    events = EventRecorder()
    config = machinery(SleepConfig(idle_seconds=30))
    async with AsyncSleepTimeAgent(
        ScriptedChatModel(["a", "b"]), sleep_model=sleep, db=db, scheduler=clock, config=config
    ) as agent:
        agent.subscribe(events)
        await agent.chat("hi", thread_id="t1")
        await clock.aadvance(20)
        await agent.chat("again", thread_id="t1")
        await clock.aadvance(29)
        assert sleep.calls == []
        ran = await clock.aadvance(1)
        assert [job.reason.value for job in ran] == ["idle"]
        assert (await agent.memory(thread_id="t1"))["human"].value == "async"
        assert len(events.of(EventKind.FINISHED)) == 1


def test_a_sync_advance_refuses_an_async_agent(db):
    from sleepagent import WrongModeError

    async def scenario():
        clock = ManualScheduler()
        async with AsyncSleepTimeAgent(ScriptedChatModel(["a"]), db=db, scheduler=clock) as agent:
            await agent.chat("hi", thread_id="t1")
            with pytest.raises(WrongModeError, match="aadvance"):
                clock.advance(60)

    asyncio.run(scenario())
