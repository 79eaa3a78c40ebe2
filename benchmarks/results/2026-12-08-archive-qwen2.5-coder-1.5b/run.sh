#!/usr/bin/env bash
# The measurements in this folder, as the commands that made them. Each ran from a checkout
# of the commit named in README.md. Needs the real model served at 127.0.0.1:8088 with two
# request slots (SLEEPAGENT_REAL_MODEL_PARALLEL=2, SLEEPAGENT_REAL_MODEL_CTX=32768: 16,384
# tokens a slot); the steps shared it.
#
# Usage: run.sh OUT   (OUT: a folder outside temporary directories, e.g. /work/runs/s33)
set -uo pipefail
OUT=${1:?run folder}
PYTHON=${PYTHON:-python}
BASE_URL=${BASE_URL:-http://127.0.0.1:8088/v1}
# 1 and 2. LoCoMo conv-30 and conv-26 with the archive on, at 65daf03: the library's
#    5,000-character blocks (no --block-limit), up to 15 archived facts and 2,000 characters
#    of them per question, the same 50 and 40 questions and the same sleep-time request
#    field as the runs of 2026-12-08-qwen2.5-coder-1.5b. The two ran at the same time.
#    The data file is not in this repository (CC BY-NC 4.0): pass your copy.
LOCOMO_RUN=(--dataset locomo --data "${LOCOMO:?path to locomo10.json}" --per-category 10
            --seed 0 --context-window 16384 --sleep-request-field frequency_penalty=0.5
            --model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" --timeout 900
            --retries 1 --max-tokens 128 --no-progress --concurrency 2
            --archive-facts 15 --recall-chars 2000
            --systems no_memory,recent_turns,sleep_memory,recall,sleep_memory_recall)
"$PYTHON" -m sleepagent.bench "${LOCOMO_RUN[@]}" --conversation conv-30 \
    --out "$OUT/locomo-conv-30" &
"$PYTHON" -m sleepagent.bench "${LOCOMO_RUN[@]}" --conversation conv-26 \
    --out "$OUT/locomo-conv-26" &
wait
# 3. The held-out scenarios of the memory eval in all three edit modes, default settings,
#    at 1983de9 (a reasoning pass that concluded nothing readable is asked once more).
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes text,tools,auto \
    --held-out only --out "$OUT/memeval-heldout.json"
# 4. The garden context alone, every mode, at 724a5f7 (the eval records reasoning samples).
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes text,tools,auto \
    --scenarios context-garden --held-out include --out "$OUT/memeval-garden.json"
# 5. The three context scenarios, every mode, at 97edb3b (a pass read from its heading).
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes auto,text,tools \
    --scenarios context,context-pencils,context-garden --held-out include \
    --out "$OUT/memeval-contexts.json"
