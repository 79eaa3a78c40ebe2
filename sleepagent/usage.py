"""Token usage, added up per phase (``chat`` at test time, ``sleep`` at sleep time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage

__all__ = ["Phase", "Usage"]

Phase = Literal["chat", "sleep"]


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the model provider.

    Attributes:
        input_tokens: Prompt tokens, including cached ones.
        output_tokens: Completion tokens, including reasoning ones.
        cached_tokens: Prompt tokens served from the provider's cache.
        reasoning_tokens: Completion tokens spent on hidden reasoning.
        calls: Model calls counted.

    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            calls=self.calls + other.calls,
        )

    @classmethod
    def of_message(cls, message: BaseMessage) -> Usage:
        """Usage of one model response (one call, even when the provider reported nothing)."""
        meta = message.usage_metadata if isinstance(message, AIMessage) else None
        if not meta:
            return cls(calls=1)
        input_details: Mapping[str, Any] = meta.get("input_token_details") or {}
        output_details: Mapping[str, Any] = meta.get("output_token_details") or {}
        return cls(
            input_tokens=meta.get("input_tokens", 0),
            output_tokens=meta.get("output_tokens", 0),
            cached_tokens=input_details.get("cache_read", 0) or 0,
            reasoning_tokens=output_details.get("reasoning", 0) or 0,
            calls=1,
        )

    @classmethod
    def of_messages(cls, messages: Iterable[BaseMessage]) -> Usage:
        """Sum of :meth:`of_message` over the model responses among ``messages``."""
        total = cls()
        for message in messages:
            if isinstance(message, AIMessage):
                total += cls.of_message(message)
        return total

    def to_dict(self) -> dict[str, int]:
        """Plain-data form, as kept in the store."""
        # Not dataclasses.asdict: it deep-copies, and this runs on every turn.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        """Inverse of :meth:`to_dict`; ``None`` gives zero usage."""
        if not data:
            return cls()
        return cls(**{key: int(data.get(key, 0)) for key in cls.__dataclass_fields__})
