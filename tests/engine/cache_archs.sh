#!/usr/bin/env bash
# engine_cache_archs: for Qwen3, Gemma2, Gemma3 and Phi3 models (sliding windows shorter than most
# prompts), greedy tokens decoded with the paged cache equal a full recompute at every step
# (--no-cache), for prompts crossing block and window boundaries at block sizes 16 and 7; and 12
# sequences decoded in one batch equal each decoded alone.
set -euo pipefail
BUILD=${BUILD:-build}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
prompt() { # prompt N SEED → JSON array of N token ids
    /usr/bin/python3 -c "import json,random,sys; r=random.Random(int(sys.argv[2])); print(json.dumps([r.randrange(3, 500) for _ in range(int(sys.argv[1]))]))" "$1" "$2"
}
fails=0
check() { # check NAME mkmodel-flags...
    local name=$1; shift
    $BUILD/pdserve-mkmodel --out "$work/$name" --preset tiny --seed 11 "$@" >/dev/null 2>&1
    gen() { $BUILD/pdserve-generate --model "$work/$name" --ignore-eos --print-ids "$@" 2>/dev/null; }
    local bad=0
    for bs in 16 7; do
        for n in 1 2 12 13 14 16 17 33 100 170; do
            p=$(prompt "$n" "$n")
            a=$(gen --prompt-ids "$p" --max-tokens 20 --block-size $bs)
            b=$(gen --prompt-ids "$p" --max-tokens 20 --block-size $bs --no-cache)
            [ "$a" = "$b" ] || { echo "FAIL $name block size $bs, prompt $n: cached $a != recomputed $b"; bad=1; }
        done
    done
    batch="[$(for i in $(seq 1 12); do prompt $((i * 13 % 60 + 1)) $((100 + i)); done | paste -sd,)]"
    a=$(gen --prompt-ids "$batch" --max-tokens 24 --token-budget 64)
    b=$(gen --prompt-ids "$batch" --max-tokens 24 --sequential)
    [ "$a" = "$b" ] || { echo "FAIL $name: batched != one at a time"; bad=1; }
    [ $bad -eq 0 ] && echo "ok   $name ($*): cache == recompute at 20 prompt lengths, batch == alone"
    fails=$((fails + bad))
}
check qwen3  --arch qwen3
check gemma2 --arch gemma2 --sliding-window 13 --layers 4
check gemma3 --arch gemma3 --sliding-window 11 --layers 7
check phi3   --arch phi3 --sliding-window 29 --longrope 64 --max-pos 512
[ "$fails" -eq 0 ]
