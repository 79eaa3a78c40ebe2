"""Which examples a run uses: a seeded draw across templates, recorded in the run folder.

The published files are sorted by template (GSM-Symbolic P2: 50 instances of each of 50
templates), so the first ``n`` rows would be ``n`` instances of one template. :func:`draw`
takes one instance of each template in a seeded order before a second of any, and
:func:`resume_sample` writes the keys drawn to ``sample.json`` so that re-running in the
same folder answers the same examples, whatever the draw would pick today.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sleepagent.errors import ConfigurationError

if TYPE_CHECKING:
    from sleepagent.bench.datasets import Example

__all__ = ["SAMPLE_FILE", "Keyed", "SampleRecord", "describe", "draw", "resume_sample"]

SAMPLE_FILE = "sample.json"
"""The file in the run folder that records the sample."""


class Keyed(Protocol):
    """What a sample is drawn from: anything with a unique key (an example, a question)."""

    @property
    def id(self) -> str:
        """The key recorded in ``sample.json``."""
        ...


K = TypeVar("K", bound=Keyed)


def draw(examples: Sequence[Example], n: int, *, seed: int = 0) -> list[Example]:
    """``n`` examples spread across templates, the same ones for the same seed.

    Templates (per source) are visited in a seeded random order, each giving one
    seeded-random instance per round, until ``n`` are drawn (every example, once, when
    ``n`` is at least their number). The first ``k`` of a draw are the draw of ``k``.
    """
    if not examples or n <= 0:
        return []
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.source, example.template].append(example)
    order = list(groups.values())
    rng.shuffle(order)
    for members in order:
        rng.shuffle(members)
    drawn: list[Example] = []
    for round_ in range(max(len(members) for members in order)):
        for members in order:
            if round_ < len(members):
                drawn.append(members[round_])
                if len(drawn) == n:
                    return drawn
    return drawn


@dataclass(frozen=True, kw_only=True)
class SampleRecord:
    """What ``sample.json`` holds.

    Attributes:
        dataset: ``generated``, ``gsm-symbolic``, ``aime`` or ``locomo``.
        files: Names of the data files (not their paths: a moved file still resumes).
        n: The ``--n`` asked for (LoCoMo: ``--per-category``).
        seed: The ``--seed``.
        level: The generator's level (generated data only).
        keys: The example (LoCoMo: question) keys drawn, in order.
        conversations: LoCoMo's ``--conversations``: how many of the file's
            conversations the draw is from (``None``: all).
        conversation_ids: LoCoMo's ``--conversation``: the conversations chosen by
            ``sample_id`` (empty: no choice made).

    """

    dataset: str
    files: tuple[str, ...]
    n: int
    seed: int
    level: str | None
    keys: tuple[str, ...]
    conversations: int | None = None
    conversation_ids: tuple[str, ...] = ()

    def same_request(self, other: SampleRecord) -> bool:
        """Whether ``other`` asks for the same sample (ignoring the keys drawn)."""
        return (
            self.dataset,
            self.files,
            self.n,
            self.seed,
            self.level,
            self.conversations,
            self.conversation_ids,
        ) == (
            other.dataset,
            other.files,
            other.n,
            other.seed,
            other.level,
            other.conversations,
            other.conversation_ids,
        )


def _read(path: Path) -> SampleRecord:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return SampleRecord(
        dataset=data["dataset"],
        files=tuple(data["files"]),
        n=int(data["n"]),
        seed=int(data["seed"]),
        level=data.get("level"),
        keys=tuple(data["keys"]),
        conversations=data.get("conversations"),
        conversation_ids=tuple(data.get("conversation_ids", ())),
    )


def resume_sample(
    folder: Path, request: SampleRecord, available: Sequence[K]
) -> tuple[list[K], bool]:
    """The run's examples: those recorded in ``folder``, else ``available`` recorded now.

    Args:
        folder: The run folder.
        request: The sample asked for, with ``keys`` the ones drawn now.
        available: Every example (or question) the data has; the recorded keys are
            looked up there.

    Returns:
        The examples, and whether they were resumed from an earlier record.

    A larger ``n`` whose draw starts with the recorded keys (the same seed and data)
    extends the recorded sample instead of being refused.

    Raises:
        ConfigurationError: When the folder holds a different sample (other dataset,
            files, ``--seed`` or level, or an ``n`` whose draw does not extend the
            recorded one), or a recorded key is not in the data.

    """
    path = Path(folder) / SAMPLE_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(request), indent=1) + "\n", encoding="utf-8")
        return _select(request.keys, available, path), False
    recorded = _read(path)
    shorter = min(len(request.keys), len(recorded.keys))
    if recorded.same_request(dataclasses.replace(request, n=recorded.n)) and (
        request.keys[:shorter] == recorded.keys[:shorter]
    ):
        # A larger --n on the same seed draws the recorded keys first, then more: the
        # sample grows and every finished unit still counts.
        if request.n > recorded.n:
            path.write_text(json.dumps(asdict(request), indent=1) + "\n", encoding="utf-8")
            return _select(request.keys, available, path), True
        return _select(recorded.keys, available, path), True
    if not recorded.same_request(request):
        raise ConfigurationError(
            f"{path} records a different sample ({_request_text(recorded)}) than asked "
            f"({_request_text(request)}); use the same options, or a new --out folder"
        )
    return _select(recorded.keys, available, path), True


def _select(keys: Sequence[str], available: Sequence[K], path: Path) -> list[K]:
    by_key = {example.id: example for example in available}
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise ConfigurationError(
            f"{path} lists {len(missing)} examples the data no longer has (first: "
            f"{missing[0]!r}); pass the same data files, or use a new --out folder"
        )
    return [by_key[key] for key in keys]


def _request_text(record: SampleRecord) -> str:
    files = ",".join(record.files) or "-"
    level = f", level {record.level}" if record.level else ""
    if record.conversations is not None:
        level += f", {record.conversations} conversations"
    if record.conversation_ids:
        level += f", conversations {', '.join(record.conversation_ids)}"
    return f"{record.dataset} from {files}, n={record.n}, seed={record.seed}{level}"


def describe(examples: Sequence[Example], *, resumed: bool) -> str:
    """One paragraph naming what was drawn, for the terminal."""
    by_source: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_source[example.source].append(example)
    verb = "resumed the recorded sample of" if resumed else "drew"
    parts = [
        f"{source}: {len(found)} from {len({e.template for e in found})} templates"
        + (
            f", {sum(not e.has_context for e in found)} without context"
            if any(not e.has_context for e in found)
            else ""
        )
        for source, found in sorted(by_source.items())
    ]
    keys = ", ".join(e.id.rpartition("/")[2] for e in examples[:12])
    more = f", ... ({len(examples) - 12} more)" if len(examples) > 12 else ""
    return f"{verb} {len(examples)} examples ({'; '.join(parts)}): {keys}{more}"
