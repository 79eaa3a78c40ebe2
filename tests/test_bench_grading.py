from __future__ import annotations

from fractions import Fraction

import pytest

from sleepagent.bench.grading import (
    AnswerFormat,
    extract_answer,
    format_number,
    gsm8k_gold,
    is_correct,
    paper_aime_prediction,
    paper_correct,
    paper_gsm_gold,
    paper_gsm_prediction,
    parse_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She pays $1,250 in total.", 1250),
        ("The answer is 18.", 18),
        ("The answer is: **42**", 42),
        ("Final answer: -7", -7),
        ("So the temperature is \u22123 degrees.", -3),
        ("It costs $ 12.50", Fraction(25, 2)),
        ("He needs 18.0 apples", 18),
        ("the ratio is 36/2", 18),
        ("first \\boxed{3} then \\boxed{12}", 12),
        ("\\boxed{\\frac{1}{2}} and later 99", Fraction(1, 2)),
        ("\\boxed{1{,}000}", 1000),
        ("The answer is 5 apples, and I had 7 before.", 5),
        ("20 - 8 = 12", 12),
        ("Total: 3 + 4 = 7.\nThe answer is 7", 7),
        ("x 1,234,567.", 1234567),
        ("He has .5 of a pie", Fraction(1, 2)),
    ],
)
def test_the_final_answer_is_read_from_tricky_text(text: str, expected: Fraction | int) -> None:
    assert extract_answer(text) == Fraction(expected)


def test_a_reply_without_numbers_has_no_answer_and_is_wrong() -> None:
    assert extract_answer("I cannot tell from the text.") is None
    assert not is_correct(None, Fraction(3))


def test_the_last_boxed_value_wins_over_an_answer_phrase() -> None:
    assert extract_answer("The answer is 4. Actually \\boxed{5}.") == 5


def test_the_last_answer_phrase_wins_over_trailing_numbers() -> None:
    text = "The answer is 40. (Checked: 10 x 4 = 40, plus 0 = 40 and step 3.)"
    assert extract_answer(text) == 40


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7", 7),
        ("...\n#### $1,200", 1200),
        ("...\n#### -15", -15),
        ("... #### 2.50", Fraction(5, 2)),
        ("a #### 3 b #### 9", 9),
    ],
)
def test_gsm8k_gold_is_the_number_after_the_last_marker(answer: str, gold: int) -> None:
    assert gsm8k_gold(answer) == Fraction(gold)


def test_gsm8k_gold_without_marker_or_number_is_an_error() -> None:
    with pytest.raises(ValueError, match="####"):
        gsm8k_gold("The answer is 7")
    with pytest.raises(ValueError, match="no number"):
        gsm8k_gold("#### none")


def test_decimals_and_fractions_equal_to_integers_match_exactly() -> None:
    assert is_correct(extract_answer("it is 18.00"), Fraction(18))
    assert is_correct(extract_answer("\\boxed{54/3}"), Fraction(18))
    assert not is_correct(extract_answer("it is 18.01"), Fraction(18))


def test_parse_number_reads_the_first_number() -> None:
    assert parse_number("between 3 and 9") == 3
    assert parse_number("none") is None


@pytest.mark.parametrize(
    "value", [Fraction(7), Fraction(-12), Fraction(5, 2), Fraction(-1, 8), Fraction(1, 3)]
)
def test_format_number_round_trips(value: Fraction) -> None:
    assert parse_number(format_number(value)) == value


@pytest.mark.parametrize(
    ("reply", "gold", "ours", "paper"),
    [
        # The paper compares strings: 45 is not 45.0, though the numbers are equal.
        ("The answer is 45.", "#### 45", True, True),
        ("The answer is 45.0", "#### 45", True, False),
        ("The answer is 45", "#### 45.0", True, False),
        ("The answer is $1,200.", "#### 1200", True, True),
        ("The answer is 18.75", "#### 18.75", True, True),
        ("The answer is 18.750", "#### 18.75", True, False),
        # Its prediction is the last number-like run, not the "answer is" phrase.
        ("The answer is 45, from 9 * 5.", "#### 45", True, False),
        ("No number here.", "#### 45", False, False),
    ],
)
def test_the_papers_gsm_rule_compares_stripped_strings(
    reply: str, gold: str, ours: bool, paper: bool
) -> None:
    assert is_correct(extract_answer(reply), gsm8k_gold(gold)) is ours
    assert paper_correct(reply, gold, AnswerFormat.GSM8K)[1] is paper


def test_the_papers_gsm_gold_is_the_text_after_the_last_marker() -> None:
    assert paper_gsm_gold("9 * 5 = 45\n#### $1,045.") == "1045"
    assert paper_gsm_prediction("costs $1,045.") == "1045"
    assert paper_correct("The answer is 45", "45", AnswerFormat.GSM8K) == ("45", True)


@pytest.mark.parametrize(
    ("reply", "predicted", "right"),
    [
        ("so \\boxed{25}", 25, True),
        ("so \\boxed{025}", 25, True),
        ("first \\boxed{7}, finally \\boxed{25}", 25, True),
        ("the answer is 25 (not 0)", 25, True),
        ("\\boxed{n=25} and 7", 7, False),  # not an integer box: the last digits decide
        ("no digits", None, False),
    ],
)
def test_the_papers_aime_rule_reads_the_last_box_against_an_integer_gold(
    reply: str, predicted: int | None, right: bool
) -> None:
    assert paper_aime_prediction(reply) == predicted
    assert paper_correct(reply, "025", AnswerFormat.AIME)[1] is right
