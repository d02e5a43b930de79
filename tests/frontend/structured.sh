#!/usr/bin/env bash
# structured.sh — structured output (tests/frontend/structured.mjs) through a colocated worker and
# through a prefill + decode pair: the pair's answers (the prefill constrains the first token, the
# decode worker's matcher starts after it) must equal the colocated worker's byte for byte. Prefix
# caching is off for the same reason as in logprobs_mode.sh (bit-for-bit comparisons).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --served-model-name tiny
colocated_then_pair node tests/frontend/structured.mjs "$BASE" tiny
wait_idle
stop_frontend
stop pre
stop dec
