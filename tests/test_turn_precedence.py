"""Turns before sleep work: a sleep run gives way to turns in flight, for a bounded time.

A step of a sleep run (a model call, a commit) waits while the agent answers a
turn, for at most ``SleepConfig.turn_precedence_seconds``, so sleep work yields
to turns and is never starved by them (DESIGN invariants 1 and 4); the count of
turns survives a failed or cancelled turn (invariant 10), and closing ends
every wait (invariant 7).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from sleepagent import (
    AsyncSleepTimeAgent,
    ConfigurationError,
    ModelCallError,
    SleepConfig,
    SleepTimeAgent,
)
from sleepagent.scheduling import TurnsInFlight
from sleepagent.scheduling.policy import turn_precedence_wait
from sleepagent.testing import ManualScheduler, ScriptedChatModel, finish
from tests.conftest import Driver, machinery

WAIT_S = 10


class Waits:
    """Every wait of a sleep step for turns: the turns in flight it began with, and its length."""

    def __init__(self) -> None:
        self.turns_seen: list[int] = []
        self.waited: list[float] = []
        self.began = threading.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        wait, await_ = TurnsInFlight.yield_to_turns, TurnsInFlight.ayield_to_turns
        seen = self

        def yield_to_turns(self: TurnsInFlight, bound: float) -> float:
            seen.began_with(self.count)
            return seen.took(wait(self, bound))

        async def ayield_to_turns(self: TurnsInFlight, bound: float) -> float:
            seen.began_with(self.count)
            return seen.took(await await_(self, bound))

        monkeypatch.setattr(TurnsInFlight, "yield_to_turns", yield_to_turns)
        monkeypatch.setattr(TurnsInFlight, "ayield_to_turns", ayield_to_turns)

    def began_with(self, turns: int) -> None:
        self.turns_seen.append(turns)
        self.began.set()

    def took(self, seconds: float) -> float:
        self.waited.append(seconds)
        return seconds


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Waits:
    recorded = Waits()
    recorded.install(monkeypatch)
    return recorded


class HeldTurn:
    """A turn whose model call stays in flight until the test lets it answer."""

    def __init__(self) -> None:
        self.in_model = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()

    def __call__(self, prompt: Any) -> str:
        self.in_model.set()
        released = self.release.wait(WAIT_S)
        assert released, "the test never let the turn answer"
        self.answered.set()
        return "answered"

    def release_on(self, *events: threading.Event) -> None:
        """Let the turn answer as soon as any of ``events`` is set (each watched up to WAIT_S)."""
        for event in events:
            threading.Thread(
                target=lambda e=event: e.wait(WAIT_S) and self.release.set(), daemon=True
            ).start()


def settle(future: Future[Any], work: Callable[[], Any]) -> None:
    """Run ``work`` and put what it returns, or raises, in ``future``."""
    try:
        future.set_result(work())
    except BaseException as error:
        future.set_exception(error)


def start_turn(driver: Driver, held: HeldTurn, thread_id: str) -> Callable[[], Any]:
    """Start a turn in the background, counted before anything else runs; returns its result.

    Sync: on a thread of its own, in its model call when this returns. Async: a
    task on the driver's loop, which runs it (and counts it in) before whatever
    the test runs on the loop next.
    """
    if driver.loop is None:
        future: Future[Any] = Future()
        asking = lambda: driver.chat("a question", thread_id=thread_id)  # noqa: E731
        threading.Thread(target=settle, args=(future, asking), daemon=True).start()
        assert held.in_model.wait(WAIT_S)
        return lambda: future.result(timeout=WAIT_S)
    loop = driver.loop
    task = loop.create_task(driver.agent.chat("a question", thread_id=thread_id))
    return lambda: loop.run_until_complete(asyncio.wait_for(task, WAIT_S))


class SleepModelCalls:
    """The sleep model's step: records whether a turn was still answering when it was called."""

    def __init__(self, held: HeldTurn) -> None:
        self.held = held
        self.during_turn: list[bool] = []
        self.called = threading.Event()

    def __call__(self, prompt: Any) -> Any:
        self.during_turn.append(not self.held.answered.is_set())
        self.called.set()
        return finish()


def agent_with_a_held_turn(
    make_agent: Any, bound: float
) -> tuple[Driver, HeldTurn, SleepModelCalls]:
    held = HeldTurn()
    calls = SleepModelCalls(held)
    config = SleepConfig(turn_precedence_seconds=bound)
    driver, _, _ = make_agent(["hello", held], [calls], config=config)
    driver.chat("something to sleep on", thread_id="quiet")
    return driver, held, calls


