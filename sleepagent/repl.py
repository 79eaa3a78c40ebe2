"""``sleepagent chat``: talk to a real model in the terminal and watch memory change.

The reply streams as it arrives. The idle timer runs sleep-time compute between
turns as it would in an app, and every run is announced with what it changed.
Commands: ``/memory``, ``/sleep``, ``/usage``, ``/help`` and ``/quit``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

from sleepagent.agent import SleepTimeAgent
from sleepagent.blocks import MemoryBlock
from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError, ModelCallError
from sleepagent.models import ModelOptions
from sleepagent.scheduling.events import EventKind, SleepEvent
from sleepagent.usage import Phase, Usage

__all__ = ["ChatSettings", "format_blocks", "format_usage", "run_chat"]

HELP = """commands:
  /memory   show the memory blocks
  /sleep    run sleep-time compute now
  /usage    tokens spent per phase (chat = test time, sleep = sleep time)
  /quit     leave (Ctrl-D works too)"""

PROMPT = "you> "


@dataclass(frozen=True, kw_only=True)
class ChatSettings:
    """What ``sleepagent chat`` talks to and where it keeps memory.

    Attributes:
        model: The primary model spec, such as ``"openai:gpt-4o-mini"``.
        sleep_model: The sleep-time model spec; ``None`` uses ``model``.
        base_url: An OpenAI-compatible server; ``None`` uses ``OPENAI_BASE_URL`` or OpenAI.
        thread_id: The conversation.
        user_id: The user, whose memory then spans threads.
        db: SQLite file for conversations and memory; ``None`` keeps them in memory.
        idle_seconds: Quiet time before sleep-time compute runs by itself.
        timeout: Seconds to wait for one model request; ``None`` sizes it from the server.
        max_retries: Retries of a failed model request.

    """

    model: str
    sleep_model: str | None = None
    base_url: str | None = None
    thread_id: str = "cli"
    user_id: str | None = None
    db: str | None = "sleepagent.db"
    idle_seconds: float = 30.0
    timeout: float | None = None
    max_retries: int = 2


class _Console:
    """Output shared by the prompt loop and the idle timer's thread."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def error(self, text: str) -> None:
        with self._lock:
            self.err.write(text + "\n")
            self.err.flush()


def run_chat(settings: ChatSettings, *, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Run the chat loop until ``/quit`` or end of input.

    Args:
        settings: Model, server, identity and storage.
        stdin: Where user lines come from.
        stdout: Where replies, events and command output go.
        stderr: Where errors go.

    Returns:
        The exit status: 0 after ``/quit`` or end of input, 2 when the model
        cannot be configured, 130 after Ctrl-C.

    """
    console = _Console(stdout, stderr)
    try:
        agent = _open_agent(settings)
    except ConfigurationError as error:
        console.error(f"sleepagent chat: {error}")
        console.error("  on the command line: --base-url URL (a local server needs no key)")
        return 2
    with agent:
        agent.subscribe(lambda event: _announce(console, event))
        where = f"thread {settings.thread_id}" + (
            f", user {settings.user_id}" if settings.user_id else ""
        )
        console.say(f"sleepagent chat with {settings.model} ({where}); /help for commands")
        try:
            return _loop(agent, settings, console, stdin)
        except KeyboardInterrupt:
            console.say("")
            return 130


def _open_agent(settings: ChatSettings) -> SleepTimeAgent:
    options = ModelOptions(base_url=settings.base_url, max_retries=settings.max_retries)
    if settings.timeout is not None:
        options = dataclasses.replace(options, timeout=settings.timeout)
    return SleepTimeAgent(
        settings.model,
        sleep_model=settings.sleep_model,
        model_options=options,
        config=SleepConfig(idle_seconds=settings.idle_seconds),
        db=settings.db,
    )


def _loop(agent: SleepTimeAgent, settings: ChatSettings, console: _Console, stdin: TextIO) -> int:
    thread_id, user_id = settings.thread_id, settings.user_id
    while True:
        console.write(PROMPT)
        line = stdin.readline()
        if not line:
            console.say("")
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        try:
            if text == "/help":
                console.say(HELP)
            elif text == "/memory":
                console.say(
                    format_blocks(agent.memory(thread_id=thread_id, user_id=user_id).values())
                )
            elif text == "/usage":
                console.say(format_usage(agent.usage(thread_id=thread_id, user_id=user_id)))
            elif text == "/sleep":
                result = agent.sleep(thread_id=thread_id, user_id=user_id)
                if not result.messages_processed:
                    console.say("(nothing new since the last sleep-time run)")
            elif text.startswith("/"):
                console.say(f"unknown command {text.split()[0]}; /help lists them")
            else:
                console.write("bot> ")
                for piece in agent.chat_stream(text, thread_id=thread_id, user_id=user_id):
                    console.write(piece)
                console.say("")
        except ModelCallError as error:
            # The turn was not logged: the user can simply try again.
            console.say("")
            console.error(f"error: {error}")


def _announce(console: _Console, event: SleepEvent) -> None:
    """Tell the user when sleep-time compute ran and what it changed."""
    if event.kind is EventKind.STARTED:
        console.say(f"\n[sleep-time compute started ({event.reason})]")
    elif event.kind is EventKind.FINISHED:
        spent = f", {event.usage.total_tokens} tokens" if event.usage else ""
        took = f" in {event.duration:.1f}s" if event.duration is not None else ""
        changed = ", ".join(
            f"{diff.label} v{diff.version_before}->v{diff.version_after}" for diff in event.diffs
        )
        console.say(f"[sleep-time compute finished{took}{spent}: {changed or 'no changes'}]")
        for diff in event.diffs:
            console.say(diff.unified().rstrip("\n"))
    elif event.kind is EventKind.FAILED:
        retry = " (will retry)" if event.will_retry else ""
        console.say(f"[sleep-time compute failed: {event.error}{retry}]")
    elif event.kind is EventKind.CONFLICT:
        console.say(f"[sleep-time compute dropped {len(event.conflicts)} conflicting edits]")


def format_blocks(blocks: Iterable[MemoryBlock]) -> str:
    """Memory blocks as readable text: label, version, size, then the value."""
    parts = []
    for block in blocks:
        stamp = block.updated_at.isoformat() if block.updated_at else "never written"
        lines = [f"[{block.label}] v{block.version}, {block.chars}/{block.limit} chars, {stamp}"]
        if block.description:
            lines.append(f"  ({block.description})")
        lines.extend(f"  {line}" for line in block.value.splitlines() or ["(empty)"])
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def format_usage(usage: Mapping[Phase, Usage]) -> str:
    """Token usage per phase, one line each."""
    lines = []
    for phase in ("chat", "sleep"):
        spent = usage.get(phase, Usage())
        lines.append(
            f"{phase:<5} {spent.calls} calls, {spent.input_tokens} in "
            f"({spent.cached_tokens} cached), {spent.output_tokens} out "
            f"({spent.reasoning_tokens} reasoning)"
        )
    return "\n".join(lines)
