#!/usr/bin/env bash
# make bench-engine: prefill and decode speed of the qwen2.5-0.5b and tinyllama-1.1b shapes at 1 and 2
# threads, each next to the sgemm and memory-bandwidth ceilings measured in the same run.
set -euo pipefail
BUILD=${BUILD:-build}
models=$BUILD/models
mkdir -p "$models"
for preset in qwen2.5-0.5b tinyllama-1.1b; do
    if [ ! -f "$models/$preset/config.json" ]; then
        echo "writing $models/$preset (random weights, bf16)..."
        $BUILD/pdserve-mkmodel --out "$models/$preset" --preset "$preset" --dtype bf16 --seed 1 >/dev/null
    fi
done
for preset in qwen2.5-0.5b tinyllama-1.1b; do
    for threads in 1 2; do
        $BUILD/pdserve-bench-engine --model "$models/$preset" --threads $threads --prompt-len 256 --decode-steps 32
    done
done
