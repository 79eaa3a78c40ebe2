"""Units of work run into a run folder, resumably: the loop every benchmark shares.

A unit is one model-backed piece of work that ends in one line of ``results.jsonl``
(a sleep run, an answer, a judgement). A unit names the units it needs; units run
group by group (each with its own progress bar and ETA, and the time and tokens of
the latest unit and the mean per unit), at most ``concurrency`` at a time, and a
group's unit whose needs did not finish is counted failed and left for the next
run. Keys already in ``results.jsonl`` are skipped, so re-running the same command
in the same folder resumes; failed attempts go to ``errors.jsonl``.

Retries live in one place, the model client (``ModelOptions.max_retries``), not here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel

from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError
from sleepagent.models import ModelLike, ModelOptions, resolve_model

__all__ = [
    "Record",
    "RunOutcome",
    "Unit",
    "UnitRunner",
    "default_concurrency",
    "read_results",
    "record_tokens",
    "unit_note",
    "with_effort",
]

logger = logging.getLogger("sleepagent.bench.runner")

Record = dict[str, Any]
"""One line of ``results.jsonl``."""


@dataclass(frozen=True)
class RunOutcome:
    """What a run did.

    Attributes:
        done: Units finished by this run.
        skipped: Units already in ``results.jsonl``.
        failed: Units that failed (see ``errors.jsonl``); a re-run retries them.
        wall_s: Seconds the run took.

    """

    done: int
    skipped: int
    failed: int
    wall_s: float = 0.0


@dataclass(frozen=True)
class Unit:
    """One piece of work and the line it ends in.

    Attributes:
        key: The key of its ``results.jsonl`` line.
        work: Does the work; returns the line (with ``key`` and ``kind``).
        group: The group it runs in (its progress bar).
        needs: Keys of the units whose lines it reads; it runs once they exist.

    """

    key: str
    work: Callable[[], Record]
    group: str
    needs: tuple[str, ...] = field(default=())


def read_results(path: Path) -> list[Record]:
    """The records of a ``results.jsonl``; a line cut short by a crash is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("ignoring an unfinished line in %s", path)
    return records


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


def default_concurrency(base_url: str | None) -> int:
    """Units in flight by default: 1 for a server on this machine (often one slot), else 4."""
    if base_url is None:
        return 4
    host = (urlsplit(base_url).hostname or "").lower()
    return 1 if host in _LOOPBACK_HOSTS or host.startswith("127.") else 4


def with_effort(
    model: ModelLike, options: ModelOptions | None, effort: str | None
) -> BaseChatModel:
    """``model`` resolved, with ``reasoning_effort`` set to ``effort`` when one is given.

    Raises:
        ConfigurationError: For an effort on a model instance that has no such setting.

    """
    if effort is None:
        return resolve_model(model, options)
    if isinstance(model, str):
        return resolve_model(
            model, dataclasses.replace(options or ModelOptions(), reasoning_effort=effort)
        )
    if "reasoning_effort" in type(model).model_fields:
        return model.model_copy(update={"reasoning_effort": effort})
    raise ConfigurationError(
        f"{type(model).__name__} has no reasoning_effort; "
        "use verbosity budgets and no sleep efforts for this model"
    )


def record_tokens(record: Mapping[str, Any]) -> int:
    """Model tokens (prompt plus completion) a ``results.jsonl`` line reports.

    Every unit kind keeps its usage under a key ending ``_usage`` (``sleep_usage``,
    ``test_usage``, ``judge_usage``); a line without one (a skipped answer, a
    log-probability score) reports none.
    """
    total = 0
    for key, value in record.items():
        if key.endswith("_usage") and isinstance(value, Mapping):
            total += int(value.get("input_tokens", 0) or 0) + int(
                value.get("output_tokens", 0) or 0
            )
    return total


def unit_note(seconds: Sequence[float], tokens: Sequence[int]) -> str:
    """What the progress line says of a group's finished units, latest last.

    The latest unit's time and tokens, then the mean per unit once there are two:
    a slow model shows in the first, a drift (longer contexts, a server slowing
    down) in the difference between the two.
    """
    if not seconds:
        return ""
    note = f"last {seconds[-1]:.1f} s, {tokens[-1]:,} tokens"
    if len(seconds) > 1:
        mean_s = sum(seconds) / len(seconds)
        mean_tokens = round(sum(tokens) / len(tokens))
        note += f"; mean {mean_s:.1f} s, {mean_tokens:,} tokens"
    return note


class _Progress(Protocol):
    def update(self, n: int = 1) -> object: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> object: ...
    def close(self) -> None: ...


class _StderrProgress:
    """A one-line progress report with an ETA, when tqdm is not installed."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.count, self.label = total, 0, label
        self.started = time.monotonic()
        self.note = ""

    def update(self, n: int = 1) -> None:
        self.count += n
        self._write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.note = s
        if refresh:
            self._write()

    def _write(self) -> None:
        elapsed = time.monotonic() - self.started
        left = elapsed / self.count * (self.total - self.count) if self.count else 0.0
        note = f", {self.note}" if self.note else ""
        sys.stderr.write(
            f"\r{self.label}: {self.count}/{self.total}, {elapsed:.0f} s, ETA {left:.0f} s{note}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


class _Silent:
    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Ignore the note."""

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class _Timed:
    """A unit's line and the seconds its work took."""

    record: Record
    seconds: float


def _timed(work: Callable[[], Record]) -> _Timed:
    started = time.perf_counter()
    record = work()
    return _Timed(record, time.perf_counter() - started)


