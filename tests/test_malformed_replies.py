"""Malformed replies from a real HTTP server: typed errors for chat, a told model for sleep.

The openai client talks to the loopback server, which answers HTTP 200 with a body that is
not a valid completion. Nothing is logged and no block changes.
"""

from __future__ import annotations

import pytest

from sleepagent import ModelCallError, SleepConfig, SleepOutcome, SleepTimeAgent, UserFacts
from sleepagent.models import ModelOptions
from sleepagent.testing import (
    Completion,
    LoopbackOpenAI,
    malformed,
    malformed_tool_arguments,
    wire_call,
)

NO_CHOICES = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
NULL_MESSAGE = {**NO_CHOICES, "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}
BROKEN = {
    "no-choices": malformed(NO_CHOICES),
    "null-message": malformed(NULL_MESSAGE),
    "list-arguments": malformed_tool_arguments("[1, 2]"),
    "number-arguments": malformed_tool_arguments("123"),
    "string-arguments": malformed_tool_arguments('"notes"'),
}


def agent_on(server: LoopbackOpenAI, db) -> SleepTimeAgent:
    # The edit round: a page's first sleep request is its tool prompt, not the fact pass.
    return SleepTimeAgent(
        "openai:loop",
        model_options=ModelOptions(base_url=server.base_url, max_retries=0, timeout=10),
        config=SleepConfig(user_facts=UserFacts.EDIT),
        db=db,
        scheduler=None,
    )


@pytest.mark.parametrize("reply", BROKEN.values(), ids=BROKEN.keys())
def test_a_malformed_chat_reply_is_a_model_call_error_and_logs_nothing(db, reply):
    with LoopbackOpenAI([reply]) as server, agent_on(server, db) as agent:
        with pytest.raises(ModelCallError) as raised:
            agent.chat("hi", thread_id="t1")
        assert raised.value.phase == "chat" and raised.value.cause is not None
        assert agent.blocks.position("t1") is None, "nothing was logged"
        assert agent.memory(thread_id="t1")["human"].version == 0


@pytest.mark.parametrize("reply", BROKEN.values(), ids=BROKEN.keys())
def test_a_malformed_sleep_reply_is_told_to_the_model_which_tries_again(db, reply):
    fixed = Completion.calling(
        wire_call("memory_rethink", label="human", new_value="Ada"), wire_call("memory_finish")
    )
    with (
        LoopbackOpenAI([Completion("Hello!"), reply, fixed]) as server,
        agent_on(server, db) as agent,
    ):
        agent.chat("I'm Ada", thread_id="t1")
        result = agent.sleep(thread_id="t1")
        told = server.requests[-1].body["messages"][-1]["content"]
        assert "could not be read" in told
        assert result.outcome is SleepOutcome.EDITED
        assert agent.memory(thread_id="t1")["human"].value == "Ada"
        server.assert_exhausted()
