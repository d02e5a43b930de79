#!/usr/bin/env bash
# slo_chunk.sh — a colocated worker keeps its decoding sequences' TPOT SLO while it prefills
# (decode_engine.c): a long generation streams while a 1,000-token prompt arrives on the same worker
# (the `small` preset: a decode step takes milliseconds). Without a TPOT SLO the prompt is computed in
# budget-sized steps, and no step is cut. With the generation's own slo_tpot_ms of 1 ms, below what
# its decode steps alone take, it has no time to give a prompt: each step carries the least, 128
# prompt tokens, so the prompt takes several cut steps (pdserve:slo_limited_steps_total). Both answers
# must be the texts each request gets alone, either way.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model --preset small
start_frontend
start_decode dec --colocated --no-prefix-cache
wait_health 200

# cut_steps: the worker's count, once its LOAD reports have caught up (they come every 100 ms).
cut_steps() { sleep 0.5; metric 'pdserve:slo_limited_steps_total'; }

python3 "$(dirname "$0")/slo_chunk.py" "$BASE" '{}' >"$WORK/plain.txt" || { cat "$WORK/plain.txt"; exit 1; }
n=$(cut_steps)
[ "$n" = 0 ] || { echo "FAIL without an SLO $n steps were cut"; exit 1; }
echo "ok   without a TPOT SLO: same texts, no step cut ($(cat "$WORK/plain.txt"))"

python3 "$(dirname "$0")/slo_chunk.py" "$BASE" '{"slo_tpot_ms":1}' >"$WORK/slo.txt" || { cat "$WORK/slo.txt"; exit 1; }
n=$(cut_steps)
[ "$n" -ge 6 ] || { echo "FAIL with a 1 ms TPOT SLO only $n steps were cut (1,000 tokens at 128 a step: 7)"; exit 1; }
echo "ok   with slo_tpot_ms 1: same texts, the prompt computed over $n cut steps ($(cat "$WORK/slo.txt"))"

code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"x","slo_tpot_ms":-3}')
[ "$code" = 400 ] && grep -q slo_tpot_ms "$WORK/bad.json" || { echo "FAIL slo_tpot_ms -3: $code"; exit 1; }
echo "ok   slo_tpot_ms -3 is a 400"
alive dec
wait_idle
stop_frontend
