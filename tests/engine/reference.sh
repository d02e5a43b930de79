#!/usr/bin/env bash
# engine_reference: pdserve's engine agrees with an independent float64 numpy forward pass
# (tests/engine/reference.py) on the logits of every prompt position, for random models covering
# GQA / MHA / MQA, tied and untied embeddings, Qwen2 q/k/v biases, llama3 rope_scaling, head_dim !=
# hidden/heads, F32 / F16 / BF16, a sharded checkpoint, the `small` preset and the real Qwen2.5-0.5B
# shape; prompts of 1, 17, 40 and 100 tokens cross several KV blocks. Then the other architectures:
# Qwen3 (q/k norms), Gemma2 (GeGLU, sandwich norms, soft-capping made strong enough to matter, a
# sliding window shorter than the prompt), Gemma3 (5:1 local/global layers, local RoPE base, q/k
# norms), Phi3 (fused projections, sliding window, longrope short factor), and one or two layers of the real
# qwen3-0.6b, gemma-3-1b and phi-3-mini shapes.
# Each model runs with the KV cache in f32 and f16 (the default), several also in bf16, with the
# reference rounding K and V the way the cache does; the weights stay in their stored dtype.
# Error = max over positions of max|engine - ref| / max|ref| (per row); must be <= 1e-4 with an f32
# cache. A rounded cache cannot match that: where the engine's float32 K or V and the reference's
# float64 one fall on two sides of a rounding boundary they round one f16/bf16 step apart (2^-11,
# 2^-8 relative), and that step shows in the logits. Measured worst cases over these models: 5.8e-4
# (f16), 1.2e-3 (bf16), so the tolerances are 2e-3 and 1e-2; a wrong position or head in the cache
# is off by far more (and the controls below check the f32 tolerance catches small errors).
# The reference first checks itself (tests/engine/reference.py selftest).
#   reference.sh [base|archs]   only the Llama/Mistral/Qwen2 models, or only the other architectures
#                               (two tests, each bounded in time also under ASan); default both
set -euo pipefail
GROUP=${1:-all}
cd "$(dirname "$0")/../.."
BUILD="${BUILD:-build}"
PY=/usr/bin/python3   # Debian's, which has python3-numpy
REF="$PY tests/engine/reference.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ids() { # ids N SEED VOCAB → a JSON array of N token ids
    $PY -c "import random,sys; r=random.Random(int(sys.argv[2])); print([r.randrange(int(sys.argv[3])) for _ in range(int(sys.argv[1]))])" "$@"
}
vocab() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$1/config.json"; }

fails=0
# check NAME "LENGTHS" mkmodel-flags...: make the model, self-test the reference, compare every length
# at every KV dtype in $KVS (f32 and f16 unless set).
# EDIT, when set, is python run on the config.json (as `c`) before the comparison.
check() {
    local name=$1 lengths=$2 kv; shift 2
    local dir="$tmp/$name"
    "$BUILD/pdserve-mkmodel" --out "$dir" "$@" 2>"$tmp/mk.log" || { cat "$tmp/mk.log"; exit 1; }
    if [ -n "${EDIT:-}" ]; then
        $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $EDIT; json.dump(c, open(p,'w'))" "$dir/config.json"
    fi
    local v; v=$(vocab "$dir")
    echo "== $name ($*)"
    # COMPARE_ONLY: a real-shape model whose architecture a small model already self-tested (each
    # reference run reads the whole checkpoint, which dominates the time on a busy machine)
    [ -n "${COMPARE_ONLY:-}" ] || $REF selftest --model "$dir" --ids "$(ids 24 7 "$v")" || fails=$((fails + 1))
    for kv in ${KVS:-f32 f16}; do
    for n in $lengths; do
        local p; p=$(ids "$n" "$n" "$v")
        if ! "$BUILD/pdserve-generate" --model "$dir" --prompt-ids "$p" --dump-logits "$tmp/logits" \
            --max-tokens 0 --kv-dtype "$kv" 2>"$tmp/gen.log"; then
            echo "FAIL $name: pdserve-generate failed on $n tokens:"; cat "$tmp/gen.log"
            fails=$((fails + 1)); continue
        fi
        echo -n "kv $kv: "
        local tol=1e-4; [ "$kv" = f16 ] && tol=2e-3; [ "$kv" = bf16 ] && tol=1e-2
        $REF compare --model "$dir" --ids "$p" --logits "$tmp/logits" --kv-dtype "$kv" --tol $tol || fails=$((fails + 1))
    done
    done
    [ -n "${COMPARE_ONLY:-}" ] || $REF margins --model "$dir" --ids "$(ids 100 1000 "$v")"
    rm -rf "$dir"
}

if [ "$GROUP" != archs ]; then
KVS="f32 f16 bf16" check gqa_f32 "1 17 40 100" --preset tiny --seed 3
KVS="f32 f16 bf16" check mha_tied_f16 "1 17 40 100" --preset tiny --kv-heads 4 --tie --dtype f16 --seed 4
KVS="f32 f16 bf16" check qwen2_tied_bf16  "1 17 40 100" --arch qwen2 --hidden 96 --heads 6 --kv-heads 2 --tie --dtype bf16 --seed 5
check qwen2_untied_hd  "1 17 40 100" --arch qwen2 --hidden 128 --heads 4 --kv-heads 4 --head-dim 48 \
                                     --intermediate 320 --no-tie --vocab 700 --seed 6
check llama3_rope_bf16 "1 17 40 100" --preset tiny --layers 3 --rope-scaling-llama3 8,1,4,64 \
                                     --rope-theta 500000 --dtype bf16 --seed 7
