"""The paper's experiments as a runnable benchmark.

``python -m sleepagent.bench --dataset generated --n 20 --model openai:gpt-4o-mini
--out runs/x`` answers questions about contexts under test-time-only, sleep-time and
related conditions, and writes ``results.jsonl``, ``summary.md`` and plots to the run
folder. The pieces: :mod:`~sleepagent.bench.grading` (answers against gold numbers),
:mod:`~sleepagent.bench.generator` (a seeded generator of stateful word problems),
:mod:`~sleepagent.bench.datasets` (the published JSONL formats, from a local file),
:mod:`~sleepagent.bench.runner` (the experiment) and :mod:`~sleepagent.bench.summary`
(tables and plots, computed from ``results.jsonl`` alone).
"""
