"""``sleepagent chat``: talk to a model in the terminal and watch memory change.

On a terminal the input line is prompt_toolkit's (arrow keys, Ctrl-R, a history
file, completion of ``/`` commands), and output is rich's (colour, rendered
diffs, a spinner that counts the seconds and says what the model is doing).
Sleep-time runs started by the idle timer are announced above the prompt, which
is redrawn as it was. Piped input is read line by line with the same commands,
for scripts.

The agent is an ``AsyncSleepTimeAgent`` on an event loop of its own
(:mod:`sleepagent.cli.background`), so Ctrl-C during a reply or ``/sleep``
cancels the model call at once; the library then undoes the cancelled turn.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from langchain_core.runnables import RunnableConfig
from rich.console import Console, RenderableType
from rich.text import Text

from sleepagent.agent.facades import AsyncSleepTimeAgent
from sleepagent.cli.background import AgentLoop, Cancelled
from sleepagent.cli.progress import ModelCalls, Progress
from sleepagent.cli.terminal import blocks_view, diff_view, history_view, make_console, usage_view
from sleepagent.config import SleepConfig
from sleepagent.errors import (
    ConfigurationError,
    ModelCallError,
    ScopeMismatchError,
    SleepAgentError,
    StorageError,
)
from sleepagent.models import ModelOptions
from sleepagent.results import BlockDiff, SleepOutcome, SleepResult
from sleepagent.scheduling.events import EventKind, SleepEvent
from sleepagent.store.catalog import Catalog
from sleepagent.store.dburl import redact_url

if TYPE_CHECKING:
    from prompt_toolkit.history import History

__all__ = ["COMMANDS", "ChatSettings", "run_chat"]

COMMANDS = {
    "/memory": "show the memory blocks",
    "/sleep": "run sleep-time compute now",
    "/history": "every version of a block, with diffs",
    "/usage": "tokens per phase (chat = test time, sleep = sleep time)",
    "/help": "this list",
    "/quit": "leave (Ctrl-D works too)",
}
_ARGUMENTS = {"/history": "LABEL"}

PROMPT = "you> "


@dataclass(frozen=True, kw_only=True)
class ChatSettings:
    """What ``sleepagent chat`` talks to and where it keeps memory.

    Attributes:
        model: The primary model spec, such as ``"openai:gpt-4o-mini"``.
        sleep_model: The sleep-time model spec; ``None`` uses ``model``.
        base_url: An OpenAI-compatible server; ``None`` uses ``OPENAI_BASE_URL`` or OpenAI.
        offline: Use scripted models (no key, no network) instead of ``model``.
        thread_id: The conversation.
        user_id: The user, whose memory then spans threads.
        db: Database for conversations and memory; ``None`` keeps them in memory.
        idle_seconds: Quiet time before sleep-time compute runs by itself.
        timeout: Seconds to wait for one model request; ``None`` sizes it from the server.
        max_retries: Retries of a failed model request.
        history_file: Where past input lines are kept; ``None`` keeps them for this session.

    """

    model: str
    sleep_model: str | None = None
    base_url: str | None = None
    offline: bool = False
    thread_id: str = "cli"
    user_id: str | None = None
    db: str | None = "sleepagent.db"
    idle_seconds: float = 30.0
    timeout: float | None = None
    max_retries: int = 2
    history_file: str | None = None


def run_chat(settings: ChatSettings, *, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Run the chat until ``/quit`` or end of input.

    Args:
        settings: Model, server, identity and storage.
        stdin: Where user lines come from; a terminal gets the full line editor.
        stdout: Where replies, events and command output go.
        stderr: Where errors go.

    Returns:
        The exit status: 0 after ``/quit`` or end of input, 1 when the database
        cannot be opened, 2 when the model cannot be configured or the thread
        belongs to another memory scope than ``--user`` names.

    """
    with AgentLoop() as loop:
        return _run_chat(settings, loop, stdin=stdin, stdout=stdout, stderr=stderr)


