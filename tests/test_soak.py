"""The soak harness (benchmarks/soak.py): its model, its ledger, its end check, and a short run.

The end check is run on hand-made databases: clean data passes, and each kind of
damage is flagged by its own invariant and by no other, so the check can fail.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sleepagent import BlockStore, RunRecord, Scope, SleepOutcome
from sleepagent.memory.blocks import InsertEdit
from sleepagent.memory.staging import StagedMemory
from sleepagent.memory.transcript import LogEntry
from sleepagent.store.persistence import open_persistence
from sleepagent.testing import Completion, Fault, RecordedRequest
from tests.conftest import POSTGRES_URL

# The soak's modules import each other by name, as the benchmark scripts do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
soak = importlib.import_module("soak")
check = importlib.import_module("_soak_check")
ledger = importlib.import_module("_soak_ledger")
model = importlib.import_module("_soak_model")
plan = importlib.import_module("_soak_plan")

RUN = "sabc"
ADA, BOB = f"{RUN}u0", f"{RUN}u1"
AT = "2026-01-01T00:00:{:02d}+00:00"
LIMIT = 3


# --- a hand-made database -------------------------------------------------------------


class HandMade:
    """Writes a soak-shaped database by hand: turns, committed pages, run records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self.tick = 0

    def at(self) -> str:
        self.tick += 1
        return AT.format(self.tick)

    def turn(self, user: str, token: str, *, thread: str | None = None) -> None:
        thread = thread or f"{user}-w0-t0"
        with open_persistence(self.path) as (_, store):
            BlockStore(store, (plan.JOURNAL_BLOCK,)).append(
                Scope("user", user),
                thread,
                [("user", f"note {token}", None), ("assistant", "ok", None)],
                at=self.at(),
            )
        self.records.append(
            {"type": "turn", "db": "sqlite", "thread": thread, "user": user, "token": token}
        )

    def page(self, user: str, line: str | None, *, run_id: str, report: bool = True) -> None:
        """Commit one page of ``user``'s thread up to its head, adding ``line`` to the journal."""
        scope, thread = Scope("user", user), f"{user}-w0-t0"
        with open_persistence(self.path) as (_, store):
            blocks = BlockStore(store, (plan.JOURNAL_BLOCK,))
            staged = StagedMemory.of(blocks.load(scope))
            if line is not None:
                staged, _ = staged.stage(InsertEdit(model.JOURNAL, line))
            head = blocks.position(thread).head
            started = self.at()
            outcome = blocks.commit(
                scope,
                staged,
                run_id=run_id,
                phase="sleep",
                at=self.at(),
                thread_id=thread,
                watermark=LogEntry(seq=head, role="assistant", text="ok"),
            )
            self.run_record(scope, thread, run_id, started, self.at(), store=store)
        if report:
            self.records.extend(ledger.edit_records("sqlite", scope.key, run_id, outcome.diffs))

    def run_record(
        self, scope: Scope, thread: str, run_id: str, started: str, finished: str, *, store=None
    ) -> None:
        record = RunRecord(
            run_id=run_id,
            scope=scope.key,
            thread_id=thread,
            reason="idle",
            outcome=SleepOutcome.EDITED,
            started_at=started,
            finished_at=finished,
        )
        if store is not None:
            BlockStore(store, ()).put_run(scope, record)
            return
        with open_persistence(self.path) as (_, opened):
            BlockStore(opened, ()).put_run(scope, record)

    def findings(self, *, forgotten: tuple[str, ...] = ()) -> dict[str, Any]:
        stored = check.read_stored(str(self.path), RUN)
        found = check.check_database(
            "sqlite", stored, self.records, run_id=RUN, forgotten=forgotten, attempt_limit=LIMIT
        )
        return check.merge(found, check.check_ledger(self.records))


def violated(findings: dict[str, Any]) -> dict[str, int]:
    return {name: f.violations for name, f in findings.items() if not f.held}


