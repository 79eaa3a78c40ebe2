"""The library's defaults: think, then write on context; consolidation on every edit.

Runs over every backend and mode with the library's own defaults (not the
machinery config of tests/conftest.py).
"""

from __future__ import annotations

import logging

import pytest

from sleepagent import SleepConfig, SleepOutcome, SleepThinking, UserFacts
from sleepagent.scheduling.events import EventKind
from sleepagent.sleep.thinking import agreed_lines
from sleepagent.testing import EventRecorder, ai_tool_calls, finish, rethink, tool_call

BAKERY = (
    "A bakery sells muffins for $3 each and cookies for $2 each. "
    "On Monday it sold 40 muffins and 25 cookies."
)
WORKED = """\
Sentence 1: muffin price = 3, cookie price = 2.
Sentence 2: muffins sold = 40, cookies sold = 25.

FINAL STATE
Muffin sales: 40 * 3 = 120
Cookie sales: 25 * 2 = 50

Q: How much money did the bakery make on Monday?
A: 120 + 50 = 170
Q: How many items did it sell?
A: 40 + 25 = 65
"""


def test_context_is_thought_through_once_and_its_results_written_by_code(make_agent):
    agent, chat, sleep = make_agent(chat=["$170."], sleep=[WORKED], library_defaults=True)

    result = agent.add_context(BAKERY, thread_id="doc")

    assert result.outcome is SleepOutcome.EDITED
    assert len(sleep.calls) == 1, "one reasoning sample, and no edit round after it"
    assert sleep.calls[0].tools == (), "the reasoning pass is offered no tools"
    assert sleep.calls[0].options["max_tokens"] == SleepConfig().sleep_think_tokens
    assert agent.memory(thread_id="doc")["learned_context"].value.splitlines() == [
        "Final values:",
        "- Muffin sales: 40 * 3 = 120",
        "- Cookie sales: 25 * 2 = 50",
    ], "the computed values, not the guessed questions"
    assert result.usage.output_tokens > 0, "the reasoning tokens count in the sleep phase"


def test_a_later_question_is_answered_from_the_computed_result(make_agent):
    agent, chat, _ = make_agent(chat=["170"], sleep=[WORKED], library_defaults=True)
    agent.add_context(BAKERY, thread_id="doc")

    agent.chat("How much money did the bakery make on Monday?", thread_id="doc")

    prompt = "\n".join(str(message.content) for message in chat.calls[0].messages)
    assert "- Muffin sales: 40 * 3 = 120" in prompt


def test_k_samples_are_combined_by_agreement(make_agent):
    wrong = WORKED.replace("Cookie sales: 25 * 2 = 50", "Cookie sales: 25 * 2 = 40")
    config = SleepConfig(sleep_samples=3)
    agent, _, sleep = make_agent(
        sleep=[wrong, WORKED, WORKED], config=config, library_defaults=True
    )

    agent.add_context(BAKERY, thread_id="doc")

    learned = agent.memory(thread_id="doc")["learned_context"].value
    assert "- Cookie sales: 25 * 2 = 50" in learned
    assert "40\n" not in learned and not learned.endswith("= 40")
    assert len(sleep.calls) == 3
    temperatures = [call.options.get("temperature") for call in sleep.calls]
    assert temperatures == [0.0, 0.7, 0.7], "the first sample is greedy"


def test_a_run_reports_each_samples_reasoning_and_any_subset_can_be_rescored(make_agent):
    wrong = WORKED.replace("Cookie sales: 25 * 2 = 50", "Cookie sales: 25 * 2 = 40")
    config = SleepConfig(sleep_samples=3)
    agent, _, _ = make_agent(sleep=[wrong, WORKED, WORKED], config=config, library_defaults=True)

    result = agent.add_context(BAKERY, thread_id="doc")

    assert result.reasoning == (wrong, WORKED, WORKED)
    learned = agent.memory(thread_id="doc")["learned_context"].value
    assert learned == "\n".join(agreed_lines(result.reasoning))
    assert "- Cookie sales: 25 * 2 = 40" in agreed_lines(result.reasoning[:1])


def test_a_reasoning_pass_with_nothing_readable_is_asked_once_more_sampled(make_agent):
    agent, _, sleep = make_agent(sleep=["I am not sure what to do.", WORKED], library_defaults=True)

    result = agent.add_context(BAKERY, thread_id="doc")

    assert result.outcome is SleepOutcome.EDITED
    learned = agent.memory(thread_id="doc")["learned_context"].value
    assert "- Cookie sales: 25 * 2 = 50" in learned
    temperatures = [call.options.get("temperature") for call in sleep.calls]
    assert temperatures == [0.0, 0.7], "the second try is sampled: greedy would repeat itself"
    assert all(call.tools == () for call in sleep.calls), "no edit round"
    assert result.reasoning == ("I am not sure what to do.", WORKED)


