#!/usr/bin/env bash
# decode_choice.sh — the frontend puts a sequence on the decode worker with the least decode work
# ahead (tokens its sequences have still to generate), not the most KV blocks free: two colocated
# workers of the `small` preset (slow enough to watch), requests placed so the two rules disagree
# (tests/frontend/decode_choice.py); /metrics' per-worker count while they run, and back to 0 once
# every answer has ended, run out, been dropped mid-stream or stopped at once by EOS.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model --preset small
start_frontend
start_decode co1 --colocated --id 1
start_decode co2 --colocated --id 2
wait_workers colocated 2
wait_health 200
python3 tests/frontend/decode_choice.py "$BASE" "$WORK/fe.log" "$MODEL"
wait_idle
for _ in $(seq 50); do [ "$(metric 'pdserve:router_decode_tokens_left')" = 0 ] && break; sleep 0.1; done
left=$(metric 'pdserve:router_decode_tokens_left')
[ "$left" = 0 ] && echo "ok   every worker's tokens left back to 0 once idle" ||
    { echo "FAIL tokens left once idle: $left"; curl -s "$BASE/metrics" | grep decode_tokens_left; exit 1; }
alive co1
alive co2
stop_frontend
