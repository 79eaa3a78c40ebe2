"""Resolving model arguments: a LangChain chat model passes through, a spec string is built.

A spec string ``"<provider>:<model>"`` goes through LangChain's ``init_chat_model``,
so any provider with an installed LangChain package works: ``openai:`` (OpenAI or
any OpenAI-compatible server: Ollama, vLLM, LM Studio, llama.cpp), ``anthropic:``,
``ollama:``, ``google_genai:``, ``mistralai:`` and the rest. A missing provider
package is named, with the command that installs it. :class:`ModelOptions`
carries what the spec string cannot: where the server is, the key, the budget
knobs, the request timeout and retry bound, extra headers and request fields;
each option is translated to the provider's own keyword, and one that has no
meaning for the provider is refused rather than dropped. Only the ``openai``
path imports ``openai`` or ``langchain-openai``. :func:`model_errors` turns a
failed request into a :class:`~sleepagent.errors.ModelCallError` naming the phase.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel

from sleepagent.errors import ConfigurationError, ModelCallError, SleepAgentError

__all__ = [
    "LOCAL_TIMEOUT_S",
    "REMOTE_TIMEOUT_S",
    "SIZED_TIMEOUT",
    "SLEEP_LOCAL_MAX_TOKENS",
    "ModelLike",
    "ModelOptions",
    "is_local_url",
    "is_malformed_reply",
    "model_errors",
    "resolve_model",
    "resolve_models",
    "sleep_reply_cap",
]

ModelLike = BaseChatModel | str
"""A chat model instance, or a spec string such as ``"openai:gpt-4o-mini"``."""

PLACEHOLDER_API_KEY = "sleepagent-no-key"
"""Sent to a server given by ``base_url`` when no key is set: local servers such as
Ollama ignore the key, but the OpenAI client refuses to start without one."""

LOCAL_TIMEOUT_S: Final = 600.0
"""Default request timeout for a server on this machine or network: a CPU-bound local
model can take minutes over a long sleep-time prompt, and one slot queues requests."""

REMOTE_TIMEOUT_S: Final = 120.0
"""Default request timeout for a hosted API."""

SLEEP_LOCAL_MAX_TOKENS: Final = 2048
"""Default cap on one sleep-time reply from a local server: about 8,000 characters,
room to rewrite a full default block (5,000) and more, while a runaway reply (a small
model listing questions that never end) stops at about 4 minutes on two CPU cores
instead of running into the timeout. Set ``max_tokens`` in ``sleep_model_options``
to change it."""

_OLLAMA_DEFAULT_URL = "http://localhost:11434"


class _SizedTimeout(float):
    """The default timeout, marked so that resolution sizes it from the server.

    It is a float all the same, so code that reads it directly gets the hosted-API value.
    """


SIZED_TIMEOUT: Final[float] = _SizedTimeout(REMOTE_TIMEOUT_S)
"""The default of :attr:`ModelOptions.timeout`: sized from the server at resolution."""


@dataclass(frozen=True)
class _Provider:
    """How one provider's chat model class spells each option (``None``: no such option)."""

    package: str
    extra: str | None = None
    base_url: str | None = "base_url"
    api_key: str | None = "api_key"
    max_tokens: str | None = "max_tokens"
    reasoning_effort: str | None = None
    timeout: str | None = "timeout"
    max_retries: str | None = "max_retries"
    headers: str | None = None
    request_fields: str | None = "model_kwargs"


