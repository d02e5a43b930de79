#!/usr/bin/env bash
# ops.sh — what an operator sees, with real daemons and real HTTP: CORS (--cors-origin: headers on
# every answer, preflight OPTIONS 204), X-Request-Id (the client's echoed, a bad one replaced, one
# generated otherwise, and named in the access log), one access-log line per request with token
# counts and never the prompt, the periodic stats line (--stats-interval-s), and the request token
# and KV transfer histograms, and the workers' step-time histograms and preemptions in /metrics.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --cors-origin https://app.example --stats-interval-s 1
start_prefill
start_decode
wait_health 200
fail() { echo "FAIL $*"; exit 1; }
header() { tr -d '\r' | awk -v h="$1" 'tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*: */, ""); print }'; }

pre=$(curl -s -i -X OPTIONS "$BASE/v1/chat/completions" -H 'Origin: https://app.example' \
      -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type,authorization')
status=${pre%%$'\r'*} # the status line (head -1 in a pipe can cut echo short: SIGPIPE under pipefail)
[[ $status == *" 204 "* ]] || fail "preflight: $status"
[ "$(echo "$pre" | header access-control-allow-origin)" = https://app.example ] || fail "preflight origin"
echo "$pre" | header access-control-allow-methods | grep -q POST || fail "preflight methods"
echo "$pre" | header access-control-allow-headers | grep -qi authorization || fail "preflight headers"
echo "ok   CORS preflight answered 204 with the origin, methods and headers"

models=$(curl -s -i "$BASE/v1/models")
[ "$(echo "$models" | header access-control-allow-origin)" = https://app.example ] || fail "CORS on GET"
echo "$models" | header x-request-id | grep -Eq '^req-[0-9a-f]{20}$' || fail "generated id: $(echo "$models" | header x-request-id)"
echo "ok   CORS headers and a generated X-Request-Id on an ordinary answer"

resp=$(curl -s -i "$BASE/v1/completions" -H 'X-Request-Id: trace-4711.a:b' \
       -d '{"prompt":"zebra-marker-9931 one two","max_tokens":6,"temperature":0,"ignore_eos":true}')
[ "$(echo "$resp" | header x-request-id)" = trace-4711.a:b ] || fail "client id not echoed"
bad=$(curl -s -i "$BASE/v1/models" -H 'X-Request-Id: has spaces and "quotes"' | header x-request-id)
echo "$bad" | grep -Eq '^req-' || fail "a bad id was kept: $bad"
stream=$(curl -s -i -N "$BASE/v1/completions" -H 'X-Request-Id: stream-1' \
         -d '{"prompt":"zebra-marker-9931","max_tokens":4,"stream":true,"ignore_eos":true}')
[ "$(echo "$stream" | header x-request-id)" = stream-1 ] || fail "id on a stream"
echo "ok   X-Request-Id: the client's echoed (whole and streamed), a bad one replaced"

for _ in $(seq 50); do grep -q "id=stream-1" "$WORK/fe.log" && break; sleep 0.1; done
line=$(grep "id=trace-4711.a:b" "$WORK/fe.log" | grep "POST /v1/completions 200" || true)
echo "$line" | grep -Eq 'cmpl-[0-9a-f]+ in=[0-9]+ out=6 ttft=[0-9.]+ms on=[0-9]+>[0-9]+ [0-9.]+ ms id=' || fail "access line: '$line'"
grep -q "POST /v1/completions 200 .* out=4 .*id=stream-1" "$WORK/fe.log" || fail "no access line for the stream"
grep -q "OPTIONS /v1/chat/completions 204" "$WORK/fe.log" || fail "no access line for the preflight"
! grep -q "zebra-marker" "$WORK/fe.log" || fail "the prompt reached the log"
echo "ok   one access line per request, with tokens and TTFT, never the prompt: $line"

for _ in $(seq 40); do grep -q "stats: prompt" "$WORK/fe.log" && break; sleep 0.1; done
grep -Eq "stats: prompt [0-9.]+ tokens/s, generation [0-9.]+ tokens/s, [0-9]+ sequences running, [0-9]+ requests waiting, KV cache [0-9.]+% used" \
    "$WORK/fe.log" || fail "no stats line"
echo "ok   stats line: $(grep -m1 "stats: prompt" "$WORK/fe.log" | sed 's/.*stats:/stats:/')"

[ "$(metric 'pdserve:request_prompt_tokens_count')" -ge 2 ] && [ "$(metric 'pdserve:request_generation_tokens_sum')" -ge 10 ] ||
    fail "token histograms: $(curl -s "$BASE/metrics" | grep request_.*_tokens_)"
echo "ok   request prompt/generation token histograms in /metrics"
wait_idle
# every disaggregated request's KV transfer, adding up to what the prefill worker's LOAD counts
kv_n=$(metric 'pdserve:request_kv_transfer_bytes_count'); kv_sum=$(metric 'pdserve:request_kv_transfer_bytes_sum')
[ "$kv_n" -ge 2 ] && [ "$kv_sum" -gt 0 ] && [ "$kv_sum" = "$(metric 'pdserve:kv_transfer_bytes_total')" ] &&
    [ "$(metric 'pdserve:request_kv_transfer_seconds_count')" = "$kv_n" ] &&
    [ "$(metric 'pdserve:request_kv_transfer_exposed_seconds_count')" = "$kv_n" ] ||
    fail "KV transfer histograms: $(curl -s "$BASE/metrics" | grep kv_transfer)"
echo "ok   KV transfer per request: $kv_n requests, $kv_sum bytes (the prefill worker's counter too)"
# the workers' engine steps and preemptions, from their LOADs
curl -s "$BASE/metrics" >"$WORK/metrics.txt"
[ "$(metric 'pdserve:worker_step_seconds_count')" -gt 0 ] &&
    grep -q '^pdserve:worker_step_seconds_bucket{.*role="prefill",le="+Inf"} [1-9]' "$WORK/metrics.txt" &&
    grep -q '^pdserve:worker_step_seconds_bucket{.*role="decode",le="+Inf"} [1-9]' "$WORK/metrics.txt" &&
    grep -q '^pdserve:num_preemptions_total{.*role="decode"} 0' "$WORK/metrics.txt" ||
    fail "step histograms: $(grep -E 'worker_step|preemptions' "$WORK/metrics.txt")"
echo "ok   worker step-time histograms ($(metric 'pdserve:worker_step_seconds_count') steps) and preemptions in /metrics"
stop_frontend
