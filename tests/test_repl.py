"""``sleepagent chat``: driven as a terminal program (pexpect, a real pty).

The model is the loopback OpenAI-compatible server, or the scripted models of
``--offline``. On the pty the chat runs its full line editor, so the tests type
keys (arrows, history) and read the screen as a person would.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from sleepagent.cli.progress import Progress, progress_line
from sleepagent.cli.repl import ChatSettings, run_chat
from sleepagent.testing import (
    Completion,
    Fault,
    LoopbackOpenAI,
    RecordedRequest,
    slow,
    wire_call,
)
from tests.conftest import POSTGRES_URL, empty_postgres, with_password

EXPECT_TIMEOUT_S = 30
LEFT, UP = "\x1b[D", "\x1b[A"

LEARN = Completion("- My name is Ada.\n- I'm vegetarian and live in Lisbon.")
"""The fact pass's list; a line the user did not say is refused, the rest recorded."""

# Terminal output carries colour and cursor codes between the words.
_CODES = r"(?:\x1b\[[0-9;?]*[A-Za-z]|[\r\x08])*"


def shown(text: str) -> str:
    """A pattern for ``text`` as it appears on the terminal, codes allowed between characters."""
    return _CODES.join(re.escape(char) for char in text)


@pytest.fixture
def server():
    with LoopbackOpenAI() as server:
        yield server
    server.assert_exhausted()


