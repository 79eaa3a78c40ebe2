"""One soak worker process: agents on the shared databases, chatting as several users.

Run by ``benchmarks/soak.py`` as ``python _soak_worker.py PLAN SLOT GEN``. The worker
opens one agent per database (``SleepTimeAgent``, or ``AsyncSleepTimeAgent`` for the
plan's async slots) with the real idle timer, and until the stop file appears it
chats, streams, adds context, runs sleep-time compute by hand and sends hostile
input, on its own threads of the run's active users. The async worker also cancels
turns and sleep runs at random points. Everything it was told (turns answered, edits
reported by ``finished`` events, refusals) goes to its ledger before it goes on.
"""

from __future__ import annotations

import asyncio
import faulthandler
import itertools
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from typing import Any

from _soak_ledger import Ledger, event_records
from _soak_model import MARKUP
from _soak_plan import MESSAGE_LIMIT, Plan, soak_config

from sleepagent import (
    AsyncSleepTimeAgent,
    ConfigurationError,
    MessageTooLongError,
    ModelCallError,
    ScopeMismatchError,
    SleepAgentError,
    SleepTimeAgent,
)
from sleepagent.scheduling import SleepEvent

WORDS = ["lisbon", "tea", "cats", "piano", "hiking", "chess", "rain", "violin", "bread", "maps"]

HOSTILE = ("too_long", "nul", "surrogate", "markup", "foreign_thread", "foreign_context")
EXPECTED_REFUSAL: dict[str, type[Exception]] = {
    "too_long": MessageTooLongError,
    "nul": ConfigurationError,
    "surrogate": ConfigurationError,
    "foreign_thread": ScopeMismatchError,
    "foreign_context": ScopeMismatchError,
}


class Worker:
    """What the sync and async workers share: identity, choices and the ledger."""

    def __init__(self, plan: Plan, slot: int, gen: int) -> None:
        self.plan = plan
        self.slot = slot
        self.gen = gen
        self.rng = random.Random(plan.seed * 1_000_003 + slot * 1009 + gen)
        self.ledger = Ledger(plan.ledger(slot), writer=f"w{slot}g{gen}")
        self._counter = itertools.count(1)
        self._acked: set[str] = set()

    # --- identity ------------------------------------------------------------------

    def token(self, user: str, kind: str = "tok") -> str:
        return f"{kind}-{user}-w{self.slot}g{self.gen}-{next(self._counter)}"

    def message(self, token: str) -> str:
        return f"note {token} " + " ".join(self.rng.sample(WORDS, 3))

    def pick(self, users: list[str]) -> tuple[str, str, str]:
        """A database, an active user and one of this worker's threads of that user."""
        db = self.rng.choice(sorted(self.plan.dbs))
        user = self.rng.choice(users)
        return db, user, self.rng.choice(self.plan.threads(user, self.slot))

    def action(self) -> str:
        actions = ["chat", "stream", "hostile", "context", "sleep"]
        return self.rng.choices(actions, weights=[60, 15, 10, 5, 10])[0]

    def hostile_text(self, kind: str, token: str) -> str:
        if kind == "too_long":
            return f"note {token} " + "x" * MESSAGE_LIMIT
        if kind == "nul":
            return f"note {token} \x00 end"
        if kind == "surrogate":
            return f"note {token} \ud800 end"
        if kind == "markup":
            return f"note {token} {MARKUP}"
        return self.message(token)

    # --- the ledger ------------------------------------------------------------------

    def on_event(self, db: str, event: SleepEvent) -> None:
        """Record what a run reported, before the run's caller goes on."""
        for record in event_records(db, event):
            self.ledger.write(record)

    def outcome(self, what: str, error: BaseException, **details: Any) -> None:
        """Record a call that raised: typed errors by class, anything else in full."""
        if isinstance(error, SleepAgentError):
            self.ledger.write({"type": f"{what}_error", "error": type(error).__name__, **details})
            return
        trace = "".join(traceback.format_exception(error))[-3000:]
        self.ledger.write(
            {
                "type": "untyped",
                "where": what,
                "error": f"{type(error).__name__}: {error}"[:500],
                "traceback": trace,
                **details,
            }
        )

    def refusal(
        self, kind: str, error: BaseException | None, before: Any, after: Any, **details: Any
    ) -> None:
        """Record a hostile input: refused with the expected error and nothing stored?"""
        expected = EXPECTED_REFUSAL[kind]
        refused = error is not None and isinstance(error, expected)
        if kind in ("nul", "surrogate") and isinstance(error, MessageTooLongError):
            refused = False
        ok = refused and before == after
        problem = None
        if not ok:
            said = "accepted" if error is None else f"{type(error).__name__}: {error}"[:300]
            problem = f"{said}; stored before={before!r} after={after!r}"
        self.ledger.write(
            {"type": "refused", "kind": kind, "ok": ok, "problem": problem, **details}
        )
        if error is not None and not isinstance(error, SleepAgentError):
            self.outcome("hostile", error, kind=kind)

    # --- control files ---------------------------------------------------------------

    def beat(self) -> None:
        self.plan.heartbeat(self.slot).touch()

    def stopping(self) -> bool:
        return self.plan.stop_file.exists()

    def ack_retired(self, retired: set[str], busy: Callable[[str], bool] = lambda user: False):
        """Acknowledge each newly retired user once no turn of it is in flight here."""
        for user in retired - self._acked:
            if busy(user):
                continue
            path = self.plan.ack(user, self.slot)
            path.parent.mkdir(exist_ok=True)
            path.touch()
            self._acked.add(user)


