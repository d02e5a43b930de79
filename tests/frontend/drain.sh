#!/usr/bin/env bash
# drain.sh — SIGTERM drains the frontend: a stream in flight runs to its end ([DONE]), new
# connections are refused, the frontend then exits 0; a second signal during a drain stops at once,
# ending what is still in flight with an error.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model --max-pos 32768  # long enough that a stream outlives the signals below
start_prefill
start_decode
start_frontend
wait_health 200
body='{"prompt":"long","max_tokens":1500,"ignore_eos":true,"stream":true}'
curl -sN "$BASE/v1/completions" -d "$body" >"$WORK/s1.out" &
c1=$!
for _ in $(seq 100); do [ "$(metric pdserve:num_requests_running)" = 1 ] && break; sleep 0.02; done
kill -TERM "$PID_fe"
sleep 0.2
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health" || true)
[ "$code" = 000 ] && echo "ok   no new connections while draining" || { echo "FAIL new connection during drain: $code"; exit 1; }
rc=0; wait $c1 || rc=$?
[ $rc = 0 ] || { echo "FAIL curl exit $rc during the drain"; tail -c 300 "$WORK/s1.out"; tail "$WORK/fe.log"; exit 1; }
tail -c 100 "$WORK/s1.out" | grep -q 'data: \[DONE\]' && ! grep -q '"error"' "$WORK/s1.out" \
    && [ "$(grep -c '"text_completion"' "$WORK/s1.out")" -gt 10 ] \
    && echo "ok   the stream in flight ran to its end" || { echo "FAIL stream cut by the drain"; tail -c 300 "$WORK/s1.out"; exit 1; }
rc=0; wait "$PID_fe" || rc=$?
[ $rc = 0 ] && grep -q "stopped" "$WORK/fe.log" && echo "ok   frontend exited 0 after the drain" || { echo "FAIL exit $rc"; tail "$WORK/fe.log"; exit 1; }

# a second signal does not wait (fresh ports and workers: nothing depends on reusing the old ones)
HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend
start_prefill pre2
start_decode dec2
wait_health 200
curl -sN "$BASE/v1/completions" -d "${body/1500/8000}" >"$WORK/s2.out" &  # within the 512 x 16-token decode pool
c2=$!
for _ in $(seq 100); do [ "$(metric pdserve:num_requests_running)" = 1 ] && break; sleep 0.02; done
kill -TERM "$PID_fe"; sleep 0.1; kill -INT "$PID_fe"
wait $c2 || true
grep -q '"error"' "$WORK/s2.out" && tail -c 100 "$WORK/s2.out" | grep -q 'data: \[DONE\]' \
    && echo "ok   a second signal stops at once; the stream ends with an error chunk" || { echo "FAIL second signal"; tail -c 300 "$WORK/s2.out"; exit 1; }
rc=0; wait "$PID_fe" || rc=$?
[ $rc = 0 ] && echo "ok   exit 0" || { echo "FAIL exit $rc"; exit 1; }
! grep -q Sanitizer "$WORK/fe.log" || { echo "FAIL sanitizer report"; grep -A20 Sanitizer "$WORK/fe.log"; exit 1; }
