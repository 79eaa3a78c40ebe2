"""Every prompt the benchmark sends, as a named constant.

The five verbosity prompts set the test-time budget of non-reasoning models, as in
the paper: 0 asks for the answer alone, 4 for thorough reasoning with a check. The
``LOCOMO_*`` prompts are the LoCoMo benchmark's: how every system is asked a question,
how a conversation is shown to the systems that see it, and the optional judge.
"""

from __future__ import annotations

__all__ = [
    "ANSWER_FORMAT",
    "CONTEXT_ONLY_MESSAGE",
    "LEARNED_CONTEXT_RUN_HEADER",
    "LOCOMO_ABSTAIN_GOLD",
    "LOCOMO_ANSWER_INSTRUCTIONS",
    "LOCOMO_CONTEXT_MESSAGE",
    "LOCOMO_JUDGE_PROMPT",
    "LOCOMO_LEFT_OUT",
    "LOCOMO_SESSION_HEADER",
    "LOCOMO_TEMPORAL_HINT",
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


# --- LoCoMo ---------------------------------------------------------------------------

LOCOMO_ANSWER_INSTRUCTIONS = """\
You answer questions about a long conversation between two people, held over many \
sessions. Answer with a short phrase, using the conversation's own words where possible. \
If the conversation does not say, answer: Not mentioned in the conversation."""
"""The bot instructions of every system, so the systems differ only in what they know.
The abstention phrase is one LoCoMo's metric reads as declining (category 5)."""

LOCOMO_TEMPORAL_HINT = " Use the dates of the sessions to answer with an approximate date."
"""Added to a temporal question (category 2), as LoCoMo's own evaluation adds its hint."""

LOCOMO_SESSION_HEADER = "Session {number}, {date_time}:"
"""Heads each session of a conversation shown in a prompt."""

LOCOMO_LEFT_OUT = "(The conversation's earlier messages are left out.)"
"""Opens a recent-turns window that does not start at the conversation's first message."""

LOCOMO_CONTEXT_MESSAGE = """\
The conversation between {speaker_a} and {speaker_b}, session by session, with the date \
and time of each:

{conversation}

Question: {question}"""
"""The user message of the systems that are shown the conversation (all of it, or its end)."""

LOCOMO_ABSTAIN_GOLD = "Not mentioned in the conversation (it cannot be answered from it)"
"""The gold the judge is given for an adversarial question (category 5), which has none."""

LOCOMO_JUDGE_PROMPT = """\
You grade an answer to a question about a conversation, against the gold answer.

Question: {question}
Gold answer: {gold}
Answer to grade: {answer}

The answer is CORRECT when it gives the information of the gold answer: other wording, \
extra detail, or a date written another way ("May 7" for "7 May 2023", or a relative \
date that comes to the same day) are fine. It is WRONG when it states something else, \
leaves out what the question asks, or answers a question the gold says cannot be \
answered. Reply with one word: CORRECT or WRONG."""
"""The LLM judge's prompt (``--judge-model``); its text is also written to the run folder."""
