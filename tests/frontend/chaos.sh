#!/usr/bin/env bash
# chaos.sh — two rounds of 400 concurrent clients with a random mix of requests, a third of them
# hanging up midway (tests/frontend/chaos.py). Afterwards nothing is in flight, every KV block is
# free on both workers, the metrics add up, and the frontend exits cleanly.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend
start_prefill
start_decode
wait_health 200
ulimit -n 4096
python3 tests/frontend/chaos.py "$HTTP_PORT"
python3 tests/frontend/chaos.py "$HTTP_PORT"
wait_idle
echo "ok   nothing in flight, every KV block free"
aborts=$(metric 'pdserve:request_success_total{model_name="model",finished_reason="abort"}')
errors=$(metric 'pdserve:request_success_total{model_name="model",finished_reason="error"}')
[ "$aborts" -gt 0 ] && [ "$errors" = 0 ] && echo "ok   $aborts sequences aborted by hang-ups, none failed" || { echo "FAIL aborts=$aborts errors=$errors"; exit 1; }
stop_frontend
