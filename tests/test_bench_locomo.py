"""LoCoMo's pieces without a model: the file's shape, the F1 metric, the draw, the prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleepagent.bench.conversation_runner import (
    ConversationSpec,
    System,
    _verdict,
    estimate_tokens,
    matched_turns,
    parse_systems,
    render_turns,
)
from sleepagent.bench.conversations import (
    Category,
    chosen_conversations,
    draw_questions,
    load_locomo,
)
from sleepagent.bench.datasets import DatasetError
from sleepagent.bench.grading import locomo_score, normalize_answer, token_f1
from sleepagent.errors import ConfigurationError

FIXTURE = Path(__file__).parent / "data" / "locomo_mini.json"


def fixture_data() -> list[dict]:
    return json.loads(FIXTURE.read_text())


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(data))
    return path


# --- the file ------------------------------------------------------------------------


def test_the_fixture_reads_as_two_conversations_with_dated_sessions_and_every_category():
    first, second = load_locomo(FIXTURE)
    assert (first.id, first.speaker_a, first.speaker_b) == ("mini-1", "Ines", "Tomas")
    assert [s.number for s in first.sessions] == [1, 2, 3], "a date without a session is ignored"
    assert first.sessions[1].date_time == "4:30 pm on 20 March, 2024"
    assert len(first.turns) == 12 and len(second.turns) == 6
    image = first.sessions[0].turns[2]
    assert (
        image.said
        == "Her name is Pepper. Look at her! [shares a photo of a grey cat sleeping on a sofa]"
    )
    assert {q.category for q in (*first.questions, *second.questions)} == set(Category)


def test_answers_are_text_and_an_adversarial_question_keeps_only_its_trap():
    first, _ = load_locomo(FIXTURE)
    by_text = {q.text: q for q in first.questions}
    assert by_text["In which year did Tomas run the Lisbon half marathon?"].answer == "2024"
    trap = by_text["What time did Ines finish the Lisbon half marathon in?"]
    assert (trap.answer, trap.adversarial_answer) == (None, "1 hour 52 minutes")
    assert trap.id == "mini-1/q4" and trap.evidence == ("D3:1",)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d[0].pop("qa"), "sample 'mini-1': missing field 'qa'"),
        (lambda d: d[0]["conversation"].pop("session_2_date_time"), "'session_2_date_time'"),
        (lambda d: d[0]["conversation"]["session_1"][1].pop("text"), "session_1[1].text"),
        (
            lambda d: d[1]["qa"][0].update(category=7),
            "sample 'mini-2': qa[0]: category must be 1-5",
        ),
        (lambda d: d[1]["qa"][0].pop("answer"), "sample 'mini-2': missing field 'qa[0].answer'"),
        (lambda d: d[1].update(sample_id="mini-1"), "sample_id repeats"),
    ],
)
def test_a_malformed_sample_is_named_with_its_field(tmp_path, change, said):
    data = fixture_data()
    change(data)
    with pytest.raises(DatasetError, match=f".*{said}".replace("[", r"\[").replace("]", r"\]")):
        load_locomo(write(tmp_path, data))


def test_a_missing_file_says_where_to_get_it_and_its_licence(tmp_path):
    with pytest.raises(DatasetError, match=r"CC BY-NC 4\.0"):
        load_locomo(tmp_path / "locomo10.json")


# --- the metric ------------------------------------------------------------------------


def test_answers_are_normalised_as_locomo_does():
    assert normalize_answer("The cat, and a Dog!") == "cat dog"
    assert normalize_answer("  7 May,  2023. ") == "7 may 2023"


def test_token_f1_stems_words_and_counts_shared_ones():
    assert token_f1("adopting agencies", "Adoption agencies") == 1.0
    assert token_f1("a grey cat", "the cat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("nothing", "Pepper") == 0.0


def test_each_category_is_scored_by_its_own_rule():
    multi_hop, temporal, open_domain, single_hop, adversarial = 1, 2, 3, 4, 5
    # Multi-hop: each gold part takes its best predicted part.
    assert locomo_score("basil, tomatoes", "tomatoes, basil", multi_hop) == 1.0
    assert locomo_score("tomatoes", "tomatoes, basil", multi_hop) == 0.5
    assert locomo_score("7 May 2023", "7 May 2023", temporal) == 1.0
    # Open-domain: only the gold before its first ';' counts.
    assert locomo_score("Likely yes", "Likely yes; she takes pottery", open_domain) == 1.0
    assert locomo_score("Pepper", "Pepper", single_hop) == 1.0
    assert locomo_score("Not mentioned in the conversation.", None, adversarial) == 1.0
    assert locomo_score("No information available", None, adversarial) == 1.0
    assert locomo_score("1 hour 52 minutes", None, adversarial) == 0.0


# --- the draw and the prompts ------------------------------------------------------------


def test_the_draw_takes_each_category_in_turn_and_grows_by_its_prefix():
    conversations = load_locomo(FIXTURE)
    small = draw_questions(conversations, 1, seed=3)
    large = draw_questions(conversations, 2, seed=3)
    assert [q.category.value for q in small] == [4, 1, 2, 3, 5]
    assert large[:5] == small
    assert draw_questions(conversations, 1, seed=3) == small
    assert len(draw_questions(conversations, 0)) == 12


def test_a_recency_window_shows_the_last_turns_under_their_session_dates():
    first, _ = load_locomo(FIXTURE)
    shown = render_turns(first.sessions, last=5)
    assert shown.splitlines()[:3] == [
        "(The conversation's earlier messages are left out.)",
        "Session 2, 4:30 pm on 20 March, 2024:",
        "Ines: A blue bowl, which Pepper already knocked off the shelf.",
    ]
    assert "Session 3, 7:05 pm on 2 June, 2024:" in shown
    assert "left out" not in render_turns(first.sessions)


def test_the_window_matched_to_memory_holds_the_turns_that_fit_its_characters():
    first, _ = load_locomo(FIXTURE)
    last = first.turns[-1]
    one = len(f"{last.speaker}: {last.said}") + 1
    assert matched_turns(first.turns, one) == 1
    assert matched_turns(first.turns, 0) == 1, "never an empty window"
    assert matched_turns(first.turns, 10**6) == len(first.turns)
    assert estimate_tokens("x" * 35) == 10


def test_systems_are_named_on_the_command_line_and_unknown_ones_refused():
    assert parse_systems("sleep_memory,no_memory") == (System.SLEEP_MEMORY, System.NO_MEMORY)
    with pytest.raises(ConfigurationError, match="unknown system 'memory'"):
        parse_systems("memory")


def test_conversations_are_chosen_by_sample_id_in_the_order_asked():
    conversations = load_locomo(FIXTURE)
    chosen = chosen_conversations(conversations, ["mini-2", "mini-1", "mini-2"])
    assert [c.id for c in chosen] == ["mini-2", "mini-1"]
    with pytest.raises(DatasetError, match=r"no conversation 'conv-30'.*mini-1, mini-2"):
        chosen_conversations(conversations, ["mini-1", "conv-30"])


def test_a_spec_refuses_questions_about_conversations_it_does_not_ingest():
    first, second = load_locomo(FIXTURE)
    with pytest.raises(ConfigurationError, match="mini-2"):
        ConversationSpec(conversations=[first], questions=second.questions)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("CORRECT", "correct"),
        ("Wrong.", "wrong"),
        ("INCORRECT: the date differs", "wrong"),
        ("The answer is correct.", "correct"),
        ("I cannot tell", None),
    ],
)
def test_the_judges_first_verdict_word_decides(reply, verdict):
    assert _verdict(reply) == verdict


# --- recall systems, with a scripted model ---------------------------------------------


def test_recall_systems_answer_from_the_questions_own_conversation_with_tokens_recorded(
    tmp_path,
):
    from langchain_core.messages import AIMessage

    from sleepagent.bench.conversation_runner import ConversationRunner
    from sleepagent.prompts import CHAT_RECALL_INTRO
    from sleepagent.testing import ScriptedChatModel

    conversations = load_locomo(FIXTURE)
    questions = [c.questions[0] for c in conversations]
    said = {c.id: {turn.text for turn in c.turns} for c in conversations}
    seen: list[tuple[str, str]] = []

    def answer(prompt):
        system = str(prompt[0].content)
        question = str(prompt[-1].content)
        seen.append((question, system.partition(CHAT_RECALL_INTRO)[2]))
        return AIMessage(
            "an answer",
            usage_metadata={"input_tokens": 100, "output_tokens": 3, "total_tokens": 103},
        )

    model = ScriptedChatModel([answer] * len(questions))
    spec = ConversationSpec(
        conversations=conversations, questions=questions, systems=(System.RECALL,), concurrency=1
    )
    runner = ConversationRunner(model, out=tmp_path / "run", progress=False)
    assert runner.run(spec).failed == 0

    assert len(seen) == len(questions)
    for question, (asked, recalled) in zip(questions, seen, strict=True):
        assert question.text in asked
        assert "<recalled_messages>" in recalled, question.text
        others = set().union(
            *(texts for cid, texts in said.items() if cid != question.conversation)
        )
        assert not any(text in recalled for text in others), "another conversation's messages"
    records = [
        json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    ]
    assert [r["test_usage"]["input_tokens"] for r in records if r["kind"] == "qa"] == [100, 100]


def test_sleep_request_fields_are_read_as_json_where_they_are_json():
    from sleepagent.bench.__main__ import _request_fields

    assert _request_fields(["frequency_penalty=0.5", "stop=END", 'x={"a": 1}']) == {
        "frequency_penalty": 0.5,
        "stop": "END",
        "x": {"a": 1},
    }
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        _request_fields(["frequency_penalty"])
