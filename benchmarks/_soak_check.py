"""The soak's end check: the invariants of docs/DESIGN.md, read back from the stored data.

Run once every worker has stopped and the final drain has run. Everything is read
through the library's own readers (:class:`~sleepagent.store.catalog.Catalog`,
:class:`~sleepagent.memory.blockstore.BlockStore`) and compared with the workers'
ledgers. Each check is a :class:`Finding`: how many things it checked, how many
violated it, and the first few examples.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from _soak_model import JOURNAL, TOKEN
from _soak_plan import JOURNAL_BLOCK, user_of_thread

from sleepagent import BlockStore, FailedPage, RunRecord, Scope
from sleepagent.store import layout
from sleepagent.store.catalog import Catalog
from sleepagent.store.persistence import open_persistence

INVARIANTS: dict[str, str] = {
    "edits_in_history": "every edit a worker was told committed is in block history at its version",
    "turns_logged_once": "every answered turn is in its thread's log exactly once, verbatim, "
    "and no message is logged twice",
    "failed_inputs_not_logged": "a failed or refused turn left nothing in any log",
    "cancelled_at_most_once": "a cancelled turn or context is logged at most once",
    "covered_exactly_once": "every logged message is in exactly one committed page, or in a "
    "given-up page and none",
    "nothing_pending": "no message is left pending after the final drain",
    "runs_never_overlap": "no two sleep runs of one memory scope overlap in time",
    "sqlite_integrity": "PRAGMA integrity_check says ok",
    "databases_readable": "every database opens and reads back after the run",
    "scopes_isolated": "a scope's memory and threads hold only its own user's messages",
    "failed_pages_bounded": "a page is given up after at most sleep_retries + 1 attempts",
    "forgotten_scopes_empty": "a forgotten user's scope and threads hold nothing",
    "typed_errors_only": "every error a caller saw is a SleepAgentError",
    "hostile_inputs_refused": "hostile input is refused with its typed error and stores nothing",
    "markup_escaped": "typed markup reaches no prompt unescaped",
    "no_hang": "no worker stopped making progress",
    "no_crash": "no worker died unless killed on purpose, and every worker stopped when told",
    "recovery_covers_pending": "a fresh process's recovery runs cover all pending work",
}


@dataclass
class Finding:
    """One invariant's result.

    Attributes:
        name: Key of :data:`INVARIANTS`.
        checked: Things checked.
        violations: Things that broke it.
        examples: The first few violations, said plainly.

    """

    name: str
    checked: int = 0
    violations: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.violations == 0

    def check(self, ok: bool, example: str) -> None:
        self.checked += 1
        if not ok:
            self.violations += 1
            if len(self.examples) < 5:
                self.examples.append(" ".join(example.split())[:240])

    def merge(self, other: Finding) -> None:
        self.checked += other.checked
        self.violations += other.violations
        self.examples.extend(other.examples[: max(0, 5 - len(self.examples))])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": INVARIANTS[self.name],
            "held": self.held,
            "checked": self.checked,
            "violations": self.violations,
            "examples": self.examples,
        }


@dataclass
class Entry:
    seq: int
    role: str
    text: str


@dataclass
class Thread:
    thread_id: str
    scope: str | None
    head: int
    watermark: int
    entries: list[Entry]
    failing_attempts: int = 0


@dataclass
class Stored:
    """What one database holds for one run, read back."""

    threads: dict[str, Thread] = field(default_factory=dict)
    journal: dict[str, dict[int, str]] = field(default_factory=dict)
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)
    failed: dict[str, list[FailedPage]] = field(default_factory=dict)
    integrity: str | None = None


def integrity(path: str) -> str:
    """What SQLite's ``PRAGMA integrity_check`` says about the file (``ok`` when sound)."""
    try:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        conn.close()
    except sqlite3.Error as error:
        return f"{type(error).__name__}: {error}"
    return "; ".join(str(row[0]) for row in rows)[:500]


