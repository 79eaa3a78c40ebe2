"""Shared fixtures: every behaviour test runs on each backend, sync and async."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from sleepagent import (
    DEFAULT_BLOCKS,
    AsyncSleepTimeAgent,
    BlockRole,
    SleepConfig,
    SleepThinking,
    SleepTimeAgent,
)
from sleepagent.scheduling import SleepJob
from sleepagent.testing import ManualScheduler, ScriptedChatModel, ScriptStep

POSTGRES_URL = os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL")
"""A PostgreSQL database the tests may empty at will; its leg runs only when set."""

BACKENDS = ["memory", "sqlite", *(["postgres"] if POSTGRES_URL else [])]
MODES = ["sync", "async"]

_TABLES = ("store", "checkpoints", "checkpoint_blobs", "checkpoint_writes", "sleepagent_recall")

CALL_FROM_A_STEP_S = 30
"""How long a driver call made from a scripted step waits for the event loop to finish it."""


MACHINERY_BLOCKS = tuple(
    dataclasses.replace(block, role=BlockRole.NOTES) if block.role is BlockRole.FACTS else block
    for block in DEFAULT_BLOCKS
)
"""The default blocks with the user's block as free text (no grounding check)."""


def machinery(config: SleepConfig | None = None) -> SleepConfig:
    """The config a test of the machinery (commits, timers, locks, outcomes) runs with.

    Its scripted edits ("one", "from A") stand for any edit, not for facts a user
    said, and its scripted models answer edit rounds only. So unless the test
    declares blocks or a reasoning setting of its own, the user's block is free
    text and no page gets a reasoning pass. The defaults themselves are pinned by
    tests/test_consolidation.py, tests/test_thinking.py and tests/test_payoff.py.
    """
    config = config or SleepConfig()
    changes: dict[str, Any] = {}
    if config.blocks == DEFAULT_BLOCKS:
        changes["blocks"] = MACHINERY_BLOCKS
    if config.sleep_thinking is SleepThinking.CONTEXT:
        changes["sleep_thinking"] = SleepThinking.NEVER
    return dataclasses.replace(config, **changes)


