"""The loopback server itself: its wire format, its faults and its records."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import openai
import pytest

from sleepagent.testing import (
    Completion,
    LoopbackOpenAI,
    PromptLogprobs,
    malformed,
    rate_limited,
    server_error,
    slow,
    truncated,
    wire_call,
)

WAIT_S = 5


@pytest.fixture
def server():
    with LoopbackOpenAI() as server:
        yield server


def post(server: LoopbackOpenAI, body: dict, *, timeout: float = WAIT_S) -> tuple[int, dict, str]:
    """POST a chat completion request; returns status, headers and the raw body."""
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def sse_chunks(raw: str) -> list[dict]:
    lines = [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def client(server: LoopbackOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


ASK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_reply_with_several_tool_calls_has_null_content(server):
    server.extend([Completion.calling(wire_call("a", x=1), wire_call("b", y="two"))])
    choice = json.loads(post(server, ASK)[2])["choices"][0]
    assert choice["message"]["content"] is None
    assert [call["function"]["name"] for call in choice["message"]["tool_calls"]] == ["a", "b"]
    assert choice["finish_reason"] == "tool_calls"


def test_usage_reports_cached_and_reasoning_tokens(server):
    server.extend([Completion("ok", prompt_tokens=50, cached_tokens=30, reasoning_tokens=4)])
    usage = client(server).chat.completions.create(**ASK).usage
    assert usage.prompt_tokens_details.cached_tokens == 30
    assert usage.completion_tokens_details.reasoning_tokens == 4
    assert usage.total_tokens == 55


def test_a_stream_splits_tool_call_arguments_across_chunks(server):
    call = wire_call("memory_rethink", label="human", new_value="Ada, vegetarian")
    server.extend([Completion.calling(call)])
    pieces = [
        delta.function.arguments
        for chunk in client(server).chat.completions.create(**ASK, stream=True)
        for delta in (chunk.choices[0].delta.tool_calls or () if chunk.choices else ())
        if delta.function and delta.function.arguments
    ]
    assert len(pieces) > 1
    assert "".join(pieces) == call.arguments


def test_a_stream_ends_with_a_usage_chunk_when_asked(server):
    server.extend([Completion("one two", prompt_tokens=9)])
    raw = post(server, {**ASK, "stream": True, "stream_options": {"include_usage": True}})[2]
    last = sse_chunks(raw)[-1]
    assert (last["choices"], last["usage"]["prompt_tokens"]) == ([], 9)


def test_a_stream_has_no_usage_chunk_unless_asked(server):
    server.extend(["one two"])
    chunks = sse_chunks(post(server, {**ASK, "stream": True})[2])
    assert all("usage" not in chunk for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "one two"


def test_a_rate_limit_is_http_429_with_retry_after(server):
    server.extend([rate_limited(retry_after=0.5)])
    status, headers, _ = post(server, ASK)
    assert (status, headers["retry-after"]) == (429, "0.5")


def test_a_server_error_is_http_500(server):
    server.extend([server_error()])
    assert post(server, ASK)[0] == 500


def test_a_truncated_body_ends_before_its_content_length(server):
    server.extend([truncated("a reply that will be cut in half")])
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=WAIT_S)
    connection.request("POST", "/v1/chat/completions", body=json.dumps(ASK))
    response = connection.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    connection.close()


def test_a_truncated_stream_breaks_off_inside_its_chunked_body(server):
    server.extend([truncated("one two three four five six seven eight")])
    pieces: list[str] = []
    stream = client(server).chat.completions.create(**ASK, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content or "")
    received = "".join(pieces)
    assert received and "one two three four five six seven eight".startswith(received)
    assert received != "one two three four five six seven eight", "the stream was cut"


def test_a_malformed_body_can_be_text_that_is_not_json(server):
    server.extend([malformed('{"choices": [{"mess')])
    status, headers, body = post(server, ASK)
    assert (status, body) == (200, '{"choices": [{"mess')
    assert headers["content-type"] == "application/json"


def test_past_its_script_the_server_answers_every_request_from_otherwise():
    answered = iter(range(100))
    with LoopbackOpenAI(["scripted"], otherwise=lambda request: f"n{next(answered)}") as server:
        replies = [client(server).chat.completions.create(**ASK) for _ in range(3)]
        assert [r.choices[0].message.content for r in replies] == ["scripted", "n0", "n1"]
        assert server.unexpected == []
        server.assert_exhausted()


def test_otherwise_can_answer_with_a_fault():
    with LoopbackOpenAI(otherwise=lambda request: server_error()) as server:
        assert post(server, ASK)[0] == 500
        assert post(server, ASK)[0] == 500


def test_keep_requests_remembers_only_the_newest_and_received_counts_every_one():
    with LoopbackOpenAI(otherwise=lambda request: "ok", keep_requests=2) as server:
        for text in ["a", "b", "c"]:
            post(server, {**ASK, "messages": [{"role": "user", "content": text}]})
        assert [request.messages[-1]["content"] for request in server.requests] == ["b", "c"]
        assert server.received == 3


def test_a_client_that_resets_its_connection_prints_nothing_but_other_errors_still_do(
    server, capsys
):
    http_server = server._server
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        http_server.handle_error(None, ("127.0.0.1", 1))
    assert capsys.readouterr().err == ""
    try:
        raise KeyError("a bug in a handler")
    except KeyError:
        http_server.handle_error(None, ("127.0.0.1", 1))
    assert "a bug in a handler" in capsys.readouterr().err


def test_closing_the_server_ends_a_slow_reply_at_once():
    arrived = threading.Event()

    def slow_after_signal(request):
        arrived.set()
        return slow("late", delay=60)

    outcome: list[BaseException] = []

    def ask(server: LoopbackOpenAI) -> None:
        try:
            post(server, ASK, timeout=30)
        except (OSError, http.client.HTTPException) as error:
            outcome.append(error)

    server = LoopbackOpenAI([slow_after_signal]).start()
    waiter = threading.Thread(target=ask, args=(server,))
    waiter.start()
    assert arrived.wait(WAIT_S)
    started = time.monotonic()
    server.close()
    waiter.join(WAIT_S)
    assert not waiter.is_alive() and time.monotonic() - started < WAIT_S
    assert len(outcome) == 1, "the client should see the connection close without a reply"


def test_requests_are_recorded_with_what_was_sent(server):
    server.extend(["ok"])
    body = {**ASK, "stream": False, "max_completion_tokens": 7, "tools": [
        {"type": "function", "function": {"name": "memory_finish", "parameters": {}}}
    ]}  # fmt: skip
    post(server, body)
    recorded = server.requests[0]
    assert (recorded.path, recorded.stream, recorded.tools) == (
        "/v1/chat/completions", False, ("memory_finish",),
    )  # fmt: skip
    assert recorded.body["max_completion_tokens"] == 7


def test_a_request_past_the_script_is_http_400_and_recorded_as_unexpected(server):
    status, _, body = post(server, ASK)
    assert status == 400 and "unexpected request" in body
    assert len(server.unexpected) == 1


def test_an_unknown_path_is_an_unexpected_request(server):
    server.extend(["kept for a chat request"])
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{server.base_url}/models", timeout=WAIT_S)
    assert [request.path for request in server.unexpected] == ["/v1/models"]
    assert server.remaining == 1


def test_assert_exhausted_names_unused_replies(server):
    server.extend(["never asked for"])
    with pytest.raises(AssertionError, match="1 scripted responses were never requested"):
        server.assert_exhausted()


def test_a_callable_step_answers_from_the_request(server):
    server.extend([lambda request: f"you said {request.messages[-1]['content']}"])
    reply = client(server).chat.completions.create(**ASK)
    assert reply.choices[0].message.content == "you said hi"


def test_the_base_url_needs_a_running_server():
    with pytest.raises(RuntimeError, match="not running"):
        _ = LoopbackOpenAI().base_url


def test_closing_twice_is_fine():
    server = LoopbackOpenAI().start()
    server.close()
    server.close()
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_legacy_completions_are_recorded_and_answered_from_the_script(server):
    server.extend([PromptLogprobs(values=[-0.5, -0.25]), "just text", PromptLogprobs()])
    echoed = client(server).completions.create(
        model="base", prompt="Hi there", echo=True, logprobs=1, max_tokens=0
    )
    assert echoed.choices[0].text == "Hi there"
    assert echoed.choices[0].logprobs.token_logprobs == [-0.5, -0.25]
    assert echoed.choices[0].logprobs.text_offset == [0, 2]
    plain = client(server).completions.create(model="base", prompt="Hi", max_tokens=5)
    assert (plain.choices[0].text, plain.choices[0].logprobs) == ("just text", None)
    # Prompt log-probabilities answer only the legacy endpoint.
    with pytest.raises(openai.BadRequestError, match="only POST /v1/completions"):
        client(server).chat.completions.create(**ASK)
    assert [r.path for r in server.requests] == ["/v1/completions"] * 2 + ["/v1/chat/completions"]
    assert server.requests[0].body["prompt"] == "Hi there"
    server.assert_exhausted()
