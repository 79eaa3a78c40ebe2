"""Model resolution: spec strings, options, environment, and translated failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sleepagent.errors import (
    ConfigurationError,
    ModelCallError,
    ScriptExhaustedError,
    SleepAgentError,
)
from sleepagent.models import (
    LOCAL_TIMEOUT_S,
    PLACEHOLDER_API_KEY,
    REMOTE_TIMEOUT_S,
    SLEEP_LOCAL_MAX_TOKENS,
    ModelOptions,
    is_local_url,
    model_errors,
    resolve_model,
    resolve_models,
    sleep_reply_cap,
)
from sleepagent.testing import ScriptedChatModel

LOCAL = "http://localhost:11434/v1"


@pytest.fixture(autouse=True)
def no_openai_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


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
    chat, sleep = resolve_models("openai:m", options=ModelOptions(api_key="sk-test"))
    assert chat is sleep


def test_on_a_local_server_sleep_replies_are_capped_unless_a_cap_is_given():
    chat, sleep = resolve_models("openai:m", options=ModelOptions(base_url=LOCAL))
    assert (chat.max_tokens, sleep.max_tokens) == (None, SLEEP_LOCAL_MAX_TOKENS)
    _, own = resolve_models("openai:m", options=ModelOptions(base_url=LOCAL, max_tokens=300))
    assert own.max_tokens == 300


@pytest.mark.parametrize(
    ("spec", "options", "capped"),
    [
        ("openai:m", ModelOptions(base_url="http://127.0.0.1:8080/v1"), True),
        ("openai:m", ModelOptions(base_url="https://api.example.com/v1"), False),
        ("openai:m", ModelOptions(api_key="sk-test"), False),
        ("ollama:m", ModelOptions(), True),
    ],
)
def test_the_sleep_reply_cap_applies_to_local_servers_only(spec, options, capped):
    sized = sleep_reply_cap(spec, options)
    assert (sized.max_tokens == SLEEP_LOCAL_MAX_TOKENS) is capped
    assert sleep_reply_cap(ScriptedChatModel([]), options) is options


def test_sleep_options_alone_give_the_sleep_phase_its_own_model_of_the_same_spec():
    chat, sleep = resolve_models(
        "openai:m",
        options=ModelOptions(base_url=LOCAL, max_tokens=100),
        sleep_options=ModelOptions(base_url=LOCAL, max_tokens=2000),
    )
    assert (chat.model_name, sleep.model_name) == ("m", "m")
    assert (chat.max_tokens, sleep.max_tokens) == (100, 2000)


@pytest.mark.parametrize(
    ("field", "value"), [("timeout", 0), ("timeout", -5), ("max_retries", -1), ("max_tokens", 0)]
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


# --- any provider through init_chat_model ------------------------------------------------


def test_an_anthropic_spec_builds_its_model_with_options_in_its_own_spelling():
    options = ModelOptions(
        api_key="sk-ant-test", max_tokens=300, temperature=0.2, reasoning_effort="low",
        headers={"x-gateway": "team-a"}, request_fields={"gateway_route": "eu"}, max_retries=4,
    )  # fmt: skip
    model = resolve_model("anthropic:claude-sonnet-4-5", options)
    assert type(model).__name__ == "ChatAnthropic"
    assert (model.model, model.max_tokens, model.temperature) == ("claude-sonnet-4-5", 300, 0.2)
    assert (model.effort, model.max_retries) == ("low", 4)
    assert model.default_request_timeout == REMOTE_TIMEOUT_S
    assert model.default_headers == {"x-gateway": "team-a"}
    assert model.model_kwargs == {"gateway_route": "eu"}
    assert model.anthropic_api_key.get_secret_value() == "sk-ant-test"


def test_an_ollama_spec_keeps_the_colon_in_the_model_name_and_sizes_for_a_local_server():
    options = ModelOptions(max_tokens=64, temperature=0.0, headers={"x-a": "1"},
                           provider_kwargs={"num_ctx": 8192})  # fmt: skip
    model = resolve_model("ollama:qwen2.5:1.5b", options)
    assert type(model).__name__ == "ChatOllama"
    assert (model.model, model.num_predict, model.num_ctx) == ("qwen2.5:1.5b", 64, 8192)
    assert model.client_kwargs == {"timeout": LOCAL_TIMEOUT_S, "headers": {"x-a": "1"}}


def test_an_ollama_base_url_given_as_its_openai_address_is_taken_at_the_root():
    model = resolve_model("ollama:llama3.2", ModelOptions(base_url="http://gpu-box:11434/v1/"))
    assert model.base_url == "http://gpu-box:11434"


@pytest.mark.parametrize(
    ("field", "value"),
    [("api_key", "k"), ("reasoning_effort", "high"), ("request_fields", {"a": 1})],
)
def test_an_option_with_no_meaning_for_the_provider_is_refused_not_dropped(field, value):
    expected = rf"{field}=\.\.\.\) has no meaning for the ollama"
    with pytest.raises(ConfigurationError, match=expected):
        resolve_model("ollama:llama3.2", ModelOptions(**{field: value}))


def test_a_missing_provider_package_is_named_with_the_extra_and_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "langchain_mistralai" else real(name, *args),
    )
    with pytest.raises(ConfigurationError) as caught:
        resolve_model("mistralai:mistral-small-latest")
    message = str(caught.value)
    assert "pip install 'sleepagent[mistralai]'" in message
    assert "pip install langchain-mistralai" in message


def test_a_provider_without_an_extra_still_gets_the_pip_command():
    # langchain-groq is not a dependency of any extra.
    with pytest.raises(ConfigurationError, match="pip install langchain-groq"):
        resolve_model("groq:llama-3.1-8b-instant")


@pytest.mark.parametrize("spec", ["gpt-4o-mini", "openai:", ":gpt-4o"])
def test_a_spec_without_provider_or_name_says_what_a_spec_looks_like(spec):
    with pytest.raises(ConfigurationError, match="'anthropic:claude-sonnet-4-5'"):
        resolve_model(spec)


def test_an_unknown_provider_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="no-such-provider"):
        resolve_model("no-such-provider:m")


def test_openai_request_fields_and_headers_go_out_with_every_request():
    options = ModelOptions(
        base_url=LOCAL, request_fields={"tool_choice": "required"}, headers={"x-team": "a"}
    )
    model = resolve_model("openai:m", options)
    assert model.extra_body == {"tool_choice": "required"}
    assert model.default_headers == {"x-team": "a"}


def test_options_are_frozen_copies_of_the_mappings_given():
    fields = {"tool_choice": "auto"}
    options = ModelOptions(request_fields=fields)
    fields["tool_choice"] = "none"
    assert options.request_fields == {"tool_choice": "auto"}


# --- timeouts a slow local server can meet ----------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8088/v1", LOCAL_TIMEOUT_S),
        ("http://localhost:11434/v1", LOCAL_TIMEOUT_S),
        ("http://192.168.1.20:8000/v1", LOCAL_TIMEOUT_S),
        ("http://ollama:11434/v1", LOCAL_TIMEOUT_S),
        ("http://[::1]:8000/v1", LOCAL_TIMEOUT_S),
        ("https://api.example.com/v1", REMOTE_TIMEOUT_S),
        ("https://8.8.8.8/v1", REMOTE_TIMEOUT_S),
    ],
)
def test_an_unset_timeout_is_sized_from_the_server(base_url, expected):
    model = resolve_model("openai:m", ModelOptions(base_url=base_url))
    assert model.request_timeout == expected


def test_the_server_from_the_environment_sizes_the_timeout_too(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8088/v1")
    assert resolve_model("openai:m").request_timeout == LOCAL_TIMEOUT_S


def test_a_timeout_given_is_kept_even_for_a_local_server():
    model = resolve_model("openai:m", ModelOptions(base_url=LOCAL, timeout=REMOTE_TIMEOUT_S))
    assert model.request_timeout == REMOTE_TIMEOUT_S


def test_the_unset_timeout_reads_as_the_hosted_default_for_code_that_reads_it():
    assert ModelOptions().timeout == REMOTE_TIMEOUT_S


def test_is_local_url_refuses_public_names():
    assert not is_local_url("https://api.openai.com/v1")
    assert is_local_url("localhost:8000")


def test_importing_sleepagent_or_building_another_provider_imports_no_openai_package():
    code = (
        "import sys, sleepagent\n"
        "from sleepagent.models import ModelOptions, resolve_model\n"
        "resolve_model('ollama:llama3.2')\n"
        "resolve_model('anthropic:claude-sonnet-4-5', ModelOptions(api_key='k'))\n"
        "print(sorted(m for m in ('openai', 'langchain_openai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_timed_out_call_names_the_option_and_the_command_line_flag():
    message = str(ModelCallError(phase="sleep", cause=TimeoutError("read timed out")))
    assert "ModelOptions(timeout=SECONDS)" in message and "--timeout SECONDS" in message


def test_another_failed_call_names_both_flags():
    message = str(ModelCallError(phase="chat", cause=ConnectionError("refused")))
    assert "--timeout and --max-retries" in message


def test_a_reasoning_sample_is_capped_by_the_name_its_provider_uses():
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    from sleepagent.models import sample_options

    openai_model = ChatOpenAI(api_key="sk-test")
    assert sample_options(openai_model, max_tokens=5, temperature=0.0) == {
        "max_tokens": 5,
        "temperature": 0.0,
    }
    assert sample_options(ChatOllama(model="m"), max_tokens=5, temperature=None) == {
        "num_predict": 5
    }
