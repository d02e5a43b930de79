#!/usr/bin/env bash
# Transfer changes nothing for the other architectures either: for Qwen3, Gemma2 (sliding window
# shorter than most prompts, soft-capping), Gemma3 (5 local : 1 global layers), Phi3 (fused
# projections, sliding window) and a GGUF file (Gemma2, loaded by both workers from the .gguf),
# 16 concurrent requests give the same token ids disaggregated (1 prefill + 1 decode, KV over UCX tcp)
# as on one colocated worker, and every KV block is free afterwards. Windowed layers ship every
# position's K/V like global ones (the window is an attention mask), so this checks the mask is applied
# the same way on both sides of the transfer.
source "$(dirname "$0")/../helpers/workers.sh"
export UCX_TLS=tcp
make_requests "$WORK/reqs.json" 16 11

run() { # run NAME MODEL: colocated then disaggregated, compared
    local name=$1 model=$2 port
    port=$(free_port)
    start "colo_$name" $BUILD/pdserve-decode --colocated --model "$model" --frontend 127.0.0.1:$port --kv-blocks 300 --token-budget 128
    $BUILD/tests/worker_driver --ucx-port $port --colocated 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/colo_$name.out"
    stop "colo_$name"
    port=$(free_port)
    start "dec_$name" $BUILD/pdserve-decode --model "$model" --frontend 127.0.0.1:$port --kv-blocks 300
    start "pre_$name" $BUILD/pdserve-prefill --model "$model" --frontend 127.0.0.1:$port --kv-blocks 300 --token-budget 128
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 120 --idle-pools >"$WORK/disagg_$name.out"
    stop "pre_$name"
    stop "dec_$name"
    same_tokens "$WORK/colo_$name.out" "$WORK/disagg_$name.out" | sed "s/^/$name: /"
    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
    pools_idle "$WORK/colo_$name.out" && pools_idle "$WORK/disagg_$name.out" ||
        { echo "FAIL: $name: KV blocks still in use after the run"; exit 1; }
}

make_model "$WORK/qwen3" --arch qwen3
make_model "$WORK/gemma2" --arch gemma2 --sliding-window 13 --layers 4
make_model "$WORK/gemma3" --arch gemma3 --sliding-window 11 --layers 7
make_model "$WORK/phi3" --arch phi3 --sliding-window 29
$PY tests/engine/st2gguf.py --model "$WORK/gemma2" --out "$WORK/gemma2.gguf"
for m in qwen3 gemma2 gemma3 phi3; do run $m "$WORK/$m"; done
run gemma2_gguf "$WORK/gemma2.gguf"
echo "workers_disagg_archs: disaggregated == colocated for every architecture"
