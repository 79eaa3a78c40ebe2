"""The simulation kit: scenarios with quiet periods, on virtual time, with a memory timeline.

The scripted models are small rule-based stand-ins for real ones: the chat
model answers from the memory rendered into its system prompt (nothing else),
and the sleep model keeps ``key: value`` facts in the ``human`` block, taken
from what the user said. So each assertion on a reply shows what the bot knew.
The agents run on the machinery config of tests/conftest.py: the keys
("home", "diet") are the note taker's own labels, not words the user said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from sleepagent import (
    AsyncSleepTimeAgent,
    ConfigurationError,
    Scope,
    ScopeMismatchError,
    SleepConfig,
    SleepTimeAgent,
)
from sleepagent.testing import (
    Ask,
    ManualScheduler,
    Say,
    ScriptedChatModel,
    SimulatedUser,
    Wait,
    ai_tool_calls,
    asimulate,
    memory_in_prompt,
    simulate,
    tool_call,
    transcript_in_prompt,
)
from tests.conftest import machinery

FACTS = {
    "units": re.compile(r"\bprefer (metric|imperial)\b"),
    "home": re.compile(r"\b(?:live in|moved to) ([A-Z]\w+)"),
    "diet": re.compile(r"\bI(?:'m| am) (vegetarian|vegan)\b"),
}


def facts_of(block: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)


def note_taker(messages: Sequence[BaseMessage]) -> AIMessage:
    """Sleep model: merge the facts the user stated into the ``human`` block (later wins)."""
    facts = facts_of(memory_in_prompt(messages).get("human", ""))
    for role, text in transcript_in_prompt(messages):
        for key, pattern in FACTS.items():
            if role == "user" and (found := pattern.search(text)):
                facts[key] = found.group(1)
    value = "\n".join(f"{key}: {facts[key]}" for key in sorted(facts))
    return ai_tool_calls(
        tool_call("memory_rethink", label="human", new_value=value), tool_call("memory_finish")
    )


def bot(messages: Sequence[BaseMessage]) -> str:
    """Chat model: answers from the facts in its memory, and says which it used."""
    facts = facts_of(memory_in_prompt(messages).get("human", ""))
    question = str(messages[-1].content).lower()
    if "marathon" in question:
        return "42.2 km" if facts.get("units") == "metric" else "26.2 miles"
    if "weather" in question:
        return f"Forecast for {facts['home']}" if "home" in facts else "Where do you live?"
    if "dinner" in question:
        return "Mushroom risotto" if facts.get("diet") == "vegetarian" else "Steak frites"
    return "Noted."


@pytest.fixture
def agent():
    with SleepTimeAgent(
        ScriptedChatModel([bot] * 20),
        sleep_model=ScriptedChatModel([note_taker] * 20),
        db=None,
        config=machinery(SleepConfig(idle_seconds=30)),
        scheduler=ManualScheduler(),
    ) as agent:
        yield agent


def test_a_preference_stated_early_is_used_after_a_quiet_period(agent):
    run = simulate(
        agent,
        [
            Say("I prefer metric units.", user="ada"),
            Say("How long is a marathon?", user="ada"),
            Wait(120),
            Say("And a marathon, again?", user="ada"),
        ],
    )
    assert run.replies(user="ada") == ["Noted.", "26.2 miles", "42.2 km"]
    [learned] = run.versions("human", user="ada")
    assert (learned.value, learned.reason, learned.at) == ("units: metric", "idle", 30.0)


def test_a_correction_overrides_an_earlier_fact(agent):
    run = simulate(
        agent,
        [
            Say("I live in Lisbon.", user="ada"),
            Wait(60),
            Say("Actually, I moved to Porto last month.", user="ada"),
            Wait(60),
            Say("What's the weather like at home?", user="ada"),
        ],
    )
    assert run.replies(user="ada")[-1] == "Forecast for Porto"
    assert [(v.at, v.version, v.value) for v in run.versions("human", user="ada")] == [
        (30.0, 1, "home: Lisbon"),
        (90.0, 2, "home: Porto"),
    ]
    assert run.value_at("human", 60.0, user="ada") == "home: Lisbon"


def test_two_users_in_one_channel_never_see_each_others_memory(agent):
    run = simulate(
        agent,
        [
            Say("I'm vegetarian.", user="ada", thread="general"),
            Say("I live in Oslo.", user="bob", thread="general"),
            Wait(60),
            Say("Dinner idea?", user="bob", thread="general"),
            Say("Dinner idea?", user="ada", thread="general"),
        ],
        per_user_threads=True,
    )
    assert run.replies(user="bob")[-1] == "Steak frites"
    assert run.replies(user="ada")[-1] == "Mushroom risotto"
    assert [v.value for v in run.versions("human", user="ada")] == ["diet: vegetarian"]
    assert [v.value for v in run.versions("human", user="bob")] == ["home: Oslo"]


def test_a_simulated_user_writes_its_turns_from_the_conversation(agent):
    said = []

    def person(messages: Sequence[BaseMessage]) -> str:
        said.append(str(messages[-1].content))
        return "I'm vegetarian." if len(said) == 1 else "Dinner idea?"

    ada = SimulatedUser(ScriptedChatModel([person] * 2), "Ada, a vegetarian cook", user="ada")
    run = simulate(agent, [Ask(ada), Wait(60), Ask(ada)])
    assert run.replies(user="ada") == ["Noted.", "Mushroom risotto"]
    assert said[1] == "Noted.", "the persona model saw the bot's last reply"


def test_simulate_refuses_an_agent_on_real_time():
    with (
        SleepTimeAgent(ScriptedChatModel(), db=None, scheduler=None) as agent,
        pytest.raises(ConfigurationError, match="ManualScheduler"),
    ):
        simulate(agent, [Say("hi")])


async def test_asimulate_runs_the_same_scenario_on_an_async_agent():
    async with AsyncSleepTimeAgent(
        ScriptedChatModel([bot] * 2),
        sleep_model=ScriptedChatModel([note_taker]),
        db=None,
        config=machinery(SleepConfig(idle_seconds=30)),
        scheduler=ManualScheduler(),
    ) as agent:
        run = await asimulate(
            agent, [Say("I prefer metric units."), Wait(31), Say("How long is a marathon?")]
        )
    assert run.replies() == ["Noted.", "42.2 km"]
    assert run.duration == 31.0


def test_one_agent_thread_refuses_a_second_users_memory_scope(agent):
    with pytest.raises(ScopeMismatchError, match="user:ada"):
        simulate(
            agent,
            [
                Say("I'm vegetarian.", user="ada", thread="general"),
                Say("I live in Oslo.", user="bob", thread="general"),
            ],
        )
    assert agent.blocks.load(Scope("user", "bob"))[1].value == ""
