"""Real OS processes on one database: no lost edits, one sleep run per scope (DESIGN invariant 9).

Each test runs on one SQLite file and, when SLEEPAGENT_TEST_POSTGRES_URL is
set, on PostgreSQL. Children start together (they wait for a line on stdin)
so their commits interleave.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope, SleepConfig, SleepTimeAgent
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.scheduling.events import EventKind
from sleepagent.store.locking import run_lock
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import (
    EventRecorder,
    ManualScheduler,
    ScriptedChatModel,
    finish,
    insert,
    transcript_in_prompt,
)
from tests.conftest import POSTGRES_URL, empty_postgres, machinery

PROCESSES, EACH = 4, 25
CHILD_TIMEOUT_S = 120
SHARED = Scope("user", "shared")
AT = "2026-01-01T00:00:00+00:00"


@pytest.fixture(params=["sqlite", *(["postgres"] if POSTGRES_URL else [])])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        assert POSTGRES_URL is not None
        empty_postgres(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path / "shared.db"
    with open_persistence(path):
        pass  # create the tables once, before the children race to
    return str(path)


def start_together(code: str, *args: str, count: int = PROCESSES) -> list[str]:
    """Run ``count`` children of ``code``; release them at once; their stdout, in order."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args, f"p{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=CHILD_TIMEOUT_S) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    return [out for out, _ in outputs]


INSERTER = """
import sys
from sleepagent import DEFAULT_BLOCKS, BlockStore, Scope
from sleepagent.memory.blocks import InsertEdit
from sleepagent.store.locking import run_lock
from sleepagent.memory.blocks import InsertEdit
from sleepagent.store.persistence import open_persistence
from sleepagent.scheduling.events import EventKind
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.staging import StagedMemory

db, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
scope = Scope("user", "shared")
with open_persistence(db) as (_, store):
    blocks = BlockStore(store, DEFAULT_BLOCKS)
    sys.stdin.readline()
    conflicts = 0
    for i in range(count):
        # A sleep run's shape: read, think (here: nothing), commit staged edits.
        staged, _ = StagedMemory.of(blocks.load(scope)).stage(InsertEdit("human", f"{name}-{i}"))
        outcome = blocks.commit(scope, staged, run_id=f"{name}-{i}", phase="sleep",
                                at="2026-01-01T00:00:00+00:00")
        conflicts += len(outcome.conflicts)
print(conflicts)
"""


def test_processes_inserting_into_one_block_lose_no_insert(database):
    outputs = start_together(INSERTER, database, str(EACH))

    assert [out.strip() for out in outputs] == ["0"] * PROCESSES, "inserts re-apply; none conflict"
    with open_persistence(database) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        human = {block.label: block for block in blocks.load(SHARED)}["human"]
        history = blocks.history(SHARED, "human")
    expected = {f"p{n}-{i}" for n in range(PROCESSES) for i in range(EACH)}
    assert set(human.value.splitlines()) == expected
    assert len(human.value.splitlines()) == PROCESSES * EACH
    assert human.version == PROCESSES * EACH
    assert [entry.version for entry in history] == list(range(1, PROCESSES * EACH + 1))


WRITER = """
import sys
from sleepagent import SleepTimeAgent
from sleepagent.testing import ScriptedChatModel

db, count, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with SleepTimeAgent(ScriptedChatModel(), db=db, scheduler=None) as agent:
    sys.stdin.readline()
    for i in range(count):
        diff = agent.write_memory("human", f"{name}-{i}", thread_id=f"t-{name}", user_id="shared")
        print(f"{name}-{i}" if diff is not None else "-", flush=True)
"""


def read_writes(database: str) -> tuple[list[str], list[int], str, int]:
    with open_persistence(database) as (_, store):
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        history = blocks.history(SHARED, "human")
        human = {block.label: block for block in blocks.load(SHARED)}["human"]
    return [e.value for e in history], [e.version for e in history], human.value, human.version


def test_processes_writing_memory_keep_every_reported_write_in_history(database):
    outputs = start_together(WRITER, database, str(EACH))

    reported = {line for out in outputs for line in out.split() if line != "-"}
    values, versions, final, version = read_writes(database)
    assert versions == list(range(1, len(versions) + 1)), "history versions are contiguous"
    assert version == len(versions), "the block's version is its newest history entry's"
    assert final == values[-1]
    assert reported <= set(values), "every write reported as applied has its own version"
    assert len(values) == len(set(values))


def test_processes_writing_memory_land_every_write(database):
    start_together(WRITER, database, str(EACH))

    values, versions, _, _ = read_writes(database)
    assert set(values) == {f"p{n}-{i}" for n in range(PROCESSES) for i in range(EACH)}
    assert versions == list(range(1, PROCESSES * EACH + 1))


# --- one sleep run per scope, across agents and processes -------------------------------


