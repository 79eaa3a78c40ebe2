"""An OpenAI-compatible HTTP server on loopback, for tests that use the real client.

:class:`LoopbackOpenAI` answers ``POST /v1/chat/completions`` from a script, over
real HTTP on ``127.0.0.1``, so the ``openai`` SDK and ``langchain-openai`` run
unpatched: request building, retries, timeouts, streaming and usage parsing are
all the real ones. It speaks the parts of the wire protocol a chatbot uses: tool
calls (several per reply, ``content: null``), usage with cached and reasoning
tokens, and server-sent-event streams whose tool-call arguments arrive in pieces.
Scripted faults reproduce what real servers do: rate limits with ``retry-after``,
server errors, replies slower than the client's timeout, bodies cut short, and
tool-call arguments that are not JSON. It also answers the legacy
``POST /v1/completions`` (a :class:`PromptLogprobs` step echoes the prompt with
per-token log-probabilities; a :class:`Completion` step answers without any).

Every request is recorded. A request past the end of the script gets an HTTP 400
and is recorded as unexpected, and :meth:`LoopbackOpenAI.assert_exhausted` fails
on it, so a stray model call never passes silently::

    with LoopbackOpenAI(["Hello Ada!"]) as server:
        model = resolve_model("openai:test", ModelOptions(base_url=server.base_url))
        ...
        server.assert_exhausted()

For a long run (a soak test), ``otherwise=`` answers every request past the script
from a function of the request, so the server never runs out, and
``keep_requests=`` bounds how many requests it remembers::

    rng = random.Random(7)
    answer = lambda request: server_error() if rng.random() < 0.1 else "ok"
    with LoopbackOpenAI(otherwise=answer, keep_requests=100) as server:
        ...
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

__all__ = [
    "Completion",
    "Fault",
    "FaultKind",
    "LoopbackOpenAI",
    "LoopbackReply",
    "LoopbackStep",
    "PromptLogprobs",
    "RecordedRequest",
    "WireToolCall",
    "rate_limited",
    "raw_call",
    "server_error",
    "slow",
    "truncated",
    "wire_call",
]

logger = logging.getLogger(__name__)

_ids = itertools.count(1)

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
"""The legacy completions endpoint, which can echo the prompt with log-probabilities."""


@dataclass(frozen=True)
class WireToolCall:
    """A tool call as the server sends it.

    Attributes:
        name: The function name.
        arguments: The arguments as JSON text, sent exactly as given (so it may be
            deliberately invalid).
        id: The call id.

    """

    name: str
    arguments: str
    id: str = field(default_factory=lambda: f"call_loop_{next(_ids)}")


def wire_call(name: str, **args: Any) -> WireToolCall:
    """A tool call whose arguments are ``args`` encoded as JSON."""
    return WireToolCall(name, json.dumps(args))


def raw_call(name: str, arguments: str) -> WireToolCall:
    """A tool call whose arguments are sent as this exact text, valid JSON or not."""
    return WireToolCall(name, arguments)


class _Usage(TypedDict, total=False):
    """The usage fields of :class:`Completion`, as keywords."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class Completion:
    """One scripted model reply, with the usage the server reports for it.

    Attributes:
        content: The reply text; ``None`` sends ``content: null`` (usual with tool calls).
        tool_calls: Tool calls, in order.
        prompt_tokens: Reported prompt tokens.
        completion_tokens: Reported completion tokens.
        cached_tokens: Reported ``prompt_tokens_details.cached_tokens``.
        reasoning_tokens: Reported ``completion_tokens_details.reasoning_tokens``.
        refusal: The message's ``refusal`` field (OpenAI's way to decline), if any.

    """

    content: str | None = None
    tool_calls: tuple[WireToolCall, ...] = ()
    prompt_tokens: int = 20
    completion_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    refusal: str | None = None

    @classmethod
    def calling(cls, *calls: WireToolCall, **usage: Unpack[_Usage]) -> Completion:
        """A reply that makes ``calls`` and says nothing (``content: null``)."""
        return cls(content=None, tool_calls=calls, **usage)

    @classmethod
    def refusing(cls, refusal: str, **usage: Unpack[_Usage]) -> Completion:
        """A reply that declines: ``content: null`` and ``refusal`` set to this text."""
        return cls(content=None, refusal=refusal, **usage)

    @property
    def finish_reason(self) -> str:
        """``tool_calls`` when the reply calls tools, else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self) -> dict[str, Any]:
        """The ``usage`` object of the response."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