def chat_env(**extra: str) -> dict[str, str]:
    """This environment without OpenAI settings (only the flags count), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    # pexpect's pty does not answer prompt_toolkit's cursor-position queries.
    return {**env, "PROMPT_TOOLKIT_NO_CPR": "1", **extra}


def spawn(*args: str, tmp_path: Path, **env: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "sleepagent", "chat", "--history", str(tmp_path / "history"), *args],
        env=chat_env(**env),
        encoding="utf-8",
        timeout=EXPECT_TIMEOUT_S,
        dimensions=(40, 160),
    )


def expect(child: pexpect.spawn, text: str) -> None:
    child.expect(shown(text))


def quit_(child: pexpect.spawn) -> int:
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loop_chat(server: LoopbackOpenAI, tmp_path: Path, *args: str, **env: str) -> pexpect.spawn:
    return spawn(
        "--model", "openai:loop", "--base-url", server.base_url,
        "--db", str(tmp_path / "chat.db"), *args, tmp_path=tmp_path, **env,
    )  # fmt: skip


def test_two_turns_then_sleep_then_memory_shows_the_change_then_quit(server, tmp_path):
    server.extend(["Hello Ada!", "Lisbon has great vegetarian places.", LEARN])
    child = loop_chat(server, tmp_path, "--thread", "t1", "--idle", "3600")
    expect(child, "you> ")
    child.send(f"Hi, I'm Aa.{LEFT}{LEFT}d\r")  # the arrow moves the cursor, it is not sent
    expect(child, "thinking")  # the spinner, until the first piece of the reply
    child.expect_exact("\x1b[1;32mbot> ")  # in colour
    expect(child, "Hello Ada!")
    expect(child, "you> ")
    child.send("I'm vegetarian and live in Lisbon.\r")
    expect(child, "Lisbon has great vegetarian places.")
    expect(child, "you> ")
    child.send("/sleep\r")
    expect(child, "[sleep-time compute finished (edited): 4 messages read")
    expect(child, "human v0->v1")
    expect(child, "+I'm vegetarian and live in Lisbon.")
    expect(child, "you> ")
    child.send("/memory\r")
    child.expect(shown("[human] v1, ") + r"\d+" + shown("/5000 chars"))
    expect(child, "I'm vegetarian and live in Lisbon.")
    expect(child, "you> ")
    assert quit_(child) == 0
    assert server.requests[0].messages[-1]["content"] == "Hi, I'm Ada."
    assert [request.stream for request in server.requests] == [True, True, False]


def test_the_up_arrow_recalls_a_line_from_an_earlier_session(server, tmp_path):
    server.extend(["first answer", "second answer"])
    first = loop_chat(server, tmp_path, "--idle", "3600", "--thread", "a")
    expect(first, "you> ")
    first.send("what is sleep-time compute?\r")
    expect(first, "first answer")
    assert quit_(first) == 0

    second = loop_chat(server, tmp_path, "--idle", "3600", "--thread", "b")
    expect(second, "you> ")
    second.send(f"{UP}{UP}\r")  # past /quit, to the question
    expect(second, "second answer")
    assert quit_(second) == 0
    assert server.requests[1].messages[-1]["content"] == "what is sleep-time compute?"


def test_an_idle_run_is_announced_above_the_prompt_and_the_half_typed_line_survives(
    server, tmp_path
):
    server.extend(["Hello Ada!", LEARN, "Noted."])
    child = loop_chat(server, tmp_path, "--idle", "0.5")
    expect(child, "you> ")
    child.send("Hi, I'm Ada.\r")
    expect(child, "bot> Hello Ada!")
    expect(child, "you> ")
    child.send("half a")
    expect(child, "[sleep-time compute started (idle)]")
    expect(child, "[sleep-time compute finished (edited)")
    expect(child, "human v0->v1")
    expect(child, "you> half a")  # the prompt is drawn again, with what was typed
    child.send(" sentence\r")
    expect(child, "bot> Noted.")
    assert quit_(child) == 0
    assert server.requests[-1].messages[-1]["content"] == "half a sentence"


def test_offline_runs_on_scripted_models_says_so_and_learns_between_turns(tmp_path):
    child = spawn("--offline", "--db", str(tmp_path / "chat.db"), tmp_path=tmp_path)
    expect(child, "OFFLINE: the models are scripted")
    expect(child, "you> ")
    child.send("I'm Ada and I'm vegetarian\r")
    expect(child, "What I remember about you: nothing yet")
    expect(child, "you> ")
    child.send("/sleep\r")
    expect(child, "+I'm Ada and I'm vegetarian")
    expect(child, "you> ")
    child.send("dinner?\r")
    expect(child, "What I remember about you: I'm Ada and I'm vegetarian")
    expect(child, "you> ")
    child.send("/history human\r")
    expect(child, "v1 ")
    expect(child, "by sleep (manual)")
    assert quit_(child) == 0


def test_without_a_key_or_server_it_names_the_flags_and_exits_non_zero(tmp_path):
    db = str(tmp_path / "chat.db")
    child = spawn("--model", "openai:gpt-4o-mini", "--db", db, tmp_path=tmp_path)
    expect(child, "OPENAI_API_KEY")
    expect(child, "--offline")
    expect(child, "--base-url")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_a_database_in_a_missing_folder_is_named_with_the_flag_to_fix_it(tmp_path):
    db = tmp_path / "no" / "such" / "chat.db"
    child = spawn("--offline", "--db", str(db), tmp_path=tmp_path)
    expect(child, "the folder")
    expect(child, "does not exist")
    expect(child, "--db")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert not db.parent.exists()


def test_an_unreachable_server_fails_the_turn_with_flag_hints_and_keeps_going(tmp_path):
    child = spawn(
        "--model", "openai:loop", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
        "--db", str(tmp_path / "chat.db"), "--max-retries", "0", "--timeout", "5",
        tmp_path=tmp_path,
    )  # fmt: skip
    expect(child, "you> ")
    child.send("Hi\r")
    expect(child, "error: the chat model call failed")
    expect(child, "Connection error")
    expect(child, "--timeout SECONDS")
    expect(child, "--max-retries N")
    expect(child, "you> ")
    assert quit_(child) == 0


# --- piped input, in process ---------------------------------------------------------


def run_lines(server: LoopbackOpenAI, *lines: str) -> tuple[int, str]:
    settings = ChatSettings(model="openai:loop", base_url=server.base_url, db=None)
    out = io.StringIO()
    code = run_chat(
        settings, stdin=io.StringIO("".join(f"{line}\n" for line in lines)), stdout=out,
        stderr=io.StringIO(),
    )  # fmt: skip
    return code, out.getvalue()


def test_usage_shows_the_tokens_the_server_reported_per_phase(server):
    server.extend([Completion("Hi!", prompt_tokens=120, completion_tokens=9, cached_tokens=64)])
    _, out = run_lines(server, "Hello", "/usage", "/quit")
    assert "chat  1 calls, 120 in (64 cached), 9 out (0 reasoning)" in out
    assert "sleep 0 calls" in out


def test_piped_output_has_no_colour_codes(server):
    server.extend(["Hi!"])
    _, out = run_lines(server, "Hello", "/quit")
    assert "bot> Hi!" in out
    assert "\x1b[" not in out


def test_a_sleep_run_without_a_usable_edit_says_so_and_keeps_the_messages_pending(server):
    # The fact pass gets prose, not a list; the edit round then gets plain text, no memory
    # tool call; asked for tagged blocks, still none (and once more after the repair
    # request): the default edit mode has nothing usable.
    replies = ["Noted.", "I will remember that.", "Nothing to write.", "Still nothing."]
    server.extend(["Hi!", *replies])
    _, out = run_lines(server, "I'm Ada", "/sleep", "/quit")
    assert "[sleep-time compute finished (malformed_text)" in out
    assert "these messages stay pending and are tried again" in out


def test_sleep_with_nothing_new_says_so_and_calls_no_model(server):
    _, out = run_lines(server, "/sleep", "/quit")
    assert "(nothing new since the last sleep-time run)" in out
    assert server.requests == []


def test_an_unknown_command_points_at_help(server):
    _, out = run_lines(server, "/frobnicate", "/quit")
    assert "unknown command /frobnicate; /help lists them" in out
    assert server.requests == []


@pytest.mark.skipif(POSTGRES_URL is None, reason="SLEEPAGENT_TEST_POSTGRES_URL is not set")
def test_the_banner_hides_the_password_of_a_postgres_url():
    assert POSTGRES_URL is not None
    empty_postgres(POSTGRES_URL)
    url = with_password(POSTGRES_URL, "topsecret")
    out = io.StringIO()
    settings = ChatSettings(model="offline", offline=True, db=url)
    code = run_chat(settings, stdin=io.StringIO("/quit\n"), stdout=out, stderr=io.StringIO())
    assert code == 0
    assert "memory in postgresql://postgres:***@" in out.getvalue()
    assert "topsecret" not in out.getvalue()


def offline_chat(db: Path, *lines: str, user: str | None = None) -> tuple[int, str, str]:
    settings = ChatSettings(model="offline", offline=True, db=str(db), user_id=user)
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("".join(f"{line}\n" for line in lines))
    code = run_chat(settings, stdin=stdin, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("first_user", "then_user", "says"),
    [
        (None, "alice", "belongs to memory scope thread:cli; it was used without --user: "
         "drop --user to go on with it, or pass --thread NEW to start alice's own conversation"),
        ("ada", None, "belongs to memory scope user:ada; pass --user ada to go on with it, "
         "or --thread NEW"),
    ],
)  # fmt: skip
def test_a_thread_used_under_another_identity_is_refused_at_start_with_the_flags_to_fix_it(
    tmp_path, first_user, then_user, says
):
    db = tmp_path / "try.db"
    assert offline_chat(db, "I'm Ada", "/quit", user=first_user)[0] == 0
    code, out, err = offline_chat(db, "hello again", "/quit", user=then_user)
    assert code == 2
    assert "you> " not in out, "refused before the first prompt"
    (line,) = err.splitlines()
    assert line == f"sleepagent chat: thread 'cli' {says}"


def test_help_shows_each_command_once_with_its_argument(server):
    _, out = run_lines(server, "/help", "/quit")
    assert "/history LABEL" in out
    assert "/history /history" not in out and out.count("/history") == 1


def test_history_of_an_unknown_block_names_the_blocks_there_are(tmp_path):
    _, out, _ = offline_chat(tmp_path / "try.db", "/history nosuch", "/history human", "/quit")
    assert "unknown block 'nosuch'; the blocks are persona, human, learned_context" in out
    assert "no version of 'human' yet" in out


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
def test_input_that_is_not_utf8_is_named_as_such_and_not_sent(tmp_path, errors):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEEPAGENT_"))}
    done = subprocess.run(
        [sys.executable, "-m", "sleepagent", "chat", "--offline", "--db", str(tmp_path / "u.db")],
        input="café\n/usage\n/quit\n".encode("latin-1"),
        env={**env, "PYTHONIOENCODING": f"utf-8:{errors}"},
        capture_output=True,
        timeout=EXPECT_TIMEOUT_S * 2,
        check=False,
    )
    out = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert "error: the input is not valid UTF-8 (byte 0xE9) at character 4; nothing was sent" in out
    assert "surrogate" not in out
    assert "chat  0 calls" in out, "no model was called"


def test_end_of_input_exits_cleanly(server):
    code, _ = run_lines(server)
    assert code == 0


def hanging(arrived: threading.Event) -> Callable[[RecordedRequest], Fault]:
    """A step that accepts the request, says so through ``arrived``, and never answers.

    (Until the server closes at the end of the test.)
    """

    def step(request: RecordedRequest) -> Fault:
        arrived.set()
        return slow("(never sent)", delay=3600)

    return step


def test_ctrl_c_clears_the_line_at_the_prompt_and_cancels_a_reply_in_progress(server, tmp_path):
    arrived = threading.Event()
    server.extend([hanging(arrived), "hello again"])
    # The default timeout for a server on this machine is 600 s, tried 3 times.
    child = loop_chat(server, tmp_path, "--idle", "3600")
    expect(child, "you> ")
    child.send("typed by mistake")
    child.send("\x03")  # Ctrl-C at the prompt: the line is dropped, the chat goes on
    expect(child, "you> ")
    child.send("hello\r")
    assert arrived.wait(EXPECT_TIMEOUT_S), "the request reached the server"
    child.expect(shown("thinking… ") + "[1-9]" + shown("s"))  # the seconds count
    child.send("\x03")  # Ctrl-C while the model thinks: the call is cancelled at once
    child.expect(shown("(cancelled: nothing of this turn was kept"), timeout=10)
    expect(child, "you> ")
    child.send("and now?\r")
    expect(child, "bot> hello again")
    assert quit_(child) == 0
    assert [m["content"] for m in server.requests[1].messages[1:]] == ["and now?"], (
        "nothing of the cancelled turn was kept"
    )


def test_sleep_shows_its_progress_and_ctrl_c_cancels_it_leaving_the_messages_pending(
    server, tmp_path
):
    arrived = threading.Event()
    first_edit = Completion.calling(
        wire_call("memory_rethink", label="human", new_value="Name: Ada."),
        prompt_tokens=100,
        completion_tokens=20,
    )
    server.extend(["Hello Ada!", first_edit, hanging(arrived), LEARN])
    child = loop_chat(server, tmp_path, "--idle", "3600")
    expect(child, "you> ")
    child.send("Hi, I'm Ada.\r")
    expect(child, "bot> Hello Ada!")
    expect(child, "you> ")
    child.send("/sleep\r")
    assert arrived.wait(EXPECT_TIMEOUT_S), "the run's second model call reached the server"
    child.expect(
        shown("sleep-time compute… ")
        + r"\d+"
        + shown("s · 2 messages to read · model call 2 · 120 tokens so far")
    )
    child.send("\x03")
    child.expect(shown("(sleep-time compute cancelled: the messages it had not"), timeout=10)
    expect(child, "you> ")
    child.send("/sleep\r")
    expect(child, "[sleep-time compute finished (edited): 2 messages read")
    assert quit_(child) == 0


def test_the_spinner_says_the_seconds_the_model_calls_and_the_tokens_so_far():
    progress = Progress("sleep-time compute", started=100.0)
    assert progress_line(progress, now=100.4) == "sleep-time compute… 0s"
    progress.to_read, progress.calls, progress.tokens = 12, 3, 2345
    assert progress_line(progress, now=137.9) == (
        "sleep-time compute… 37s · 12 messages to read · model call 3 · 2,345 tokens so far"
    )
    progress.waiting_for = "user:ada"
    progress.text_format = True
    assert progress_line(progress, now=140) == (
        "sleep-time compute… 40s · 12 messages to read · waiting for another run of user:ada"
        " · 2,345 tokens so far · writing memory as tagged text"
    )
