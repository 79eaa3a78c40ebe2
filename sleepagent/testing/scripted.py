"""Scripted chat models: replies and tool calls played back in order."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

from sleepagent.errors import ScriptExhaustedError

__all__ = ["ScriptStep", "ScriptedCall", "ScriptedChatModel", "ai_tool_calls", "tool_call"]

ScriptStep = AIMessage | str | Callable[[Sequence[BaseMessage]], AIMessage | str]
"""One scripted reply: a message, plain text, or a function of the prompt messages."""

_ids = itertools.count(1)


def tool_call(name: str, **args: Any) -> ToolCall:
    """A tool call for a scripted reply, with a fresh id."""
    return ToolCall(name=name, args=args, id=f"call_{next(_ids)}", type="tool_call")


def ai_tool_calls(*calls: ToolCall, content: str = "") -> AIMessage:
    """A scripted model reply that makes the given tool calls."""
    return AIMessage(content=content, tool_calls=list(calls))


@dataclass(frozen=True)
class ScriptedCall:
    """One call the scripted model received.

    Attributes:
        messages: The prompt messages.
        tools: Names of the tools bound for this call.
        reply: What the model answered.
        options: The call's other options (``max_tokens``, ``temperature``, ...).

    """

    messages: tuple[BaseMessage, ...]
    tools: tuple[str, ...]
    reply: AIMessage
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        """Text of the first message when it is a system message, else ``""``."""
        first = self.messages[0] if self.messages else None
        return str(first.content) if first is not None and first.type == "system" else ""


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays a script.

    Args:
        script: Replies in the order they are given. A callable step receives
            the prompt messages and returns the reply, for replies that depend
            on what the agent sent.

    Each reply carries deterministic token usage (about four characters a
    token) unless the scripted message sets ``usage_metadata`` itself. Safe to
    call from several threads. ``bind_tools`` works and records tool names.

    Raises:
        ScriptExhaustedError: When called after the script has run out.

    """

    script: list[Any] = Field(default_factory=list)
    _position: int = PrivateAttr(default=0)
    _calls: list[ScriptedCall] = PrivateAttr(default_factory=list)
    _unexpected: list[str] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, script: Iterable[ScriptStep] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = list(script)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def remaining(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self.script) - self._position

    def extend(self, steps: Iterable[ScriptStep]) -> None:
        """Add replies at the end of the script."""
        with self._lock:
            self.script.extend(steps)

    @property
    def unexpected(self) -> list[str]:
        """Calls made after the script ran out (each also raised ``ScriptExhaustedError``).

        Kept because such a call may happen in a background job, whose runner
        turns the error into a retried failure the test would never see.
        """
        with self._lock:
            return list(self._unexpected)

    def assert_exhausted(self) -> None:
        """Fail if scripted replies were left unused, or the model was called past its script.

        Raises:
            AssertionError: Naming the replies left, or the unexpected calls.

        """
        if self.unexpected:
            raise AssertionError(
                f"ScriptedChatModel was called {len(self.unexpected)} more times than scripted; "
                f"the first unexpected call's last message was: {self.unexpected[0]}"
            )
        if self.remaining:
            raise AssertionError(f"{self.remaining} scripted replies were never requested")

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; scripted replies are not checked against them."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            index = self._position
            if index >= len(self.script):
                self._unexpected.append(_preview(messages))
                raise ScriptExhaustedError(
                    f"ScriptedChatModel was called {index + 1} times but scripted for "
                    f"{len(self.script)}; the unexpected call's last message was: "
                    f"{_preview(messages)}"
                )
            self._position += 1
            step = self.script[index]
        produced = step(messages) if callable(step) else step
        reply = AIMessage(content=produced) if isinstance(produced, str) else produced.model_copy()
        if reply.usage_metadata is None:
            reply.usage_metadata = _estimate_usage(messages, reply)
        tools = tuple(tool["function"]["name"] for tool in kwargs.get("tools", ()))
        options = {key: value for key, value in kwargs.items() if key != "tools"}
        with self._lock:
            self._calls.append(ScriptedCall(tuple(messages), tools, reply, options))
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _estimate_usage(prompt: Sequence[BaseMessage], reply: AIMessage) -> Any:
    prompt_chars = sum(len(str(message.content)) for message in prompt)
    reply_chars = len(str(reply.content)) + sum(
        len(json.dumps(call["args"])) for call in reply.tool_calls
    )
    input_tokens = max(1, prompt_chars // 4)
    output_tokens = max(1, reply_chars // 4)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _preview(messages: Sequence[BaseMessage]) -> str:
    if not messages:
        return "(no messages)"
    text = str(messages[-1].content)
    return repr(text if len(text) <= 120 else text[:117] + "...")