def _run_chat(
    settings: ChatSettings, loop: AgentLoop, *, stdin: TextIO, stdout: TextIO, stderr: TextIO
) -> int:
    interactive = _is_terminal(stdin) and _is_terminal(stdout)
    # On a terminal the console follows sys.stdout, which prompt_toolkit swaps
    # for a proxy while the prompt is shown, so output lands above the prompt.
    screen = _Screen(make_console(None if interactive else stdout))
    errors = make_console(stderr)
    try:
        agent = loop.run(_open_agent(settings))
    except ConfigurationError as error:
        errors.print(f"sleepagent chat: {error}", style="red")
        errors.print(
            "  try: --offline (scripted models), --base-url URL (a local server needs no key), "
            "or set OPENAI_API_KEY"
        )
        return 2
    except StorageError as error:
        errors.print(f"sleepagent chat: {error}", style="red")
        errors.print(
            "  try: --db FILE (a SQLite file in an existing folder) or --db postgresql://..."
        )
        return 1
    try:
        if (refused := _owner_refusal(agent, settings, loop)) is not None:
            errors.print(f"sleepagent chat: {refused}", style="red")
            return 2
        agent.subscribe(lambda event: _announce(screen, event))
        chat = _Chat(agent, settings, screen, loop)
        screen.show(_banner(settings))
        lines = _terminal_lines(settings, screen) if interactive else _piped_lines(stdin, screen)
        for line in lines:
            if not chat.handle(line):
                break
    finally:
        loop.run(agent.aclose())
    return 0


def _owner_refusal(
    agent: AsyncSleepTimeAgent, settings: ChatSettings, loop: AgentLoop
) -> str | None:
    """Why this thread cannot be used with this identity, as the flags that fix it; or None.

    Checked before the first prompt: a thread belongs to the memory scope it was
    first used with, and every message to it under another scope would be refused.
    """
    thread, user = settings.thread_id, settings.user_id
    try:
        loop.run(agent.blocks.acheck_owner(agent.scope(thread_id=thread, user_id=user), thread))
    except ScopeMismatchError as error:
        kind, _, owner = error.bound_to.partition(":")
        new = f"--thread NEW to start {user}'s own conversation" if user else "--thread NEW"
        if kind == "user":
            fix = f"pass --user {owner} to go on with it, or {new}"
        else:
            fix = f"it was used without --user: drop --user to go on with it, or pass {new}"
        return f"thread {thread!r} belongs to memory scope {error.bound_to}; {fix}"
    except ConfigurationError as error:
        return str(error)
    return None