def read_stored(target: str, run_id: str) -> Stored:
    """Every thread, journal version, run record and failed page of the run in ``target``."""
    stored = Stored()
    with open_persistence(target) as (_, store):
        catalog = Catalog(store)
        blocks = BlockStore(store, (JOURNAL_BLOCK,))
        mine = [t for t in catalog.threads() if t.thread_id.startswith(run_id)]
        scopes = {s for s in catalog.known_scopes(mine) if s.id.startswith(run_id)}
        for summary in mine:
            entries: list[Entry] = []
            if summary.head and summary.scope is not None:
                _, logged, _, _ = blocks.read_page(
                    Scope.parse(summary.scope),
                    summary.thread_id,
                    max_messages=summary.head,
                    max_chars=10**12,
                    span=(1, summary.head),
                )
                entries = [Entry(e.seq, e.role, e.text) for e in logged]
            failing = store.get(layout.thread_ns(summary.thread_id), "failing")
            stored.threads[summary.thread_id] = Thread(
                summary.thread_id,
                summary.scope,
                summary.head,
                summary.watermark,
                entries,
                failing.value.get("attempts", 0) if failing is not None else 0,
            )
        for scope in scopes:
            history = blocks.history(scope, JOURNAL)
            stored.journal[scope.key] = {entry.version: entry.value for entry in history}
            stored.runs[scope.key] = blocks.runs(scope, limit=10**9)
            stored.failed[scope.key] = blocks.failed_pages(scope)
    if not target.startswith("postgres"):
        stored.integrity = integrity(target)
    return stored


def check_database(
    db: str,
    stored: Stored,
    records: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    forgotten: Iterable[str] = (),
    attempt_limit: int,
) -> dict[str, Finding]:
    """Check one database of the run against the ledger records that name it.

    Records about other runs' scopes (a worker's recovery also covers work an earlier
    run on the same database left pending) are not this run's to check.
    """
    forgotten = set(forgotten)
    gone = {f"user:{user}" for user in forgotten}
    mine = [
        r
        for r in records
        if r.get("db") == db and str(r.get("scope", f"user:{run_id}")).startswith(f"user:{run_id}")
    ]
    findings = {name: Finding(name) for name in INVARIANTS}
    logged = _logged_tokens(stored)

    # Edits the workers were told about are in history, at the version they were told.
    lost = findings["edits_in_history"]
    for record in mine:
        if record["type"] != "edit" or record["scope"] in gone or record["label"] != JOURNAL:
            continue
        value = stored.journal.get(record["scope"], {}).get(record["version"])
        have = set(value.splitlines()) if value is not None else set()
        missing = [line for line in record["lines"] if line not in have]
        lost.check(
            value is not None and not missing,
            f"{db} {record['scope']} v{record['version']} (run {record.get('run_id')}): "
            + ("no such version" if value is None else f"missing {missing[:2]}"),
        )

    # Turns: answered once, failed and refused never, cancelled at most once.
    for record in mine:
        kind, token = record["type"], record.get("token")
        if token is None or record.get("user") in forgotten:
            continue
        found = logged.get(token, [])
        if kind in ("turn", "context"):
            where = [thread for thread, _ in found]
            ok = len(found) == 1 and where == [record["thread"]]
            if ok and "verbatim" in record:
                ok = found[0][1] == record["verbatim"]
            findings["turns_logged_once"].check(ok, f"{db} {kind} {token}: logged {where}")
        elif kind in ("turn_failed", "refused"):
            findings["failed_inputs_not_logged"].check(
                not found, f"{db} {kind} {token}: logged in {[t for t, _ in found]}"
            )
        elif kind in ("turn_cancelled", "context_cancelled"):
            findings["cancelled_at_most_once"].check(
                len(found) <= 1, f"{db} {kind} {token}: logged {len(found)} times"
            )

    # No message in two log entries, answered by the ledger or not (a killed turn).
    for token, found in logged.items():
        findings["turns_logged_once"].check(
            len(found) == 1, f"{db} {token}: logged {len(found)} times, in {found[0][0]}"
        )

    # Every logged message covered by exactly one committed page (one journal line).
    lines = {scope: _lines(versions.values()) for scope, versions in stored.journal.items()}
    for thread in stored.threads.values():
        if thread.scope in gone or thread.scope is None:
            continue
        per_token = Counter(
            token for line in lines.get(thread.scope, ()) for token in set(_tokens(line))
        )
        failed = [p for p in stored.failed.get(thread.scope, []) if p.thread_id == thread.thread_id]
        for entry in thread.entries:
            if entry.role not in ("user", "context"):
                continue
            for token in _tokens(entry.text):
                given_up = any(p.first_seq <= entry.seq <= p.last_seq for p in failed)
                count = per_token[token]
                findings["covered_exactly_once"].check(
                    count == 0 if given_up else count == 1,
                    f"{db} {thread.thread_id} #{entry.seq} {token}: in {count} committed "
                    f"pages{' and a given-up page' if given_up else ''}",
                )
        findings["nothing_pending"].check(
            thread.watermark == thread.head,
            f"{db} {thread.thread_id}: watermark {thread.watermark}, head {thread.head}",
        )
        findings["failed_pages_bounded"].check(
            thread.failing_attempts < attempt_limit,
            f"{db} {thread.thread_id}: {thread.failing_attempts} failed attempts still counted",
        )

    # One run per scope at a time.
    for scope, runs in stored.runs.items():
        ordered = sorted(runs, key=lambda run: _time(run.started_at))
        latest: RunRecord | None = None
        for run in ordered:
            overlaps = latest is not None and _time(run.started_at) < _time(latest.finished_at)
            findings["runs_never_overlap"].check(
                not overlaps,
                f"{db} {scope}: run {run.run_id} started {run.started_at}, before run "
                f"{latest.run_id if latest else '-'} finished "
                f"{latest.finished_at if latest else '-'}",
            )
            if latest is None or _time(run.finished_at) > _time(latest.finished_at):
                latest = run
    for scope, pages in stored.failed.items():
        for page in pages:
            findings["failed_pages_bounded"].check(
                page.attempts <= attempt_limit,
                f"{db} {scope}: page {page.first_seq}-{page.last_seq} after {page.attempts}",
            )

    # Nothing crosses scopes: memory and logs hold only their own user's tokens.
    isolated = findings["scopes_isolated"]
    for scope, versions in stored.journal.items():
        owner = scope.partition(":")[2]
        for version, value in versions.items():
            strangers = {m.group(1) for m in TOKEN.finditer(value)} - {owner}
            isolated.check(not strangers, f"{db} {scope} v{version} holds {sorted(strangers)}")
    for thread in stored.threads.values():
        owner = user_of_thread(thread.thread_id)
        isolated.check(
            thread.scope == f"user:{owner}",
            f"{db} {thread.thread_id} belongs to {thread.scope}",
        )
        for entry in thread.entries:
            strangers = {m.group(1) for m in TOKEN.finditer(entry.text)} - {owner}
            isolated.check(
                not strangers, f"{db} {thread.thread_id} #{entry.seq} holds {sorted(strangers)}"
            )

    # A forgotten user left nothing behind.
    for user in forgotten:
        key = f"user:{user}"
        left = [t.thread_id for t in stored.threads.values() if t.scope == key]
        left += [f"journal v{v}" for v in stored.journal.get(key, {})]
        left += [f"run {r.run_id}" for r in stored.runs.get(key, [])]
        left += [f"failed page {p.first_seq}" for p in stored.failed.get(key, [])]
        findings["forgotten_scopes_empty"].check(not left, f"{db} {key} still holds {left[:3]}")

    if stored.integrity is not None:
        findings["sqlite_integrity"].check(stored.integrity == "ok", f"{db}: {stored.integrity}")
    return findings


