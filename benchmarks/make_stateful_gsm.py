"""Build Stateful GSM-Symbolic rows from a GSM-Symbolic file, in the paper's shape.

The paper (Lin et al., 2025, Sec. 3 and App. B) splits each GSM-Symbolic problem into a
context (every sentence but the last) and the question (the last sentence). This script
adds the two fields the stateful files carry, ``stateful_gsm_symbolic_context`` and
``stateful_gsm_symbolic_question``, and keeps every original field, so the output loads
with ``sleepagent bench --dataset gsm-symbolic --data OUT``.

    python benchmarks/make_stateful_gsm.py GSM_p2.jsonl stateful_gsm_symbolic_p2.jsonl

The input is a local copy of ``generated_data/GSM_p1.jsonl`` or ``GSM_p2.jsonl`` from the
GSM-Symbolic release; its licence (CC BY-NC-ND 4.0) forbids redistributing it, so neither
file belongs in this repository.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
"""A sentence boundary: end punctuation, space, a capital (so ``$2.50`` is not one)."""


def split_problem(question: str) -> tuple[str, str]:
    """``(context, question)``: the last sentence that asks (ends in ``?``), else the last.

    Some templates ask mid-text and add a condition after the question; that
    condition stays in the context, which is then every other sentence in order.
    """
    text = question.strip()
    cuts = [0, *(b.end() for b in _SENTENCE_END.finditer(text)), len(text)]
    sentences = [text[start:end].strip() for start, end in itertools.pairwise(cuts)]
    asking = [i for i, sentence in enumerate(sentences) if sentence.endswith("?")]
    chosen = asking[-1] if asking else len(sentences) - 1
    context = " ".join(s for i, s in enumerate(sentences) if i != chosen)
    return context, sentences[chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="GSM_p1.jsonl or GSM_p2.jsonl")
    parser.add_argument("out", type=Path, help="the stateful file to write")
    args = parser.parse_args(argv)
    rows = 0
    with args.source.open(encoding="utf-8") as source, args.out.open("w") as out:
        for line in source:
            if not line.strip():
                continue
            record = json.loads(line)
            context, question = split_problem(record["question"])
            record["stateful_gsm_symbolic_context"] = context
            record["stateful_gsm_symbolic_question"] = question
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows += 1
    print(f"{rows} rows -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
