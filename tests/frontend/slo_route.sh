#!/usr/bin/env bash
# slo_route.sh — SLO-aware routing with real daemons: a frontend with --slo-ttft-ms, one prefill
# worker and one colocated worker (which also decodes for the prefill worker). With a 1 ms TTFT SLO
# every prompt misses on either path, so each goes where less prompt work is queued: the eight
# choices of one request (dispatched back to back) take both paths. Greedy, they must all be the
# same text whichever way each went; the router's measured costs and path counts are in /metrics.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --slo-ttft-ms 1
start_prefill
start dec_colo $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 512 --colocated --load-interval-ms 100
wait_health 200
wait_workers prefill 1 # else the first round can go local for want of one, uncounted by the SLO rule
wait_workers colocated 1
grep -q "SLO-aware routing: TTFT 1 ms" "$WORK/fe.log" || { echo "FAIL no SLO routing line in the log"; exit 1; }

ask() { # ask BODY: the choices' texts, one a line (JSON strings)
    curl -s "$BASE/v1/completions" -d "$1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); [print(json.dumps(c["text"])) for c in r["choices"]]'
}
for round in 1 2 3; do
    ask '{"prompt":"one two three four five six seven eight nine ten","max_tokens":24,"temperature":0,"n":8,"ignore_eos":true}' >"$WORK/r$round.txt"
    [ "$(wc -l <"$WORK/r$round.txt")" = 8 ] && [ "$(sort -u "$WORK/r$round.txt" | wc -l)" = 1 ] ||
        { echo "FAIL round $round: greedy choices differ across paths:"; cat "$WORK/r$round.txt"; exit 1; }
done
cmp -s "$WORK/r1.txt" "$WORK/r3.txt" || { echo "FAIL rounds differ"; exit 1; }
local_n=$(metric 'pdserve:router_routed_total{path="local"}')
split_n=$(metric 'pdserve:router_routed_total{path="disaggregated"}')
[ "$local_n" -ge 1 ] && [ "$split_n" -ge 1 ] && [ $((local_n + split_n)) -ge 24 ] ||
    { echo "FAIL paths: local $local_n, disaggregated $split_n"; exit 1; }
echo "ok   24 greedy choices identical over both paths (local $local_n, disaggregated $split_n)"

for role in prefill colocated; do
    v=$(curl -s "$BASE/metrics" | awk -v r="role=\"$role\"" '/^pdserve:router_prefill_ms_per_token/ && index($0, r) { print $NF }')
    python3 -c "import sys; sys.exit(not float('$v') > 0)" || { echo "FAIL $role prefill cost not measured: '$v'"; exit 1; }
done
v=$(curl -s "$BASE/metrics" | awk '/^pdserve:router_tpot_ms/ && /colocated/ { print $NF }')
python3 -c "import sys; sys.exit(not float('$v') > 0)" || { echo "FAIL TPOT not measured: '$v'"; exit 1; }
for role in prefill colocated; do
    v=$(curl -s "$BASE/metrics" | awk -v r="role=\"$role\"" '/^pdserve:router_ttft_ms/ && index($0, r) { print $NF }')
    python3 -c "import sys; sys.exit(not float('$v') > 0)" || { echo "FAIL $role TTFT not measured: '$v'"; exit 1; }
done
echo "ok   prefill ms/token and TTFT of both workers and the colocated worker's TPOT measured"

out=$(curl -sN "$BASE/v1/completions" -d '{"prompt":"stream me","max_tokens":12,"temperature":0,"stream":true,"ignore_eos":true}')
echo "$out" | grep -q '^data: \[DONE\]' || { echo "FAIL stream: $out"; exit 1; }
echo "ok   streamed request completes"

# a request's own SLOs (extension fields) override the flags: with a 1-hour TTFT SLO every prompt
# meets it disaggregated, so all eight choices take that path
before=$(metric 'pdserve:router_routed_total{path="disaggregated"}')
ask '{"prompt":"one two three four five six seven eight nine ten","max_tokens":8,"temperature":0,"n":8,"slo_ttft_ms":3600000,"slo_tpot_ms":1000}' >"$WORK/own.txt"
after=$(metric 'pdserve:router_routed_total{path="disaggregated"}')
[ "$(wc -l <"$WORK/own.txt")" = 8 ] && [ $((after - before)) = 8 ] ||
    { echo "FAIL per-request SLOs: $((after - before)) of 8 disaggregated"; exit 1; }
echo "ok   per-request slo_ttft_ms: all 8 choices disaggregated"
code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x","slo_ttft_ms":0}')
[ "$code" = 400 ] && grep -q slo_ttft_ms "$WORK/bad.json" && echo "ok   slo_ttft_ms 0 is a 400" || { echo "FAIL $code $(cat "$WORK/bad.json")"; exit 1; }
alive pre
alive dec_colo
wait_idle
stop_frontend
