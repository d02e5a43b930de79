#!/usr/bin/env bash
# top_logprobs.sh — real top_logprobs and logit_bias (tests/frontend/top_logprobs.mjs) through a
# colocated worker and through a prefill + decode pair: the pair's alternatives (the prefill's for the
# first token, the decode worker's after) must equal the colocated worker's byte for byte. Prefix
# caching is off for the same reason as in logprobs_mode.sh (bit-for-bit comparisons).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --served-model-name tiny
start_decode colo --colocated --no-prefix-cache
wait_health 200
node tests/frontend/top_logprobs.mjs "$BASE" tiny "$WORK/colo.txt"
stop colo
wait_health 503
start_prefill pre --no-prefix-cache
start_decode dec --no-prefix-cache
wait_health 200
node tests/frontend/top_logprobs.mjs "$BASE" tiny "$WORK/disagg.txt"
if cmp -s "$WORK/colo.txt" "$WORK/disagg.txt"; then
    echo "ok   colocated and disaggregated alternatives identical"
else
    echo "FAIL colocated and disaggregated alternatives differ:"; diff "$WORK/colo.txt" "$WORK/disagg.txt" | head -c 2000; exit 1
fi
wait_idle
stop_frontend