check mistral_mqa_shards "1 17 40 100" --arch mistral --hidden 64 --heads 4 --kv-heads 1 --head-dim 32 \
                                     --shards 3 --dtype f16 --seed 8
check small            "17 100"      --preset small --seed 9
# the fallback kernels on the same kind of model (tests/unit/test_engine_kernels.c compares them closely)
PDSERVE_ISA=avx2 check gqa_bf16_avx2 "1 17 40" --preset tiny --dtype bf16 --seed 13
PDSERVE_ISA=portable check gqa_f16_portable "1 17 40" --preset tiny --dtype f16 --seed 14
check qwen2.5-0.5b     "1 17"        --preset qwen2.5-0.5b --seed 10
fi

if [ "$GROUP" != base ]; then
check qwen3_gqa_bf16   "1 17 40 100" --arch qwen3 --hidden 128 --heads 4 --kv-heads 2 --head-dim 32 --tie \
                                     --dtype bf16 --seed 13
EDIT="c['attn_logit_softcapping']=2.0; c['final_logit_softcapping']=12.0" \
check gemma2_window    "1 17 40 100" --arch gemma2 --hidden 96 --heads 4 --kv-heads 2 --head-dim 32 --layers 4 \
                                     --sliding-window 13 --dtype bf16 --seed 14
check gemma3_pattern   "1 17 40 100" --arch gemma3 --hidden 64 --heads 4 --kv-heads 1 --head-dim 32 --layers 7 \
                                     --sliding-window 11 --rope-theta 1000000 --seed 15
check phi3_fused       "1 17 40 100" --arch phi3 --hidden 96 --heads 4 --kv-heads 4 --layers 3 --dtype f16 --seed 16
check phi3_longrope_sw "1 17 40 100" --arch phi3 --hidden 64 --heads 2 --kv-heads 2 --longrope 64 --max-pos 512 \
                                     --sliding-window 29 --seed 17
COMPARE_ONLY=1 \
check qwen3-0.6b_1l    "17"          --preset qwen3-0.6b --layers 1 --seed 18
COMPARE_ONLY=1 \
check gemma-3-1b_2l    "17"          --preset gemma-3-1b --layers 2 --sliding-window 8 --seed 19
COMPARE_ONLY=1 \
check phi-3-mini_1l    "17"          --preset phi-3-mini --layers 1 --sliding-window 8 --seed 20
fi

# Controls: the comparison must notice a small error and a missing feature, or it proves nothing.
control() { # control WHAT: the last compare must have failed
    if [ "$1" = passed ]; then echo "FAIL control: $2 was not detected"; fails=$((fails + 1));
    else echo "ok   control: $2 is detected"; fi
}
if [ "$GROUP" != archs ]; then
"$BUILD/pdserve-mkmodel" --out "$tmp/ctl" --preset tiny --rope-scaling-llama3 8,1,4,64 --seed 12 2>/dev/null
p=$(ids 100 3 512)
"$BUILD/pdserve-generate" --model "$tmp/ctl" --prompt-ids "$p" --dump-logits "$tmp/logits" --max-tokens 0 --kv-dtype f32 2>/dev/null
$PY - "$tmp/logits" <<'PYEOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], "<f4").reshape(100, -1)
a[57, 3] += 3e-4 * np.abs(a[57]).max()   # one logit off by 3x the tolerance
a.tofile(sys.argv[1] + ".bad")
PYEOF
r=passed; $REF compare --model "$tmp/ctl" --ids "$p" --logits "$tmp/logits.bad" || r=failed
control $r "one logit off by 3e-4 of its row's scale"
cp -r "$tmp/ctl" "$tmp/ctl_norope"
$PY -c "import json,sys; c=json.load(open(sys.argv[1])); c['rope_scaling']=None; json.dump(c, open(sys.argv[1],'w'))" \
    "$tmp/ctl_norope/config.json"
r=passed; $REF compare --model "$tmp/ctl_norope" --ids "$p" --logits "$tmp/logits" || r=failed
control $r "ignoring rope_scaling"
fi

# The new features must each be visible in the logits: the reference run without one must disagree.
if [ "$GROUP" != base ]; then
"$BUILD/pdserve-mkmodel" --out "$tmp/g2" --arch gemma2 --hidden 64 --heads 4 --kv-heads 2 --head-dim 16 \
    --layers 4 --sliding-window 9 --seed 21 2>/dev/null
$PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['attn_logit_softcapping']=2.0; c['final_logit_softcapping']=12.0; json.dump(c, open(p,'w'))" "$tmp/g2/config.json"
p=$(ids 60 5 512)
"$BUILD/pdserve-generate" --model "$tmp/g2" --prompt-ids "$p" --dump-logits "$tmp/logits" --max-tokens 0 \
    --kv-dtype f32 2>/dev/null
for edit in "c['sliding_window']=None" "c['attn_logit_softcapping']=None" "c['final_logit_softcapping']=None" \
            "c['query_pre_attn_scalar']=64" "c['architectures']=['Gemma3ForCausalLM']; c['sliding_window_pattern']=3"; do
    rm -rf "$tmp/g2x"; cp -r "$tmp/g2" "$tmp/g2x"
    $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $edit; json.dump(c, open(p,'w'))" "$tmp/g2x/config.json"
    r=passed; $REF compare --model "$tmp/g2x" --ids "$p" --logits "$tmp/logits" >/dev/null || r=failed
    control $r "gemma2 with $edit in the reference"
done
fi

if [ "$fails" -ne 0 ]; then echo "engine_reference: $fails failures"; exit 1; fi
echo "engine_reference: all models agree with the float64 reference"