def test_a_scheduled_run_is_set_again_while_another_agent_runs_its_scope(database):
    """A scheduled run gives up at once on a busy scope (it must not hold a worker)."""
    entered, release = threading.Event(), threading.Event()

    def slow(prompt):
        entered.set()
        assert release.wait(30), "the test never released the first run"
        return insert("human", "from A")

    clock = ManualScheduler()
    second_model = ScriptedChatModel([insert("human", "from B")])
    config = machinery(SleepConfig(idle_seconds=30, retry_backoff_seconds=5))
    with (
        SleepTimeAgent(
            ScriptedChatModel(["a"]),
            sleep_model=ScriptedChatModel([slow]),
            db=database,
            scheduler=None,
            config=config,
        ) as first,
        SleepTimeAgent(
            ScriptedChatModel(["b"]),
            sleep_model=second_model,
            db=database,
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
        assert second_model.calls == [], "the scope is busy in the other agent"
        assert [job.due_at - clock.now() for job in clock.pending] == [5.0], "set again, later"

        release.set()
        running.join(30)
        clock.advance(5)
        assert len(second_model.calls) == 1
        assert second.memory(thread_id="t2", user_id="ada")["human"].value == "from A\nfrom B"


ROUNDS = 3


def turns_seen(calls: list[list[tuple[str, str]]]) -> list[str]:
    return sorted(text for page in calls for role, text in page if role == "user")


def second_run_kinds(events: EventRecorder) -> list[EventKind]:
    return [event.kind for event in events.of(EventKind.WAITING, EventKind.STARTED)]


def test_two_agents_on_one_database_cover_every_turn_exactly_once(database):
    """Both serve one conversation; after each turn both sleep its scope at once."""
    seen: list[list[tuple[str, str]]] = []
    inside, release = threading.Event(), threading.Event()

    def first_run(messages):
        seen.append(transcript_in_prompt(messages))
        inside.set()
        assert release.wait(30), "the test never released the first run"
        return finish()

    def other_run(messages):
        seen.append(transcript_in_prompt(messages))
        return finish()

    agents = [
        SleepTimeAgent(
            ScriptedChatModel(["ok"] * ROUNDS),
            sleep_model=ScriptedChatModel([first_run] * ROUNDS + [other_run] * ROUNDS),
            db=database,
            scheduler=None,
            config=machinery(),
        )
        for _ in range(2)
    ]
    second_agent = EventRecorder()
    agents[1].subscribe(second_agent)
    try:
        with open_persistence(database) as (_, onlooker):
            for turn in range(ROUNDS):
                agents[turn % 2].chat(f"turn {turn}", thread_id="t1", user_id="shared")
                inside.clear()
                release.clear()
                second_agent.clear()
                first = threading.Thread(
                    target=agents[0].sleep, kwargs={"thread_id": "t1", "user_id": "shared"}
                )
                second = threading.Thread(
                    target=agents[1].sleep, kwargs={"thread_id": "t1", "user_id": "shared"}
                )
                first.start()
                assert inside.wait(30)
                second.start()
                try:
                    # The second agent finds the scope's run lock taken in the database and
                    # waits; with a lock per store it starts.
                    assert second_agent.wait(EventKind.WAITING, EventKind.STARTED, timeout=30)
                    assert second_run_kinds(second_agent) == [EventKind.WAITING]
                    with run_lock(onlooker, SHARED, wait=False) as free:
                        assert not free, "the first agent's run holds the scope in the database"
                finally:
                    release.set()
                first.join(30)
                second.join(30)
                assert not first.is_alive() and not second.is_alive()
                assert second_run_kinds(second_agent) == [EventKind.WAITING, EventKind.STARTED]
    finally:
        for agent in agents:
            agent.close()
    assert turns_seen(seen) == [f"turn {turn}" for turn in range(ROUNDS)]


SLEEPER = """
import sys
from sleepagent import SleepConfig, SleepTimeAgent, UserFacts
from sleepagent.scheduling import EventKind
from sleepagent.testing import (
    ManualScheduler,
    ScriptedChatModel,
    ai_tool_calls,
    tool_call,
    transcript_in_prompt,
)

db, rounds, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def run(messages):
    turns = [text for role, text in transcript_in_prompt(messages) if role == "user"]
    print("model", "|".join(turns), flush=True)
    assert sys.stdin.readline().strip() == "release"
    return ai_tool_calls(tool_call("memory_finish"))

def report(event):
    if event.kind in (EventKind.WAITING, EventKind.STARTED):
        print("run", event.kind.value, flush=True)

sleep = ScriptedChatModel([run] * rounds)
# The edit round: the test reads each run's turns from its prompt.
with SleepTimeAgent(ScriptedChatModel(["ok"] * rounds), sleep_model=sleep, db=db,
                    scheduler=None, config=SleepConfig(user_facts=UserFacts.EDIT)) as agent:
    agent.subscribe(report)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, text = line.strip().partition(" ")
        if command == "chat":
            agent.chat(text, thread_id="t1", user_id="shared")
        elif command == "sleep":
            agent.sleep(thread_id="t1", user_id="shared")
        elif command == "quit":
            break
        print("done", command, flush=True)
"""


class Child:
    """A child process driven line by line; its output read on a thread of its own."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SLEEPER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, prefix: str, timeout: float = 60) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {prefix!r} line; stderr: {self.stderr()}") from None
        assert line.startswith(prefix), f"{line!r}; stderr: {self.stderr()}"
        return line

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.send("quit")
        self.process.communicate(timeout=CHILD_TIMEOUT_S)


def test_two_processes_on_one_database_cover_every_turn_exactly_once(database):
    children = [Child(database, str(ROUNDS), f"p{n}") for n in range(2)]
    seen: list[str] = []
    try:
        for child in children:
            child.expect("ready")
        for turn in range(ROUNDS):
            talker = children[turn % 2]
            talker.send(f"chat turn {turn}")
            talker.expect("done chat")
            first, second = children[turn % 2], children[1 - turn % 2]
            first.send("sleep")
            first.expect("run started")
            seen.append(first.expect("model"))
            second.send("sleep")
            try:
                # The other process finds the scope's run lock taken in the database and
                # waits; with a lock per process (or per store) it starts.
                assert second.expect("run") == "run waiting"
                with (
                    open_persistence(database) as (_, onlooker),
                    run_lock(onlooker, SHARED, wait=False) as free,
                ):
                    assert not free, "the first process's run holds the scope in the database"
            finally:
                first.send("release")
            first.expect("done sleep")
            second.expect("run started")
            second.expect("done sleep")  # found nothing new: no model call
    finally:
        for child in children:
            child.close()
    turns = sorted(turn for line in seen for turn in line.removeprefix("model ").split("|"))
    assert turns == [f"turn {turn}" for turn in range(ROUNDS)]


DIES_HOLDING = """
import os, signal, sys
from sleepagent import Scope
from sleepagent.store.locking import backend_for, run_lock
from sleepagent.store.persistence import open_persistence

db, name = sys.argv[1], sys.argv[2]
scope = Scope("user", "shared")
with open_persistence(db) as (_, store):
    with run_lock(store, scope, wait=True), backend_for(store).transaction(scope):
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_holding_the_run_and_commit_locks_releases_both(database):
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DIES_HOLDING), database, "p0"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert child.returncode == -9, child.stderr

    with open_persistence(database) as (_, store):
        with run_lock(store, SHARED, wait=False) as held:
            assert held, "the dead process's run lock went with it"
        blocks = BlockStore(store, DEFAULT_BLOCKS)
        staged = StagedMemory.of(blocks.load(SHARED))
        staged, _ = staged.stage(InsertEdit("human", "after"))
        assert blocks.commit(SHARED, staged, run_id="r", phase="user", at=AT).committed


SECOND_AGENT_SLEEPER = """
import sys
from sleepagent import SleepTimeAgent
from sleepagent.scheduling import EventKind
from sleepagent.testing import ScriptedChatModel, ai_tool_calls, tool_call

db, count, root, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, root)
from tests.conftest import machinery

def insert(i):
    def run(messages):
        # A second agent on the same file, opened and closed while this process's
        # sleep run is inside its transaction and other processes commit.
        with SleepTimeAgent(ScriptedChatModel(), db=db, scheduler=None):
            pass
        return ai_tool_calls(tool_call("memory_insert", label="human", text=f"{name}-{i}"),
                             tool_call("memory_finish"))
    return run

sleep = ScriptedChatModel([insert(i) for i in range(count)])
with SleepTimeAgent(ScriptedChatModel(["ok"] * count), sleep_model=sleep, db=db,
                    scheduler=None, config=machinery()) as agent:
    sys.stdin.readline()
    for i in range(count):
        agent.chat(f"turn {i}", thread_id=f"t-{name}", user_id="shared")
        result = agent.sleep(thread_id=f"t-{name}", user_id="shared")
        for diff in result.diffs:
            print(diff.version_after, f"{name}-{i}", flush=True)
"""


def test_processes_opening_a_second_agent_mid_run_keep_every_reported_edit(database):
    """A second agent opened while a run holds the file must not drop that run's locks."""
    root = str(Path(__file__).resolve().parents[1])  # for the children's machinery config
    outputs = start_together(SECOND_AGENT_SLEEPER, database, str(EACH // 3), root)

    reported = [line.split(" ", 1) for out in outputs for line in out.splitlines()]
    with open_persistence(database) as (_, store):
        history = BlockStore(store, DEFAULT_BLOCKS).history(SHARED, "human")
    stored = {entry.version: entry.value for entry in history}
    assert len(reported) == PROCESSES * (EACH // 3), "every run reported its insert"
    for version, line in reported:
        assert line in stored.get(int(version), "").splitlines(), (
            f"{line!r}, reported at version {version}, is not in that version's history"
        )
    assert list(stored) == list(range(1, len(stored) + 1))
