"""Soak and fault test: worker processes on shared databases, faults everywhere, then a check.

For ``--minutes`` it runs ``--processes`` worker processes (one of them asyncio), each
with agents on ONE shared SQLite file and, when ``--postgres URL`` is given or
``SLEEPAGENT_TEST_POSTGRES_URL`` is set, on PostgreSQL, with the real idle timer
(APScheduler, 0.3 s of quiet). They chat as several users on several threads through
the real ``openai`` client, against a loopback server whose model draws faults from a
seeded generator (rate limits, server errors, timeouts, slow replies, bodies that are
not JSON or cut short, streams cut short, tool calls written as text). Meanwhile this
process kills workers with SIGKILL and starts them again, the async worker cancels
turns and sleep runs at random points, hostile input is sent (over-long messages, NUL,
lone surrogates, prompt-like markup, another user's thread), and with ``--forget``
users are forgotten. Every worker writes what it was told to an fsync'd ledger.

Then the workers stop, a fresh agent's recovery covers what is left (the final
drain), and every invariant that stored data can show is checked (see
``_soak_check.INVARIANTS``). One table is printed; ``--out`` writes it and the
details as JSON. The exit status is 1 when an invariant was violated, else 0.
``--plant raw-open`` (or ``no-run-lock``) re-introduces a known bug in the workers,
to show the check catches it.

Run: .venv/bin/python benchmarks/soak.py --minutes 1 [--processes 3] [--forget]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _soak_check import Finding, check_database, check_ledger, integrity, merge, read_stored
from _soak_ledger import Ledger, event_records, read_ledgers
from _soak_model import SoakModel
from _soak_plan import Plan, soak_config, user_of_thread

from sleepagent import SleepTimeAgent
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import LoopbackOpenAI

WORKER = Path(__file__).with_name("_soak_worker.py")
HANG_S = 60.0
"""A worker whose heartbeat is older than this is hung: its stacks are dumped, it is killed."""
STOP_S = 30.0
"""How long a worker may take to stop when told; longer counts as a hang."""
DRAIN_S = 30.0
"""How long the fresh agent's recovery runs get to cover the work left pending."""
ACK_S = 10.0
"""How long a forget waits for the workers to leave the user's threads."""
TICK_S = 0.2
START_S = 120.0
"""How long the workers may take to open their agents before the chaos starts anyway."""
CRASH_PAUSE_S = 2.0
"""A worker that died this soon after it started is started again only after this pause."""


@dataclass
class Options:
    """One soak run's settings (the command line's)."""

    minutes: float = 1.0
    processes: int = 3
    postgres: str | None = None
    seed: int = 7
    plant: str | None = None
    forget: bool = False
    kill_every: float = 8.0
    forget_every: float = 20.0
    users: int = 4
    run_dir: str | None = None


@dataclass
class Slot:
    """One worker position: its current process and generation."""

    index: int
    gen: int = 0
    process: subprocess.Popen[bytes] | None = None
    lives: int = 0
    started: float = 0.0
    crashed: bool = False


@dataclass
class Tally:
    """What the orchestrator itself saw."""

    kills: int = 0
    killed: list[tuple[int, int]] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    not_stopped: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    forget_notes: list[str] = field(default_factory=list)
    pending_at_drain: int = 0
    left_after_recovery: list[str] = field(default_factory=list)
    drain_failures: list[str] = field(default_factory=list)


