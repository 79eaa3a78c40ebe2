"""The log-probability predictability score, against the loopback server over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import openai
import pytest

from sleepagent.bench.logprob import question_logprob, score_question
from sleepagent.testing import Completion, LoopbackOpenAI, PromptLogprobs, rate_limited

CONTEXT = "Ann has 3 apples."
QUESTION = "How many now?"
# The loopback tokenizer splits the prompt "Ann has 3 apples.\nHow many now?" into
#   "Ann" " has" " 3" " apples" "." "\nHow" " many" " now" "?"
# and the question is the last four tokens (the newline rides on "How").


def by_length(token: str) -> float:
    """A log-probability per token: minus its length without whitespace."""
    return -float(len(token.strip()))


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)


def test_the_score_is_the_mean_over_the_question_tokens_only() -> None:
    with LoopbackOpenAI([PromptLogprobs(values=by_length)]) as server:
        score = score_question(client(server.base_url), "base", CONTEXT, QUESTION)
        server.assert_exhausted()
        (request,) = server.requests
    # How = -3, many = -4, now = -3, ? = -1; context tokens and the generated
    # token (-9 by default) would change the mean if they were counted.
    assert score.mean == pytest.approx((-3 - 4 - 3 - 1) / 4)
    assert score.tokens == 4
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == f"{CONTEXT}\n{QUESTION}"
    assert request.body["echo"] is True and request.body["logprobs"] == 1


def test_explicit_values_skip_a_none_first_token_of_a_bare_question() -> None:
    # With an empty context the question starts right after the newline: every
    # token is the question's, and the first one has no log-probability.
    values = [None, -0.5, -1.5, -2.0]
    with LoopbackOpenAI([PromptLogprobs(values=values)]) as server:
        mean = question_logprob(client(server.base_url), "base", "", QUESTION)
    assert mean == pytest.approx((-0.5 - 1.5 - 2.0) / 3)


def test_the_wire_answer_has_offsets_tokens_logprobs_and_usage() -> None:
    with LoopbackOpenAI([PromptLogprobs(values=by_length, generated=" 4")]) as server:
        answer = client(server.base_url).completions.create(
            model="base", prompt="A b.", echo=True, logprobs=1, max_tokens=1
        )
    choice = answer.choices[0]
    assert choice.text == "A b. 4"
    assert choice.logprobs is not None
    assert choice.logprobs.tokens == ["A", " b", ".", " 4"]
    assert choice.logprobs.text_offset == [0, 1, 3, 4]
    assert choice.logprobs.token_logprobs == [None, -1.0, -1.0, -9.0]
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 1)


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Completion("plain text"), "the answer has no logprobs"),
        (PromptLogprobs(values=by_length, echo=False), "the prompt was not echoed"),
        # A script fault: three values for a prompt of nine tokens is an HTTP 400.
        (PromptLogprobs(values=[-1.0, -1.0, -1.0]), "HTTP 400 from /completions"),
    ],
)
def test_a_server_that_cannot_score_gives_none_with_a_reason(
    step: Completion | PromptLogprobs, reason: str
) -> None:
    with LoopbackOpenAI([step]) as server:
        score = score_question(client(server.base_url), "base", CONTEXT, QUESTION)
        server.assert_exhausted()
    assert (score.mean, score.reason) == (None, reason)


def test_a_request_past_the_script_is_unavailable_not_an_error() -> None:
    with LoopbackOpenAI() as server:
        assert question_logprob(client(server.base_url), "base", CONTEXT, QUESTION) is None
        assert len(server.unexpected) == 1


ECHOED_WITHOUT_PROMPT_LOGPROBS = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 0,
    "model": "base",
    "choices": [
        {
            "index": 0,
            "text": f"{CONTEXT}\n{QUESTION} 4",
            "finish_reason": "length",
            "logprobs": {
                "tokens": [" 4"],
                "token_logprobs": [-0.1],
                "top_logprobs": [{" 4": -0.1}],
                "text_offset": [len(f"{CONTEXT}\n{QUESTION}")],
            },
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}
"""What llama.cpp's llama-server answers: the text echoed, the generated token scored only."""


class _Canned(BaseHTTPRequestHandler):
    """A server that answers every POST with one canned status and body."""

    status = 404
    payload: ClassVar[dict[str, object]] = {"error": {"message": "Not Found", "type": "not_found"}}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        data = json.dumps(self.payload).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _LlamaServer(_Canned):
    status = 200
    payload: ClassVar[dict[str, object]] = ECHOED_WITHOUT_PROMPT_LOGPROBS


@pytest.fixture
def not_found() -> Iterator[str]:
    yield from _serve(_Canned)


@pytest.fixture
def llama_server() -> Iterator[str]:
    yield from _serve(_LlamaServer)


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_404_from_a_server_without_the_endpoint_gives_none(not_found: str) -> None:
    score = score_question(client(not_found), "base", CONTEXT, QUESTION)
    assert (score.mean, score.reason) == (None, "HTTP 404 from /completions")


def test_a_rate_limit_is_raised_so_the_runner_can_retry_it() -> None:
    with LoopbackOpenAI([rate_limited()]) as server, pytest.raises(openai.RateLimitError):
        score_question(client(server.base_url), "base", CONTEXT, QUESTION)


def test_an_echo_with_log_probabilities_for_the_generated_token_only_gives_none(
    llama_server: str,
) -> None:
    score = score_question(client(llama_server), "base", CONTEXT, QUESTION)
    assert (score.mean, score.reason) == (None, "the prompt's tokens have no log-probabilities")