class FaultKind(Enum):
    """What goes wrong with a faulty response."""

    RATE_LIMIT = "rate_limit"
    """HTTP 429 with ``retry-after``."""
    SERVER_ERROR = "server_error"
    """HTTP 500."""
    SLOW = "slow"
    """The reply comes only after ``delay`` seconds (longer than the client waits)."""
    TRUNCATED = "truncated"
    """The body is cut in half and the connection closed. A streamed reply stops after
    half of its events, inside its chunked encoding, as when a connection drops."""
    MALFORMED = "malformed"
    """HTTP 200 with a body that is not a valid completion (``body``): JSON of the wrong
    shape, or text that is not JSON at all."""


@dataclass(frozen=True)
class Fault:
    """A scripted faulty response; build one with the functions named after its kind.

    Attributes:
        kind: What goes wrong.
        retry_after: Seconds sent in ``retry-after`` (429 and 500), or ``None`` for none.
        delay: For ``SLOW``: seconds before replying. Closing the server cuts it short.
        reply: For ``SLOW`` and ``TRUNCATED``: the reply that is late or cut.
        body: For ``MALFORMED``: the exact body sent with HTTP 200, as JSON (a
            mapping) or as this very text (a string, which need not be JSON).

    """

    kind: FaultKind
    retry_after: float | None = None
    delay: float = 30.0
    reply: Completion = Completion(content="(too late)")
    body: Mapping[str, Any] | str | None = None


def rate_limited(retry_after: float = 0.01) -> Fault:
    """HTTP 429 asking the client to retry after ``retry_after`` seconds."""
    return Fault(FaultKind.RATE_LIMIT, retry_after=retry_after)


def server_error(retry_after: float | None = 0.01) -> Fault:
    """HTTP 500; a short ``retry-after`` keeps the client's retry quick in tests."""
    return Fault(FaultKind.SERVER_ERROR, retry_after=retry_after)


def slow(reply: Completion | str = "(too late)", *, delay: float = 30.0) -> Fault:
    """``reply``, sent only after ``delay`` seconds (the client should time out first)."""
    return Fault(FaultKind.SLOW, delay=delay, reply=_completion(reply))


def truncated(reply: Completion | str = "(cut short)") -> Fault:
    """``reply`` with its body cut in half, then the connection closed."""
    return Fault(FaultKind.TRUNCATED, reply=_completion(reply))


def malformed(body: Mapping[str, Any] | str) -> Fault:
    """HTTP 200 with exactly ``body``, JSON or not.

    A mapping is sent as JSON, such as ``{"choices": []}`` (a broken server); a string
    is sent as it is, such as ``'{"choices": [{"mess'`` (not JSON at all).
    """
    return Fault(FaultKind.MALFORMED, body=body)


def malformed_tool_arguments(arguments: str) -> Fault:
    """HTTP 200 with a tool call whose arguments are this JSON text (say ``"[1, 2]"``)."""
    call = {"id": "call_bad", "type": "function"}
    call["function"] = {"name": "memory_rethink", "arguments": arguments}  # type: ignore[assignment]
    return malformed(
        {
            "id": "chatcmpl-malformed",
            "object": "chat.completion",
            "created": 0,
            "model": "loopback",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    "finish_reason": "tool_calls",
                }
            ],
        }
    )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received.

    Attributes:
        method: HTTP method.
        path: Request path.
        headers: Request headers, names in lower case.
        body: The JSON body (empty when there was none or it was not JSON).
        unexpected: True when no scripted reply was left for it (or the path is unknown).

    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    unexpected: bool = False

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed reply."""
        return bool(self.body.get("stream"))

    @property
    def tools(self) -> tuple[str, ...]:
        """Names of the tools offered to the model."""
        return tuple(tool["function"]["name"] for tool in self.body.get("tools") or ())

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        """The chat messages sent."""
        return list(self.body.get("messages") or ())


_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
"""A word or a punctuation mark with the whitespace before it, or trailing whitespace.

