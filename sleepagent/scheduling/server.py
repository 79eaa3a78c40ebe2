"""LangGraph Server as the idle timer: sleep runs are the server's own delayed runs.

After each turn the chat graph creates a run on the memory scope's companion
sleep thread with ``after_seconds`` = the idle time and
``multitask_strategy="rollback"``: a newer turn replaces a pending (or running)
sleep run, so a scope has one run at a time and only the last one of a burst
of turns executes. A rolled-back run has committed nothing (commits are
atomic); its messages are still past the watermark, so the next run covers
them. Nothing runs in this process: the server's queue, on any worker, does.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sleepagent.config import ScopePolicy
from sleepagent.errors import WrongModeError
from sleepagent.graph.companion import sleep_request, sleep_thread_id
from sleepagent.scheduling.base import JobRunner, SleepJob
from sleepagent.scope import resolve_scope

__all__ = ["ServerIdleScheduler"]


class ServerIdleScheduler:
    """An :class:`~sleepagent.scheduling.IdleScheduler` backed by LangGraph Server delayed runs.

    Args:
        assistant_id: The assistant (or graph id) that serves the sleepagent graph.
        scope: How ``(thread_id, user_id)`` becomes a memory scope; must be the
            graph's ``SleepConfig.scope`` (``build_graph`` checks).
        client: A ``langgraph_sdk`` async client; by default ``get_client()``,
            which inside the server talks to the server itself.

    Use :meth:`aset` (from the graph, which runs async on the server); the
    synchronous :meth:`set` is refused because the server's own event loop
    would wait on itself.

    """

    def __init__(
        self,
        assistant_id: str = "sleepagent",
        *,
        scope: ScopePolicy = ScopePolicy.AUTO,
        client: Any | None = None,
    ) -> None:
        self.assistant_id = assistant_id
        self.scope_policy = scope
        self._client = client

    def _get_client(self) -> Any:
        if self._client is None:
            from langgraph_sdk import get_client

            self._client = get_client()
        return self._client

    def now(self) -> float:
        """Wall-clock time."""
        return time.time()

    def start(self, runner: JobRunner, *, max_concurrent: int) -> None:
        """Nothing to start: the server executes the runs."""

    def set(self, job: SleepJob) -> None:
        """Refused: use :meth:`aset`.

        Raises:
            WrongModeError: Always.

        """
        raise WrongModeError("ServerIdleScheduler schedules from async code: await aset(job)")

    async def aset(self, job: SleepJob) -> dict[str, Any]:
        """Create (or replace) the scope's delayed sleep run; returns the server's run record."""
        scope = resolve_scope(self.scope_policy, thread_id=job.thread_id, user_id=job.user_id)
        run: dict[str, Any] = await self._get_client().runs.create(
            sleep_thread_id(scope),
            self.assistant_id,
            input=sleep_request(reason=job.reason.value),
            context={"thread_id": job.thread_id, "user_id": job.user_id},
            after_seconds=max(0, math.ceil(job.due_at - self.now())),
            multitask_strategy="rollback",
            if_not_exists="create",
            metadata={"sleepagent": "sleep", "memory_scope": scope.key},
        )
        return run

    def cancel(self, thread_id: str) -> None:
        """Nothing to do: a newer run replaces the pending one (rollback)."""

    def close(self) -> None:
        """Nothing to close: runs live on the server."""