def check_ledger(records: Iterable[Mapping[str, Any]]) -> dict[str, Finding]:
    """The checks the ledgers alone decide: typed errors, hostile input refused."""
    findings = {name: Finding(name) for name in ("typed_errors_only", "hostile_inputs_refused")}
    for record in records:
        if record["type"] == "untyped":
            findings["typed_errors_only"].check(
                False, f"{record.get('where')}: {record.get('error')}"
            )
        elif record["type"].endswith("_error") or record["type"] in ("turn", "turn_failed"):
            findings["typed_errors_only"].check(True, "")
        if record["type"] == "refused":
            findings["hostile_inputs_refused"].check(
                bool(record["ok"]), f"{record['kind']} on {record.get('db')}: {record['problem']}"
            )
    return findings


def merge(*groups: Mapping[str, Finding]) -> dict[str, Finding]:
    """All findings by name, in :data:`INVARIANTS` order, counts added up."""
    merged = {name: Finding(name) for name in INVARIANTS}
    for group in groups:
        for name, finding in group.items():
            merged[name].merge(finding)
    return merged


def _logged_tokens(stored: Stored) -> dict[str, list[tuple[str, str]]]:
    """Each token in a user or context entry: the (thread, text) of every entry holding it."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for thread in stored.threads.values():
        for entry in thread.entries:
            if entry.role in ("user", "context"):
                for token in set(_tokens(entry.text)):
                    found[token].append((thread.thread_id, entry.text))
    return found


def _tokens(text: str) -> list[str]:
    return [match.group(0) for match in TOKEN.finditer(text)]


def _lines(values: Iterable[str]) -> set[str]:
    return {line for value in values for line in value.splitlines() if line.strip()}


def _time(at: str) -> datetime:
    return datetime.fromisoformat(at)
