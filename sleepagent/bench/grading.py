r"""Grading: the final number of a model's answer against the gold answer, two ways.

Our rule compares numbers as :class:`~fractions.Fraction`, so ``18``, ``18.0``, ``$18``
and ``36/2`` are all the same answer, and no float rounding ever decides a grade.

The paper's rule (``GradingRule.PAPER``) is what the authors' graders did, rewritten
here from their description: for GSM-style golds, the text after the last ``#### `` and
the last number-like run of the reply are compared as *strings* once ``$`` and ``,`` are
removed and ``.`` is stripped from both ends (so ``45.0`` is not ``45``); for AIME, the
integer in the last ``\boxed{}``, else the last 1-3 digit number, against the gold as an
integer (so ``025`` is ``25``).

For LoCoMo's questions, whose answers are phrases, :func:`locomo_score` is the
dataset's own metric, a token F1, rewritten here from the LoCoMo repository's
``task_eval/evaluation.py`` (snap-research/LoCoMo): lower case, commas, punctuation
and the words "a", "an", "the" and "and" removed, each word Porter-stemmed (with
NLTK's stemmer, as there), then F1 over the multiset of words. Multi-hop answers
(category 1) are split at commas and each gold part takes its best predicted part;
open-domain golds (category 3) keep the part before the first ``;``; an adversarial
question (category 5) scores 1 when the reply says "no information available" or
"not mentioned", else 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from enum import Enum
from fractions import Fraction
from functools import cache

__all__ = [
    "AnswerFormat",
    "GradingRule",
    "extract_answer",
    "format_number",
    "gsm8k_gold",
    "is_correct",
    "locomo_abstained",
    "locomo_score",
    "normalize_answer",
    "paper_aime_prediction",
    "paper_correct",
    "paper_gsm_gold",
    "paper_gsm_prediction",
    "parse_number",
    "token_f1",
]


class GradingRule(Enum):
    """Which rule a reported accuracy comes from."""

    OURS = "ours"
    """Numbers compared exactly as fractions (:func:`extract_answer`, :func:`is_correct`)."""
    PAPER = "paper"
    """The paper's graders: strings after stripping (GSM), integers (AIME)."""
    BOTH = "both"
    """Both computed; the paper's rule leads and the difference is shown."""


class AnswerFormat(Enum):
    """How a dataset writes its gold answers, which decides the paper's rule."""

    GSM8K = "gsm8k"
    """A solution ending ``#### n`` (GSM-Symbolic); also the generated problems' golds."""
    AIME = "aime"
    """An integer 0-999, possibly written with leading zeros (``025``)."""


# A number as models write it: optional sign and currency, thousands commas,
# decimals, or a simple fraction.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212])?\$?\s?"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?/\s?(?P<den>\d+(?:\.\d+)?))?"
)
_BOXED = re.compile(r"\\boxed\s*\{")
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*(?:\*\*)?\s*(?P<rest>[^\n]*)", re.IGNORECASE
)


def parse_number(text: str) -> Fraction | None:
    """The first number in ``text``, or ``None``.

    Handles a leading ``-`` (or the Unicode minus sign), ``$``, thousands commas,
    decimals and ``a/b`` fractions; a trailing period is punctuation, not a decimal point.
    """
    numbers = _numbers(text)
    return numbers[0] if numbers else None


def _numbers(text: str) -> list[Fraction]:
    found: list[Fraction] = []
    for match in _NUMBER.finditer(text.replace("\\!", "").replace("{,}", ",")):
        value = Fraction(match.group("body").replace(",", ""))
        den = match.group("den")
        if den is not None:
            divisor = Fraction(den)
            if divisor == 0:
                continue
            value /= divisor
        if match.group("sign"):
            value = -value
        found.append(value)
    return found


def _boxed_contents(text: str) -> list[str]:
    r"""The contents of every ``\boxed{...}``, braces balanced, in order."""
    contents: list[str] = []
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    contents.append(text[start:index])
                    break
    return contents


def _latex_fractions(text: str) -> str:
    # \frac{a}{b} and \dfrac{a}{b} become a/b, which the number pattern reads.
    return re.sub(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"\1/\2", text)


def extract_answer(text: str) -> Fraction | None:
    r"""The final numeric answer in a model's reply, or ``None`` when it has none.

    In order of precedence: the last ``\boxed{}``; else the last "the answer
    is ..." phrase (its first number); else the last number in the text.
    """
    boxed = _boxed_contents(text)
    if boxed:
        numbers = _numbers(_latex_fractions(boxed[-1]))
        if numbers:
            return numbers[-1]
    phrases = list(_ANSWER_IS.finditer(text))
    for phrase in reversed(phrases):
        number = parse_number(_latex_fractions(phrase.group("rest")))
        if number is not None:
            return number
    numbers = _numbers(_latex_fractions(text))
    return numbers[-1] if numbers else None


def gsm8k_gold(answer: str) -> Fraction:
    """The gold number of a GSM8K-style answer (reasoning, then ``#### n``).

    Raises:
        ValueError: When there is no ``####`` or no number after it.

    """
    _, marker, tail = answer.rpartition("####")
    if not marker:
        raise ValueError(f"no '#### <number>' in the answer: {answer[-80:]!r}")
    number = parse_number(tail)
    if number is None:
        raise ValueError(f"no number after '####' in the answer: {tail.strip()[:80]!r}")
    return number


