"""The fact pass (UserFacts.EXTRACT): facts listed in plain text, recorded line by line by code."""

from __future__ import annotations

import dataclasses

import pytest

from sleepagent import DEFAULT_BLOCKS, SleepConfig, SleepOutcome, UserFacts
from sleepagent.memory.transcript import LogEntry
from sleepagent.sleep.facts import read_fact_lines
from sleepagent.sleep.nodes import FACTS_MESSAGES_PER_CALL
from sleepagent.sleep.speakers import facts_of_their_own, without_their_own_words
from sleepagent.testing import finish, insert

EXTRACT = SleepConfig(user_facts=UserFacts.EXTRACT)
MARCO = "I'm Marco. I'm allergic to peanuts and I cook for my two kids."
MARCO_FACTS = (
    "Here are the facts:\n- I'm Marco.\n- I'm allergic to peanuts.\n- I cook for my two kids."
)


def extracting(make_agent, chat, sleep):
    """An agent with the library's default blocks and the fact pass on."""
    return make_agent(chat, sleep, config=EXTRACT, library_defaults=True)


# --- reading a pass -------------------------------------------------------------------


def test_a_pass_is_read_as_its_list_items_without_preamble_or_questions():
    text = (
        "Here are the new facts:\n- I live in **Porto**.\n2. I have two cats.\n- Where do I work?"
    )
    found = read_fact_lines(text)
    assert found.lines == ("I live in Porto.", "I have two cats.")
    assert not found.nothing_new


def test_nothing_new_is_an_answer_and_prose_is_not():
    assert read_fact_lines("NOTHING NEW").nothing_new
    assert read_fact_lines("Nothing new.").readable
    unreadable = read_fact_lines("The user seems to be in a good mood today.")
    assert not unreadable.readable


# --- through the agent ------------------------------------------------------------------


def test_the_users_facts_are_recorded_from_one_plain_text_pass(make_agent):
    agent, _, sleep = make_agent(
        ["Nice to meet you!"], [MARCO_FACTS], config=EXTRACT, library_defaults=True
    )
    agent.chat(MARCO, thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="t1")["human"].value.splitlines() == [
        "I'm Marco.",
        "I'm allergic to peanuts.",
        "I cook for my two kids.",
    ]
    (call,) = sleep.calls
    assert call.tools == () and MARCO in str(call.messages[-1].content)
    assert "Nice to meet you" not in str(call.messages[-1].content), "only the user's words"


def test_a_changed_fact_replaces_the_one_it_corrects_and_the_others_stay(make_agent):
    script = ["- I live in Lisbon.\n- I like green tea.", "- I live in Porto."]
    agent, _, _ = make_agent(
        ["Hi!", "Congratulations!"], script, config=EXTRACT, library_defaults=True
    )
    agent.chat("I live in Lisbon and I like green tea.", thread_id="t1")
    agent.sleep(thread_id="t1")
    agent.chat("I moved to Porto last month.", thread_id="t1")

    agent.sleep(thread_id="t1")

    human = agent.memory(thread_id="t1")["human"]
    assert human.value.splitlines() == ["I like green tea.", "I live in Porto."]
    history = agent.history("human", thread_id="t1")
    assert "I live in Lisbon." in history[0].value, "the block's history keeps the old fact"


