"""``sleepagent chat``: driven as a terminal program against the loopback server."""

from __future__ import annotations

import io
import os
import socket
import sys

import pexpect
import pytest

from sleepagent.repl import ChatSettings, run_chat
from sleepagent.testing import Completion, LoopbackOpenAI, wire_call

EXPECT_TIMEOUT_S = 30
PROMPT = "you> "

LEARN = Completion.calling(
    wire_call("memory_rethink", label="human", new_value="Name: Ada."),
    wire_call("memory_insert", label="human", text="Vegetarian, lives in Lisbon."),
    wire_call("memory_finish"),
)


@pytest.fixture
def server():
    with LoopbackOpenAI() as server:
        yield server
    server.assert_exhausted()


def offline_env() -> dict[str, str]:
    """This environment without any OpenAI settings, so only the flags count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sleepagent.cli", "chat", *args],
        env=offline_env(),
        encoding="utf-8",
        timeout=EXPECT_TIMEOUT_S,
    )
    return child


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_turns_then_sleep_then_memory_shows_the_change_then_quit(server, tmp_path):
    server.extend(["Hello Ada!", "Lisbon has great vegetarian places.", LEARN])
    child = spawn(
        "--model", "openai:loop", "--base-url", server.base_url,
        "--db", str(tmp_path / "chat.db"), "--thread", "t1", "--idle", "3600",
    )  # fmt: skip
    child.expect_exact(PROMPT)
    child.sendline("Hi, I'm Ada.")
    child.expect_exact("bot> Hello Ada!")
    child.expect_exact(PROMPT)
    child.sendline("I'm vegetarian and live in Lisbon.")
    child.expect_exact("Lisbon has great vegetarian places.")
    child.expect_exact(PROMPT)
    child.sendline("/sleep")
    child.expect_exact("[sleep-time compute finished")
    child.expect_exact("human v0->v1")
    child.expect_exact(PROMPT)
    child.sendline("/memory")
    child.expect(r"\[human\] v1, \d+/5000 chars")
    child.expect_exact("Vegetarian, lives in Lisbon.")
    child.expect_exact(PROMPT)
    child.sendline("/quit")
    assert finish(child) == 0
    assert [request.stream for request in server.requests] == [True, True, False]


def test_the_idle_timer_runs_sleep_time_compute_and_says_so(server, tmp_path):
    server.extend(["Hello Ada!", LEARN])
    child = spawn(
        "--model", "openai:loop", "--base-url", server.base_url,
        "--db", str(tmp_path / "chat.db"), "--idle", "0.2",
    )  # fmt: skip
    child.expect_exact(PROMPT)
    child.sendline("Hi, I'm Ada.")
    child.expect_exact("[sleep-time compute started (idle)]")
    child.expect_exact("human v0->v1")
    child.sendline("/quit")
    assert finish(child) == 0


def test_without_a_key_or_server_it_says_what_to_set_and_exits_non_zero(tmp_path):
    child = spawn("--model", "openai:gpt-4o-mini", "--db", str(tmp_path / "chat.db"))
    child.expect_exact("OPENAI_API_KEY")
    child.expect_exact("OPENAI_BASE_URL")
    child.expect_exact("--base-url")
    assert finish(child) == 2


def test_an_unreachable_server_fails_the_turn_without_hanging(tmp_path):
    child = spawn(
        "--model", "openai:loop", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
        "--db", str(tmp_path / "chat.db"), "--max-retries", "0", "--timeout", "5",
    )  # fmt: skip
    child.expect_exact(PROMPT)
    child.sendline("Hi")
    child.expect_exact("error: the chat model call failed")
    child.expect_exact("Connection error.")
    child.expect_exact(PROMPT)
    child.sendline("/quit")
    assert finish(child) == 0


# --- in process ----------------------------------------------------------------


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


def test_sleep_with_nothing_new_says_so_and_calls_no_model(server):
    _, out = run_lines(server, "/sleep", "/quit")
    assert "(nothing new since the last sleep-time run)" in out
    assert server.requests == []


def test_end_of_input_exits_cleanly(server):
    code, _ = run_lines(server)
    assert code == 0
