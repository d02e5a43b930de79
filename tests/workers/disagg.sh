#!/usr/bin/env bash
# Transfer changes nothing: 50 concurrent requests of mixed lengths, greedy and sampled, give the same
# token ids disaggregated (1 prefill + 1 decode, KV moved by UCX RMA) as on one colocated worker —
# with the KV moving over tcp and over shared memory, with the KV cache in f16 (the default) and in
# bf16 — and every KV block is free afterwards. A pair whose KV dtypes or weights differ is refused
# at registration, saying why.
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
make_requests "$WORK/reqs.json" 50 7

run_colocated() { # run_colocated KV_DTYPE
    local port; port=$(free_port)
    start "colo_$1" $BUILD/pdserve-decode --colocated --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400 \
        --token-budget 256 --kv-dtype "$1"
    $BUILD/tests/worker_driver --ucx-port $port --colocated 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/colo_$1.out"
    stop "colo_$1"
}

run_disagg() { # run_disagg UCX_TLS KV_DTYPE
    local port; port=$(free_port)
    export UCX_TLS=$1
    start "dec_${1//,/_}_$2" $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400 --kv-dtype "$2"
    start "pre_${1//,/_}_$2" $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400 \
        --token-budget 256 --kv-dtype "$2"
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/disagg_$1_$2.out"
    unset UCX_TLS
}

for kv in f16 bf16; do
    run_colocated $kv
    pools_idle "$WORK/colo_$kv.out" || { echo "FAIL: colocated pool not idle afterwards (KV $kv)"; exit 1; }
    tls_list="tcp sm,tcp"; [ $kv = bf16 ] && tls_list=tcp
    for tls in $tls_list; do
        run_disagg $tls $kv
        same_tokens "$WORK/colo_$kv.out" "$WORK/disagg_${tls}_$kv.out" | sed "s/^/KV $kv, UCX_TLS=$tls: /"
        pools_idle "$WORK/disagg_${tls}_$kv.out" || { echo "FAIL: KV blocks still in use after the run (UCX_TLS=$tls, KV $kv)"; exit 1; }
    done
done

# Mismatched pairs: the prefill worker refuses the decode worker and fails the request with the reason.
make_requests "$WORK/one.json" 1 3 greedy
refused() { # refused NAME DECODE_FLAGS PREFILL_FLAGS EXPECTED_TEXT
    local port; port=$(free_port)
    start "dec_$1" $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 64 $2
    start "pre_$1" $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 64 $3
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/one.json" --timeout 30 \
        >"$WORK/refused_$1.out" 2>&1 || true
    if grep -q "refused: .*$4" "$WORK/pre_$1.log" && grep -q "$4" "$WORK/refused_$1.out"; then
        echo "ok   $1: refused ($(grep -o "refused: .*" "$WORK/pre_$1.log" | head -1 | cut -c1-110))"
    else
        echo "FAIL $1: the mismatched pair was not refused with \"$4\""; tail -n 5 "$WORK/pre_$1.log" "$WORK/refused_$1.out"
        exit 1
    fi
    stop "pre_$1"; stop "dec_$1"
}
refused kv_mismatch "--kv-dtype bf16" "--kv-dtype f16" "its KV cache is bf16 and this worker's is f16"
refused weights_mismatch "--weights q8" "" "its weights are q8 and this worker's are stored"
