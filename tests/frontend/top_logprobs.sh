#!/usr/bin/env bash
# top_logprobs.sh — real top_logprobs and logit_bias (tests/frontend/top_logprobs.mjs) through a
# colocated worker and through a prefill + decode pair: the pair's alternatives (the prefill's for the
# first token, the decode worker's after) must equal the colocated worker's byte for byte. Prefix
# caching is off for the same reason as in logprobs_mode.sh (bit-for-bit comparisons).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --served-model-name tiny
colocated_then_pair node tests/frontend/top_logprobs.mjs "$BASE" tiny
wait_idle
stop_frontend
stop pre
stop dec
