"""Every prompt the benchmark sends, as a named constant.

The five verbosity prompts set the test-time budget of non-reasoning models, as in
the paper: 0 asks for the answer alone, 4 for thorough reasoning with a check.
"""

from __future__ import annotations

__all__ = [
    "ANSWER_FORMAT",
    "CONTEXT_ONLY_MESSAGE",
    "LEARNED_CONTEXT_RUN_HEADER",
    "TEST_TIME_MESSAGE",
    "VERBOSITY_0",
    "VERBOSITY_1",
    "VERBOSITY_2",
    "VERBOSITY_3",
    "VERBOSITY_4",
    "VERBOSITY_PROMPTS",
]

VERBOSITY_0 = "Answer in one short sentence. Do not show any reasoning or calculations."
VERBOSITY_1 = "Answer briefly: at most two short sentences of reasoning, then the answer."
VERBOSITY_2 = "Show the key calculations in a few lines, then give the answer."
VERBOSITY_3 = "Reason step by step, writing out each calculation, then give the answer."
VERBOSITY_4 = (
    "Reason thoroughly step by step, writing out every calculation. Then double-check "
    "each step and the final result before giving the answer."
)

VERBOSITY_PROMPTS: tuple[str, ...] = (
    VERBOSITY_0,
    VERBOSITY_1,
    VERBOSITY_2,
    VERBOSITY_3,
    VERBOSITY_4,
)
"""Test-time budgets 0 (least) to 4 (most), by index."""

ANSWER_FORMAT = "End your reply with a line of the form 'The answer is N', where N is a number."
"""Appended to every budget prompt, so grading finds the final number."""

TEST_TIME_MESSAGE = "{context}\n\n{question}"
"""The user message when context and question arrive together at test time."""

CONTEXT_ONLY_MESSAGE = """\
{context}

The question about this text has been withheld. Work out the question most likely to be \
asked about it, and answer that question."""
"""The user message of the context-only baseline (no question)."""

LEARNED_CONTEXT_RUN_HEADER = "[sleep-time run {index} of {k}]"
"""Heads each learned context when k of them are concatenated at test time."""
