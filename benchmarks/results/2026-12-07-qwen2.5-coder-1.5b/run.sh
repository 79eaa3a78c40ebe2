#!/usr/bin/env bash
# The measurements in this folder, as the commands that made them. Needs the real model
# served at 127.0.0.1:8088 (../shared/real-model/serve.sh 8088). Each bench step resumes its
# run folder, so a kill loses at most the unit in flight.
#
# Usage: run.sh OUT   (OUT: a folder outside temporary directories, e.g. /work/runs/payoff)
set -uo pipefail
OUT=${1:?run folder}
PYTHON=${PYTHON:-python}
BASE_URL=${BASE_URL:-http://127.0.0.1:8088/v1}
COMMON=(--model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" --timeout 600 --retries 1
        --max-tokens 256 --no-progress --budgets 0,2)

# 1. Tuning run: generated base problems, seed 0, n = 10, three questions per context; the
#    library's defaults (a greedy reasoning pass of up to 1024 tokens on the context, final
#    values written by code). test_time at v0 and v2 beside sleep_time at v0 and v2.
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 10 --seed 0 --queries 3 \
    --conditions test_time,sleep_time "${COMMON[@]}" --out "$OUT/generated-n10"

# 2. The memory eval, AUTO mode (the default), tuning scenarios then held-out ones.
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes auto \
    --held-out include --out "$OUT/memory-eval.json"

# 3. Held-out draw: seed 1, n = 10, one question per context (prompts untouched after step 1).
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 10 --seed 1 --queries 1 \
    --conditions test_time,sleep_time "${COMMON[@]}" --out "$OUT/generated-n10-seed1"

# 4. The memory eval with the fact pass (UserFacts.EXTRACT), AUTO mode, every scenario.
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes auto \
    --held-out include --user-facts extract --out "$OUT/memory-eval-extract.json"

# 5. LoCoMo, first conversation only (conv-26), 5 questions per category, the fact pass;
#    full context left out (the conversation does not fit the served 16k window).
#    The data file is not in this repository (CC BY-NC 4.0): pass your copy as LOCOMO.
"$PYTHON" -m sleepagent.bench --dataset locomo --data "${LOCOMO:?path to locomo10.json}" \
    --conversations 1 --per-category 5 --seed 0 --systems no_memory,recent_turns,sleep_memory \
    --context-window 16384 --user-facts extract --model openai:qwen2.5-coder-1.5b \
    --base-url "$BASE_URL" --timeout 900 --retries 1 --max-tokens 128 --no-progress \
    --out "$OUT/locomo-conv26"
# (Step 4 was run twice: on 2a88fd8 into memory-eval-extract.json, and on 1dfb93d into
#  memory-eval-extract-final.json.)
