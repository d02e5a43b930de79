#!/usr/bin/env bash
# logprobs_mode.sh — raw (default) and processed logprobs (issue 20; tests/frontend/logprobs_mode.py
# says what each must be), the same numbers from a colocated worker and a disaggregated pair (the
# mode travels to the prefill, which samples the first token, and on to the decode worker), and the
# frontend's --logprobs-mode default. The comparisons are bit for bit, and a prefix cache hit reuses K/V
# computed in a differently shaped batch, equal only up to float rounding (docs/engine.md): so the
# workers here run without it (tests/frontend/prefix_cache.sh compares with and without).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend
start_decode colo --colocated --no-prefix-cache
wait_health 200
python3 tests/frontend/logprobs_mode.py "$BASE" "$WORK/colo.txt"
stop colo
wait_health 503
start_prefill pre --no-prefix-cache
start_decode dec --no-prefix-cache
wait_health 200
python3 tests/frontend/logprobs_mode.py "$BASE" "$WORK/disagg.txt"
if cmp -s "$WORK/colo.txt" "$WORK/disagg.txt"; then
    echo "ok   colocated and disaggregated logprobs identical ($(wc -l <"$WORK/colo.txt") answers)"
else
    echo "FAIL colocated and disaggregated logprobs differ:"; diff "$WORK/colo.txt" "$WORK/disagg.txt" | head; exit 1
fi
wait_idle
stop_frontend
stop pre
stop dec
# the default mode is the frontend's flag; --help shows it; a bad value is refused
$BUILD/pdserve-frontend --help | grep -q -- "--logprobs-mode" && echo "ok   --help shows --logprobs-mode" || { echo "FAIL --help"; exit 1; }
if $BUILD/pdserve-frontend --model "$MODEL" --logprobs-mode raw_logits 2>"$WORK/bad.err"; then
    echo "FAIL --logprobs-mode raw_logits accepted"; exit 1
fi
grep -q "raw_logprobs or processed_logprobs" "$WORK/bad.err" && echo "ok   --logprobs-mode raw_logits refused: $(head -1 "$WORK/bad.err")" || { cat "$WORK/bad.err"; exit 1; }
UCX_PORT=$(free_port); HTTP_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend --logprobs-mode processed_logprobs
start_decode colo2 --colocated --no-prefix-cache
wait_health 200
python3 tests/frontend/logprobs_mode.py "$BASE" "$WORK/processed.txt" --default-processed
cmp -s "$WORK/colo.txt" "$WORK/processed.txt" && echo "ok   requests naming their mode answer the same under either default" \
    || { echo "FAIL answers naming their mode changed with the default"; diff "$WORK/colo.txt" "$WORK/processed.txt" | head; exit 1; }
wait_idle
stop_frontend