def test_nothing_new_ends_the_page_unchanged_in_one_call(make_agent):
    agent, _, sleep = extracting(make_agent, ["Sure."], ["NOTHING NEW"])
    agent.chat("What time is it in Tokyo?", thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.UNCHANGED and result.covered
    assert len(sleep.calls) == 1


def test_a_guessed_fact_is_refused_and_the_said_ones_are_kept(make_agent, caplog):
    script = ["- I'm Marco.\n- I live in New York.\n- I'm allergic to peanuts."]
    agent, _, _ = extracting(make_agent, ["Hi Marco"], script)
    agent.chat(MARCO, thread_id="t1")

    with caplog.at_level("INFO", logger="sleepagent.sleep"):
        agent.sleep(thread_id="t1")

    assert agent.memory(thread_id="t1")["human"].value.splitlines() == [
        "I'm Marco.",
        "I'm allergic to peanuts.",
    ]
    assert "'I live in New York.' not added: Edit refused" in caplog.text


def test_an_unreadable_pass_leaves_the_page_to_the_edit_round(make_agent):
    agent, _, sleep = make_agent(
        ["Hi!"],
        ["The user seems to be in a good mood.", insert("human", "Name: Marco")],
        config=EXTRACT,
        library_defaults=True,
    )
    agent.chat(MARCO, thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="t1")["human"].value == "Name: Marco"
    assert [bool(call.tools) for call in sleep.calls] == [False, True]


@pytest.mark.parametrize(
    "reply",
    ["- I live in New York.\n- I'm happy today.", "- What is the capital of Peru?"],
    ids=["every-line-ungrounded", "only-questions"],
)
def test_a_list_whose_every_line_is_refused_concludes_the_page_unchanged(make_agent, reply):
    agent, _, sleep = make_agent(["Hi!"], [reply], config=EXTRACT, library_defaults=True)
    agent.chat(MARCO, thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.UNCHANGED, "processed: a retry would list the same"
    assert agent.memory(thread_id="t1")["human"].value == ""
    assert len(sleep.calls) == 1, "no edit round after a pass the checks answered"


def test_a_line_the_block_has_no_room_for_leaves_the_page_to_the_edit_round(make_agent):
    small = SleepConfig(
        user_facts=UserFacts.EXTRACT,
        blocks=tuple(
            dataclasses.replace(block, limit=20) if block.label == "human" else block
            for block in DEFAULT_BLOCKS
        ),
    )
    agent, _, sleep = make_agent(
        ["Hi!"],
        ["- I'm allergic to peanuts and shellfish.", insert("human", "Allergic: peanuts")],
        config=small,
    )
    agent.chat("I'm allergic to peanuts and shellfish.", thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="t1")["human"].value == "Allergic: peanuts"
    assert [bool(call.tools) for call in sleep.calls] == [False, True]


def test_a_long_page_is_read_a_few_messages_per_call_each_shown_the_facts_so_far(make_agent):
    said = [f"I have a pet number {n}." for n in range(1, FACTS_MESSAGES_PER_CALL + 3)]
    first = "\n".join(f"- {line}" for line in said[:FACTS_MESSAGES_PER_CALL])
    second = "\n".join(f"- {line}" for line in said[FACTS_MESSAGES_PER_CALL:])
    agent, _, sleep = make_agent(
        ["Nice!"] * len(said), [first, second], config=EXTRACT, library_defaults=True
    )
    for line in said:
        agent.chat(line, thread_id="t1")

    result = agent.sleep(thread_id="t1")

    assert result.outcome is SleepOutcome.EDITED
    assert agent.memory(thread_id="t1")["human"].value.splitlines() == said
    first_call, second_call = (str(call.messages[-1].content) for call in sleep.calls)
    assert said[-1] not in first_call and said[0] in first_call
    assert said[-1] in second_call and "Already in the notes" in second_call
    assert said[0] in second_call.split("Already in the notes")[1], "shown the facts so far"


def test_a_request_about_the_assistant_goes_to_the_edit_round_with_no_pass(make_agent):
    agent, _, sleep = extracting(make_agent, ["Okay!"], [finish()])
    agent.chat("Please be more concise in your replies.", thread_id="t1")

    agent.sleep(thread_id="t1")

    assert len(sleep.calls) == 1 and sleep.calls[0].tools, "the edit round, which may edit persona"


def test_without_extract_the_edit_round_records_facts_as_before(make_agent):
    agent, _, sleep = make_agent(["Hi!"], [insert("human", "Name: Marco")])
    agent.chat(MARCO, thread_id="t1")
    agent.sleep(thread_id="t1")
    assert len(sleep.calls) == 1 and sleep.calls[0].tools


def test_facts_of_named_speakers_name_whom_they_are_about(make_agent):
    script = ["- Ines adopted a cat last weekend.\n- Tomas works as a pilot."]
    agent, _, sleep = extracting(make_agent, [], script)
    group = [
        {"speaker": "Ines", "text": "I adopted a cat last weekend."},
        {"speaker": "Tomas", "text": "Lovely! I fly tomorrow, I work as a pilot."},
    ]

    agent.import_messages(group, thread_id="g1", session_date="8 May 2023", sleep=True)

    prompt = str(sleep.calls[0].messages[-1].content)
    assert prompt.startswith("Part of a conversation between Ines and Tomas:")
    assert "Ines 8 May 2023: I adopted a cat the weekend before 8 May 2023." in prompt
    assert agent.memory(thread_id="g1")["human"].value.splitlines() == [
        "Ines adopted a cat the weekend before 8 May 2023.",
        "Tomas works as a pilot.",
    ]


def test_a_fact_written_for_both_speakers_is_kept_for_the_one_who_said_it(make_agent):
    script = [
        "- Caroline bought figurines yesterday.\n- Melanie bought figurines yesterday.\n"
        "- Caroline went to a support group.\n- Melanie went to a support group."
    ]
    agent, _, _ = extracting(make_agent, [], script)
    talk = [
        {"speaker": "Melanie", "text": "We went shopping and I bought figurines yesterday!"},
        {"speaker": "Caroline", "text": "Nice! We both went to a support group, right?"},
        {"speaker": "Melanie", "text": "Yes, we went to a support group together."},
    ]

    agent.import_messages(talk, thread_id="g1", session_date="8 May 2023", sleep=True)

    assert agent.memory(thread_id="g1")["human"].value.splitlines() == [
        "Melanie bought figurines on 7 May 2023.",
        "Caroline went to a support group.",
        "Melanie went to a support group.",
    ]


def test_an_imported_conversation_that_says_speak_or_reply_still_gets_its_fact_pass(make_agent):
    script = ["- Ines sings in a choir."]
    agent, _, sleep = extracting(make_agent, [], script)
    group = [
        {"speaker": "Ines", "text": "I sing in a choir, you should reply to my invite!"},
        {"speaker": "Tomas", "text": "Speak louder, I'll reply tomorrow."},
    ]

    agent.import_messages(group, thread_id="g1", sleep=True)

    assert [bool(call.tools) for call in sleep.calls] == [False], "the pass, no edit round"
    assert agent.memory(thread_id="g1")["human"].value == "Ines sings in a choir."


def test_a_page_of_named_speakers_is_not_shown_the_facts_so_far(make_agent):
    script = ["- Ines sings in a choir.", "- Ines adopted a cat."]
    agent, _, sleep = extracting(make_agent, [], script)
    agent.import_messages(
        [{"speaker": "Ines", "text": "I sing in a choir."}], thread_id="g1", user_id="u", sleep=True
    )

    agent.import_messages(
        [{"speaker": "Ines", "text": "I adopted a cat."}], thread_id="g1", user_id="u", sleep=True
    )

    assert "Already in the notes" not in str(sleep.calls[1].messages[-1].content)
    assert agent.memory(thread_id="g1", user_id="u")["human"].value.splitlines() == [
        "Ines sings in a choir.",
        "Ines adopted a cat.",
    ]


def test_a_speakers_fact_ends_where_their_own_words_take_over():
    lines = [
        "Mel started to see that self-care matters. It's a journey for me, and my family.",
        "Mel carved out me-time each day - running or her violin - which refreshes me!",
        "Mel ran a race. She won. I cried.",
        "Ana said I should call her.",
        "I'm vegetarian. My sister is too.",
        "Ana looks great! Can't wait to see them rock the festival. Gonna be awesome!",
        "Ana sold her bike. Thanks to that, she bought a kayak.",
    ]
    assert without_their_own_words(lines, ["Mel", "Ana"]) == (
        "Mel started to see that self-care matters.",
        "Mel carved out me-time each day - running or her violin",
        "Mel ran a race. She won.",
        "Ana said I should call her.",
        "I'm vegetarian. My sister is too.",
        "Ana looks great!",
        "Ana sold her bike. Thanks to that, she bought a kayak.",
    )


def test_a_fact_under_the_wrong_name_goes_to_the_speaker_who_said_it_of_themselves():
    said = [
        LogEntry(1, "user", "I made this bowl in my pottery class!", speaker="Mel"),
        LogEntry(2, "user", "Wow, it's beautiful. Did you go camping too?", speaker="Caro"),
        LogEntry(3, "user", "Yes! We camped in the mountains.", speaker="Mel"),
        LogEntry(4, "user", "I love that you roasted marshmallows there!", speaker="Caro"),
        LogEntry(5, "user", "I think the glaze is lovely.", speaker="Caro"),
    ]
    lines = [
        "Caro made this bowl in her pottery class.",  # Mel's, said in the first person
        "Caro thinks the bowl has a lovely glaze.",  # Caro said it of herself: stays
        "Caro thinks the pottery class is lovely.",  # as much Caro's as Mel's: stays
        "Mel roasted marshmallows.",  # asked of Mel, in the second person: stays
        "Caro is kind.",  # too short to tell
        "Caro thanks Mel for the pottery class bowl.",  # names both: stays
    ]
    assert facts_of_their_own(lines, said) == (
        "Mel made this bowl in her pottery class.",
        "Caro thinks the bowl has a lovely glaze.",
        "Caro thinks the pottery class is lovely.",
        "Mel roasted marshmallows.",
        "Caro is kind.",
        "Caro thanks Mel for the pottery class bowl.",
    )


def test_a_fact_goes_to_the_speaker_whose_first_person_words_it_holds_not_to_any_who_said_a_word():
    # Both said "job"; only Jon said the rest of it of himself, and Gina said it to him.
    said = [
        LogEntry(1, "user", "Lost my job as a banker yesterday.", speaker="Jon"),
        LogEntry(2, "user", "Sorry about your job! I lost my job at Door Dash.", speaker="Gina"),
        LogEntry(3, "user", "I'm starting a dance studio.", speaker="Jon"),
        LogEntry(4, "user", "Your dance studio will be great.", speaker="Gina"),
    ]
    lines = [
        "Gina lost her job as a banker.",
        "Jon lost his job at Door Dash.",
        "Gina is starting a dance studio.",
    ]
    assert facts_of_their_own(lines, said) == (
        "Jon lost her job as a banker.",
        "Gina lost his job at Door Dash.",
        "Jon is starting a dance studio.",
    )
