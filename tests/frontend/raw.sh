#!/usr/bin/env bash
# raw.sh — raw HTTP against a frontend: 503 before any worker registers, then (with a prefill and a
# decode worker) every error status, pipelining, chunked bodies, slowloris, 500 concurrent streams,
# and a client that hangs up mid-stream: its work must be aborted and every KV block freed.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
printf '# keys\nk3\n' >"$WORK/keys"
PDSERVE_API_KEY=k2 start_frontend --api-key k1 --api-key-file "$WORK/keys" --max-body-bytes 65536 --max-header-bytes 8192 --header-timeout-ms 500 \
    --max-inflight 600 --max-connections 2000
code=$(curl -s -o "$WORK/h" -w '%{http_code}' "$BASE/health")
[ "$code" = 503 ] && grep -q '"error"' "$WORK/h" && echo "ok   /health is 503 before any worker" || { echo "FAIL /health $code"; exit 1; }
code=$(curl -s -o "$WORK/c" -w '%{http_code}' -H 'Authorization: Bearer k1' "$BASE/v1/completions" -d '{"prompt":"x"}')
[ "$code" = 503 ] && echo "ok   completions are 503 before any worker" || { echo "FAIL completion without workers: $code"; cat "$WORK/c"; exit 1; }
start_prefill
start_decode dec --max-batch 128
wait_health 200
echo "ok   /health is 200 once a prefill and a decode worker registered"
for k in k2 k3; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $k" "$BASE/v1/models")
    [ "$code" = 200 ] && echo "ok   API key $k (from $([ $k = k2 ] && echo PDSERVE_API_KEY || echo --api-key-file)) accepted" || { echo "FAIL key $k: $code"; exit 1; }
done
ulimit -n 4096
python3 tests/frontend/raw.py "$HTTP_PORT" k1 | tee "$WORK/raw.out"
wait_idle
echo "ok   the hung-up requests were aborted: nothing running, every KV block free"
aborts=$(metric 'pdserve:request_success_total{model_name="model",finished_reason="abort"}')
# An answer the server had finished before its client hung up (a fast model on a slow machine) is no abort.
due=$(sed -n 's/^aborts due: //p' "$WORK/raw.out")
[ "$aborts" -ge "$due" ] && echo "ok   $aborts aborts counted in /metrics ($due due)" || { echo "FAIL $aborts aborts counted, $due due"; exit 1; }
stop_frontend
