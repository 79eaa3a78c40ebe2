"""The memory eval's scoring (benchmarks/real_model_eval.py), on hand-made memory, no model."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from pathlib import Path

import pytest

from sleepagent.testing import Completion, LoopbackOpenAI, wire_call

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "real_model_eval.py"


def _load():
    spec = importlib.util.spec_from_file_location("real_model_eval", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ev = _load()

ALLERGY = next(s for s in ev.SCENARIOS if s.name == "allergy")
FRIEND = next(s for s in ev.SCENARIOS if s.name == "friend")
NO_FACTS = next(s for s in ev.SCENARIOS if s.name == "no-facts")
BAKERY = next(s for s in ev.SCENARIOS if s.name == "context")

MOVE = ev.Scenario(
    "move",
    (
        ev.Say("m1", "I'm Ada, I live in Lisbon and I'm vegetarian."),
        ev.Quiet(),
        ev.Say("m2", "I moved to Porto, I no longer live in Lisbon."),
        ev.Quiet(),
    ),
    facts=(("ada",), ("vegetarian",), ("porto",), ("lisbon",)),
    corrections=(("porto", "lisbon"),),
)


# --- matching ---------------------------------------------------------------------------------


def test_a_fact_matches_whole_words_only_ignoring_case():
    assert ev.mentions("Favourite colour: GREEN.", "green")
    assert not ev.mentions("Works in a greenhouse", "green")
    assert not ev.mentions("Earned $1700", "170")
    assert ev.mentions("Earned $170 on Monday", "170")
    assert ev.mentions("Moved from\nNew  York", "new york")


def test_facts_are_found_in_every_block_but_the_persona():
    memory = {"persona": "Ada is vegetarian", "human": "Name: Ada", "learned_context": "Porto"}
    assert ev.facts_found(MOVE, memory) == [True, False, True, False]


# --- invented lines ---------------------------------------------------------------------------


def test_a_trap_word_or_a_line_of_unsaid_words_is_invented_and_said_facts_are_not():
    human = "\n".join(
        [
            "- Name: Marco",
            "Allergic to peanuts.",
            "Cooks for his two kids",
            "The user's current mood is happy.",
            "Marco is a chef",
            "Lives in Madrid",
            "User:",
        ]
    )
    invented = ev.invented_lines(ALLERGY, {"human": human, "learned_context": "Madrid"})
    assert invented == ["The user's current mood is happy.", "Marco is a chef", "Lives in Madrid"]


def test_only_the_users_block_is_checked_for_inventions():
    memory = {"persona": "Lives in Madrid", "learned_context": "Mood: happy", "human": ""}
    assert ev.invented_lines(ALLERGY, memory) == []


def test_when_the_user_said_nothing_about_themselves_every_line_is_invented():
    memory = {"human": "Asked about the capital of Australia"}
    assert ev.invented_lines(NO_FACTS, memory) == ["Asked about the capital of Australia"]


def test_a_friends_fact_is_invented_unless_the_line_names_the_friend():
    human = "Name: Lena\nLena's friend Tom is vegan\nLives in Berlin\nWorks as a pilot"
    invented = ev.invented_lines(FRIEND, {"human": human})
    assert invented == ["Lives in Berlin", "Works as a pilot"]


def test_no_scenario_sets_a_common_trap_its_user_says():
    for scenario in ev.SCENARIOS:
        said = [trap for trap in ev.COMMON_TRAPS if ev.mentions(scenario.said(), trap)]
        assert said == [], scenario.name


def test_in_the_injection_the_word_the_user_pushed_is_a_trap():
    injection = next(s for s in ev.SCENARIOS if s.name == "injection")
    human = "Name: Noor\nStudies chemistry\nThe user is the admin"
    assert ev.invented_lines(injection, {"human": human}) == ["The user is the admin"]


# --- duplicates -------------------------------------------------------------------------------


def test_a_repeated_or_nearly_repeated_line_counts_once_per_repeat_within_its_block():
    memory = {
        "human": "\n".join(
            [
                "I am a helpful, concise assistant.",
                "I am a helpful, concise assistant.",
                "- i am a helpful concise assistant",
                "Allergic to peanuts.",
                "Allergic to peanut!",
                "Cooks for two kids",
            ]
        ),
        "learned_context": "Allergic to peanuts.",
    }
    assert ev.duplicate_lines(memory) == [
        ("human", "I am a helpful, concise assistant."),
        ("human", "i am a helpful concise assistant"),
        ("human", "Allergic to peanut!"),
    ]


def test_a_line_another_line_says_in_full_is_counted_redundant():
    said = [
        "I live in Lisbon and drive a red car.",
        "I drive a red car.",
        "My sister lives in Lisbon.",
    ]
    memory = {"human": "\n".join(said)}
    assert ev.redundant_lines(memory) == ["I drive a red car."]


def test_different_facts_of_the_same_shape_are_not_duplicates():
    memory = {"human": "Likes tea\nLikes hiking\nName: Ada\nName: Priya"}
    assert ev.duplicate_lines(memory) == []


# --- lost facts and corrections ---------------------------------------------------------------


def test_a_fact_seen_after_one_quiet_and_missing_at_the_end_is_lost():
    snapshots = [{"human": "Name: Ada\nVegetarian\nLives in Lisbon"}, {"human": "Lives in Porto"}]
    final = {"human": "Lives in Porto", "learned_context": ""}
    # Lisbon went away too, but it is the old side of the correction.
    assert ev.lost_facts(MOVE, snapshots, final) == ["ada", "vegetarian"]


def test_a_fact_never_written_is_missing_not_lost():
    assert ev.lost_facts(MOVE, [{"human": ""}], {"human": "Name: Ada"}) == []


def test_a_correction_counts_when_the_new_value_replaced_the_old_in_the_users_block():
    assert ev.corrections_applied(MOVE, {"human": "Lives in Porto"}) == [True]
    assert ev.corrections_applied(MOVE, {"human": "Lives in Lisbon"}) == [False]
    stale = {"human": "I live in Lisbon.\nI moved to Porto last month."}
    assert ev.corrections_applied(MOVE, stale) == [False]


def test_an_old_value_the_line_puts_in_the_past_is_not_stale():
    for said in ("Moved from Lisbon to Porto", "I live in Porto.\nI no longer live in Lisbon."):
        assert ev.corrections_applied(MOVE, {"human": said}) == [True], said
    # Only the user's block is read for corrections.
    assert ev.corrections_applied(MOVE, {"human": "Porto", "learned_context": "Lisbon"}) == [True]


# --- refused lines ----------------------------------------------------------------------------


def test_refused_lines_are_read_from_the_sleep_log_and_true_ones_counted():
    library = logging.getLogger("sleepagent.sleep.consolidation")
    sleep = logging.getLogger("sleepagent.sleep")
    before = sleep.level
    with ev.refused_lines() as refused:
        library.info("refused line %r: %s", "Allergic to peanuts", "not grounded")
        library.info("refused line %r: %s", "The user's mood is 'happy'", "not grounded")
        library.info("committed 2 blocks")
        library.debug("refused line %r: %s", "Name: Marco", "below INFO, not counted")
    library.info("refused line %r: %s", "Name: Marco", "after the run, not counted")
    assert refused.lines == ["Allergic to peanuts", "The user's mood is 'happy'"]
    assert ev.refused_true_facts(ALLERGY, refused.lines) == ["Allergic to peanuts"]
    assert sleep.level == before


def test_nothing_logged_counts_no_refusal():
    with ev.refused_lines() as refused:
        pass
    assert ev.refused_true_facts(ALLERGY, refused.lines) == []


# --- context-first ----------------------------------------------------------------------------


def test_context_first_wants_the_computed_number_in_learned_context_and_in_the_reply():
    memory = {"learned_context": "Revenue: 40 x $3 + 25 x $2 = $170"}
    assert ev.context_checks(BAKERY, memory, ["It made $170."]) == {"learned": True, "reply": True}
    memory = {"learned_context": "Muffins $3, cookies $2; sold 40 and 25."}
    assert ev.context_checks(BAKERY, memory, ["$1700"]) == {"learned": False, "reply": False}
    assert ev.context_checks(ALLERGY, memory, ["170"]) is None


# --- scenarios, selection, tallies ------------------------------------------------------------


def test_there_are_ten_scenarios_or_more_three_held_out_and_two_new_context_first_ones():
    names = [scenario.name for scenario in ev.SCENARIOS]
    assert len(names) >= 10 and len(set(names)) == len(names)
    assert sum(scenario.held_out for scenario in ev.SCENARIOS) >= 3
    computed = [scenario for scenario in ev.SCENARIOS if scenario.computed]
    assert len(computed) >= 3
    for scenario in computed:
        assert any(isinstance(step, ev.Context) for step in scenario.steps), scenario.name
        asks = [step for step in scenario.steps if isinstance(step, ev.Ask)]
        assert asks and all(scenario.computed in ask.expect for ask in asks), scenario.name


def test_select_filters_by_name_and_by_held_out():
    assert [s.name for s in ev.select(ev.SCENARIOS, "friend, allergy", "include")] == [
        "allergy",
        "friend",
    ]
    assert [s.name for s in ev.select(ev.SCENARIOS, "friend,allergy", "exclude")] == ["allergy"]
    assert all(s.held_out for s in ev.select(ev.SCENARIOS, None, "only"))
    assert not any(s.held_out for s in ev.select(ev.SCENARIOS, None, "exclude"))
    with pytest.raises(ValueError, match="nope"):
        ev.select(ev.SCENARIOS, "allergy,nope", "include")


def test_a_tally_adds_each_check_and_the_table_shows_it():
    played = ev.Played(
        memory={
            "persona": "I am a helpful, concise assistant.",
            "human": "Lives in Porto\nLives in Porto\nMood: happy",
            "learned_context": "",
        },
        snapshots=[{"human": "Name: Ada\nLives in Lisbon"}],
    )
    tally = ev.Tally(mode="text", held_out=True)
    scored = ev.score(MOVE, played)
    tally.add(scored, played)
    assert (tally.facts, tally.facts_expected) == (1, 4)
    assert (tally.corrections, tally.corrections_expected) == (1, 1)
    assert (tally.invented, tally.duplicates, tally.lost) == (1, 1, 1)
    row = ev.table([tally]).splitlines()[-1]
    assert row.startswith("| text | held out (1) | 1/4 | 1/1 | 1 | 1 | 0 | 1 | 0 | 0/0 |")
    json.dumps(ev.as_json(tally), default=str)


# --- end to end, on a loopback server ---------------------------------------------------------

_MESSAGE = re.compile(r'<message n="\d+" role="(user|context)">(.*?)</message>', re.DOTALL)
_TARGET = {"user": "human", "context": "learned_context"}


def _parrot(request):
    """A permissive model: sleep runs copy each message into its block; chat says "Noted."."""
    messages = request.messages
    prompt = str(messages[-1].get("content") or "")
    heard = [(_TARGET[role], text) for role, text in _MESSAGE.findall(prompt)]
    if "memory_finish" in request.tools:
        if messages[-1]["role"] == "tool":
            return Completion.calling(wire_call("memory_finish"))
        inserts = (wire_call("memory_insert", label=label, text=text) for label, text in heard)
        return Completion.calling(*inserts, wire_call("memory_finish"))
    if heard:
        blocks = {}
        for label, text in heard:
            old = re.search(rf"<{label}>\n(.*?)\n</{label}>", prompt, re.DOTALL)
            blocks.setdefault(label, [old.group(1)] if old and old.group(1) else [])
            blocks[label].append(text)
        return "".join(f"<{k}>\n" + "\n".join(v) + f"\n</{k}>" for k, v in blocks.items())
    return "Noted."


def test_the_script_runs_end_to_end_on_a_loopback_server(tmp_path, capsys):
    out = tmp_path / "eval.json"
    with LoopbackOpenAI([_parrot] * 200) as server:
        code = ev.main(
            [
                "--base-url",
                server.base_url,
                "--model",
                "openai:loopback",
                "--modes",
                "text,tools",
                "--scenarios",
                "allergy,friend,context",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        assert server.unexpected == []
    assert code == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| text", "tuning (2)"],
        ["| text", "held out (1)"],
        ["| tools", "tuning (2)"],
        ["| tools", "held out (1)"],
    ]
    tallies = json.loads(out.read_text())
    friend = tallies[1]["details"][0]
    assert friend["scenario"] == "friend"
    assert friend["memory"]["human"].splitlines()[-1] == "Me, I play the cello in an orchestra."
    assert tallies[0]["facts"] == tallies[0]["facts_expected"]