@pytest.fixture
def clean(tmp_path: Path) -> HandMade:
    """Two users; each turn covered by exactly one committed page; runs one after another."""
    made = HandMade(tmp_path / "hand.db")
    made.turn(ADA, f"tok-{ADA}-w0g0-1")
    made.page(ADA, f"j1 tok-{ADA}-w0g0-1", run_id="r1")
    made.turn(ADA, f"tok-{ADA}-w0g0-2")
    made.page(ADA, f"j2 tok-{ADA}-w0g0-2", run_id="r2")
    made.turn(BOB, f"tok-{BOB}-w0g0-3")
    made.page(BOB, f"j3 tok-{BOB}-w0g0-3", run_id="r3")
    return made


def test_the_end_check_passes_clean_data_and_checks_every_part_of_it(clean):
    findings = clean.findings()
    assert violated(findings) == {}
    checked = {name: findings[name].checked for name in findings}
    assert checked["edits_in_history"] == 3
    assert checked["turns_logged_once"] == 6  # 3 answered turns, 3 logged messages
    assert checked["covered_exactly_once"] == 3
    assert checked["runs_never_overlap"] == 3
    assert checked["sqlite_integrity"] == 1


def test_an_edit_the_ledger_holds_but_history_lacks_is_a_lost_edit(clean):
    scope = f"user:{ADA}"
    clean.records.append(
        {
            "type": "edit",
            "db": "sqlite",
            "scope": scope,
            "label": "journal",
            "version": 2,
            "lines": ["j9 tok-sabcu0-w0g0-9"],
            "run_id": "r9",
        }
    )
    clean.records.append(
        {
            "type": "edit",
            "db": "sqlite",
            "scope": scope,
            "label": "journal",
            "version": 7,
            "lines": [],
            "run_id": "r7",
        }
    )
    assert violated(clean.findings()) == {"edits_in_history": 2}


def test_two_runs_of_one_scope_that_overlap_in_time_are_flagged(clean):
    clean.run_record(Scope("user", ADA), f"{ADA}-w0-t0", "r-late", AT.format(2), AT.format(40))
    assert violated(clean.findings()) == {"runs_never_overlap": 2}


def test_a_message_in_two_committed_pages_is_flagged(clean):
    clean.page(ADA, f"j4 tok-{ADA}-w0g0-1", run_id="r4")
    assert violated(clean.findings()) == {"covered_exactly_once": 1}


def test_a_message_the_watermark_passed_without_any_page_covering_it_is_flagged(clean):
    clean.turn(ADA, f"tok-{ADA}-w0g0-5")
    clean.page(ADA, None, run_id="r5")  # the watermark moves, nothing records the message
    assert violated(clean.findings()) == {"covered_exactly_once": 1}


def test_a_message_still_pending_after_the_drain_is_flagged(clean):
    clean.turn(ADA, f"tok-{ADA}-w0g0-6")
    assert violated(clean.findings()) == {"nothing_pending": 1, "covered_exactly_once": 1}


def test_an_answered_turn_missing_from_the_log_is_flagged(clean):
    clean.records.append(
        {
            "type": "turn",
            "db": "sqlite",
            "thread": f"{ADA}-w0-t0",
            "user": ADA,
            "token": f"tok-{ADA}-w0g0-99",
        }
    )
    assert violated(clean.findings()) == {"turns_logged_once": 1}


def test_a_message_logged_twice_is_flagged_even_without_a_ledger_record(clean):
    clean.turn(ADA, f"tok-{ADA}-w0g0-1")
    clean.records.pop()  # the writer was killed before its record
    clean.page(ADA, f"j8 tok-{ADA}-w0g0-8", run_id="r8")
    assert violated(clean.findings()) == {"turns_logged_once": 2}  # the token, and its record


def test_a_failed_turn_found_in_the_log_is_flagged(clean):
    clean.records.append(
        {
            "type": "turn_failed",
            "db": "sqlite",
            "thread": f"{ADA}-w0-t0",
            "user": ADA,
            "token": f"tok-{ADA}-w0g0-1",
        }
    )
    assert violated(clean.findings()) == {"failed_inputs_not_logged": 1}