def _progress(total: int, label: str, enabled: bool) -> _Progress:
    if not enabled:
        return _Silent()
    try:
        # tqdm ships no types; it is optional (the 'bench' extra).
        from tqdm import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return _StderrProgress(total, label)
    bar: _Progress = tqdm(total=total, file=sys.stderr, unit="unit", desc=label)
    return bar


class UnitRunner:
    """The run folder, the models, and the loop that runs units into the folder.

    Args:
        model: The test-time (answering) model, or a spec such as ``"openai:gpt-4o-mini"``.
        out: The run folder; ``results.jsonl`` there is appended to.
        sleep_model: The sleep-time model; defaults to ``model``.
        model_options: Options for a spec string ``model`` (server, timeout, retries).
        sleep_model_options: The same for the sleep-time model.
        progress: Show a progress bar per group of units on stderr.
        sleep_config: How the sleep-time agent runs (its step budget, say); ``None`` is
            the library's default configuration.

    """

    def __init__(
        self,
        model: ModelLike,
        *,
        out: Path,
        sleep_model: ModelLike | None = None,
        model_options: ModelOptions | None = None,
        sleep_model_options: ModelOptions | None = None,
        progress: bool = True,
        sleep_config: SleepConfig | None = None,
    ) -> None:
        self._model = model
        self._sleep_config = sleep_config or SleepConfig()
        self._options = model_options
        self._sleep_spec = model if sleep_model is None else sleep_model
        self._sleep_options = sleep_model_options or model_options
        self._chat_models: dict[str | None, BaseChatModel] = {}
        self._sleepers: dict[str | None, BaseChatModel] = {}
        self._models_lock = threading.Lock()
        self.out = Path(out)
        self.results_path = self.out / "results.jsonl"
        self.errors_path = self.out / "errors.jsonl"
        self._progress = progress
        self._write_lock = threading.Lock()

    def _chat_model(self, effort: str | None) -> BaseChatModel:
        with self._models_lock:
            if effort not in self._chat_models:
                self._chat_models[effort] = with_effort(self._model, self._options, effort)
            return self._chat_models[effort]

    def _sleep_model(self, effort: str | None) -> BaseChatModel:
        with self._models_lock:
            if effort not in self._sleepers:
                self._sleepers[effort] = with_effort(self._sleep_spec, self._sleep_options, effort)
            return self._sleepers[effort]

    def _finished(self) -> dict[str, Record]:
        """The folder's finished lines, by key (the folder is made when missing)."""
        self.out.mkdir(parents=True, exist_ok=True)
        return {record["key"]: record for record in read_results(self.results_path)}

    def _execute(
        self,
        units: Iterable[Unit],
        finished: dict[str, Record],
        *,
        concurrency: int,
        on_unit: Callable[[RunOutcome], None] | None = None,
    ) -> RunOutcome:
        """Run every unit not in ``finished``, group by group; ``finished`` grows as they end.

        Args:
            units: Every unit of the run, in group order.
            finished: The folder's lines by key (:meth:`_finished`); each new line is
                added, so a unit's work can read the lines it needs from it.
            concurrency: Units in flight at once.
            on_unit: Called with the counts so far after each unit ends, so a caller can
                keep a record that survives a kill.

        Returns:
            Counts of units done, skipped and failed, and the wall time.

        """
        started = time.perf_counter()
        every = list(units)
        todo = [unit for unit in every if unit.key not in finished]
        groups: dict[str, list[Unit]] = {}
        for unit in todo:
            groups.setdefault(unit.group, []).append(unit)
        done = failed = 0

        def outcome() -> RunOutcome:
            return RunOutcome(
                done=done,
                skipped=len(every) - len(todo),
                failed=failed,
                wall_s=time.perf_counter() - started,
            )

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for label, group in groups.items():
                # A group starts once the units it needs have finished (or failed).
                ready = [u for u in group if not (set(u.needs) - finished.keys())]
                blocked = len(group) - len(ready)
                if blocked:
                    logger.warning("%s: %d units skipped: a unit they need failed", label, blocked)
                    failed += blocked
                bar = _progress(len(ready), label, self._progress and bool(ready))
                seconds: list[float] = []
                tokens: list[int] = []
                try:
                    futures = {pool.submit(_timed, u.work): u for u in ready}
                    for future in as_completed(futures):
                        timed = self._finish(futures[future], future, finished)
                        ok = timed is not None
                        done, failed = done + ok, failed + (not ok)
                        if timed is not None:
                            seconds.append(timed.seconds)
                            tokens.append(record_tokens(timed.record))
                            bar.set_postfix_str(unit_note(seconds, tokens), refresh=False)
                        bar.update()
                        if on_unit is not None:
                            on_unit(outcome())
                finally:
                    bar.close()
        return outcome()

    def _finish(
        self, unit: Unit, future: Future[_Timed], finished: dict[str, Record]
    ) -> _Timed | None:
        """Keep a unit's line, or log its error; ``None`` when it failed."""
        error = future.exception()
        if error is not None:
            logger.error("unit %s failed: %s", unit.key, error)
            self._append(
                self.errors_path,
                {"key": unit.key, "error": f"{type(error).__name__}: {error}", "at": time.time()},
            )
            return None
        timed = future.result()
        finished[timed.record["key"]] = timed.record
        self._append(self.results_path, timed.record)
        return timed

    def _append(self, path: Path, record: Mapping[str, Any]) -> None:
        # One writer at a time, one whole line per record, flushed before the next
        # unit counts as done: a crash loses at most the unit in flight.
        with self._write_lock, path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            file.flush()