class Soak:
    """Runs one soak: the model server, the workers and their faults, the drain, the check."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.tally = Tally()
        run_dir = options.run_dir or tempfile.mkdtemp(prefix="sleepagent-soak-")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        dbs = {"sqlite": str(Path(run_dir) / "soak.db")}
        if options.postgres:
            dbs["postgres"] = options.postgres
        self.dbs = dbs
        self.run_dir = run_dir
        self.model = SoakModel(options.seed, timeout_s=1.5)
        self.control: dict[str, SleepTimeAgent] = {}

    # --- the whole run -----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        for target in self.dbs.values():
            with open_persistence(target):
                pass  # create the tables once, before the workers race to
        with LoopbackOpenAI(otherwise=self.model, keep_requests=0) as server:
            self.plan = Plan(
                run_id=f"s{secrets.token_hex(3)}",
                run_dir=self.run_dir,
                base_url=server.base_url,
                dbs=self.dbs,
                users=self.options.users,
                seed=self.options.seed,
                plant=self.options.plant,
                async_slots=[0] if self.options.processes > 1 else [],
            )
            self.plan_path = self.plan.save()
            self.slots = [Slot(index) for index in range(self.options.processes)]
            try:
                for slot in self.slots:
                    self.start(slot)
                self.wait_until_up()
                chaos_started = time.monotonic()
                self.chaos(chaos_started + self.options.minutes * 60)
                chaos_s = time.monotonic() - chaos_started
                self.stop_all()
            finally:
                for slot in self.slots:
                    if slot.process is not None and slot.process.poll() is None:
                        slot.process.kill()
                        slot.process.wait()
                for agent in self.control.values():
                    agent.close()
            self.drain()
            requests = server.received
        findings = self.check()
        return self.report(findings, chaos_s, time.monotonic() - started, requests)

    # --- workers -----------------------------------------------------------------------

    def start(self, slot: Slot) -> None:
        log = open(self.plan.log(slot.index), "ab")  # noqa: SIM115 - the child owns it
        slot.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.plan_path), str(slot.index), str(slot.gen)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=WORKER.parent,
        )
        log.close()
        slot.lives += 1
        slot.started = time.monotonic()
        slot.crashed = False
        self.plan.heartbeat(slot.index).touch()

    def ready(self, slot: Slot) -> bool:
        return self.plan.ready(slot.index, slot.gen).exists()

    def wait_until_up(self) -> None:
        """Wait (up to ``START_S``) until every worker has opened its agents."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and not all(self.ready(s) for s in self.slots):
            time.sleep(TICK_S)
            self.watch()

    def chaos(self, deadline: float) -> None:
        """Until ``deadline``: watch the workers, kill one now and then, forget users."""
        next_kill = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.options.kill_every
        next_forget = time.monotonic() + self.options.forget_every
        forgetting: tuple[str, float] | None = None
        while time.monotonic() < deadline:
            time.sleep(TICK_S)
            self.watch()
            now = time.monotonic()
            if self.options.kill_every > 0 and now >= next_kill:
                self.kill_one()
                next_kill = now + self.rng.uniform(0.5, 1.5) * self.options.kill_every
            if self.options.forget and forgetting is None and now >= next_forget:
                forgetting = (self.retire_one(), now)
            if forgetting is not None and self.acked(forgetting[0], forgetting[1]):
                self.forget(forgetting[0])
                forgetting, next_forget = None, now + self.options.forget_every
        if forgetting is not None:
            self.forget(forgetting[0])

    def watch(self) -> None:
        """Restart a worker that died unasked (a crash) or stopped beating (a hang)."""
        for slot in self.slots:
            assert slot.process is not None
            code = slot.process.poll()
            if code is not None:
                if not slot.crashed:
                    self.tally.crashes.append(f"w{slot.index}g{slot.gen} exited {code}")
                    slot.crashed = True
                if time.monotonic() - slot.started < CRASH_PAUSE_S:
                    continue  # crashed at once: do not start it again in a tight loop
                self.restart(slot)
                continue
            age = time.time() - self.plan.heartbeat(slot.index).stat().st_mtime
            if self.ready(slot) and age > HANG_S:
                self.tally.hangs.append(f"w{slot.index}g{slot.gen}: no progress for {age:.0f}s")
                slot.process.send_signal(signal.SIGUSR1)  # stacks into the worker's log
                time.sleep(1)
                self.kill(slot)
                self.restart(slot)

    def kill(self, slot: Slot) -> None:
        assert slot.process is not None
        slot.process.kill()
        slot.process.wait()

    def restart(self, slot: Slot) -> None:
        slot.gen += 1
        self.start(slot)

    def kill_one(self) -> None:
        """SIGKILL a random worker that is up, and start it again at once."""
        up = [slot for slot in self.slots if self.ready(slot)]
        if not up:
            return
        slot = self.rng.choice(up)
        self.kill(slot)
        self.tally.kills += 1
        self.tally.killed.append((slot.index, slot.gen))
        self.restart(slot)

    # --- forgetting --------------------------------------------------------------------

    def retire_one(self) -> str:
        """Take a user out of the conversation; the workers acknowledge, then it is forgotten."""
        user = self.rng.choice(self.plan.active_users())
        self.plan.retired_dir.mkdir(exist_ok=True)
        (self.plan.retired_dir / user).touch()
        self.tally.retired.append(user)
        return user

    def acked(self, user: str, since: float) -> bool:
        every = all(self.plan.ack(user, slot.index).exists() for slot in self.slots)
        return every or time.monotonic() - since > ACK_S

    def forget(self, user: str) -> None:
        """Forget ``user`` on every database, when the agent can (``forget`` is new)."""
        chat_spec, sleep_spec = self.plan.specs()
        done = True
        for db, target in self.dbs.items():
            agent = self.control.get(db)
            if agent is None:
                agent = SleepTimeAgent(
                    chat_spec,
                    sleep_model=sleep_spec,
                    db=target,
                    config=soak_config(),
                    model_options=self.plan.model_options(),
                    scheduler=None,
                )
                self.control[db] = agent
            if not hasattr(agent, "forget"):
                self.tally.forget_notes.append("SleepTimeAgent has no forget(): users retired only")
                return
            try:
                agent.forget(user_id=user)
            except Exception as error:
                done = False
                self.tally.forget_notes.append(f"forget({user}) on {db}: {error!r}"[:300])
        if done:
            self.tally.forgotten.append(user)

    # --- stopping and the final drain ----------------------------------------------------

    def stop_all(self) -> None:
        self.plan.stop_file.touch()
        deadline = time.monotonic() + STOP_S
        for slot in self.slots:
            assert slot.process is not None
            try:
                slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.tally.not_stopped.append(f"w{slot.index}g{slot.gen}")
                slot.process.send_signal(signal.SIGUSR1)
                time.sleep(1)
                self.kill(slot)
                continue
            if slot.process.returncode != 0 and not slot.crashed:
                self.tally.crashes.append(
                    f"w{slot.index}g{slot.gen} exited {slot.process.returncode} when stopping"
                )

    def drain(self) -> None:
        """A fresh process's recovery covers what the workers left; by hand what it did not."""
        self.model.faults = False
        ledger = Ledger(self.plan.ledger("drain"), writer="drain")
        chat_spec, sleep_spec = self.plan.specs()
        agents: dict[str, SleepTimeAgent] = {}
        try:
            for db, target in self.dbs.items():
                try:
                    pending = self.pending(target)
                    agent = SleepTimeAgent(
                        chat_spec,
                        sleep_model=sleep_spec,
                        db=target,
                        config=soak_config(),
                        model_options=self.plan.model_options(),
                    )
                except Exception as error:
                    self.tally.drain_failures.append(f"{db}: drain: {error!r}"[:300])
                    continue
                self.tally.pending_at_drain += len(pending)
                agent.subscribe(lambda event, db=db: _write(ledger, event_records(db, event)))
                agents[db] = agent
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(
                self.pending_of(agent) for agent in agents.values()
            ):
                time.sleep(TICK_S)
            for db, agent in agents.items():
                try:
                    self.cover_by_hand(db, agent)
                except Exception as error:
                    self.tally.drain_failures.append(f"{db}: drain: {error!r}"[:300])
        finally:
            for agent in agents.values():
                agent.close()
            ledger.close()

    def cover_by_hand(self, db: str, agent: SleepTimeAgent) -> None:
        """Run by hand what recovery left pending (each counts against recovery)."""
        for thread_id in self.pending_of(agent):
            self.tally.left_after_recovery.append(f"{db} {thread_id}")
            for _ in range(20):
                if thread_id not in self.pending_of(agent):
                    break
                agent.sleep(thread_id=thread_id, user_id=user_of_thread(thread_id))

    def pending(self, target: str) -> list[str]:
        from sleepagent import BlockStore

        with open_persistence(target) as (_, store):
            positions = BlockStore(store, ()).pending_threads()
        return [p.thread_id for p in positions if p.thread_id.startswith(self.plan.run_id)]

    def pending_of(self, agent: SleepTimeAgent) -> list[str]:
        return [
            position.thread_id
            for position in agent.blocks.pending_threads()
            if position.thread_id.startswith(self.plan.run_id)
        ]

    # --- the check and the report ----------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        return list(read_ledgers(sorted(Path(self.run_dir).glob("ledger-*.jsonl"))))

    def check(self) -> dict[str, Finding]:
        records = self.records()
        groups = [check_ledger(records)]
        limit = soak_config().sleep_retries + 1
        unreadable = Finding("databases_readable")
        for db, target in self.dbs.items():
            try:
                stored = read_stored(target, self.plan.run_id)
            except Exception as error:
                unreadable.check(False, f"{db}: {type(error).__name__}: {error}"[:300])
                if db == "sqlite":
                    said = integrity(target)
                    groups.append({"sqlite_integrity": _finding("sqlite_integrity", said)})
                continue
            unreadable.check(True, "")
            groups.append(
                check_database(
                    db,
                    stored,
                    records,
                    run_id=self.plan.run_id,
                    forgotten=self.tally.forgotten,
                    attempt_limit=limit,
                )
            )
        for failure in self.tally.drain_failures:
            unreadable.check(False, failure)
        findings = merge(*groups, {"databases_readable": unreadable})
        findings["markup_escaped"].check(
            self.model.markup_leaks == 0, f"{self.model.markup_leaks} prompts held raw markup"
        )
        lives = sum(slot.lives for slot in self.slots)
        for _ in range(lives - len(self.tally.hangs)):
            findings["no_hang"].check(True, "")
        for hang in [*self.tally.hangs, *(f"{w} did not stop" for w in self.tally.not_stopped)]:
            findings["no_hang"].check(False, hang)
        for _ in range(lives):
            findings["no_crash"].check(True, "")
        for crash in self.tally.crashes:
            findings["no_crash"].check(False, crash)
        for _ in range(self.tally.pending_at_drain - len(self.tally.left_after_recovery)):
            findings["recovery_covers_pending"].check(True, "")
        for left in self.tally.left_after_recovery:
            findings["recovery_covers_pending"].check(False, f"{left} still pending after recovery")
        return findings

    def report(
        self, findings: Mapping[str, Finding], chaos_s: float, total_s: float, requests: int
    ) -> dict[str, Any]:
        records = self.records()
        by_type = Counter(record["type"] for record in records)
        turns = Counter(record.get("kind") for record in records if record["type"] == "turn")
        runs = Counter(
            record["outcome"]
            for record in records
            if record["type"] == "run" and record.get("writer") != "drain"
        )
        survived = sum(self.plan.ready(index, gen + 1).exists() for index, gen in self.tally.killed)
        faults = self.model.snapshot()
        refused = Counter(r["kind"] for r in records if r["type"] == "refused" and r["ok"])
        errors = Counter(r["error"] for r in records if r["type"].endswith("_error"))
        return {
            "duration_s": round(chaos_s, 1),
            "total_s": round(total_s, 1),
            "processes": self.options.processes,
            "async_workers": len(self.plan.async_slots),
            "databases": sorted(self.dbs),
            "seed": self.options.seed,
            "plant": self.options.plant,
            "run_dir": self.run_dir,
            "run_id": self.plan.run_id,
            "model_requests": requests,
            "turns_served": dict(turns),
            "turns_failed": by_type["turn_failed"],
            "contexts_added": by_type["context"],
            "sleep_runs": dict(runs),
            "sleep_runs_failed": by_type["run_failed"],
            "pages_given_up": by_type["page_failed"],
            "faults_injected": {k: v for k, v in sorted(faults.items()) if not k.endswith(":ok")},
            "replies_without_fault": sum(v for k, v in faults.items() if k.endswith(":ok")),
            "kills": self.tally.kills,
            "kills_survived": survived,
            "cancellations": {
                "turns": by_type["turn_cancelled"],
                "contexts": by_type["context_cancelled"],
                "sleep_runs": by_type["sleep_cancelled"],
            },
            "forgets": len(self.tally.forgotten),
            "users_retired": len(self.tally.retired),
            "forget_notes": sorted(set(self.tally.forget_notes)),
            "inputs_refused": dict(refused),
            "markup_turns_accepted": turns.get("markup", 0),
            "typed_errors_seen": dict(errors),
            "pending_at_drain": self.tally.pending_at_drain,
            "invariants": [finding.to_dict() for finding in findings.values()],
            "lost_edits": findings["edits_in_history"].violations,
            "violated": [name for name, finding in findings.items() if not finding.held],
        }


