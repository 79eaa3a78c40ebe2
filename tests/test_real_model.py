"""A real model through chat, sleep and add_context, in each sleep-time edit mode.

Runs only when ``SLEEPAGENT_TEST_REAL_MODEL_URL`` names an OpenAI-compatible server
(for example ``http://127.0.0.1:8088/v1``); ``SLEEPAGENT_TEST_REAL_MODEL`` picks the
model name (default ``qwen2.5-coder-1.5b``). It asserts mechanics only: every run
ends with a stated outcome, nothing raises, usage is counted. What the model wrote
is the evaluation script's business (``benchmarks/real_model_eval.py``).
"""

from __future__ import annotations

import os

import pytest

URL = os.environ.get("SLEEPAGENT_TEST_REAL_MODEL_URL")
MODEL = os.environ.get("SLEEPAGENT_TEST_REAL_MODEL", "qwen2.5-coder-1.5b")

pytestmark = pytest.mark.skipif(
    not URL, reason="set SLEEPAGENT_TEST_REAL_MODEL_URL to an OpenAI-compatible server"
)

PROBLEM = (
    "A bakery sells muffins for $3 each and cookies for $2 each. "
    "On Monday it sold 40 muffins and 25 cookies."
)


@pytest.mark.parametrize("mode", ["auto", "text", "tools"])
def test_chat_sleep_and_add_context_end_with_a_stated_outcome_and_counted_usage(mode):
    from sleepagent import SleepConfig, SleepTimeAgent
    from sleepagent.config import SleepEditMode
    from sleepagent.models import ModelOptions
    from sleepagent.results import SleepOutcome

    # A small step budget keeps a slow CPU model's worst case bounded.
    config = SleepConfig(sleep_edit_mode=SleepEditMode(mode), max_sleep_steps=3)
    options = ModelOptions(base_url=URL, max_tokens=512, temperature=0.0)
    with SleepTimeAgent(
        f"openai:{MODEL}", model_options=options, config=config, db=None, scheduler=None
    ) as agent:
        reply = agent.chat("Hi, I'm Ada, I'm vegetarian and live in Lisbon", thread_id="t1")
        assert reply.reply.strip()
        assert agent.usage(thread_id="t1")["chat"].calls >= 1

        slept = agent.sleep(thread_id="t1")
        assert isinstance(slept.outcome, SleepOutcome)
        assert slept.usage.calls >= 1 and slept.usage.total_tokens > 0

        learned = agent.add_context(PROBLEM, thread_id="w1")
        assert isinstance(learned.outcome, SleepOutcome)
        assert learned.usage.calls >= 1
        assert agent.usage(thread_id="w1")["sleep"].calls == learned.usage.calls