Leading whitespace belongs to the token after it, as in BPE tokenizers, and the
tokens of a text concatenate back to the text, so offsets are exact.
"""


def tokenize(text: str) -> list[str]:
    """``text`` split as :class:`PromptLogprobs` splits prompts; the pieces join back to it."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class PromptLogprobs:
    """A legacy completion (``POST /v1/completions``) echoing the prompt with log-probabilities.

    Answers ``echo=true, logprobs=N`` the way vLLM does: the prompt, split by
    :func:`tokenize`, comes back in ``logprobs`` with ``tokens``, ``token_logprobs``
    (the first ``None``: nothing precedes it), ``top_logprobs`` and ``text_offset``,
    followed by the generated token when ``max_tokens`` is above 0.

    Attributes:
        values: Per prompt token: a sequence, one value per token, sent as given
            (its length must match the token count, or the server answers HTTP 400);
            or a function of the token's text, and then the first token gets ``None``.
        generated: The text generated after the prompt when ``max_tokens`` > 0.
        generated_logprob: The log-probability reported for the generated token.
        echo: Whether the server honours ``echo``; False answers like a server that
            ignores it, with the generated token only.

    """

    values: Sequence[float | None] | Callable[[str], float] = ()
    generated: str = " ."
    generated_logprob: float = -9.0
    echo: bool = True


LoopbackReply = str | Completion | Fault | PromptLogprobs
"""What answers one request: text, a completion, a fault, or prompt log-probabilities."""

LoopbackStep = LoopbackReply | Callable[[RecordedRequest], LoopbackReply]
"""One scripted response: a reply (for ``/v1/completions``, prompt log-probabilities
or a completion), or a function of the request that returns one."""


class LoopbackOpenAI:
    """An OpenAI-compatible chat completions server on ``127.0.0.1``, on a free port.

    Args:
        script: Responses in the order requests arrive.
        model: The model name reported in responses.
        otherwise: Answers every request the script has no response left for
            (called on a server thread, maybe on several at once): with it the
            server never runs out, and no request to a known path is unexpected.
        keep_requests: Remember only the newest this many requests (``None``:
            all), so a long run does not keep every prompt; :attr:`received`
            still counts them all.

    A context manager: the server starts on entry (or :meth:`start`) and stops on
    exit (or :meth:`close`, idempotent); closing also releases slow responses.
    Handles requests concurrently; safe to extend and inspect from any thread.

    """

    def __init__(
        self,
        script: Iterable[LoopbackStep] = (),
        *,
        model: str = "loopback",
        otherwise: Callable[[RecordedRequest], LoopbackReply] | None = None,
        keep_requests: int | None = None,
    ) -> None:
        if keep_requests is not None and keep_requests < 0:
            raise ValueError(f"keep_requests must be 0 or more, or None, got {keep_requests}")
        self.model = model
        self._script: list[LoopbackStep] = list(script)
        self._otherwise = otherwise
        self._position = 0
        self._received = 0
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=keep_requests)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and serve in a background thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; slow responses in flight give up at once. Idempotent."""
        self._closing.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        if self._server is None:
            raise RuntimeError("the loopback server is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # --- script and records ----------------------------------------------------

    def extend(self, steps: Iterable[LoopbackStep]) -> None:
        """Add responses at the end of the script."""
        with self._lock:
            self._script.extend(steps)

    @property
    def remaining(self) -> int:
        """Scripted responses not used yet."""
        with self._lock:
            return len(self._script) - self._position

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first, unexpected ones included.

        With ``keep_requests``, only that many of the newest.
        """
        with self._lock:
            return list(self._requests)

    @property
    def received(self) -> int:
        """How many requests arrived, including those no longer kept."""
        with self._lock:
            return self._received

    @property
    def unexpected(self) -> list[RecordedRequest]:
        """Requests that found no scripted response."""
        return [request for request in self.requests if request.unexpected]

    def assert_exhausted(self) -> None:
        """Fail unless every scripted response was used and nothing else was asked.

        Raises:
            AssertionError: Naming the unexpected requests or the unused responses.

        """
        if self.unexpected:
            last = self.unexpected[-1]
            raise AssertionError(
                f"the loopback server got {len(self.unexpected)} unexpected requests; "
                f"the last: {last.method} {last.path} {_preview(last)}"
            )
        if self.remaining:
            raise AssertionError(f"{self.remaining} scripted responses were never requested")

    def _take(self, request: RecordedRequest) -> Completion | Fault | PromptLogprobs | None:
        """The scripted response for ``request`` (recorded), or None when unexpected."""
        with self._lock:
            known = request.method == "POST" and request.path in (CHAT_PATH, COMPLETIONS_PATH)
            step: LoopbackStep | None = None
            if known and self._position < len(self._script):
                step = self._script[self._position]
                self._position += 1
            elif known:
                step = self._otherwise
            if step is None:
                request = RecordedRequest(
                    request.method, request.path, request.headers, request.body, unexpected=True
                )
            self._received += 1
            self._requests.append(request)
        if step is None:
            return None
        produced = step(request) if callable(step) else step
        return _completion(produced) if isinstance(produced, str) else produced


