"""Known bugs the soak can plant in its workers (``--plant``), to show it catches them.

``no-run-lock``: the sleep-run lock is never taken, so two processes can run one
memory scope at once (DESIGN, run exclusion, layer 4). The async twin sits beside the
sync one, where the flow runner looks for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any


@contextmanager
def run_lock(store: Any, scope: Any, *, wait: bool) -> Iterator[bool]:
    yield True


@asynccontextmanager
async def arun_lock(store: Any, scope: Any, *, wait: bool) -> AsyncIterator[bool]:
    yield True