def test_another_users_message_in_a_scopes_memory_is_flagged(clean):
    clean.turn(ADA, f"tok-{ADA}-w0g0-7")
    clean.page(ADA, f"j7 tok-{ADA}-w0g0-7 tok-{BOB}-w0g0-3", run_id="r7")
    # Bob's token now also sits in a second committed page, of Ada's scope.
    assert violated(clean.findings()) == {"scopes_isolated": 1}


def test_a_forgotten_user_with_anything_left_is_flagged(clean):
    findings = clean.findings(forgotten=(BOB,))
    assert violated(findings) == {"forgotten_scopes_empty": 1}
    assert findings["forgotten_scopes_empty"].examples[0].startswith(f"sqlite user:{BOB}")


def test_untyped_errors_and_hostile_input_that_got_in_are_flagged(clean):
    clean.records.append({"type": "untyped", "where": "turn", "error": "KeyError: 'x'"})
    clean.records.append({"type": "refused", "kind": "nul", "ok": False, "problem": "accepted"})
    clean.records.append({"type": "refused", "kind": "too_long", "ok": True, "problem": None})
    assert violated(clean.findings()) == {"typed_errors_only": 1, "hostile_inputs_refused": 1}


def test_records_of_another_runs_scopes_are_not_this_runs_to_check(clean):
    clean.records.append(
        {
            "type": "edit",
            "db": "sqlite",
            "scope": "user:sother-u0",
            "label": "journal",
            "version": 5,
            "lines": ["j5"],
            "run_id": "r5",
        }
    )
    assert violated(clean.findings()) == {}


# --- the model ------------------------------------------------------------------------


def sleep_request(memory_lines: list[str], transcript_tokens: list[str], **extra) -> Any:
    memory = "\n".join(memory_lines)
    messages = [
        f'<message n="{i}" role="user">note {t}</message>'
        for i, t in enumerate(transcript_tokens, 1)
    ]
    prompt = (
        f"Current memory blocks:\n<value>\n{memory}\n</value>\n\n"
        f'<transcript messages="1-2" of="2">\n' + "\n".join(messages) + "\n</transcript>"
    )
    body = {
        "model": model.SLEEP_MODEL,
        "messages": [
            {"role": "system", "content": extra.get("system", "sleep system prompt")},
            {"role": "user", "content": prompt},
            *extra.get("more", []),
        ],
    }
    return RecordedRequest("POST", "/v1/chat/completions", {}, body)


def calls(reply: Completion) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, json.loads(call.arguments)) for call in reply.tool_calls]


def test_the_journal_line_names_the_transcripts_tokens_and_not_those_in_memory():
    request = sleep_request([f"j1 tok-{ADA}-w0g0-1"], [f"tok-{ADA}-w0g0-2", f"ctx-{ADA}-w1g2-3"])
    reply = model.journal_reply(request.messages, 7)
    assert calls(reply) == [
        (
            "memory_insert",
            {"label": "journal", "text": f"j7 tok-{ADA}-w0g0-2 ctx-{ADA}-w1g2-3", "line": -1},
        ),
        ("memory_finish", {}),
    ]


def test_a_full_journal_keeps_its_newest_lines_in_one_rewrite():
    old = [f"j{n}" for n in range(1, model.KEEP_LINES + 1)]
    reply = model.journal_reply(sleep_request(old, []).messages, 99)
    (name, args), finished = calls(reply)
    assert name == "memory_rethink" and finished[0] == "memory_finish"
    assert args["new_value"].splitlines() == [*old[1:], "j99"]


def test_a_page_whose_edit_was_accepted_only_finishes():
    done = [{"role": "tool", "content": "OK: block 'journal' now holds 10/8000 characters."}]
    reply = model.journal_reply(sleep_request([], [f"tok-{ADA}-w0g0-1"], more=done).messages, 3)
    assert calls(reply) == [("memory_finish", {})]


