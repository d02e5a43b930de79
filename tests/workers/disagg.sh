#!/usr/bin/env bash
# Transfer changes nothing: 50 concurrent requests of mixed lengths, greedy and sampled, give the same
# token ids disaggregated (1 prefill + 1 decode, KV moved by UCX RMA) as on one colocated worker —
# with the KV moving over tcp and over shared memory — and every KV block is free afterwards.
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
make_requests "$WORK/reqs.json" 50 7

run_colocated() {
    local port; port=$(free_port)
    start colo $BUILD/pdserve-decode --colocated --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400 --token-budget 256
    $BUILD/tests/worker_driver --ucx-port $port --colocated 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/colo.out"
    stop colo
}

run_disagg() { # run_disagg UCX_TLS
    local port; port=$(free_port)
    export UCX_TLS=$1
    start "dec_${1//,/_}" $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400
    start "pre_${1//,/_}" $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400 --token-budget 256
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/disagg_$1.out"
    unset UCX_TLS
}

run_colocated
pools_idle "$WORK/colo.out" || { echo "FAIL: colocated pool not idle afterwards"; exit 1; }
for tls in tcp sm,tcp; do
    run_disagg $tls
    same_tokens "$WORK/colo.out" "$WORK/disagg_$tls.out" | sed "s/^/UCX_TLS=$tls: /"
    pools_idle "$WORK/disagg_$tls.out" || { echo "FAIL: KV blocks still in use after the run (UCX_TLS=$tls)"; exit 1; }
done