class _Screen:
    """All output, from the prompt loop and from the idle timer's thread.

    An announcement from the timer is printed at once while the user is at the
    prompt (prompt_toolkit draws it above the input line); while a reply or a
    command is being printed it waits, so it never cuts a line in half.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._waiting = False
        self._deferred: list[RenderableType] = []

    def show(self, *items: RenderableType, end: str = "\n") -> None:
        with self._lock:
            self.console.print(*items, sep="", end=end)

    def announce(self, item: RenderableType) -> None:
        with self._lock:
            if self._waiting:
                self.console.print(item)
            else:
                self._deferred.append(item)

    @contextmanager
    def waiting_for_input(self) -> Iterator[None]:
        with self._lock:
            for item in self._deferred:
                self.console.print(item)
            self._deferred.clear()
            self._waiting = True
        try:
            yield
        finally:
            with self._lock:
                self._waiting = False

    @contextmanager
    def thinking(self, progress: Progress) -> Iterator[Callable[[], None]]:
        """A spinner saying ``progress`` until the returned function is called (terminal only)."""
        if not self.console.is_terminal:
            yield lambda: None
            return
        status = self.console.status(progress, spinner="dots")
        status.start()
        try:
            yield status.stop
        finally:
            status.stop()


class _Chat:
    """The commands and the turns of one chat session."""

    def __init__(
        self, agent: AsyncSleepTimeAgent, settings: ChatSettings, screen: _Screen, loop: AgentLoop
    ) -> None:
        self.agent = agent
        self.thread_id, self.user_id = settings.thread_id, settings.user_id
        self.screen = screen
        self.loop = loop

    def handle(self, line: str) -> bool:
        """Act on one input line; False means leave."""
        text = line.strip()
        if not text:
            return True
        command, _, argument = text.partition(" ")
        if command in ("/quit", "/exit"):
            return False
        if (undecodable := _not_utf8(text)) is not None:
            self.screen.show(Text(undecodable, style="red"))
            return True
        thread, user = self.thread_id, self.user_id
        try:
            if command == "/help":
                self.screen.show(_help_view())
            elif command == "/memory":
                memory = self.loop.run(self.agent.memory(thread_id=thread, user_id=user))
                self.screen.show(blocks_view(memory.values()))
            elif command == "/usage":
                usage = self.loop.run(self.agent.usage(thread_id=thread, user_id=user))
                self.screen.show(usage_view(usage))
            elif command == "/sleep":
                self._sleep()
            elif command == "/history":
                self._history(argument.strip())
            elif command.startswith("/"):
                self.screen.show(f"unknown command {command}; /help lists them")
            else:
                self._turn(text)
        except ModelCallError as error:
            # The turn was not logged: the user can simply try again.
            self.screen.show(_model_error_view(error))
        except SleepAgentError as error:
            self.screen.show(Text(f"error: {error}", style="red"))
        return True

    def _turn(self, text: str) -> None:
        progress = Progress("thinking")
        pieces = self.loop.stream(
            self.agent.chat_stream(
                text, thread_id=self.thread_id, user_id=self.user_id, config=_counted(progress)
            )
        )
        replying = False
        try:
            with self.screen.thinking(progress) as stop_spinner:
                first = next(pieces, "")
                stop_spinner()
            self.screen.show(Text("bot> ", style="bold green"), first, end="")
            replying = True
            for piece in pieces:
                self.screen.show(piece, end="")
            self.screen.show("")
        except ModelCallError:
            self.screen.show("")
            raise
        except Cancelled:
            if replying:
                self.screen.show("")
            self.screen.show(
                Text(
                    "(cancelled: nothing of this turn was kept; send it again, or Ctrl-D to leave)",
                    style="yellow",
                )
            )

    def _sleep(self) -> None:
        progress = Progress("sleep-time compute")
        unsubscribe = self.agent.subscribe(progress.on_event(self.thread_id))
        try:
            with self.screen.thinking(progress) as stop_spinner:
                result = self.loop.interruptible(self._sleep_run(progress))
                stop_spinner()
        except Cancelled:
            self.screen.show(
                Text(
                    "(sleep-time compute cancelled: the messages it had not committed stay "
                    "pending, for /sleep or the idle timer)",
                    style="yellow",
                )
            )
            return
        finally:
            unsubscribe()
        if result.outcome is SleepOutcome.NOTHING_NEW:
            self.screen.show("(nothing new since the last sleep-time run)")
            return
        self.screen.show(_result_view(result))

    async def _sleep_run(self, progress: Progress) -> SleepResult:
        position = await self.agent.blocks.aposition(self.thread_id)
        progress.to_read = position.pending if position is not None else 0
        return await self.agent.sleep(
            thread_id=self.thread_id, user_id=self.user_id, config=_counted(progress)
        )

    def _history(self, label: str) -> None:
        if not label:
            self.screen.show("usage: /history LABEL (the labels: /memory)")
            return
        self.screen.show(self.loop.run(self._history_view(label)))

    async def _history_view(self, label: str) -> RenderableType:
        thread, user = self.thread_id, self.user_id
        memory = await self.agent.memory(thread_id=thread, user_id=user)
        if label not in memory:
            return Text(f"unknown block {label!r}; the blocks are {', '.join(memory)}", style="red")
        scope = self.agent.scope(thread_id=thread, user_id=user)
        steps = await Catalog(self.agent.blocks.store).ahistory(scope, label)
        return history_view(steps) if steps else f"no version of {label!r} yet"


def _counted(progress: Progress) -> RunnableConfig:
    """A run config whose callback counts the run's model calls and tokens into ``progress``."""
    return {"callbacks": [ModelCalls(progress)]}


