"""What the chat's spinner says while a turn or a sleep run works.

A sleep run on a small local model can take ten minutes; a spinner alone cannot
tell working from stuck. The line says how long it has been and what is known so
far: the messages the run reads, the model calls begun (counted by a LangChain
callback handler passed in the run's config), the tokens of the calls finished,
and what the run's events said (waiting for another run of the memory scope,
writing memory as tagged text). Pages are not counted: no event marks one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from rich.text import Text

from sleepagent.scheduling.events import EventKind, SleepEvent

__all__ = ["ModelCalls", "Progress", "progress_line"]


@dataclass
class Progress:
    """What is known about the work in flight; written on the agent's loop, read by the spinner.

    Attributes:
        label: What works: ``thinking`` (a turn) or ``sleep-time compute``.
        started: When it began (``time.monotonic()``).
        to_read: Messages the sleep run has to read, when known.
        calls: Model calls begun.
        tokens: Tokens of the model calls finished.
        waiting_for: The memory scope whose other run this one waits for.
        text_format: Whether the run writes memory as tagged text (the model called no tool).

    """

    label: str
    started: float = field(default_factory=time.monotonic)
    to_read: int | None = None
    calls: int = 0
    tokens: int = 0
    waiting_for: str | None = None
    text_format: bool = False

    def on_event(self, thread_id: str) -> Callable[[SleepEvent], None]:
        """A subscriber that follows the events of a run asked for by hand on ``thread_id``."""

        def follow(event: SleepEvent) -> None:
            if event.thread_id != thread_id or event.reason != "manual":
                return
            if event.kind is EventKind.WAITING:
                self.waiting_for = event.scope
            elif event.kind is EventKind.STARTED:
                self.waiting_for = None
            elif event.kind is EventKind.TEXT_FALLBACK:
                self.text_format = True

        return follow

    def __rich__(self) -> Text:
        # The spinner renders this on every refresh, so the seconds keep counting.
        return Text(progress_line(self, time.monotonic()))


def progress_line(progress: Progress, now: float) -> str:
    """The spinner's text at ``now``: elapsed seconds, then what is known."""
    parts = [f"{progress.label}… {max(0, int(now - progress.started))}s"]
    if progress.to_read is not None:
        parts.append(f"{progress.to_read} message{'s' if progress.to_read != 1 else ''} to read")
    if progress.waiting_for is not None:
        parts.append(f"waiting for another run of {progress.waiting_for}")
    elif progress.calls:
        parts.append(f"model call {progress.calls}")
    if progress.tokens:
        parts.append(f"{progress.tokens:,} tokens so far")
    if progress.text_format:
        parts.append("writing memory as tagged text")
    return " · ".join(parts)


class ModelCalls(BaseCallbackHandler):
    """Counts a run's model calls and their tokens into a :class:`Progress`.

    Runs inline on the agent's loop: it only adds numbers.
    """

    run_inline = True

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        """A model call begins."""
        self.progress.calls += 1

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """A model call ended: add its tokens."""
        self.progress.tokens += _tokens(response)


def _tokens(response: LLMResult) -> int:
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                usage = getattr(generation.message, "usage_metadata", None)
                if usage:
                    return int(usage.get("total_tokens", 0))
    reported = (response.llm_output or {}).get("token_usage") or {}
    return int(reported.get("total_tokens", 0) or 0)
