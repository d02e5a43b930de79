#!/usr/bin/env bash
# structured.sh — structured output (tests/frontend/structured.mjs) through a colocated worker and
# through a prefill + decode pair: the pair's answers (the prefill constrains the first token, the
# decode worker's matcher starts after it) must equal the colocated worker's byte for byte. Prefix
# caching is off for the same reason as in logprobs_mode.sh (bit-for-bit comparisons).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --served-model-name tiny
start_decode colo --colocated --no-prefix-cache
wait_health 200
node tests/frontend/structured.mjs "$BASE" tiny "$WORK/colo.txt"
stop colo
wait_health 503
start_prefill pre --no-prefix-cache
start_decode dec --no-prefix-cache
wait_health 200
node tests/frontend/structured.mjs "$BASE" tiny "$WORK/disagg.txt"
if cmp -s "$WORK/colo.txt" "$WORK/disagg.txt"; then
    echo "ok   colocated and disaggregated constrained answers identical"
else
    echo "FAIL colocated and disaggregated constrained answers differ:"; diff "$WORK/colo.txt" "$WORK/disagg.txt" | head -c 2000; exit 1
fi
wait_idle
stop_frontend