def empty_postgres(url: str) -> None:
    """Remove every row the library wrote, keeping the schema (fast between tests)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        present = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
            if row[0] in _TABLES
        ]
        if present:
            conn.execute(f"TRUNCATE {', '.join(present)}")


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in it (the test server trusts loopback: any password does)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:{password}@{host}"))


class Driver:
    """Drives a sync or an async agent through one synchronous interface.

    The async agent runs on an event loop owned by the driver, so a test body
    is written once and runs in both modes. A call made while that loop runs
    (from a scripted model's step, which runs on a worker thread) is handed to
    the loop and waited for, so a step may chat or move time in both modes.
    """

    def __init__(
        self, agent: SleepTimeAgent | AsyncSleepTimeAgent, loop: asyncio.AbstractEventLoop | None
    ):
        self.agent = agent
        self.loop = loop
        self.mode = "sync" if loop is None else "async"

    def _call(self, value: Any) -> Any:
        if not inspect.isawaitable(value):
            return value
        assert self.loop is not None
        if self.loop.is_running():
            done = asyncio.run_coroutine_threadsafe(_awaited(value), self.loop)
            return done.result(timeout=CALL_FROM_A_STEP_S)
        return self.loop.run_until_complete(value)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.agent, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: self._call(attribute(*args, **kwargs))

    def advance(self, seconds: float) -> list[SleepJob]:
        """Move the agent's ``ManualScheduler`` on, running the jobs that fall due."""
        scheduler = self.agent.scheduler
        assert isinstance(scheduler, ManualScheduler), "build the agent with a ManualScheduler"
        if self.loop is None:
            return scheduler.advance(seconds)
        ran: list[SleepJob] = self._call(scheduler.aadvance(seconds))
        return ran

    def position(self, thread_id: str) -> Any:
        """The thread's head and watermark (``BlockStore.position`` or ``aposition``)."""
        blocks = self.agent.blocks
        return self._call(blocks.aposition(thread_id)) if self.loop else blocks.position(thread_id)

    def positions(self) -> dict[str, Any]:
        """Head and watermark of every thread, by thread id."""
        blocks = self.agent.blocks
        found = self._call(blocks.apositions()) if self.loop else blocks.positions()
        return {position.thread_id: position for position in found}

    def recovery(self) -> dict[str, Any]:
        """What start-up recovery reads (the pending markers), by thread id."""
        blocks = self.agent.blocks
        if self.loop:
            found = self._call(blocks.arecovery_positions())
        else:
            found = blocks.recovery_positions()
        return {position.thread_id: position for position in found}

    def append_log(self, *args: Any, **kwargs: Any) -> Any:
        """``BlockStore.append`` (or ``aappend`` in async mode)."""
        blocks = self.agent.blocks
        if self.loop is None:
            return blocks.append(*args, **kwargs)
        return self.loop.run_until_complete(blocks.aappend(*args, **kwargs))

    def close(self) -> None:
        if self.loop is None:
            self.agent.close()  # type: ignore[union-attr]
        else:
            self.loop.run_until_complete(self.agent.aclose())  # type: ignore[union-attr]


async def _awaited(value: Any) -> Any:
    return await value


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str | None:
    if request.param == "memory":
        return None
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        empty_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return tmp_path / "agent.db"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def no_unexpected_sleep_failures(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail any test in which a sleep run failed, unless it says it expects that.

    A failure inside a background job (an exhausted script, a bug) is retried
    and logged there; without this a test could pass on a run that never worked.
    Mark a test ``@pytest.mark.sleep_failures_expected`` when failing is its point.
    """
    from sleepagent.scheduling.events import EventKind, SleepEvents

    failures: list[Any] = []
    emit = SleepEvents.emit

    def recording(self: SleepEvents, event: Any) -> None:
        if event.kind in (EventKind.FAILED, EventKind.PAGE_FAILED):
            failures.append(event)
        emit(self, event)

    monkeypatch.setattr(SleepEvents, "emit", recording)
    yield
    if failures and request.node.get_closest_marker("sleep_failures_expected") is None:
        first = failures[0]
        pytest.fail(
            f"{len(failures)} sleep run failure(s) in a test that does not expect them; "
            f"first: {first.kind.value} on {first.thread_id}: {first.error}",
            pytrace=False,
        )


AgentFactory = Callable[..., tuple[Driver, ScriptedChatModel, ScriptedChatModel]]


@pytest.fixture
def make_agent(db: Path | None, mode: str) -> Iterator[AgentFactory]:
    """Build agents with scripted models on the parametrised backend and mode.

    Agents get :func:`machinery`'s config unless ``library_defaults=True``.
    """
    drivers: list[Driver] = []
    loop = asyncio.new_event_loop() if mode == "async" else None

    def make(
        chat: list[ScriptStep] | None = None,
        sleep: list[ScriptStep] | None = None,
        *,
        config: SleepConfig | None = None,
        library_defaults: bool = False,
        **kwargs: Any,
    ) -> tuple[Driver, ScriptedChatModel, ScriptedChatModel]:
        kwargs.setdefault("scheduler", None)  # sleep runs only when a test asks
        if not library_defaults:
            config = machinery(config)
        chat_model = ScriptedChatModel(chat or [])
        sleep_model = ScriptedChatModel(sleep or [])
        if loop is None:
            agent: Any = SleepTimeAgent(
                chat_model, sleep_model=sleep_model, config=config, db=db, **kwargs
            )
        else:
            agent = AsyncSleepTimeAgent(
                chat_model, sleep_model=sleep_model, config=config, db=db, **kwargs
            )
            loop.run_until_complete(agent.__aenter__())
        driver = Driver(agent, loop)
        drivers.append(driver)
        return driver, chat_model, sleep_model

    yield make
    for driver in drivers:
        driver.close()
    if loop is not None:
        close_loop(loop)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on ``loop`` and let it end, then close it (as ``asyncio.run`` does).

    An async store's background batch task lives until the store is collected; left
    pending on a closed loop, it is destroyed later, at a garbage collection inside
    some other test, as an unraisable "Event loop is closed" error that fails that test.
    """
    pending = asyncio.all_tasks(loop)
    if pending:
        loop.run_until_complete(_cancelled(pending))
    loop.close()


async def _cancelled(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
