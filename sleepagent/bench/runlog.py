"""``run.json``: how a run folder was produced, one entry per session that ran in it.

The summary states the model, server, grading rule, failures and wall time from this
file and ``errors.jsonl``, so ``--report-only`` reproduces it from the folder alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILE", "Failures", "RunInfo", "Session", "read_failures", "read_run_info"]

RUN_FILE = "run.json"
"""The file in the run folder that records the sessions."""


@dataclass(frozen=True, kw_only=True)
class Session:
    """One invocation that ran units in the folder.

    Attributes:
        started: When it started, ISO 8601 UTC.
        command: The command line, as typed.
        model: Test-time model spec.
        sleep_model: Sleep-time model spec.
        server: The OpenAI-compatible base URL, or ``"default"`` (OpenAI).
        concurrency: Units in flight at once.
        max_retries: Retries per request, all in the model client.
        timeout: Seconds per request.
        max_tokens: Cap on test-time completion tokens per request, or ``None``.
        sleep_max_tokens: Cap on sleep-time completion tokens per request, or ``None``.
        sleep_steps: Model calls a sleep-time run may make.
        judge_model: The LLM judge's model spec (LoCoMo ``--judge-model``), or ``None``.
        context_window: The chat model's window in tokens (LoCoMo ``--context-window``).
        wall_s: Seconds the session took.
        done: Units it finished.
        failed: Units it left failed.

    """

    started: str
    command: str
    model: str
    sleep_model: str
    server: str
    concurrency: int
    max_retries: int
    timeout: float
    wall_s: float
    done: int
    failed: int
    max_tokens: int | None = None
    sleep_max_tokens: int | None = None
    sleep_steps: int = 10
    judge_model: str | None = None
    context_window: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """Everything ``run.json`` holds.

    Attributes:
        grading: The grading rule chosen (``ours``, ``paper`` or ``both``).
        t: Price of a test-time token in sleep-time tokens.
        sessions: Every session, oldest first.

    """

    grading: str
    t: float
    sessions: tuple[Session, ...] = ()

    @property
    def wall_s(self) -> float:
        """Seconds spent running, over every session."""
        return sum(s.wall_s for s in self.sessions)

    def with_session(self, session: Session) -> RunInfo:
        """The record with ``session`` appended."""
        return RunInfo(grading=self.grading, t=self.t, sessions=(*self.sessions, session))

    def write(self, folder: Path) -> None:
        """Write ``run.json`` in ``folder``."""
        data = {
            "grading": self.grading,
            "t": self.t,
            "sessions": [asdict(s) for s in self.sessions],
        }
        # Written beside, then renamed over: a kill mid-write leaves the old file whole.
        partial = Path(folder) / f"{RUN_FILE}.partial"
        partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        partial.replace(Path(folder) / RUN_FILE)


def read_run_info(folder: Path) -> RunInfo | None:
    """The folder's ``run.json``, or ``None`` when it has none (a run from the API)."""
    path = Path(folder) / RUN_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return RunInfo(
        grading=str(data["grading"]),
        t=float(data["t"]),
        sessions=tuple(Session(**s) for s in data.get("sessions", ())),
    )


@dataclass(frozen=True)
class Failures:
    """Failed units, from ``errors.jsonl`` against ``results.jsonl``.

    Attributes:
        attempts: Failed attempts logged, over every session.
        open: Units that failed and have not succeeded since.
        first_error: The first error of an open unit, for the report.

    """

    attempts: int
    open: int
    first_error: str | None


def read_failures(folder: Path, finished: Sequence[str]) -> Failures:
    """Count the failures logged in the folder; ``finished`` are the keys of results."""
    path = Path(folder) / "errors.jsonl"
    if not path.exists():
        return Failures(0, 0, None)
    done = set(finished)
    errors: dict[str, str] = {}
    attempts = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        attempts += 1
        if record.get("key") not in done:
            errors.setdefault(str(record.get("key")), str(record.get("error")))
    first = next(iter(errors.values()), None)
    return Failures(attempts, len(errors), first)