# --- through the agent, on every backend and in both modes ----------------------------


def test_a_sleep_run_due_during_a_turn_calls_its_model_only_after_the_turn_answered(
    make_agent, waits
):
    driver, held, calls = agent_with_a_held_turn(make_agent, bound=30)
    # The turn answers once the run waits for it, or has already reached its model call.
    held.release_on(waits.began, calls.called)
    answer = start_turn(driver, held, thread_id="busy")

    result = driver.sleep(thread_id="quiet")

    assert answer().reply == "answered"
    assert calls.during_turn == [False], "the sleep model was called while a turn was in flight"
    assert waits.turns_seen[0] == 1, "the run did not see the turn in flight"
    assert result.watermark == 2


def test_a_sleep_run_goes_on_after_the_bound_however_long_the_turn_lasts(make_agent, waits):
    driver, held, calls = agent_with_a_held_turn(make_agent, bound=0.05)
    answer = start_turn(driver, held, thread_id="busy")

    result = driver.sleep(thread_id="quiet")  # the turn is still in its model call
    held.release.set()

    assert answer().reply == "answered"
    assert calls.during_turn == [True], "the run waited for the turn to end"
    assert result.watermark == 2
    assert waits.turns_seen and set(waits.turns_seen) == {1}
    assert all(0.05 <= waited < WAIT_S for waited in waits.waited)


def test_a_bound_of_zero_lets_sleep_runs_go_on_while_turns_are_in_flight(make_agent, waits):
    driver, held, calls = agent_with_a_held_turn(make_agent, bound=0)
    answer = start_turn(driver, held, thread_id="busy")

    result = driver.sleep(thread_id="quiet")
    held.release.set()

    assert answer().reply == "answered"
    assert calls.during_turn == [True]
    assert result.watermark == 2
    assert waits.turns_seen == [], "a step waited (or asked whether to) with precedence off"


def failing(prompt: Any) -> str:
    raise RuntimeError("server unreachable")


def test_a_turn_that_failed_no_longer_holds_sleep_runs_back(make_agent, waits):
    config = SleepConfig(turn_precedence_seconds=5)
    driver, _, _ = make_agent(["hello", failing], [finish()], config=config)
    driver.chat("something to sleep on", thread_id="quiet")
    with pytest.raises(ModelCallError, match="server unreachable"):
        driver.chat("a question", thread_id="busy")

    driver.sleep(thread_id="quiet")

    assert waits.turns_seen and set(waits.turns_seen) == {0}


async def test_a_cancelled_turn_no_longer_holds_sleep_runs_back(db, waits):
    held = HeldTurn()
    chat = ScriptedChatModel(["hello", held])
    config = machinery(SleepConfig(turn_precedence_seconds=5))
    agent = AsyncSleepTimeAgent(
        chat, sleep_model=ScriptedChatModel([finish()]), config=config, db=db, scheduler=None
    )
    async with agent:
        await agent.chat("something to sleep on", thread_id="quiet")
        turn = asyncio.create_task(agent.chat("a question", thread_id="busy"))
        assert await asyncio.to_thread(held.in_model.wait, WAIT_S)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
        held.release.set()

        await asyncio.wait_for(agent.sleep(thread_id="quiet"), WAIT_S)

    assert waits.turns_seen and set(waits.turns_seen) == {0}


def test_closing_the_agent_ends_a_scheduled_runs_wait_for_turns_at_once(db, waits, caplog):
    held = HeldTurn()
    scheduler = ManualScheduler()
    sleep_model = ScriptedChatModel([finish()])
    config = machinery(SleepConfig(turn_precedence_seconds=60))
    agent = SleepTimeAgent(
        ScriptedChatModel(["hello", held]),
        sleep_model=sleep_model,
        config=config,
        db=db,
        scheduler=scheduler,
    )
    agent.chat("something to sleep on", thread_id="quiet")
    turn: Future[Any] = Future()
    asking = lambda: agent.chat("a question", thread_id="busy")  # noqa: E731
    threading.Thread(target=settle, args=(turn, asking), daemon=True).start()
    assert held.in_model.wait(WAIT_S)
    ran: Future[Any] = Future()
    threading.Thread(target=settle, args=(ran, lambda: scheduler.advance(60)), daemon=True).start()
    assert waits.began.wait(WAIT_S), "the scheduled run never reached its wait"

    with caplog.at_level(logging.WARNING, logger="sleepagent.agent.flows"):
        agent.close()

    assert "still in flight" not in caplog.text, "closing had to leave the run waiting"
    assert [job.thread_id for job in ran.result(timeout=WAIT_S)] == ["quiet"]
    assert len(sleep_model.calls) == 1
    held.release.set()  # the turn outlived its agent: what it does now is no concern here
    turn.exception(timeout=WAIT_S)


