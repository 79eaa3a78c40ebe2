"""What the soak's processes share: the plan, its files, the agents' configuration, ids.

The parent writes the plan as JSON into the run folder; each worker reads it. Every
id of a run starts with the run's id, so several runs (and the tests) can share a
PostgreSQL database and each check reads only its own run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _soak_model import CHAT_MODEL, JOURNAL, SLEEP_MODEL

from sleepagent import BlockRole, MemoryBlock, SleepConfig, SleepThinking
from sleepagent.models import ModelOptions

JOURNAL_BLOCK = MemoryBlock(
    label=JOURNAL,
    description="Which messages each sleep-time run read, one line per page.",
    limit=8_000,
    role=BlockRole.LEARNED,  # a page of context alone may change it too
)

MESSAGE_LIMIT = 2_000
CONTEXT_LIMIT = 4_000


def soak_config() -> SleepConfig:
    """The configuration of every agent in the soak: short timers, few retries."""
    return SleepConfig(
        blocks=(JOURNAL_BLOCK,),
        idle_seconds=0.3,
        retry_backoff_seconds=0.2,
        sleep_retries=2,
        max_sleep_steps=3,
        page_messages=8,
        max_concurrent_sleeps=4,
        sleep_thinking=SleepThinking.NEVER,
        max_message_chars=MESSAGE_LIMIT,
        max_context_chars=CONTEXT_LIMIT,
    )


@dataclass(frozen=True)
class Plan:
    """One soak run, as every process of it reads it.

    Attributes:
        run_id: Prefix of every user and thread id of the run.
        run_dir: The run folder (ledgers, logs, control files).
        base_url: The loopback model server.
        dbs: Database name (``sqlite``, ``postgres``) to path or URL.
        users: Users chatting at once; a forgotten user is replaced by a new one.
        threads_per_user: Threads each worker keeps per user.
        seed: Seed of every random choice (each worker derives its own).
        timeout_s: The model client's timeout.
        plant: A known bug the workers plant (``raw-open``, ``no-run-lock``), or None.
        async_slots: Worker slots that run ``AsyncSleepTimeAgent``.

    """

    run_id: str
    run_dir: str
    base_url: str
    dbs: dict[str, str]
    users: int = 4
    threads_per_user: int = 2
    seed: int = 7
    timeout_s: float = 1.5
    plant: str | None = None
    async_slots: list[int] = field(default_factory=lambda: [0])

    def save(self) -> Path:
        """Write the plan into its run folder; returns the file."""
        path = Path(self.run_dir) / "plan.json"
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: Path | str) -> Plan:
        """Read a plan written by :meth:`save`."""
        data: dict[str, Any] = json.loads(Path(path).read_text())
        return cls(**data)

    # --- files ----------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return Path(self.run_dir)

    def ledger(self, slot: int | str) -> Path:
        return self.folder / f"ledger-{slot}.jsonl"

    def heartbeat(self, slot: int) -> Path:
        return self.folder / f"heartbeat-{slot}"

    def ready(self, slot: int, gen: int) -> Path:
        return self.folder / f"ready-{slot}-{gen}"

    def log(self, slot: int) -> Path:
        return self.folder / f"worker-{slot}.log"

    @property
    def stop_file(self) -> Path:
        return self.folder / "stop"

    @property
    def retired_dir(self) -> Path:
        return self.folder / "retired"

    def ack(self, user: str, slot: int) -> Path:
        return self.folder / "acks" / f"{user}.{slot}"

    # --- ids --------------------------------------------------------------------

    def user(self, index: int) -> str:
        return f"{self.run_id}u{index}"

    def retired(self) -> set[str]:
        """Users taken out of the conversation (to be forgotten)."""
        if not self.retired_dir.exists():
            return set()
        return {path.name for path in self.retired_dir.iterdir()}

    def active_users(self, retired: set[str] | None = None) -> list[str]:
        """The ``users`` first users of the run that are not retired."""
        retired = self.retired() if retired is None else retired
        active: list[str] = []
        index = 0
        while len(active) < self.users:
            name = self.user(index)
            if name not in retired:
                active.append(name)
            index += 1
        return active

    def threads(self, user: str, slot: int) -> list[str]:
        return [f"{user}-w{slot}-t{k}" for k in range(self.threads_per_user)]

    def model_options(self) -> ModelOptions:
        return ModelOptions(
            base_url=self.base_url, api_key="soak", timeout=self.timeout_s, max_retries=1
        )

    def specs(self) -> tuple[str, str]:
        return f"openai:{CHAT_MODEL}", f"openai:{SLEEP_MODEL}"


def user_of_thread(thread_id: str) -> str:
    """The user a soak thread id names (``<user>-w<slot>-t<k>``)."""
    return thread_id.rsplit("-w", 1)[0]
