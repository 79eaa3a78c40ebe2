#!/usr/bin/env bash
# The measurement in this folder, as one command: test_time and sleep_time with the real
# model on this machine, growing the sample (--n 2, 4, 6, ...) while the time allows. Every
# step resumes the same run folder, so a kill loses at most the unit in flight; the report is
# rewritten from the folder at the end.
#
# Usage: run.sh OUT MINUTES CONDITIONS [dataset and other bench options]
#   e.g. run.sh /tmp/real-p2 35 test_time,sleep_time \
#            --dataset gsm-symbolic --data stateful_gsm_symbolic_p2.jsonl
# Needs the real model served at 127.0.0.1:8089 (../shared/real-model/serve.sh 8089).
set -uo pipefail
OUT=${1:?run folder}
MINUTES=${2:-20}
CONDITIONS=${3:-test_time,sleep_time}
shift 3 || shift $#
PYTHON=${PYTHON:-python}
BASE_URL=${BASE_URL:-http://127.0.0.1:8089/v1}
deadline=$(($(date +%s) + MINUTES * 60))
for n in 2 4 6 8 10 12 16 20 24 32 40; do
    left=$((deadline - $(date +%s)))
    [ "$left" -gt 30 ] || break
    timeout --signal=KILL "$left" "$PYTHON" -m sleepagent.bench \
        --n "$n" --seed 0 --conditions "$CONDITIONS" --budgets 0,2 \
        --model openai:qwen2.5-coder-1.5b --base-url "$BASE_URL" \
        --timeout 600 --retries 1 --max-tokens 256 --no-progress \
        --out "$OUT" "$@"
    echo "step --n $n ended with status $?" >&2
done
"$PYTHON" -m sleepagent.bench --out "$OUT" --report-only