# --- the decision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("turns", "waited", "bound", "closed", "left"),
    [
        (0, 0.0, 0.5, False, 0.0),  # no turn in flight: go now
        (3, 0.0, 0.5, False, 0.5),  # turns in flight: wait, up to the bound
        (1, 0.2, 0.5, False, 0.3),  # the rest of the bound
        (1, 0.5, 0.5, False, 0.0),  # the bound reached: go, turns or not
        (1, 9.0, 0.5, False, 0.0),  # never a negative wait
        (1, 0.0, 0.0, False, 0.0),  # a bound of 0: precedence off
        (1, 0.0, 0.5, True, 0.0),  # the agent is closing: nobody waits
    ],
)
def test_a_sleep_step_waits_for_turns_in_flight_only_until_the_bound(
    turns, waited, bound, closed, left
):
    assert turn_precedence_wait(turns, waited, bound, closed=closed) == pytest.approx(left)


@pytest.mark.parametrize("bound", [-1, math.inf, math.nan, "0.5"])
def test_a_bound_that_is_not_finite_seconds_is_refused(bound):
    with pytest.raises(ConfigurationError, match="turn_precedence_seconds"):
        SleepConfig(turn_precedence_seconds=bound)


# --- the counter, on threads and on a loop -----------------------------------------------


class SignallingClock:
    """``time.monotonic``, setting ``read`` once a wait has read it (under the counter's lock).

    After that, the counter's lock is free only once the waiter is inside its wait.
    """

    def __init__(self) -> None:
        self.read = threading.Event()

    def __call__(self) -> float:
        self.read.set()
        return time.monotonic()


def waiting_thread(turns: TurnsInFlight, bound: float) -> Future[float]:
    waited: Future[float] = Future()
    threading.Thread(
        target=lambda: waited.set_result(turns.yield_to_turns(bound)), daemon=True
    ).start()
    return waited


def test_a_waiting_step_goes_on_when_the_last_turn_in_flight_leaves():
    clock = SignallingClock()
    turns = TurnsInFlight(clock)
    turns.enter()
    turns.enter()
    waited = waiting_thread(turns, bound=30)
    assert clock.read.wait(WAIT_S)

    turns.leave()
    assert not waited.done(), "it went on with a turn still in flight"
    turns.leave()

    assert waited.result(timeout=WAIT_S) < 30
    assert turns.count == 0


def test_closing_ends_a_wait_at_once_and_no_later_step_waits():
    clock = SignallingClock()
    turns = TurnsInFlight(clock)
    turns.enter()
    waited = waiting_thread(turns, bound=30)
    assert clock.read.wait(WAIT_S)

    turns.close()

    assert waited.result(timeout=WAIT_S) < 30
    assert turns.yield_to_turns(30) < 30


async def test_an_async_waiting_step_goes_on_when_the_last_turn_leaves_and_when_closed():
    turns = TurnsInFlight()
    turns.enter()
    waiting = asyncio.create_task(turns.ayield_to_turns(30))
    await asyncio.sleep(0)  # the task runs to its wait; nothing else can run meanwhile
    assert not waiting.done()

    turns.leave()
    assert await asyncio.wait_for(waiting, WAIT_S) < 30

    turns.enter()
    waiting = asyncio.create_task(turns.ayield_to_turns(30))
    await asyncio.sleep(0)
    turns.close()
    assert await asyncio.wait_for(waiting, WAIT_S) < 30


async def test_a_cancelled_async_wait_leaves_the_counter_working():
    turns = TurnsInFlight()
    turns.enter()
    cancelled = asyncio.create_task(turns.ayield_to_turns(30))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    waiting = asyncio.create_task(turns.ayield_to_turns(30))
    await asyncio.sleep(0)
    turns.leave()

    assert await asyncio.wait_for(waiting, WAIT_S) < 30
    assert turns.count == 0
