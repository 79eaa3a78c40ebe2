"""The paper's predictability score: the question's log-probability given its context.

A base model scores the context, a newline and the question through an OpenAI-compatible
**legacy completions** endpoint (``POST /v1/completions`` with ``echo=True`` and
``logprobs``), which vLLM implements; the score is the mean log-probability of the
tokens that belong to the question. Servers without the endpoint or without prompt
log-probabilities (OpenAI's current chat models; llama.cpp's llama-server, which
gives them for generated tokens only) give no score: :func:`question_logprob` returns
``None`` and the run records the question as unavailable instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

__all__ = ["LogprobScore", "make_client", "question_logprob", "score_question"]

logger = logging.getLogger(__name__)

UNSUPPORTED_STATUS = frozenset({400, 404, 405, 422, 501})
"""HTTP statuses meaning the server cannot do this (not that it failed for now).

400 and 422 are how servers refuse ``echo`` or ``logprobs``, 404 and 405 a missing
endpoint, 501 a known but unimplemented one. Rate limits, server errors and
timeouts are raised instead, so the runner retries them rather than recording a
question as unscorable for good.
"""


@dataclass(frozen=True)
class LogprobScore:
    """The log-probability score of one question, or why there is none.

    Attributes:
        mean: Mean log-probability of the question's tokens, or ``None`` when unavailable.
        tokens: Question tokens averaged over (0 when unavailable).
        reason: Why the score is unavailable, or ``None`` when there is one.

    """

    mean: float | None
    tokens: int = 0
    reason: str | None = None


def _unavailable(reason: str) -> LogprobScore:
    logger.info("log-probability score unavailable: %s", reason)
    return LogprobScore(mean=None, reason=reason)


def score_question(client: openai.OpenAI, model: str, context: str, question: str) -> LogprobScore:
    """Score ``question`` by its mean token log-probability after ``context``.

    Args:
        client: A client of the OpenAI-compatible server.
        model: The (base) model to score with.
        context: The context the question is asked about.
        question: The question.

    Returns:
        The score, or an unavailable score with its reason when the server refuses
        the request, returns no log-probabilities, or does not echo the prompt.

    Raises:
        openai.APIError: Rate limits, server errors, timeouts and broken connections,
            which are worth retrying.

    """
    import openai

    prompt = context + "\n" + question
    try:
        # max_tokens=1, not 0: vLLM refuses 0. The generated token is cut off below.
        response = client.completions.create(
            model=model, prompt=prompt, echo=True, logprobs=1, max_tokens=1, temperature=0
        )
    except openai.APIStatusError as error:
        if error.status_code in UNSUPPORTED_STATUS:
            return _unavailable(f"HTTP {error.status_code} from /completions")
        raise
    choices = getattr(response, "choices", None) or []
    logprobs = getattr(choices[0], "logprobs", None) if choices else None
    if logprobs is None:
        return _unavailable("the answer has no logprobs")
    tokens: Sequence[str] = logprobs.tokens or []
    values: Sequence[float | None] = logprobs.token_logprobs or []
    offsets: Sequence[int] = logprobs.text_offset or []
    text = str(getattr(choices[0], "text", "") or "")
    if not text.startswith(prompt) or not (len(tokens) == len(values) == len(offsets)):
        return _unavailable("the prompt was not echoed")
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    if len(tokens) < prompt_tokens:
        # llama.cpp's llama-server echoes the text but gives log-probabilities for the
        # generated token only (ggml-org/llama.cpp#27174): no prompt tokens to average.
        return _unavailable("the prompt's tokens have no log-probabilities")
    mean, count = _question_mean(tokens, values, offsets, len(context) + 1, len(prompt))
    if mean is None:
        return _unavailable("no log-probability for any question token")
    return LogprobScore(mean=mean, tokens=count)


def _question_mean(
    tokens: Sequence[str],
    values: Sequence[float | None],
    offsets: Sequence[int],
    start: int,
    end: int,
) -> tuple[float | None, int]:
    """Mean of the values of the tokens overlapping the text between ``start`` and ``end``.

    A token spans from its offset to the next token's offset. One that straddles
    the start (a newline merged with the question's first word) counts as the
    question's; tokens from ``end`` on are generated, not prompt. A ``None`` value
    (the very first token has nothing to be predicted from) is skipped.
    """
    found: list[float] = []
    for index, (token, value, offset) in enumerate(zip(tokens, values, offsets, strict=True)):
        stop = offsets[index + 1] if index + 1 < len(offsets) else offset + len(token)
        if stop > start and offset < end and value is not None:
            found.append(float(value))
    return (sum(found) / len(found) if found else None), len(found)


def question_logprob(
    client: openai.OpenAI, model: str, context: str, question: str
) -> float | None:
    """The mean log-probability of ``question``'s tokens after ``context``, or ``None``.

    ``None`` means the endpoint cannot say (no legacy completions endpoint, no
    prompt log-probabilities, ``echo`` ignored); see :func:`score_question`.
    """
    return score_question(client, model, context, question).mean


def make_client(
    *, base_url: str | None, api_key: str | None, timeout: float, max_retries: int
) -> openai.OpenAI:
    """An ``openai`` client for scoring; a local server without a key gets a placeholder."""
    import os

    import openai

    key = api_key or os.environ.get("OPENAI_API_KEY") or ("unused" if base_url else None)
    options: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries}
    return openai.OpenAI(base_url=base_url, api_key=key, **options)
