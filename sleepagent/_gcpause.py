"""Python's cyclic garbage collector paused for a bulk read.

Start-up recovery builds several objects per pending thread (rows, store items,
positions, alarms): about a million at 100,000 threads, none of them cyclic
garbage. The collector counts them as they are made, and each full collection
it starts on the way walks every object the process holds, so the read did
the same work again and again: with it paused, opening an agent on 100,000
pending threads took half the CPU time (benchmarks/idle_scale.py). What is
made meanwhile is collected after, as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside the block, then as it was (left off if it was off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
