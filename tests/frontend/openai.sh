#!/usr/bin/env bash
# openai.sh — a frontend with one prefill and one decode worker, driven by the official openai npm
# client (tests/frontend/openai.mjs), with an API key required.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --api-key test-key
start_prefill
start_decode
wait_health 200
node tests/frontend/openai.mjs "$BASE" test-key
wait_idle
echo "ok   every KV block free afterwards"
stop_frontend
