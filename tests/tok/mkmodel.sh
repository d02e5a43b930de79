#!/usr/bin/env bash
# The tokenizer pdserve-mkmodel writes (a learned byte-level BPE) loads, and pdserve-tokenize gives
# Hugging Face's ids and text for it on every corpus file.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/pdserve-mkmodel" --out "$tmp/model" --seed 7 >"$tmp/mkmodel.log" 2>&1 || { cat "$tmp/mkmodel.log"; exit 1; }
fail=0; n=0
for f in tests/tok/corpus/*.txt; do
    for flag in "" --add-special; do
        n=$((n + 1))
        "$BUILD/pdserve-tokenize" "$tmp/model" $flag --parse-special "$f" >"$tmp/ours" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
        node tests/tok/hf.mjs encode "$tmp/model" "$f" $flag >"$tmp/hf"
        if ! cmp -s "$tmp/ours" "$tmp/hf"; then
            echo "FAIL ids $f $flag"; diff "$tmp/ours" "$tmp/hf" | head -5; fail=1
        fi
        "$BUILD/pdserve-tokenize" "$tmp/model" --decode "$tmp/ours" >"$tmp/ours_text" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
        node tests/tok/hf.mjs decode "$tmp/model" "$tmp/ours" >"$tmp/hf_text"
        if ! cmp -s "$tmp/ours_text" "$tmp/hf_text"; then
            echo "FAIL decode $f $flag"; fail=1
        fi
    done
done
[ $fail -eq 0 ] && echo "mkmodel tokenizer: $n encodes and decodes match HF"
exit $fail