def is_correct(prediction: Fraction | None, gold: Fraction) -> bool:
    """Exact match; no answer is wrong."""
    return prediction is not None and prediction == gold


def format_number(value: Fraction) -> str:
    """``value`` as text that :func:`parse_number` reads back exactly.

    Whole numbers print as integers, terminating decimals as decimals, anything
    else as ``a/b``.
    """
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value) * 10**places
    digits = str(scaled.numerator).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


# The paper's GSM grader reads the prediction as the last run of two or more of
# "$0-9.," (or a single digit, optionally signed): "45." and "$1,200" both qualify.
_PAPER_GSM_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_PAPER_AIME_NUMBER = re.compile(r"([1-9][0-9][0-9]|[1-9][0-9]|[1-9])")


def _paper_standardize(text: str) -> str:
    return text.replace("$", "").replace(",", "").strip(".")


def paper_gsm_gold(answer: str) -> str:
    """The gold of a GSM8K-style answer as the paper compares it: text after the last ``#### ``.

    Surrounding whitespace is dropped too (the paper's grader keeps it, which would make
    a gold followed by a newline unmatchable; the published files have none).

    Raises:
        ValueError: When the answer has no ``####``.

    """
    _, marker, tail = answer.rpartition("#### ")
    if not marker:
        raise ValueError(f"no '#### <number>' in the answer: {answer[-80:]!r}")
    return _paper_standardize(tail.strip())


def paper_gsm_prediction(reply: str) -> str | None:
    """The paper's GSM prediction: the last number-like run of the reply, standardised."""
    matches = _PAPER_GSM_NUMBER.findall(reply)
    if not matches:
        return None
    return _paper_standardize("".join(matches[-1]))


def paper_aime_prediction(reply: str) -> int | None:
    r"""The paper's AIME prediction: the last ``\boxed{}`` integer, else the last 1-3 digits."""
    boxed = _boxed_contents(reply)
    if boxed:
        try:
            return int(boxed[-1])
        except ValueError:
            pass  # Not a plain integer: the paper's grader falls back to the digits too.
    found = _PAPER_AIME_NUMBER.findall(reply)
    return int(found[-1]) if found else None


def paper_correct(reply: str, gold: str, answer_format: AnswerFormat) -> tuple[str | None, bool]:
    """The paper's prediction for ``reply`` and whether it matches ``gold``.

    Args:
        reply: The model's reply.
        gold: The gold as the dataset writes it: the whole GSM8K-style answer (or just the
            number) for :attr:`AnswerFormat.GSM8K`, the integer text for AIME.
        answer_format: Which grader of the paper applies.

    Returns:
        The prediction as text (``None`` when the reply has none) and the grade.

    """
    if answer_format is AnswerFormat.AIME:
        predicted = paper_aime_prediction(reply)
        return (None if predicted is None else str(predicted)), predicted == int(gold.strip())
    expected = paper_gsm_gold(gold if "#### " in gold else f"#### {gold}")
    guess = paper_gsm_prediction(reply)
    return guess, guess == expected


# --- LoCoMo: token F1 over phrases ------------------------------------------------------

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_ABSTAINED = ("no information available", "not mentioned")


def normalize_answer(text: str) -> str:
    """LoCoMo's normal form: commas and punctuation gone, lower case, no a/an/the/and."""
    text = text.replace(",", "").lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


@cache
def _stemmer() -> Callable[[str], str]:
    try:
        # NLTK ships no types; it is optional (the 'bench' extra).
        from nltk.stem import PorterStemmer  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as error:
        raise ImportError(
            "LoCoMo's F1 stems words with NLTK's Porter stemmer, as the dataset's own "
            "evaluation does: pip install 'sleepagent[bench]' (or nltk)"
        ) from error
    stem: Callable[[str], str] = PorterStemmer().stem
    return stem


def _words(text: str) -> list[str]:
    stem = _stemmer()
    return [stem(word) for word in normalize_answer(text).split()]


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the stemmed words of ``prediction`` against those of ``gold`` (0 when none shared)."""
    predicted, expected = _words(prediction), _words(gold)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def locomo_abstained(reply: str) -> bool:
    """Whether the reply declines to answer, as LoCoMo's metric reads category 5 replies."""
    lowered = reply.lower()
    return any(phrase in lowered for phrase in _ABSTAINED)


def locomo_score(reply: str, gold: str | None, category: int) -> float:
    """LoCoMo's score of a reply to a question of ``category`` (1-5), from 0 to 1.

    Args:
        reply: The model's answer.
        gold: The gold answer (ignored for category 5, which has none).
        category: LoCoMo's category number: 1 multi-hop, 2 temporal, 3 open-domain,
            4 single-hop, 5 adversarial.

    Raises:
        ValueError: For another category, or no gold where one is needed.

    """
    if category == 5:
        return 1.0 if locomo_abstained(reply) else 0.0
    if category not in (1, 2, 3, 4) or gold is None:
        raise ValueError(f"category {category} with gold {gold!r}: not a LoCoMo question")
    if category == 3:
        gold = gold.split(";")[0].strip()
    if category == 1:
        parts = [part.strip() for part in reply.split(",")]
        golds = [part.strip() for part in gold.split(",")]
        return sum(max(token_f1(p, g) for p in parts) for g in golds) / len(golds)
    return token_f1(reply, gold)