_PROVIDERS: Mapping[str, _Provider] = {
    "openai": _Provider(
        "langchain-openai",
        reasoning_effort="reasoning_effort",
        headers="default_headers",
        request_fields="extra_body",
    ),
    "anthropic": _Provider(
        "langchain-anthropic",
        extra="anthropic",
        reasoning_effort="effort",
        headers="default_headers",
    ),
    "ollama": _Provider(
        "langchain-ollama",
        extra="ollama",
        api_key=None,
        max_tokens="num_predict",
        max_retries=None,
        request_fields=None,
    ),
    "google_genai": _Provider(
        "langchain-google-genai", extra="google", max_tokens="max_output_tokens"
    ),
    "mistralai": _Provider("langchain-mistralai", extra="mistralai", base_url="endpoint"),
}
"""Providers whose keywords are known; any other ``init_chat_model`` provider gets the
common names (``base_url``, ``api_key``, ``max_tokens``, ``timeout``, ``max_retries``)."""


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """How a spec string becomes a chat model. Ignored for a model instance.

    Attributes:
        base_url: The server, such as ``http://localhost:11434/v1`` for Ollama's
            OpenAI-compatible API. For ``openai:`` specs ``None`` uses
            ``OPENAI_BASE_URL``, else OpenAI itself; other providers use their own
            default endpoint.
        api_key: The key. ``None`` uses the provider's usual environment variable
            (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...); for ``openai:`` with a
            ``base_url`` and no key at all, a placeholder is sent (local servers need none).
        max_tokens: Upper bound on tokens the model may generate per call.
        temperature: Sampling temperature; ``None`` keeps the provider's default.
        reasoning_effort: For reasoning models (OpenAI, Anthropic): ``"low"``,
            ``"medium"`` or ``"high"``.
        timeout: Seconds to wait for one request. Unset, it is sized from the server:
            :data:`LOCAL_TIMEOUT_S` for one on this machine or network (loopback or
            private address, ``localhost``, a one-word host name such as a container's,
            and Ollama's default), else :data:`REMOTE_TIMEOUT_S`.
        max_retries: Retries of a failed request (rate limit, server error, timeout,
            broken connection) before the call fails, where the provider retries.
        headers: HTTP headers sent with every request (a gateway's auth or routing).
        request_fields: Extra fields in every request body, such as
            ``{"tool_choice": "required"}`` or a server's own sampling fields (for
            ``openai:`` they go out as ``extra_body``). Give ``tool_choice`` to the
            sleep-time model (``sleep_model_options``): it always offers tools, while
            an OpenAI server refuses ``tool_choice`` in a request without tools.
        provider_kwargs: Further keywords for the provider's chat model class, passed
            as they are (for example ``{"num_ctx": 16384}`` for ``ollama:``).

    """

    base_url: str | None = None
    api_key: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: str | None = None
    timeout: float = SIZED_TIMEOUT
    max_retries: int = 2
    headers: Mapping[str, str] | None = None
    request_fields: Mapping[str, Any] | None = None
    provider_kwargs: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise ConfigurationError(
                f"timeout must be positive seconds (leave it unset to size it from the "
                f"server), got {self.timeout!r}"
            )
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {self.max_retries!r}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ConfigurationError(f"max_tokens must be positive, got {self.max_tokens!r}")
        for name in ("headers", "request_fields", "provider_kwargs"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, Mapping):
                    raise ConfigurationError(f"{name} must be a mapping, got {value!r}")
                # Frozen means frozen: a caller's later change to its dict cannot leak in.
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def timeout_for(self, base_url: str | None) -> float:
        """The request timeout for a server at ``base_url`` (``None``: a hosted API)."""
        if not isinstance(self.timeout, _SizedTimeout):
            return float(self.timeout)
        return LOCAL_TIMEOUT_S if base_url and is_local_url(base_url) else REMOTE_TIMEOUT_S


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine or a private network.

    Such servers are usually self-hosted models on modest hardware, so they get
    the generous :data:`LOCAL_TIMEOUT_S`.
    """
    host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A one-word name is a container or LAN host ("ollama", "gpu-box").
        return bool(host) and "." not in host
    return address.is_loopback or address.is_private or address.is_unspecified


def resolve_model(model: ModelLike, options: ModelOptions | None = None) -> BaseChatModel:
    """A chat model for ``model``.

    Args:
        model: A LangChain chat model (returned unchanged, ``options`` ignored) or a
            spec ``"<provider>:<model>"`` such as ``"openai:gpt-4o-mini"``,
            ``"anthropic:claude-sonnet-4-5"`` or ``"ollama:qwen2.5:7b"``.
        options: Server, key, budget knobs, timeout, retries and request extras.

    Returns:
        The chat model.

    Raises:
        ConfigurationError: For a malformed spec or unknown provider, a provider
            package that is not installed (the message has the install command), an
            option the provider has no use for, or an ``openai:`` spec with neither a
            key nor a server.

    """
    if isinstance(model, BaseChatModel):
        return model
    if not isinstance(model, str):
        raise ConfigurationError(
            f"model must be a LangChain chat model or a spec string, got {type(model).__name__}"
        )
    provider, _, name = model.partition(":")
    provider = provider.strip().lower().replace("-", "_")
    if not provider or not name:
        raise ConfigurationError(
            f"model spec {model!r} needs a provider and a model name: 'openai:<model>' "
            "for OpenAI and OpenAI-compatible servers (for example 'openai:gpt-4o-mini'), "
            "or another LangChain provider such as 'anthropic:claude-sonnet-4-5' or "
            "'ollama:llama3.2'; or pass a LangChain chat model instance"
        )
    options = options or ModelOptions()
    if provider == "openai":
        settings = _openai_settings(model, options)
    else:
        settings = _settings(model, provider, options)
    return _build(model, provider, name, settings)


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
    spec = model if sleep_model is None else sleep_model
    asked = (options if sleep_options is None else sleep_options) or ModelOptions()
    sized = sleep_reply_cap(spec, asked)
    if sleep_model is None and sleep_options is None and sized is asked:
        return chat, chat
    return chat, resolve_model(spec, sized)


def sleep_reply_cap(model: ModelLike, options: ModelOptions) -> ModelOptions:
    """``options`` for the sleep-time model, capped at :data:`SLEEP_LOCAL_MAX_TOKENS`.

    Only a spec string on a local server with no ``max_tokens`` of its own gets the
    cap; hosted APIs keep theirs (a reasoning model counts its thinking in it).
    """
    if options.max_tokens is not None or not isinstance(model, str):
        return options
    provider = model.partition(":")[0].strip().lower()
    base_url = options.base_url
    if base_url is None and provider == "openai":
        base_url = os.environ.get("OPENAI_BASE_URL") or None
    if base_url is None and provider == "ollama":
        base_url = os.environ.get("OLLAMA_HOST") or _OLLAMA_DEFAULT_URL
    if base_url is None or not is_local_url(base_url):
        return options
    return dataclasses.replace(options, max_tokens=SLEEP_LOCAL_MAX_TOKENS)


# --- per provider ---------------------------------------------------------------------


def _openai_settings(spec: str, options: ModelOptions) -> dict[str, Any]:
    base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = options.api_key or os.environ.get("OPENAI_API_KEY") or None
    if api_key is None and base_url is None:
        raise ConfigurationError(
            f"cannot build {spec!r}: no API key and no server. Set OPENAI_API_KEY for OpenAI, "
            "or OPENAI_BASE_URL (base_url=, --base-url) for an OpenAI-compatible server such "
            "as Ollama (http://localhost:11434/v1) or vLLM (http://localhost:8000/v1); "
            "or pass a chat model instance"
        )
    settings = _settings(
        spec,
        "openai",
        dataclasses.replace(options, base_url=base_url, api_key=api_key or PLACEHOLDER_API_KEY),
    )
    # ChatOpenAI asks for usage in streams only when talking to OpenAI itself;
    # compatible servers report it too when asked, and usage must be counted.
    settings["stream_usage"] = True
    return settings


def _settings(spec: str, provider: str, options: ModelOptions) -> dict[str, Any]:
    """The chat model class's keywords for ``options``, in that provider's spelling."""
    known = _PROVIDERS.get(provider)
    rules = known or _Provider(f"langchain-{provider.replace('_', '-')}")
    settings: dict[str, Any] = {}
    wanted: dict[str, Any] = {
        "base_url": options.base_url,
        "api_key": options.api_key,
        "max_tokens": options.max_tokens,
        "reasoning_effort": options.reasoning_effort,
        "headers": dict(options.headers) if options.headers else None,
        "request_fields": dict(options.request_fields) if options.request_fields else None,
    }
    if known is not None or not isinstance(options.timeout, _SizedTimeout):
        wanted["timeout"] = options.timeout_for(options.base_url)
    if known is not None or options.max_retries != ModelOptions.max_retries:
        wanted["max_retries"] = options.max_retries
    if provider == "ollama":
        # Its server address, timeout and headers belong to its HTTP client.
        settings.update(_ollama_client(options))
        for option in ("base_url", "timeout", "headers"):
            wanted.pop(option, None)
    for option, value in wanted.items():
        if value is None:
            continue
        keyword = getattr(rules, option)
        if keyword is None:
            if option == "max_retries":
                continue  # the default applies where the provider retries at all
            raise ConfigurationError(
                f"cannot build {spec!r}: ModelOptions({option}=...) has no meaning for the "
                f"{provider} provider. Leave it unset, or pass a chat model instance built "
                "with that provider's own settings"
            )
        settings[keyword] = value
    if options.temperature is not None:
        settings["temperature"] = options.temperature
    settings.update(options.provider_kwargs or {})
    return settings


def _ollama_client(options: ModelOptions) -> dict[str, Any]:
    """Ollama's timeout and headers live on its HTTP client, not on the chat model."""
    base_url = options.base_url or os.environ.get("OLLAMA_HOST") or _OLLAMA_DEFAULT_URL
    client: dict[str, Any] = {"timeout": options.timeout_for(base_url)}
    if options.headers:
        client["headers"] = dict(options.headers)
    settings: dict[str, Any] = {"client_kwargs": client}
    if options.base_url:
        # The same server's OpenAI-compatible address is a common mix-up: ChatOllama
        # speaks Ollama's own API at the root, not under /v1.
        settings["base_url"] = options.base_url.rstrip("/").removesuffix("/v1")
    return settings


