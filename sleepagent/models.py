"""Resolving model arguments: a LangChain chat model passes through, a spec string is built.

A spec string ``"openai:<model>"`` builds a ``ChatOpenAI`` that talks to OpenAI or to
any OpenAI-compatible server (Ollama, vLLM, LM Studio). :class:`ModelOptions` carries
what the spec string cannot: where the server is, the key, the test-time budget knobs,
and the request timeout and retry bound. :func:`model_errors` turns a failed request
into a :class:`~sleepagent.errors.ModelCallError` naming the phase.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from sleepagent.errors import ConfigurationError, ModelCallError, SleepAgentError

__all__ = [
    "ModelLike",
    "ModelOptions",
    "is_malformed_reply",
    "model_errors",
    "resolve_model",
    "resolve_models",
]

ModelLike = BaseChatModel | str
"""A chat model instance, or a spec string such as ``"openai:gpt-4o-mini"``."""

PLACEHOLDER_API_KEY = "sleepagent-no-key"
"""Sent to a server given by ``base_url`` when no key is set: local servers such as
Ollama ignore the key, but the OpenAI client refuses to start without one."""


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """How a spec string becomes a chat model. Ignored for a model instance.

    Attributes:
        base_url: An OpenAI-compatible server, such as ``http://localhost:11434/v1``
            for Ollama. ``None`` uses ``OPENAI_BASE_URL``, else OpenAI itself.
        api_key: The key. ``None`` uses ``OPENAI_API_KEY``; with a ``base_url`` and no
            key at all, a placeholder is sent (local servers need none).
        max_tokens: Upper bound on tokens the model may generate per call.
        temperature: Sampling temperature; ``None`` keeps the server's default.
        reasoning_effort: For reasoning models: ``"low"``, ``"medium"`` or ``"high"``.
        timeout: Seconds to wait for one HTTP request before giving up on it.
        max_retries: Retries of a failed request (rate limit, server error, timeout,
            broken connection) before the call fails; the client backs off between
            them and honours the server's ``retry-after``.

    """

    base_url: str | None = None
    api_key: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: str | None = None
    timeout: float = 60.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigurationError(f"timeout must be positive seconds, got {self.timeout!r}")
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {self.max_retries!r}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ConfigurationError(f"max_tokens must be positive, got {self.max_tokens!r}")


def resolve_model(model: ModelLike, options: ModelOptions | None = None) -> BaseChatModel:
    """A chat model for ``model``.

    Args:
        model: A LangChain chat model (returned unchanged, ``options`` ignored) or
            ``"openai:<model>"``.
        options: Server, key, budget knobs, timeout and retries for a spec string.

    Returns:
        The chat model.

    Raises:
        ConfigurationError: For a spec with an unknown provider or no model name, or
            when neither a key nor a base URL is set anywhere.

    """
    if isinstance(model, BaseChatModel):
        return model
    if not isinstance(model, str):
        raise ConfigurationError(
            f"model must be a LangChain chat model or a spec string, got {type(model).__name__}"
        )
    provider, _, name = model.partition(":")
    if provider == "openai" and name:
        return _openai(model, name, options or ModelOptions())
    raise ConfigurationError(
        f"unknown model spec {model!r}: use 'openai:<model>' (for example 'openai:gpt-4o-mini') "
        "or pass a LangChain chat model instance"
    )


def resolve_models(
    model: ModelLike,
    sleep_model: ModelLike | None = None,
    *,
    options: ModelOptions | None = None,
    sleep_options: ModelOptions | None = None,
) -> tuple[BaseChatModel, BaseChatModel]:
    """The primary and the sleep-time chat models, each resolved on its own.

    Args:
        model: The primary agent's model or spec.
        sleep_model: The sleep-time agent's model or spec; defaults to ``model``.
        options: Options for the primary model's spec.
        sleep_options: Options for the sleep-time model's spec; defaults to ``options``.

    Returns:
        ``(chat_model, sleep_model)``; the same instance twice when nothing differs.

    """
    chat = resolve_model(model, options)
    if sleep_model is None and sleep_options is None:
        return chat, chat
    sleeper = resolve_model(
        model if sleep_model is None else sleep_model,
        options if sleep_options is None else sleep_options,
    )
    return chat, sleeper


def _openai(spec: str, name: str, options: ModelOptions) -> BaseChatModel:
    from langchain_openai import ChatOpenAI
    from openai import OpenAIError

    base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = options.api_key or os.environ.get("OPENAI_API_KEY") or None
    if api_key is None and base_url is None:
        raise ConfigurationError(
            f"cannot build {spec!r}: no API key and no server. Set OPENAI_API_KEY for OpenAI, "
            "or OPENAI_BASE_URL (base_url=) for an OpenAI-compatible server such as Ollama "
            "(http://localhost:11434/v1) or vLLM (http://localhost:8000/v1); "
            "or pass a chat model instance"
        )
    settings: dict[str, Any] = {
        "model": name,
        "base_url": base_url,
        "api_key": api_key or PLACEHOLDER_API_KEY,
        "timeout": options.timeout,
        "max_retries": options.max_retries,
        # ChatOpenAI asks for usage in streams only when talking to OpenAI itself;
        # compatible servers report it too when asked, and usage must be counted.
        "stream_usage": True,
    }
    for knob in ("max_tokens", "temperature", "reasoning_effort"):
        value = getattr(options, knob)
        if value is not None:
            settings[knob] = value
    try:
        return ChatOpenAI(**settings)
    except OpenAIError as error:
        raise ConfigurationError(f"cannot build {spec!r}: {error}") from error


_MALFORMED_REPLY_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes pydantic's ValidationError and json.JSONDecodeError
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
)


def is_malformed_reply(error: BaseException) -> bool:
    """Whether a model call failed because the reply could not be read, not the request.

    A server that answers HTTP 200 with ``"choices": []``, ``"message": null``
    or tool arguments that are not a JSON object makes the client raise one of
    these while it parses the reply. A sleep run tells the model and lets it
    try again; a chat turn fails with :class:`ModelCallError`.
    """
    from pydantic import ValidationError

    if isinstance(error, ModelCallError | ConfigurationError):
        return False
    return isinstance(error, (ValidationError, *_MALFORMED_REPLY_ERRORS))


@contextmanager
def model_errors(phase: str) -> Iterator[None]:
    """Turn a failed model call inside the block into a :class:`ModelCallError`.

    Whatever the model call raises, for any chat model (a failed request after
    the client's own retries, a reply that cannot be read, a provider's own
    error type) becomes a ``ModelCallError`` naming the phase, with the
    original as its ``cause``. Errors of this library pass through unchanged.

    Args:
        phase: ``"chat"`` or ``"sleep"``, named in the error.

    Raises:
        ModelCallError: From the failure, which is its ``cause``.

    """
    try:
        yield
    except SleepAgentError:
        raise
    except Exception as error:
        raise ModelCallError(phase=phase, cause=error) from error