def test_in_the_text_format_the_whole_journal_comes_back_between_its_tags():
    from sleepagent import prompts

    request = sleep_request(["j1"], [f"tok-{ADA}-w0g0-2"], system=prompts.SLEEP_TEXT_SYSTEM_PROMPT)
    reply = model.journal_reply(request.messages, 2)
    assert reply.content == f"<journal>\nj1\nj2 tok-{ADA}-w0g0-2\n</journal>"


@pytest.mark.parametrize("kind", sorted({*model.CHAT_FAULTS, *model.SLEEP_FAULTS}))
def test_every_fault_kind_is_a_reply_the_server_can_send(kind):
    good = model.journal_reply(sleep_request([], [f"tok-{ADA}-w0g0-1"]).messages, 1)
    reply = model.fault_reply(kind, good, sleep_request([], []), timeout_s=1.0, delay=0.1)
    assert isinstance(reply, Completion | Fault)
    if kind == "timeout":
        assert reply.delay > 1.0, "a timeout fault answers after the client gave up"


def test_the_same_seed_draws_the_same_faults_and_without_faults_every_reply_is_good():
    def draws(seed: int, faults: bool) -> list[str]:
        soak_model = model.SoakModel(seed, timeout_s=1.0, faults=faults)
        for _ in range(200):
            soak_model(sleep_request([], [f"tok-{ADA}-w0g0-1"]))
        return sorted(soak_model.snapshot().items())

    assert draws(3, True) == draws(3, True) != draws(4, True)
    assert draws(3, False) == [("sleep:ok", 200)]


def test_markup_reaching_a_sleep_prompt_unescaped_is_counted_and_a_users_own_is_not():
    soak_model = model.SoakModel(1, timeout_s=1.0, faults=False)
    soak_model(sleep_request([], [f"tok-{ADA}-w0g0-1 {model.MARKUP}"]))
    chat = {"model": model.CHAT_MODEL, "messages": [{"role": "user", "content": model.MARKUP}]}
    soak_model(RecordedRequest("POST", "/v1/chat/completions", {}, chat))
    assert soak_model.markup_leaks == 1


# --- the ledger -----------------------------------------------------------------------


def test_a_line_torn_by_a_kill_is_skipped_and_the_next_writer_starts_a_new_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    first = ledger.Ledger(path, writer="w0g0")
    first.write({"type": "turn", "token": "a"})
    first.close()
    with open(path, "a") as file:
        file.write('{"type": "turn", "tok')  # killed halfway through a write
    second = ledger.Ledger(path, writer="w0g1")
    second.write({"type": "turn", "token": "b"})
    second.close()
    read = list(ledger.read_ledgers([path]))
    assert [(r["token"], r["writer"]) for r in read] == [("a", "w0g0"), ("b", "w0g1")]


def test_an_edit_record_holds_the_lines_a_run_added_at_the_version_it_made():
    from sleepagent import BlockDiff

    diff = BlockDiff("journal", "j1\nj2", "j2\nj3\nj4", 4, 6)
    assert ledger.edit_records("sqlite", "user:x", "r1", [diff]) == [
        {
            "type": "edit",
            "db": "sqlite",
            "scope": "user:x",
            "label": "journal",
            "version": 6,
            "lines": ["j3", "j4"],
            "run_id": "r1",
        }
    ]


# --- a short soak ---------------------------------------------------------------------


def test_a_short_soak_with_two_processes_holds_every_invariant(tmp_path):
    options = soak.Options(
        minutes=0.1,
        processes=2,
        postgres=POSTGRES_URL,
        seed=3,
        kill_every=2.0,
        forget=True,
        forget_every=2.0,
        run_dir=str(tmp_path / "run"),
    )
    report = soak.Soak(options).run()
    assert report["violated"] == [], soak.render(report)
    assert sum(report["turns_served"].values()) > 0
    assert report["lost_edits"] == 0
    checked = {item["name"]: item["checked"] for item in report["invariants"]}
    assert checked["edits_in_history"] > 0 and checked["covered_exactly_once"] > 0
