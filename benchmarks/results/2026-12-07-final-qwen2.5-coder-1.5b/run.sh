#!/usr/bin/env bash
# The final sweep of the think-then-write sleep-time agent, as the commands that made it.
# Frozen before it started: the library at the commit named in README.md, the generator,
# the seeds (3 for the base sweep, 4 for multi-query; 0 and 1 were the tuning and held-out
# draws), and the two efforts (1,024 and 384 reasoning tokens per sample). k: one sample
# per context in the 30-context sweep (a first attempt at 5 samples made 4.6 h of model
# time on this shared machine, so k = 3 runs on 10 contexts, step 5).
#
# Needs the real model served at 127.0.0.1:8088 (../shared/real-model/serve.sh 8088). Each
# step resumes its run folder, so a kill loses at most the unit in flight.
#
# Usage: run.sh OUT   (OUT: a folder outside temporary directories, e.g. /work/runs/final)
set -uo pipefail
OUT=${1:?run folder}
PYTHON=${PYTHON:-python}
BASE_URL=${BASE_URL:-http://127.0.0.1:8088/v1}
COMMON=(--model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" --timeout 600 --retries 1
        --max-tokens 256 --no-progress --budgets 0,2)

# 1. Generated base problems, seed 3, n = 30, one question per context: test_time at v0 and
#    v2; sleep_time with one reasoning sample of up to 1,024 tokens (the defaults).
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 30 --seed 3 --queries 1 \
    --conditions test_time,sleep_time --think-tokens 1024 \
    "${COMMON[@]}" --out "$OUT/generated-n30"

# 2. The paper's multi-query setting: seed 4, 5 contexts, 10 questions each.
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 5 --seed 4 --queries 10 \
    --conditions test_time,sleep_time "${COMMON[@]}" --out "$OUT/generated-multiquery"

# 3. The second effort: the same 30 contexts, sleep_time only, 384 reasoning tokens.
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 30 --seed 3 --queries 1 \
    --conditions sleep_time --think-tokens 384 \
    "${COMMON[@]}" --out "$OUT/generated-n30-think384"

# 4. Stateful GSM-Symbolic P2 (the user's own file: its licence forbids a copy here; see
#    benchmarks/make_stateful_gsm.py), as many contexts as time allowed.
P2=${P2:?path to stateful_gsm_symbolic_p2.jsonl}
"$PYTHON" -m sleepagent.bench --dataset gsm-symbolic --data "$P2" --n 12 --seed 0 \
    --conditions test_time,sleep_time --think-tokens 1024 "${COMMON[@]}" --out "$OUT/p2-n12"

# 5. Parallel sleep-time compute: k = 1 and 3 agreed samples, on 10 contexts of seed 5.
"$PYTHON" -m sleepagent.bench --dataset generated --level base --n 10 --seed 5 --queries 1 \
    --conditions test_time,sleep_time --sleep-samples 1,3 --think-tokens 1024 \
    "${COMMON[@]}" --out "$OUT/generated-n10-k3"