# --- sync ------------------------------------------------------------------------------


class SyncWorker(Worker):
    """``SleepTimeAgent``s, one call at a time; the idle timer runs in its own threads."""

    def run(self) -> None:
        chat_spec, sleep_spec = self.plan.specs()
        with ExitStack() as stack:
            self.agents: dict[str, SleepTimeAgent] = {}
            for db, target in self.plan.dbs.items():
                agent = stack.enter_context(
                    SleepTimeAgent(
                        chat_spec,
                        sleep_model=sleep_spec,
                        db=target,
                        config=soak_config(),
                        model_options=self.plan.model_options(),
                    )
                )
                agent.subscribe(lambda event, db=db: self.on_event(db, event))
                self.agents[db] = agent
            self.plan.ready(self.slot, self.gen).touch()
            while not self.stopping():
                self.beat()
                retired = self.plan.retired()
                self.ack_retired(retired)
                users = self.plan.active_users(retired)
                self.step(self.action(), *self.pick(users), users)
                time.sleep(self.rng.uniform(0, 0.15))

    def step(self, action: str, db: str, user: str, thread: str, users: list[str]) -> None:
        agent = self.agents[db]
        where = {"db": db, "thread": thread, "user": user}
        if action in ("chat", "stream"):
            token = self.token(user)
            try:
                if action == "chat":
                    agent.chat(self.message(token), thread_id=thread, user_id=user)
                else:
                    "".join(agent.chat_stream(self.message(token), thread_id=thread, user_id=user))
            except Exception as error:
                kind = "turn_failed" if isinstance(error, ModelCallError) else None
                if kind:
                    self.ledger.write({"type": kind, "token": token, **where})
                else:
                    self.outcome("turn", error, token=token, **where)
                return
            self.ledger.write({"type": "turn", "kind": action, "token": token, **where})
        elif action == "context":
            token = self.token(user, "ctx")
            try:
                agent.add_context(
                    f"document {token} " + " ".join(WORDS), thread_id=thread, user_id=user
                )
                self.ledger.write({"type": "context", "token": token, **where})
            except ModelCallError:
                self.ledger.write({"type": "context", "token": token, "failed": True, **where})
            except Exception as error:
                self.outcome("context", error, token=token, **where)
        elif action == "sleep":
            try:
                agent.sleep(thread_id=thread, user_id=user)
            except Exception as error:
                if not isinstance(error, ModelCallError):
                    self.outcome("sleep", error, **where)
        else:
            self.hostile(agent, db, user, thread, users)

    def hostile(
        self, agent: SleepTimeAgent, db: str, user: str, thread: str, users: list[str]
    ) -> None:
        kind = self.rng.choice(HOSTILE)
        token = self.token(user)
        where = {"db": db, "thread": thread, "user": user, "token": token}
        if kind == "markup":
            text = self.hostile_text(kind, token)
            try:
                agent.chat(text, thread_id=thread, user_id=user)
            except Exception as error:
                if isinstance(error, ModelCallError):
                    self.ledger.write({"type": "turn_failed", **where})
                else:
                    self.outcome("turn", error, **where)
                return
            self.ledger.write({"type": "turn", "kind": "markup", "verbatim": text, **where})
            return
        if kind.startswith("foreign"):
            found = self.foreign_thread(agent, user, users)
            if found is None:
                return
            thread, where["thread"] = found, found
        before = agent.blocks.position(thread)
        error: BaseException | None = None
        try:
            if kind == "foreign_context":
                agent.add_context(f"document {token}", thread_id=thread, user_id=user)
            else:
                agent.chat(self.hostile_text(kind, token), thread_id=thread, user_id=user)
        except Exception as raised:
            error = raised
        after = agent.blocks.position(thread)
        self.refusal(kind, error, _head(before), _head(after), **where)

    def foreign_thread(self, agent: SleepTimeAgent, user: str, users: list[str]) -> str | None:
        """One of this worker's threads of another user that already holds a turn."""
        others = [other for other in users if other != user]
        for other in self.rng.sample(others, len(others)):
            for thread in self.plan.threads(other, self.slot):
                if agent.blocks.position(thread) is not None:
                    return thread
        return None


