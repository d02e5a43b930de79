#!/usr/bin/env bash
# Decode backpressure loses nothing: with a decode pool far too small for the load (KV_WAIT, then
# grants as sequences finish; preemption and recomputation when running sequences outgrow it) every
# request completes, with the same tokens as an unconstrained colocated run. Greedy requests: a
# recomputed prefix comes out of a differently shaped sgemm, equal to the original only up to float
# rounding — enough to keep every greedy token, not every sampled draw (see docs/engine.md).
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
make_requests "$WORK/reqs.json" 40 11 greedy
port=$(free_port)
start colo $BUILD/pdserve-decode --colocated --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 1000
$BUILD/tests/worker_driver --ucx-port $port --colocated 1 --requests "$WORK/reqs.json" --timeout 120 >"$WORK/ref.out"
stop colo
port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 24
PDSERVE_LOG=debug start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 180 --idle-pools >"$WORK/small.out"
same_tokens "$WORK/ref.out" "$WORK/small.out" | sed 's/^/decode pool of 24 blocks: /'
pools_idle "$WORK/small.out" || { echo "FAIL: blocks in use afterwards"; exit 1; }
waits=$(grep -c 'waits for decode KV' "$WORK/pre.log" || true)
echo "KV_WAIT answers: $waits, preemptions: $(grep -c preempting "$WORK/dec.log" || true)"
[ "$waits" -gt 0 ] || { echo "FAIL: the decode pool never pushed back; the test no longer tests backpressure"; exit 1; }