def _finding(name: str, said: str) -> Finding:
    finding = Finding(name)
    finding.check(said == "ok", said)
    return finding


def _write(ledger: Ledger, records: Iterable[dict[str, Any]]) -> None:
    for record in records:
        ledger.write(record)


def render(report: Mapping[str, Any]) -> str:
    """The report as one table."""

    def counts(values: Mapping[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"

    faults = report["faults_injected"]
    chat = {k.split(":")[1]: v for k, v in faults.items() if k.startswith("chat:")}
    sleep = {k.split(":")[1]: v for k, v in faults.items() if k.startswith("sleep:")}
    cancel = report["cancellations"]
    rows = [
        ("duration", f"{report['duration_s']} s of chaos, {report['total_s']} s in all"),
        (
            "processes",
            f"{report['processes']} ({report['async_workers']} async), on "
            f"{' + '.join(report['databases'])}",
        ),
        ("seed / plant", f"{report['seed']} / {report['plant'] or 'none'}"),
        ("model requests", str(report["model_requests"])),
        (
            "turns served",
            f"{sum(report['turns_served'].values())} ({counts(report['turns_served'])}); "
            f"{report['turns_failed']} failed with ModelCallError",
        ),
        ("contexts added", str(report["contexts_added"])),
        ("sleep runs", counts(report["sleep_runs"])),
        (
            "sleep runs failed",
            f"{report['sleep_runs_failed']} (retried); {report['pages_given_up']} pages given up",
        ),
        ("faults (chat)", counts(chat)),
        ("faults (sleep)", counts(sleep)),
        ("kills survived", f"{report['kills_survived']} of {report['kills']}"),
        (
            "cancellations",
            f"turns {cancel['turns']}, contexts {cancel['contexts']}, "
            f"sleep runs {cancel['sleep_runs']}",
        ),
        (
            "forgets",
            f"{report['forgets']} of {report['users_retired']} retired users"
            + (f" ({'; '.join(report['forget_notes'])})" if report["forget_notes"] else ""),
        ),
        (
            "inputs refused",
            f"{sum(report['inputs_refused'].values())} ({counts(report['inputs_refused'])}); "
            f"markup accepted verbatim {report['markup_turns_accepted']}",
        ),
        ("typed errors seen", counts(report["typed_errors_seen"])),
        ("pending at drain", str(report["pending_at_drain"])),
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{name:<{width}}{value}" for name, value in rows]
    lines.append("invariants")
    for finding in report["invariants"]:
        state = (
            "held"
            if finding["held"]
            else f"VIOLATED {finding['violations']} of {finding['checked']}"
        )
        lines.append(f"  {finding['name']:<26}{state:<22}({finding['checked']} checked)")
        lines.extend(f"      e.g. {example}" for example in finding["examples"][:3])
    lines.append(f"{'lost edits':<{width}}{report['lost_edits']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="how long the chaos lasts")
    parser.add_argument("--processes", type=int, default=3, help="worker processes")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SLEEPAGENT_TEST_POSTGRES_URL"),
        help="a PostgreSQL URL (default: $SLEEPAGENT_TEST_POSTGRES_URL); SQLite alone without",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plant", choices=["raw-open", "no-run-lock"], help="plant a known bug")
    parser.add_argument("--forget", action="store_true", help="forget random users")
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds; 0: no kills")
    parser.add_argument("--users", type=int, default=4, help="users chatting at once")
    parser.add_argument("--dir", help="run folder (default: a new temporary one)")
    parser.add_argument("--out", help="write the report as JSON here")
    args = parser.parse_args()
    options = Options(
        minutes=args.minutes,
        processes=args.processes,
        postgres=args.postgres,
        seed=args.seed,
        plant=args.plant,
        forget=args.forget,
        kill_every=args.kill_every,
        users=args.users,
        run_dir=args.dir,
    )
    report = Soak(options).run()
    print(render(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    if report["violated"] or args.dir:
        print(f"run folder (ledgers, worker logs, database): {report['run_dir']}")
    else:
        shutil.rmtree(report["run_dir"], ignore_errors=True)  # a temporary folder, all held
    sys.exit(1 if report["violated"] else 0)


if __name__ == "__main__":
    main()