def _not_utf8(text: str) -> str | None:
    """What to say about a line whose bytes were not UTF-8, or None for a good line.

    Input that is not UTF-8 reaches Python with each bad byte as a lone surrogate
    (U+DC80-U+DCFF, the "surrogateescape" error handler); the agent would refuse it
    in terms of code points, where the user needs to hear about the encoding.
    """
    for position, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            byte = f" (byte 0x{ord(char) - 0xDC00:02X})" if char >= "\udc80" else ""
            return (
                f"error: the input is not valid UTF-8{byte} at character {position + 1}; "
                "nothing was sent. Set the terminal's character encoding to UTF-8 "
                "(for example LANG=C.UTF-8)"
            )
    return None


# --- input -------------------------------------------------------------------------


def _terminal_lines(settings: ChatSettings, screen: _Screen) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession(
        history=_file_history(settings.history_file) or InMemoryHistory(),
        completer=WordCompleter(list(COMMANDS), sentence=True),
        complete_while_typing=False,
    )
    toolbar = (
        f" {_where(settings)} · sleep after {settings.idle_seconds:g}s idle · /help · Ctrl-D quits "
    )
    prompt = FormattedText([("bold ansiblue", PROMPT)])
    while True:
        with patch_stdout(raw=True), screen.waiting_for_input():
            try:
                line = session.prompt(prompt, bottom_toolbar=toolbar)
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line, as in a shell
            except EOFError:
                return
        yield line


def _file_history(file: str | None) -> History | None:
    from prompt_toolkit.history import FileHistory

    if file is None:
        return None
    path = Path(file).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable history folder should not stop the chat
    return FileHistory(str(path))


def _piped_lines(stdin: TextIO, screen: _Screen) -> Iterator[str]:
    reconfigure = getattr(stdin, "reconfigure", None)
    if reconfigure is not None:
        # Bytes that are not UTF-8 then arrive as lone surrogates, which handle()
        # names, where a strict stream (some locales) would end the chat with a traceback.
        reconfigure(errors="surrogateescape")
    while True:
        screen.show(PROMPT, end="")
        with screen.waiting_for_input():
            line = stdin.readline()
        if not line:
            screen.show("")
            return
        yield line


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --- agent ---------------------------------------------------------------------------


async def _open_agent(settings: ChatSettings) -> AsyncSleepTimeAgent:
    """The chat's agent, opened on the loop it will run on (its idle timer uses that loop)."""
    config = SleepConfig(idle_seconds=settings.idle_seconds)
    if settings.offline:
        from sleepagent.cli.offline import offline_models

        chat_model, sleep_model = offline_models()
        agent = AsyncSleepTimeAgent(
            chat_model, sleep_model=sleep_model, config=config, db=settings.db
        )
    else:
        options = ModelOptions(base_url=settings.base_url, max_retries=settings.max_retries)
        if settings.timeout is not None:
            options = dataclasses.replace(options, timeout=settings.timeout)
        agent = AsyncSleepTimeAgent(
            settings.model,
            sleep_model=settings.sleep_model,
            model_options=options,
            config=config,
            db=settings.db,
        )
    return await agent.__aenter__()


# --- views -----------------------------------------------------------------------------


def _where(settings: ChatSettings) -> str:
    user = f", user {settings.user_id}" if settings.user_id else ""
    return f"thread {settings.thread_id}{user}"


