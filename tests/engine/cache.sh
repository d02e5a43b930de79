#!/usr/bin/env bash
# The KV cache changes nothing: greedy tokens decoded with the paged cache equal a full recompute at
# every step (--no-cache), for prompts of 1 to 300 tokens crossing block boundaries, at two block
# sizes; and decoding many sequences in one batch gives the same tokens as decoding each alone, greedy
# and sampled.
set -euo pipefail
BUILD=${BUILD:-build}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
$BUILD/pdserve-mkmodel --out "$work/m" --preset tiny --seed 11 >/dev/null
vocab=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$work/m/config.json")
prompt() { # prompt N SEED → JSON array of N token ids
    /usr/bin/python3 -c "import json,random,sys; r=random.Random(int(sys.argv[2])); print(json.dumps([r.randrange(3, $vocab) for _ in range(int(sys.argv[1]))]))" "$1" "$2"
}
gen() { $BUILD/pdserve-generate --model "$work/m" --ignore-eos --print-ids "$@" 2>/dev/null; }

fails=0
for bs in 16 7; do
    for n in 1 2 15 16 17 31 33 64 100 255 300; do
        p=$(prompt "$n" "$n")
        a=$(gen --prompt-ids "$p" --max-tokens 24 --block-size $bs)
        b=$(gen --prompt-ids "$p" --max-tokens 24 --block-size $bs --no-cache)
        if [ "$a" != "$b" ]; then
            echo "FAIL block size $bs, prompt $n tokens: cached $a != recomputed $b"; fails=$((fails + 1))
        else
            echo "ok   block size $bs, prompt $n tokens: $(echo "$a" | cut -c1-60)"
        fi
    done
done

batch="[$(for i in $(seq 1 12); do prompt $((i * 9 % 50 + 1)) $((100 + i)); done | paste -sd,)]"
for sampling in "--temperature 0" "--temperature 0.9 --top-p 0.95 --seed 5" "--temperature 1 --top-k 20 --min-p 0.05 --seed 6 --presence-penalty 0.5"; do
    a=$(gen --prompt-ids "$batch" --max-tokens 30 --token-budget 64 $sampling)
    b=$(gen --prompt-ids "$batch" --max-tokens 30 --sequential $sampling)
    if [ "$a" != "$b" ]; then
        echo "FAIL batched != one at a time ($sampling)"; echo " batched: $a"; echo " alone:   $b"; fails=$((fails + 1))
    else
        echo "ok   12 sequences batched == one at a time ($sampling)"
    fi
done
[ "$fails" -eq 0 ]