# --- async -----------------------------------------------------------------------------

CANCEL_SHARE = 0.3
"""Share of the async worker's turns and sleep runs run as a task it may cancel."""


class AsyncWorker(Worker):
    """``AsyncSleepTimeAgent``s on one loop: lanes of conversations, some calls cancelled."""

    async def run(self) -> None:
        chat_spec, sleep_spec = self.plan.specs()
        self.busy: dict[str, int] = {}
        async with _agents(self, chat_spec, sleep_spec) as agents:
            self.agents: dict[str, AsyncSleepTimeAgent] = agents
            self.plan.ready(self.slot, self.gen).touch()
            lanes = range(self.plan.threads_per_user)
            await asyncio.gather(*(self.lane(lane) for lane in lanes), self.watch())

    async def watch(self) -> None:
        while not self.stopping():
            self.beat()
            self.ack_retired(self.plan.retired(), busy=lambda user: self.busy.get(user, 0) > 0)
            await asyncio.sleep(0.1)

    async def lane(self, lane: int) -> None:
        """One conversation at a time on thread ``t<lane>`` of each user: no two lanes
        share a thread, so a thread's turns stay in order."""
        while not self.stopping():
            users = self.plan.active_users()
            db, user, _ = self.pick(users)
            thread = self.plan.threads(user, self.slot)[lane]
            self.busy[user] = self.busy.get(user, 0) + 1
            try:
                await self.step(self.action(), db, user, thread)
            finally:
                self.busy[user] -= 1
            await asyncio.sleep(self.rng.uniform(0, 0.15))

    async def step(self, action: str, db: str, user: str, thread: str) -> None:
        agent = self.agents[db]
        where = {"db": db, "thread": thread, "user": user}
        if action in ("chat", "stream", "hostile"):
            token = self.token(user)
            text = self.message(token)
            if action == "hostile":
                kind = self.rng.choice(("too_long", "nul", "surrogate", "markup"))
                text = self.hostile_text(kind, token)
                if kind != "markup":
                    await self.refuse(agent, kind, text, db, user, thread, token)
                    return
            call: Awaitable[Any] = (
                agent.chat(text, thread_id=thread, user_id=user)
                if action != "stream"
                else _drain(agent.chat_stream(text, thread_id=thread, user_id=user))
            )
            ended = await self.maybe_cancelled(call)
            if ended == "cancelled":
                self.ledger.write({"type": "turn_cancelled", "token": token, **where})
            elif isinstance(ended, ModelCallError):
                self.ledger.write({"type": "turn_failed", "token": token, **where})
            elif isinstance(ended, BaseException):
                self.outcome("turn", ended, token=token, **where)
            else:
                record = {"type": "turn", "kind": action, "token": token, **where}
                if action == "hostile":
                    record.update(kind="markup", verbatim=text)
                self.ledger.write(record)
        elif action == "context":
            token = self.token(user, "ctx")
            text = f"document {token} " + " ".join(WORDS)
            ended = await self.maybe_cancelled(
                agent.add_context(text, thread_id=thread, user_id=user)
            )
            if ended == "cancelled":
                self.ledger.write({"type": "context_cancelled", "token": token, **where})
            elif isinstance(ended, BaseException) and not isinstance(ended, ModelCallError):
                self.outcome("context", ended, token=token, **where)
            else:  # answered, or its run failed: the context was logged either way
                self.ledger.write({"type": "context", "token": token, **where})
        else:
            ended = await self.maybe_cancelled(agent.sleep(thread_id=thread, user_id=user))
            if ended == "cancelled":
                self.ledger.write({"type": "sleep_cancelled", **where})
            elif isinstance(ended, BaseException) and not isinstance(ended, ModelCallError):
                self.outcome("sleep", ended, **where)

    async def refuse(
        self,
        agent: AsyncSleepTimeAgent,
        kind: str,
        text: str,
        db: str,
        user: str,
        thread: str,
        token: str,
    ) -> None:
        before = await agent.blocks.aposition(thread)
        error: BaseException | None = None
        try:
            await agent.chat(text, thread_id=thread, user_id=user)
        except Exception as raised:
            error = raised
        after = await agent.blocks.aposition(thread)
        where = {"db": db, "thread": thread, "user": user, "token": token}
        self.refusal(kind, error, _head(before), _head(after), **where)

    async def maybe_cancelled(self, call: Awaitable[Any]) -> Any:
        """Await ``call``; sometimes cancel it after a random delay.

        Returns its result, the exception it raised, or ``"cancelled"`` when the
        cancellation took effect.
        """
        task = asyncio.ensure_future(call)
        if self.rng.random() < CANCEL_SHARE:
            await asyncio.wait({task}, timeout=self.rng.uniform(0, 0.4))
            if not task.done():
                task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled():
                return "cancelled"
            raise
        except Exception as error:
            return error