def _completion(reply: Completion | str) -> Completion:
    return Completion(content=reply) if isinstance(reply, str) else reply


def _preview(request: RecordedRequest) -> str:
    messages = request.messages
    if not messages:
        return "(no messages)"
    text = str(messages[-1].get("content"))
    return repr(text if len(text) <= 120 else text[:117] + "...")


# --- the wire protocol ----------------------------------------------------------


def _message(reply: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ]
    return message


def _body(reply: Completion, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-loop-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _message(reply),
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": reply.usage(),
    }


def _pieces(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` nearly equal pieces (fewer when it is shorter)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _chunks(reply: Completion, model: str, *, with_usage: bool) -> Iterator[dict[str, Any]]:
    """The stream of ``chat.completion.chunk`` objects for ``reply``.

    Text arrives a word at a time; each tool call's arguments arrive in three
    pieces, as real servers split them, so the client must join them.
    """
    base = {
        "id": f"chatcmpl-loop-{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": "" if reply.content is not None else None})
    for word in re.findall(r"\s*\S+\s*", reply.content or ""):
        yield chunk({"content": word})
    if reply.refusal is not None:
        yield chunk({"refusal": reply.refusal})
    for index, call in enumerate(reply.tool_calls):
        head = {"index": index, "id": call.id, "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        for piece in _pieces(call.arguments, 3):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, reply.finish_reason)
    if with_usage:
        yield {**base, "choices": [], "usage": reply.usage()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is normal here; anything else is not.

        The standard server prints a traceback for every connection a client reset,
        which a test that kills its clients would fill its output with.
        """
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("loopback: client %s dropped its connection", client_address)
            return
        super().handle_error(request, client_address)


def _handler_for(owner: LoopbackOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        server_owner = owner

    return Handler


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as the client's pool expects.
    protocol_version = "HTTP/1.1"
    server_owner: LoopbackOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("loopback: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            self._respond()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout); that is the point of some faults.
            logger.debug("loopback: the client closed the connection before the reply")
            self.close_connection = True

    def _respond(self) -> None:
        owner = self.server_owner
        request = self._record()
        step = owner._take(request)
        if step is None:
            message = (
                f"loopback server: unexpected request {request.method} {request.path}: "
                "no scripted response is left for it"
            )
            self._error(400, "invalid_request_error", message)
            return
        if request.path == COMPLETIONS_PATH and isinstance(step, Completion | PromptLogprobs):
            self._legacy(step, request)
            return
        if isinstance(step, PromptLogprobs):
            message = "loopback server: PromptLogprobs answers only POST /v1/completions"
            self._error(400, "invalid_request_error", message)
            return
        if isinstance(step, Completion):
            self._reply(step, request)
            return
        if step.kind is FaultKind.RATE_LIMIT:
            self._error(429, "rate_limit_exceeded", "Rate limit reached", step.retry_after)
        elif step.kind is FaultKind.SERVER_ERROR:
            self._error(500, "server_error", "The server had an error", step.retry_after)
        elif step.kind is FaultKind.MALFORMED:
            self._send_malformed(step.body)
        elif step.kind is FaultKind.SLOW:
            # Wait on the server's closing event, so closing the server ends it at once.
            if owner._closing.wait(step.delay):
                self.close_connection = True
                return
            self._reply(step.reply, request)
        elif request.stream:
            self._truncated_stream(step.reply, request)
        else:
            self._truncated(step.reply)

    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        headers = {name.lower(): value for name, value in self.headers.items()}
        return RecordedRequest(self.command, self.path.split("?")[0], headers, body)

    def _send_json(
        self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), headers)

    def _send_malformed(self, body: Mapping[str, Any] | str | None) -> None:
        if isinstance(body, str):
            self._send_bytes(200, body.encode())
        else:
            self._send_json(200, body or {})

    def _send_bytes(
        self, status: int, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self, status: int, kind: str, message: str, retry_after: float | None = None
    ) -> None:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        error = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
        self._send_json(status, error, headers)

    def _reply(self, reply: Completion, request: RecordedRequest) -> None:
        model = str(request.body.get("model") or self.server_owner.model)
        if not request.stream:
            self._send_json(200, _body(reply, model))
            return
        options = request.body.get("stream_options") or {}
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        # No length is known in advance: the stream ends when the connection closes.
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in _chunks(reply, model, with_usage=bool(options.get("include_usage"))):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _legacy(self, step: Completion | PromptLogprobs, request: RecordedRequest) -> None:
        model = str(request.body.get("model") or self.server_owner.model)
        try:
            payload = _legacy_body(step, request.body, model)
        except ValueError as error:
            self._error(400, "invalid_request_error", f"loopback server: {error}")
            return
        self._send_json(200, payload)

    def _truncated_stream(self, reply: Completion, request: RecordedRequest) -> None:
        """Half of the reply's events in chunked encoding, then the connection drops.

        Chunked, as real servers stream: the client sees the body end inside it
        (an incomplete chunked read), not a stream that merely ended early.
        """
        model = str(request.body.get("model") or self.server_owner.model)
        events = [
            f"data: {json.dumps(chunk)}\n\n".encode()
            for chunk in _chunks(reply, model, with_usage=False)
        ]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        for event in events[: max(1, len(events) // 2)]:
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()

    def _truncated(self, reply: Completion) -> None:
        data = json.dumps(_body(reply, self.server_owner.model)).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


# --- the legacy completions endpoint --------------------------------------------


def _legacy_body(
    step: Completion | PromptLogprobs, body: Mapping[str, Any], model: str
) -> dict[str, Any]:
    """The ``text_completion`` answer of ``step`` to the request ``body``.

    A :class:`Completion` answers with its text and no log-probabilities at all,
    as a server that does not compute them would.

    Raises:
        ValueError: When the script's values do not match the prompt's tokens.

    """
    base = {
        "id": f"cmpl-loop-{next(_ids)}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if isinstance(step, Completion):
        choice = {"index": 0, "text": step.content or "", "logprobs": None, "finish_reason": "stop"}
        usage = {k: v for k, v in step.usage().items() if not k.endswith("_details")}
        return {**base, "choices": [choice], "usage": usage}
    prompt = str(body.get("prompt") or "")
    prompt_tokens = tokenize(prompt)
    if callable(step.values):
        prompt_values: list[float | None] = [None, *map(step.values, prompt_tokens[1:])]
    else:
        prompt_values = list(step.values)
        if len(prompt_values) != len(prompt_tokens):
            raise ValueError(
                f"the script has {len(prompt_values)} log-probabilities for a prompt of "
                f"{len(prompt_tokens)} tokens: {prompt_tokens!r}"
            )
    generate = int(body.get("max_tokens") or 0) > 0
    tokens: list[str] = []
    values: list[float | None] = []
    if step.echo and body.get("echo"):
        tokens, values = list(prompt_tokens), prompt_values
    if generate:
        tokens.append(step.generated)
        values.append(step.generated_logprob)
    text = "".join(tokens)
    offsets = list(itertools.accumulate((len(t) for t in tokens[:-1]), initial=0))
    logprobs = None
    if body.get("logprobs") is not None:
        logprobs = {
            "tokens": tokens,
            "token_logprobs": values,
            # logprobs=N asks for the N likeliest tokens; the token itself stands in.
            "top_logprobs": [
                None if v is None else {t: v} for t, v in zip(tokens, values, strict=True)
            ],
            "text_offset": offsets if tokens else [],
        }
    choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}
    usage = {
        "prompt_tokens": len(prompt_tokens),
        "completion_tokens": int(generate),
        "total_tokens": len(prompt_tokens) + int(generate),
    }
    return {**base, "choices": [choice], "usage": usage}
