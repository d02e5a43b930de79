#!/usr/bin/env bash
# failover.sh — workers dying under the frontend:
#  1. the decode worker is killed mid-generation: a streaming client gets an error chunk and [DONE],
#     a non-streaming one a 503; /health turns 503; a restarted decode worker is admitted again.
#  2. a prefill worker hangs (SIGSTOP) with requests queued on it that have not started, then dies:
#     those requests are re-routed to the other prefill worker and all succeed.
#  3. a worker that stops reporting (SIGSTOP) is forgotten, and re-admitted when it resumes.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --worker-timeout-ms 1500
start_prefill pre
start_decode dec
wait_health 200
long='{"prompt":"tell me","max_tokens":1900,"ignore_eos":true}'
curl -sN "$BASE/v1/completions" -d "${long%\}},\"stream\":true}" >"$WORK/stream.out" &
c1=$!
curl -s -o "$WORK/whole.out" -w '%{http_code}' "$BASE/v1/completions" -d "$long" >"$WORK/whole.code" &
c2=$!
for _ in $(seq 100); do [ "$(metric pdserve:num_requests_running)" = 2 ] && break; sleep 0.02; done
stop dec  # both requests are generating now
wait $c1 $c2 || true
grep -q '^data: {"error"' "$WORK/stream.out" && tail -c 200 "$WORK/stream.out" | grep -q '^data: \[DONE\]' \
    && echo "ok   streaming client got an error chunk and [DONE] when the decode worker died" \
    || { echo "FAIL stream after worker death:"; tail -c 400 "$WORK/stream.out"; exit 1; }
code=$(cat "$WORK/whole.code")
[[ "$code" == 5* ]] && grep -q '"error"' "$WORK/whole.out" && echo "ok   non-streaming client got $code" \
    || { echo "FAIL non-streaming after worker death: $code $(cat "$WORK/whole.out")"; exit 1; }
wait_health 503
echo "ok   /health is 503 with no decode worker"
start_decode dec
wait_health 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"again","max_tokens":4}')
[ "$code" = 200 ] && echo "ok   restarted decode worker admitted and serving" || { echo "FAIL after restart: $code"; exit 1; }

# 2. re-routing: requests queued on a hung prefill worker move to the healthy one when it dies
start_prefill pre2
wait_workers prefill 2
kill -STOP "$PID_pre2"
pids=()
for i in 1 2 3 4 5 6; do
    curl -s -o "$WORK/rr$i.out" -w '%{http_code}' "$BASE/v1/completions" -d "{\"prompt\":\"req $i\",\"max_tokens\":4}" >"$WORK/rr$i.code" &
    pids+=($!)
done
sleep 0.3
stop pre2
wait "${pids[@]}" || true
ok=0; for i in 1 2 3 4 5 6; do [ "$(cat "$WORK/rr$i.code")" = 200 ] && ok=$((ok + 1)); done
[ $ok = 6 ] && echo "ok   6 requests, some queued on a prefill worker that died before starting them, all succeeded" \
    || { echo "FAIL re-routing: $ok of 6 succeeded"; cat "$WORK"/rr*.out; grep -i "re-routed\|removed" "$WORK/fe.log"; exit 1; }
grep -q "re-routed" "$WORK/fe.log" && echo "ok   the frontend log shows re-routed requests" || { echo "FAIL nothing was re-routed"; exit 1; }

# 3. a silent worker is forgotten and re-admitted when it speaks again
kill -STOP "$PID_dec"
wait_health 503
echo "ok   a decode worker that stopped reporting was forgotten"
kill -CONT "$PID_dec"
wait_health 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"back","max_tokens":4}')
[ "$code" = 200 ] && echo "ok   it was re-admitted when it resumed and serves again" || { echo "FAIL after resume: $code"; exit 1; }
wait_idle
stop_frontend
echo "ok   nothing was left in flight"
