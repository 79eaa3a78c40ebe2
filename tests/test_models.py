"""Model resolution: spec strings, options, environment, and translated failures."""

from __future__ import annotations

import pytest

from sleepagent.errors import (
    ConfigurationError,
    ModelCallError,
    ScriptExhaustedError,
    SleepAgentError,
)
from sleepagent.models import (
    PLACEHOLDER_API_KEY,
    ModelOptions,
    model_errors,
    resolve_model,
    resolve_models,
)
from sleepagent.testing import ScriptedChatModel

LOCAL = "http://localhost:11434/v1"


@pytest.fixture(autouse=True)
def no_openai_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_a_chat_model_instance_passes_through_untouched():
    model = ScriptedChatModel(["hi"])
    assert resolve_model(model, ModelOptions(max_tokens=5)) is model


def test_a_spec_carries_the_budget_knobs_timeout_and_retries():
    options = ModelOptions(
        base_url=LOCAL, max_tokens=256, temperature=0.0, reasoning_effort="low",
        timeout=12.5, max_retries=4,
    )  # fmt: skip
    model = resolve_model("openai:llama3.2", options)
    assert (model.model_name, model.openai_api_base) == ("llama3.2", LOCAL)
    assert (model.max_tokens, model.temperature, model.reasoning_effort) == (256, 0.0, "low")
    assert (model.request_timeout, model.max_retries) == (12.5, 4)


def test_a_spec_asks_compatible_servers_for_usage_in_streams():
    assert resolve_model("openai:m", ModelOptions(base_url=LOCAL)).stream_usage is True


def test_a_base_url_without_a_key_sends_a_placeholder_key():
    model = resolve_model("openai:llama3.2", ModelOptions(base_url=LOCAL))
    assert model.openai_api_key.get_secret_value() == PLACEHOLDER_API_KEY


def test_the_server_and_key_come_from_the_usual_environment_variables(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    model = resolve_model("openai:qwen")
    assert model.openai_api_base == "http://localhost:8000/v1"
    assert model.openai_api_key.get_secret_value() == "sk-from-env"


def test_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    model = resolve_model("openai:m", ModelOptions(base_url=LOCAL, api_key="sk-arg"))
    assert (model.openai_api_base, model.openai_api_key.get_secret_value()) == (LOCAL, "sk-arg")


def test_no_key_and_no_server_says_exactly_what_to_set():
    with pytest.raises(ConfigurationError) as caught:
        resolve_model("openai:gpt-4o-mini")
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and "OPENAI_BASE_URL" in message
    assert "http://localhost:11434/v1" in message


def test_model_and_sleep_model_are_resolved_each_with_its_own_options():
    chat, sleep = resolve_models(
        "openai:small",
        "openai:large",
        options=ModelOptions(base_url=LOCAL, max_tokens=100),
        sleep_options=ModelOptions(base_url=LOCAL, max_tokens=4000, reasoning_effort="high"),
    )
    assert (chat.model_name, chat.max_tokens, chat.reasoning_effort) == ("small", 100, None)
    assert (sleep.model_name, sleep.max_tokens, sleep.reasoning_effort) == ("large", 4000, "high")


def test_without_a_sleep_model_both_phases_share_one_model():
    chat, sleep = resolve_models("openai:m", options=ModelOptions(base_url=LOCAL))
    assert chat is sleep


def test_sleep_options_alone_give_the_sleep_phase_its_own_model_of_the_same_spec():
    chat, sleep = resolve_models(
        "openai:m",
        options=ModelOptions(base_url=LOCAL, max_tokens=100),
        sleep_options=ModelOptions(base_url=LOCAL, max_tokens=2000),
    )
    assert (chat.model_name, sleep.model_name) == ("m", "m")
    assert (chat.max_tokens, sleep.max_tokens) == (100, 2000)


@pytest.mark.parametrize(
    ("field", "value"), [("timeout", 0), ("max_retries", -1), ("max_tokens", 0)]
)
def test_impossible_options_are_refused(field, value):
    with pytest.raises(ConfigurationError, match=field):
        ModelOptions(**{field: value})


def test_model_errors_wraps_whatever_a_model_call_raises_and_keeps_the_cause():
    with pytest.raises(ModelCallError) as raised, model_errors("chat"):
        raise KeyError("not a model request")
    assert isinstance(raised.value.cause, KeyError)
    assert raised.value.__cause__ is raised.value.cause


def test_model_errors_lets_the_librarys_own_errors_through_unchanged():
    with pytest.raises(ScriptExhaustedError), model_errors("sleep"):
        raise ScriptExhaustedError("scripted for 0")


def test_a_model_call_error_is_a_runtime_error_carrying_phase_and_cause():
    cause = TimeoutError("took too long.")
    error = ModelCallError(phase="sleep", cause=cause)
    assert isinstance(error, RuntimeError) and isinstance(error, SleepAgentError)
    assert (error.phase, error.cause) == ("sleep", cause)
    assert str(error).startswith("the sleep model call failed: TimeoutError: took too long. ")
