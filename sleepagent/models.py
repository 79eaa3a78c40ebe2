"""Resolving model arguments: a LangChain chat model passes through, a spec string is built."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from sleepagent.errors import ConfigurationError

__all__ = ["ModelLike", "resolve_model"]

ModelLike = BaseChatModel | str
"""A chat model instance, or a spec string such as ``"openai:gpt-4o-mini"``."""


def resolve_model(model: ModelLike) -> BaseChatModel:
    """A chat model for ``model``.

    Args:
        model: A LangChain chat model (returned unchanged) or ``"openai:<model>"``,
            which uses the usual ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` variables.

    Raises:
        ConfigurationError: For a spec with an unknown provider or no model name.

    """
    if isinstance(model, BaseChatModel):
        return model
    if not isinstance(model, str):
        raise ConfigurationError(
            f"model must be a LangChain chat model or a spec string, got {type(model).__name__}"
        )
    provider, _, name = model.partition(":")
    if provider == "openai" and name:
        from langchain_openai import ChatOpenAI
        from openai import OpenAIError

        try:
            return ChatOpenAI(model=name)
        except OpenAIError as error:
            raise ConfigurationError(
                f"cannot build {model!r}: set OPENAI_API_KEY (and OPENAI_BASE_URL for an "
                f"OpenAI-compatible server), or pass a chat model instance ({error})"
            ) from error
    raise ConfigurationError(
        f"unknown model spec {model!r}: use 'openai:<model>' (for example 'openai:gpt-4o-mini') "
        "or pass a LangChain chat model instance"
    )