@asynccontextmanager
async def _agents(worker: AsyncWorker, chat_spec: str, sleep_spec: str):
    agents: dict[str, AsyncSleepTimeAgent] = {}
    try:
        for db, target in worker.plan.dbs.items():
            agent = AsyncSleepTimeAgent(
                chat_spec,
                sleep_model=sleep_spec,
                db=target,
                config=soak_config(),
                model_options=worker.plan.model_options(),
            )
            await agent.__aenter__()
            agent.subscribe(lambda event, db=db: worker.on_event(db, event))
            agents[db] = agent
        yield agents
    finally:
        for agent in agents.values():
            await agent.aclose()


async def _drain(stream: Any) -> str:
    return "".join([piece async for piece in stream])


def _head(position: Any) -> int | None:
    """The thread's log head: what a refused input must leave as it was (a sleep run
    may move the watermark meanwhile)."""
    return None if position is None else position.head


# --- planted bugs ----------------------------------------------------------------------


def plant(name: str | None, plan: Plan) -> None:
    """Re-introduce a known bug in this process, to show the soak catches it."""
    if name is None:
        return
    if name == "raw-open":
        # Closing any descriptor of a file drops every fcntl lock this process holds on
        # it, so SQLite's own locks vanish while its connections think they hold them.
        path = plan.dbs["sqlite"]

        def peek() -> None:
            while True:
                with open(path, "rb") as file:
                    file.read(100)
                time.sleep(0.05)

        threading.Thread(target=peek, daemon=True).start()
    elif name == "no-run-lock":
        import _soak_plants

        import sleepagent.agent.flows as flows

        flows.run_lock = _soak_plants.run_lock  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown bug to plant: {name}")


def main(argv: list[str]) -> None:
    plan, slot, gen = Plan.load(argv[1]), int(argv[2]), int(argv[3])
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent's hang dump
    plant(plan.plant, plan)
    if slot in plan.async_slots:
        asyncio.run(AsyncWorker(plan, slot, gen).run())
    else:
        SyncWorker(plan, slot, gen).run()


if __name__ == "__main__":
    os.environ.setdefault("OPENAI_API_KEY", "soak")
    main(sys.argv)