def test_two_reasoning_passes_with_nothing_readable_leave_the_page_to_the_edit_round(
    make_agent,
):
    agent, _, sleep = make_agent(
        sleep=[
            "I am not sure what to do.",
            "Still unsure.",
            rethink("learned_context", "Revenue: $170"),
        ],
        library_defaults=True,
    )

    result = agent.add_context(BAKERY, thread_id="doc")

    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="doc")["learned_context"].value == "Revenue: $170"
    assert [bool(call.tools) for call in sleep.calls] == [False, False, True]


def test_no_reasoning_pass_when_thinking_is_off(make_agent):
    config = SleepConfig(sleep_thinking=SleepThinking.NEVER)
    agent, _, sleep = make_agent(
        sleep=[rethink("learned_context", "Revenue: $170")], config=config, library_defaults=True
    )
    agent.add_context(BAKERY, thread_id="doc")
    assert len(sleep.calls) == 1 and sleep.calls[0].tools


@pytest.mark.sleep_failures_expected
def test_an_invented_fact_is_refused_and_the_model_reads_why(make_agent, caplog):
    invented = tool_call("memory_insert", label="human", text="The user's mood is happy.")
    stated = tool_call("memory_insert", label="human", text="Name: Marco")
    agent, _, sleep = make_agent(
        chat=["Hi Marco!"],
        sleep=[ai_tool_calls(invented, stated), finish()],
        config=SleepConfig(user_facts=UserFacts.EDIT),  # the edit round's tool replies
        library_defaults=True,
    )
    agent.chat("I'm Marco. I'm allergic to peanuts.", thread_id="t1")

    with caplog.at_level(logging.INFO, logger="sleepagent.sleep"):
        agent.sleep(thread_id="t1")

    assert agent.memory(thread_id="t1")["human"].value == "Name: Marco"
    replies = [m.content for m in sleep.calls[1].messages if m.type == "tool"]
    assert "not grounded" in replies[0] and "'mood'" in replies[0]
    assert replies[1].startswith("OK")
    assert any(r.getMessage().startswith("refused line ") for r in caplog.records)


def test_a_context_page_never_changes_the_users_block_or_the_persona(make_agent):
    profile = tool_call("memory_insert", label="persona", text="Evan is 18.")
    copy = tool_call("memory_insert", label="human", text="Evan is allergic to nuts.")
    config = SleepConfig(sleep_thinking=SleepThinking.NEVER)
    agent, _, sleep = make_agent(
        sleep=[ai_tool_calls(profile, copy), finish()],
        config=config,
        library_defaults=True,
    )

    agent.add_context("Evan is 18 and allergic to nuts.", thread_id="doc")

    memory = agent.memory(thread_id="doc")
    assert memory["human"].value == ""
    assert memory["persona"].value == "I am a helpful, concise assistant."
    replies = [m.content for m in sleep.calls[1].messages if m.type == "tool"]
    assert all("context material" in reply for reply in replies)


def test_auto_falls_back_to_text_for_a_reply_without_tool_calls_and_says_so(make_agent):
    config = SleepConfig(
        sleep_thinking=SleepThinking.NEVER, text_fallback_runs=1, user_facts=UserFacts.EDIT
    )
    agent, _, sleep = make_agent(
        chat=["ok", "ok", "ok"],
        sleep=[
            "Let me think about memory.",  # no tool call: this run goes to text
            "<human>\nName: Ada\n</human>",
            "<human>\nName: Ada\nLives in Porto\n</human>",  # the next run starts in text
            finish(),  # and the one after tries tools again
        ],
        config=config,
        library_defaults=True,
    )
    events = EventRecorder()
    agent.agent.subscribe(events)

    agent.chat("I'm Ada.", thread_id="t1")
    first = agent.sleep(thread_id="t1")
    agent.chat("I live in Porto now.", thread_id="t1")
    second = agent.sleep(thread_id="t1")
    agent.chat("Hello again.", thread_id="t1")
    agent.sleep(thread_id="t1")

    assert first.text_fallback and not second.text_fallback
    assert len(events.of(EventKind.TEXT_FALLBACK)) == 1
    assert sleep.calls[3].tools, "tools are tried again after text_fallback_runs"
    assert agent.memory(thread_id="t1")["human"].value == "Name: Ada\nLives in Porto"
