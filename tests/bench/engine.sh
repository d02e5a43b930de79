#!/usr/bin/env bash
# make bench-engine: pdserve next to llama.cpp (node-llama-cpp's prebuilt CPU build, pinned in
# tests/bench/llamacpp) on the same weights, in the same invocation, one engine at a time: prefill of
# 128, 512 and 2,048 tokens and batch-1 decode at 1 and 2 threads, for F32, F16, BF16 and q8 (against
# llama.cpp's Q8_0), with pdserve's fractions of this machine's sgemm and bandwidth ceilings, batch-32
# decode against the sgemm ceiling, and each side's RSS. The model is one random-weight Llama shape
# (hidden 1024, 8 layers, 16/4 heads, ffn 2816, vocab 32k) written by pdserve-mkmodel and converted by
# pdserve-gguf; both engines decode the same greedy tokens from it (the "same tokens" column). The
# RSS target is checked on a real colocated worker (pdserve-decode --colocated, 512 KV blocks, the
# default token budget) after it served 16 requests, driven by tests/helpers/worker_driver.
# Environment: LENS (128,512,2048), THREADS ("1 2"), DTYPES ("f32 f16 bf16 q8"), STEPS (64).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
models=$BUILD/models
LENS=${LENS:-128,512,2048} THREADS=${THREADS:-"1 2"} DTYPES=${DTYPES:-"f32 f16 bf16 q8"} STEPS=${STEPS:-64}
tests/bench/llamacpp/setup.sh
mkdir -p "$models"
shape="--hidden 1024 --layers 8 --heads 16 --kv-heads 4 --head-dim 64 --intermediate 2816 --vocab 32000
       --max-pos 4096 --no-tie --seed 1"
for dt in f32 f16 bf16; do
    if [ ! -f "$models/bench-$dt/config.json" ]; then
        echo "writing $models/bench-$dt (random weights, $dt)..."
        # shellcheck disable=SC2086
        $BUILD/pdserve-mkmodel --out "$models/bench-$dt" --preset small $shape --dtype $dt >/dev/null
    fi
    [ -f "$models/bench-$dt.gguf" ] || $BUILD/pdserve-gguf --model "$models/bench-$dt" --out "$models/bench-$dt.gguf"
done
[ -f "$models/bench-q8.gguf" ] || $BUILD/pdserve-gguf --model "$models/bench-f16" --out "$models/bench-q8.gguf" --type q8_0

out=$BUILD/bench-engine.jsonl
: >"$out"
check='[5,100,200,300,400,500,600,700]'
/usr/bin/python3 -c "import json; json.dump([{'prompt': [3 + (i * 7919 + j * 104729) % 31997 for j in range(512)],
    'max_tokens': 32, 'seed': i, 'ignore_eos': True} for i in range(16)], open('$BUILD/bench-engine-reqs.json', 'w'))"

# worker_rss DTYPE THREADS FLAGS...: a colocated worker (default --token-budget 512, 512 KV blocks)
# serves 16 requests of 512 prompt tokens + 32 generated; its VmRSS and VmHWM afterwards.
worker_rss() {
    local dt=$1 th=$2 src=$3; shift 3
    local port; port=$(/usr/bin/python3 tests/helpers/free_port.py)
    $BUILD/pdserve-decode --colocated --model "$models/bench-$src" --frontend 127.0.0.1:$port --kv-blocks 512 \
        --threads "$th" "$@" >"$BUILD/bench-engine-worker.log" 2>&1 &
    local pid=$!
    $BUILD/tests/worker_driver --ucx-port "$port" --colocated 1 --requests "$BUILD/bench-engine-reqs.json" \
        --timeout 300 >/dev/null 2>&1 || echo "worker_driver failed (see $BUILD/bench-engine-worker.log)" >&2
    local rss hwm
    rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status) hwm=$(awk '/^VmHWM/{print $2}' /proc/$pid/status)
    kill -TERM $pid; wait $pid || true
    echo "{\"engine\":\"pdserve-worker\",\"dtype\":\"$dt\",\"threads\":$th,\"rss_mib\":$((rss / 1024)),\"hwm_mib\":$((hwm / 1024))}"
}
for dt in $DTYPES; do
    src=$dt pd_flags=()
    [ "$dt" = q8 ] && src=f16 pd_flags=(--weights q8)
    for th in $THREADS; do
        echo "== $dt, $th thread(s)" >&2
        $BUILD/pdserve-bench-engine --json --model "$models/bench-$src" --threads "$th" --prompt-lens "$LENS" \
            --decode-steps "$STEPS" --batch 32 --check "$check" "${pd_flags[@]}" >>"$out"
        node tests/bench/llamacpp/bench.mjs --model "$models/bench-$dt.gguf" --threads "$th" --prompt-lens "$LENS" \
            --decode-steps "$STEPS" --check "$check" | sed "s/^{/{\"dtype\":\"$dt\",/" >>"$out"
        worker_rss "$dt" "$th" "$src" "${pd_flags[@]}" >>"$out"
    done
done
/usr/bin/python3 tests/bench/engine_table.py "$out"
