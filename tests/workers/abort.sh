#!/usr/bin/env bash
# An aborted request frees every KV block on both sides, whatever stage it was at: aborted as soon
# as it was sent (queued, reserving, mid-prefill), at its first token (KV moving or just moved), or
# mid-decode. After each run every worker reports an empty pool.
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
make_requests "$WORK/reqs.json" 30 3
port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 300
start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 300 --token-budget 64
for mode in at-once first-token tokens:3 tokens:10; do
    # Each run is a new "frontend" on the same port: the workers notice, reconnect and re-register.
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" \
        --abort $mode --timeout 60 --idle-pools >"$WORK/$mode.out"
    if pools_idle "$WORK/$mode.out"; then
        echo "ok   abort $mode: all $(grep -c '"i"' "$WORK/$mode.out") requests ended, every KV block free"
    else
        echo "FAIL abort $mode: KV blocks still in use"; tail -20 "$WORK/dec.log" "$WORK/pre.log"; exit 1
    fi
done
# and the workers still serve normally afterwards
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 60 --idle-pools >"$WORK/after.out"
errors=$(jq -r 'select(.i != null and .error != "") | .error' "$WORK/after.out" | wc -l)
[ "$errors" -eq 0 ] && pools_idle "$WORK/after.out" && echo "ok   30 requests complete after the aborts"