def _build(spec: str, provider: str, name: str, settings: dict[str, Any]) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    rules = _PROVIDERS.get(provider) or _Provider(f"langchain-{provider.replace('_', '-')}")
    module = rules.package.replace("-", "_")
    if importlib.util.find_spec(module) is None:
        how = f"pip install 'sleepagent[{rules.extra}]'" if rules.extra else ""
        raise ConfigurationError(
            f"cannot build {spec!r}: the {provider} provider needs the {rules.package} "
            f"package, which is not installed. Install it with "
            f"{how + ' or ' if how else ''}pip install {rules.package}"
        )
    try:
        model: BaseChatModel = init_chat_model(name, model_provider=provider, **settings)
    except ImportError as error:
        raise ConfigurationError(f"cannot build {spec!r}: {error}") from error
    except ValueError as error:
        # Unknown provider names, and settings the provider's class refuses.
        raise ConfigurationError(f"cannot build {spec!r}: {error}") from error
    return model


_MALFORMED_REPLY_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes pydantic's ValidationError and json.JSONDecodeError
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
)


def sample_options(
    model: BaseChatModel, *, max_tokens: int | None, temperature: float | None
) -> dict[str, Any]:
    """Call options that bound one model call, spelled as ``model``'s class expects them.

    For ``model.bind(...)``: the sleep-time reasoning pass caps each sample's tokens
    (its effort) and samples at a temperature of its own. The token cap's name comes
    from the provider table (``num_predict`` for Ollama, ...), found by the package
    the model's class lives in; any other model gets ``max_tokens``.
    """
    package = type(model).__module__.partition(".")[0].replace("_", "-")
    provider = next((p for p in _PROVIDERS.values() if p.package == package), None)
    options: dict[str, Any] = {}
    if max_tokens is not None:
        options[(provider and provider.max_tokens) or "max_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    return options


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
