#!/usr/bin/env bash
# SIGKILL of a decode worker mid-generation: its in-flight requests end with an error (none hangs),
# the prefill worker and the other decode worker keep serving, and a new batch of requests after the
# kill completes normally.
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
$PY - "$WORK/long.json" <<'PYEOF'
import json, random, sys
r = random.Random(2)
json.dump([{"prompt": [r.randrange(3, 500) for _ in range(30)], "max_tokens": 1900, "seed": i,
            "ignore_eos": True, "temperature": 0.7} for i in range(16)], open(sys.argv[1], "w"))
PYEOF
make_requests "$WORK/after.json" 20 4
port=$(free_port)
PDSERVE_LOG=debug start dec1 $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 300 --id 11
start dec2 $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 300 --id 12
start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 300
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 2 --requests "$WORK/long.json" --timeout 200 \
    >"$WORK/killed.out" 2>"$WORK/driver1.log" &
driver=$!
# kill decode 1 as soon as it is generating (the engine is fast: the long answers take about a second)
for _ in $(seq 3000); do grep -q "admitted" "$WORK/dec1.log" && break; sleep 0.01; done
stop dec1 KILL
wait $driver || { echo "FAIL: requests hung after the decode worker died"; cat "$WORK/driver1.log"; exit 1; }
failed=$(jq -r 'select(.i != null and .error != "") | .i' "$WORK/killed.out" | wc -l)
done_ok=$(jq -r 'select(.i != null and .error == "" and (.tokens | length) == 1900) | .i' "$WORK/killed.out" | wc -l)
echo "after SIGKILL of decode 1: $done_ok requests complete, $failed ended with an error, 0 hung"
[ "$failed" -gt 0 ] && [ "$done_ok" -gt 0 ] && [ $((failed + done_ok)) -eq 16 ] || { echo "FAIL: expected both kinds"; exit 1; }
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/after.json" --timeout 60 \
    --idle-pools >"$WORK/after.out" 2>/dev/null
errors=$(jq -r 'select(.i != null and .error != "") | .error' "$WORK/after.out" | wc -l)
[ "$errors" -eq 0 ] && pools_idle "$WORK/after.out" || { echo "FAIL: the survivors do not serve"; exit 1; }
echo "afterwards: 20 new requests complete on the surviving prefill and decode workers"
