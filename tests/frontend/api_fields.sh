#!/usr/bin/env bash
# api_fields.sh — no request field silently ignored and the response fields, through the official
# openai client (tests/frontend/api_fields.mjs) against a frontend with a prefill and a decode worker.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --served-model-name org/tiny-test
start_prefill
start_decode
wait_health 200
node tests/frontend/api_fields.mjs "$BASE" org/tiny-test
wait_idle
stop_frontend