def _banner(settings: ChatSettings) -> RenderableType:
    where = _where(settings)
    storage = (
        f"memory in {redact_url(settings.db)}" if settings.db is not None else "memory kept in RAM"
    )
    if settings.offline:
        from sleepagent.cli.offline import BANNER

        banner = Text(f"sleepagent chat --offline: {BANNER}", style="bold yellow")
        banner.append(f"\n{where}; {storage}; /help for commands", style="")
        return banner
    return Text(
        f"sleepagent chat with {settings.model} ({where}; {storage}); /help for commands",
        style="bold",
    )


def _help_view() -> Text:
    text = Text("commands:")
    for command, what in COMMANDS.items():
        usage = f"{command} {_ARGUMENTS[command]}" if command in _ARGUMENTS else command
        text.append(f"\n  {usage:<16}", style="bold")
        text.append(what)
    text.append("\nCtrl-C stops a reply or /sleep; at the prompt it clears the line.", style="dim")
    return text


def _changes(diffs: tuple[BlockDiff, ...]) -> str:
    changed = ", ".join(f"{d.label} v{d.version_before}->v{d.version_after}" for d in diffs)
    return changed or "no changes"


def _result_view(result: SleepResult) -> RenderableType:
    text = Text(f"[sleep-time compute finished ({result.outcome.value})", style="magenta")
    text.append(
        f": {result.messages_processed} messages read, {result.steps} model calls, "
        f"{result.usage.total_tokens} tokens; {_changes(result.diffs)}]",
        style="magenta",
    )
    if not result.outcome.processed:
        text.append(
            "\n  the model made no usable edit; these messages stay pending and are tried again",
            style="yellow",
        )
    for page in result.failed_pages:
        text.append(
            f"\n  gave up on messages {page.first_seq}-{page.last_seq} after {page.attempts} "
            f"attempts: {page.error}",
            style="red",
        )
    for diff in result.diffs:
        text.append("\n")
        text.append_text(diff_view(diff, indent="  "))
    if result.conflicts:
        text.append(f"\n  dropped {len(result.conflicts)} conflicting edits", style="yellow")
    return text


def _announce(screen: _Screen, event: SleepEvent) -> None:
    if event.reason == "manual":
        return  # /sleep reports its own run, in more detail
    view = _event_view(event)
    if view is not None:
        screen.announce(view)


def _event_view(event: SleepEvent) -> RenderableType | None:
    """A sleep run's event as the user sees it above the prompt (None: not shown)."""
    if event.kind is EventKind.STARTED:
        return Text(f"[sleep-time compute started ({event.reason})]", style="magenta")
    if event.kind is EventKind.FINISHED:
        outcome = f" ({event.outcome.value})" if event.outcome is not None else ""
        spent = f", {event.usage.total_tokens} tokens" if event.usage else ""
        took = f" in {event.duration:.1f}s" if event.duration is not None else ""
        text = Text(
            f"[sleep-time compute finished{outcome}{took}{spent}: {_changes(event.diffs)}]",
            style="magenta",
        )
        for diff in event.diffs:
            text.append("\n")
            text.append_text(diff_view(diff, indent="  "))
        return text
    if event.kind is EventKind.FAILED:
        retry = " (will retry)" if event.will_retry else ""
        return Text(f"[sleep-time compute failed: {event.error}{retry}]", style="red")
    if event.kind is EventKind.CONFLICT:
        return Text(
            f"[sleep-time compute dropped {len(event.conflicts)} conflicting edits]",
            style="yellow",
        )
    return None


def _model_error_view(error: ModelCallError) -> RenderableType:
    cause = str(error.cause).strip() or type(error.cause).__name__
    text = Text(f"error: the {error.phase} model call failed: {cause}", style="red")
    text.append(
        "\n  hint: check --base-url and OPENAI_API_KEY, or raise --timeout SECONDS / "
        "--max-retries N; the turn was not kept, so just send it again",
        style="dim",
    )
    return text
