#!/usr/bin/env bash
# bench.sh — the frontend's own numbers (not a test: tests never time things). Starts a frontend with
# one prefill and one decode worker on a tiny model, then:
#   wrk on GET /health and GET /v1/models (requests/s, p50, p99), and
#   the frontend's processing time per streamed token (pdserve:frontend_token_processing_seconds)
#   over CLIENTS concurrent streams of TOKENS tokens with two stop strings, and
#   GET /health again while BIG clients keep posting prompts of ~8 MB (tokenized, then refused as too
#   long): its p99 as a ratio to the idle p99 above, i.e. how much a huge prompt stalls everyone else.
# usage: BUILD=build tests/frontend/bench.sh   (env: DURATION=5 CONNS=32 CLIENTS=20 TOKENS=1000 BIG=2)
source "$(dirname "$0")/../helpers/frontend.sh"
command -v wrk >/dev/null || { echo "wrk is not installed (tools/deps.sh installs it)"; exit 1; }
DURATION=${DURATION:-5}; CONNS=${CONNS:-32}; CLIENTS=${CLIENTS:-20}; TOKENS=${TOKENS:-1000}; BIG=${BIG:-2}
make_model
start_frontend
start_prefill
start_decode
wait_health 200
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for ep in /health /v1/models; do
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$BASE$ep" >"$WORK/wrk.txt"
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
    printf '%-12s %10s req/s   p50 %8s   p99 %8s   (%d connections, %ss)\n' "$ep" "$rps" "$p50" "$p99" "$CONNS" "$DURATION"
    if [ "$ep" = /health ]; then idle_p99=$p99; fi
done
body="{\"prompt\":\"bench\",\"max_tokens\":$TOKENS,\"ignore_eos\":true,\"stream\":true,\"stop\":[\"zzzz\",\"qqqq\"]}"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID_fe/stat"; }  # utime + stime of the frontend
cpu0=$(cpu_ticks)
t0=$(date +%s.%N)
clients=()
for _ in $(seq "$CLIENTS"); do curl -sN "$BASE/v1/completions" -d "$body" >/dev/null & clients+=($!); done
wait "${clients[@]}"
cpu1=$(cpu_ticks)
t1=$(date +%s.%N)
sum=$(metric 'pdserve:frontend_token_processing_seconds_sum')
cnt=$(metric 'pdserve:frontend_token_processing_seconds_count')
toks=$(metric 'pdserve:generation_tokens_total')
tpot_s=$(metric 'pdserve:time_per_output_token_seconds_sum'); tpot_n=$(metric 'pdserve:time_per_output_token_seconds_count')
awk -v s="$sum" -v c="$cnt" -v t="$toks" -v ts="$tpot_s" -v tn="$tpot_n" -v c0="$cpu0" -v c1="$cpu1" \
    -v hz="$(getconf CLK_TCK)" -v w0="$t0" -v w1="$t1" 'BEGIN {
    printf "frontend time per streamed token: %.1f us wall (mean over %d TOKENS messages, %d tokens); TPOT %.2f ms\n",
        1e6 * s / c, c, t, 1e3 * ts / tn
    printf "frontend CPU while streaming: %.1f us per token (%.2f s CPU in %.2f s; includes HTTP, SSE, UCX progress)\n",
        1e6 * (c1 - c0) / hz / t, (c1 - c0) / hz, w1 - w0 }'
# /health while huge prompts are being tokenized (wrk prints latencies like 1.23ms / 456.00us / 1.20s).
/usr/bin/python3 -c 'import json,sys; print(json.dumps({"prompt": "lorem ipsum dolor sit amet, " * 290000, "max_tokens": 1}))' >"$WORK/big.json"
posters=()
for _ in $(seq "$BIG"); do
    (while :; do curl -s -o /dev/null "$BASE/v1/completions" --data-binary @"$WORK/big.json"; done) & posters+=($!)
done
sleep 1
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$BASE/health" >"$WORK/wrk.txt"
kill "${posters[@]}" 2>/dev/null; wait "${posters[@]}" 2>/dev/null || true
p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; print n }'; }
awk -v b="$(to_ms "$p99")" -v i="$(to_ms "$idle_p99")" -v r="$rps" -v n="$BIG" 'BEGIN {
    printf "/health with %d clients posting 8 MB prompts: %s req/s, p99 %.2f ms = %.1fx the idle p99\n", n, r, b, b / i }'
wait_idle
stop_frontend
