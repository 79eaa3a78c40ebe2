#!/usr/bin/env bash
# The measurements in this folder, as the commands that made them. Each ran from a checkout
# of the commit named in README.md. Needs the real model served at 127.0.0.1:8088 with two
# request slots (SLEEPAGENT_REAL_MODEL_PARALLEL=2, SLEEPAGENT_REAL_MODEL_CTX=32768: 16,384
# tokens a slot); two or three steps shared it at a time.
#
# Usage: run.sh OUT   (OUT: a folder outside temporary directories, e.g. /work/runs/s32)
set -uo pipefail
OUT=${1:?run folder}
PYTHON=${PYTHON:-python}
BASE_URL=${BASE_URL:-http://127.0.0.1:8088/v1}
COMMON=(--model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" --timeout 600 --retries 1
        --max-tokens 256 --no-progress --budgets 0,2)

# 1. Stateful GSM-Symbolic P2 (the user's own file: its licence forbids a copy here; see
#    benchmarks/make_stateful_gsm.py), 12 contexts, default settings (one reasoning sample
#    of up to 1,024 tokens), at 427b43e.
P2=${P2:?path to stateful_gsm_symbolic_p2.jsonl}
"$PYTHON" -m sleepagent.bench --dataset gsm-symbolic --data "$P2" --n 12 --seed 0 \
    --conditions test_time,sleep_time --think-tokens 1024 "${COMMON[@]}" --out "$OUT/p2-n12"

# 2. The memory eval in the two other edit modes, default settings otherwise, at 427b43e.
"$PYTHON" benchmarks/real_model_eval.py --base-url "$BASE_URL" --modes text,tools \
    --held-out include --out "$OUT/memory-eval-text-tools-427b43e.json"

# 3. LoCoMo, the second conversation (conv-30), at 8eac3b0, with the same settings as the
#    conv-26 run of 2026-12-07 (blocks of 16,000 characters, a frequency penalty on
#    sleep-time requests, full context left out: the conversation does not fit the served
#    window). The data file is not in this repository (CC BY-NC 4.0): pass your copy.
LOCOMO_RUN=(--dataset locomo --data "${LOCOMO:?path to locomo10.json}" --per-category 10
            --seed 0 --context-window 16384 --sleep-request-field frequency_penalty=0.5
            --model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" --timeout 900
            --retries 1 --max-tokens 128 --no-progress --block-limit 16000 --concurrency 2)
"$PYTHON" -m sleepagent.bench "${LOCOMO_RUN[@]}" --conversation conv-30 \
    --systems no_memory,recent_turns,sleep_memory,recall --out "$OUT/locomo-conv30"
#    Then the same folder resumed with the LLM judge: the same 1.5B model, one request at
#    a time (its prompt is in prompts.json).
"$PYTHON" -m sleepagent.bench "${LOCOMO_RUN[@]}" --conversation conv-30 --concurrency 1 \
    --systems no_memory,recent_turns,sleep_memory,recall \
    --judge-model openai:qwen2.5-coder-1.5b --out "$OUT/locomo-conv30"

# 4. LoCoMo conv-26 again, at the commit named in README.md (the speaker rules of this
#    session), the same settings and the same 50 questions as the 2026-12-07 run, with the
#    combined system too.
"$PYTHON" -m sleepagent.bench "${LOCOMO_RUN[@]}" --conversation conv-26 \
    --systems no_memory,recent_turns,sleep_memory,recall,sleep_memory_recall \
    --out "$OUT/locomo-conv26"

# 5. Parallel sleep-time compute, one sweep at k = 5 (k = 1 and 3 are its first samples),
#    on the 10 generated contexts of seed 5 that the k = 3 run of 2026-12-07 used.
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 10 --seed 5 --queries 1 \
    --conditions test_time,sleep_time --sleep-samples 1,3,5 --think-tokens 1024 \
    "${COMMON[@]}" --out "$OUT/generated-n10-k5"
