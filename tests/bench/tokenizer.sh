#!/usr/bin/env bash
# tokenizer.sh — --tokenizer DIR makes text prompts exact: random chat prompts must encode to
# exactly the lengths asked for, counted by Hugging Face's own tokenizer (tests/node), for a
# byte-level BPE vocabulary of each family we ship a tokenizer.json of.
cd "$(dirname "$0")/../.."
source tests/helpers/bench.sh
NODE_MODELS=tests/node/node_modules/@lenml
[ -f "$NODE_MODELS/tokenizer-llama3/models/tokenizer.json" ] ||
    { echo "tests/node is not installed: run make deps"; exit 1; }

start_server tok --ttft-ms 10 --itl-ms 5
for family in llama3 qwen3; do
    dir="$NODE_MODELS/tokenizer-$family/models"
    bench --base-url "http://127.0.0.1:$PORT_tok" --endpoint /v1/chat/completions --tokenizer "$dir" \
        --input-len 60 --range-ratio 0.5 --output-len 2 --num-prompts 8 --seed 5 --no-progress \
        --save-result "$TMP/$family.json" >/dev/null
done
server_log tok
python3 - "$TMP/tok.log" "$TMP" <<'PY'
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
assert len(log) == 16, len(log)
for i, e in enumerate(log):
    family = "llama3" if i < 8 else "qwen3"
    with open(f"{sys.argv[2]}/{family}-{i % 8}.txt", "w") as f:
        f.write(e["body"]["messages"][0]["content"])
PY
# The lengths the bench asked for come from the same seed: regenerate them without a tokenizer
# (token-id prompts have exactly the drawn lengths). Requests reach the server in any order, so
# the lengths are compared sorted.
bench --base-url "http://127.0.0.1:$PORT_tok" --input-len 60 --range-ratio 0.5 --output-len 2 \
    --num-prompts 8 --seed 5 --no-progress --save-result "$TMP/ids.json" >/dev/null
server_log tok
python3 -c '
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])][16:]
print(" ".join(sorted(str(len(e["body"]["prompt"])) for e in log)))' "$TMP/tok.log" >"$TMP/want.txt"
echo "asked: $(cat "$TMP/want.txt")"
for family in llama3 qwen3; do
    got=""
    for i in $(seq 0 7); do
        n=$(node tests/tok/hf.mjs encode "$NODE_MODELS/tokenizer-$family/models" "$TMP/$family-$i.txt" | wc -w)
        got="$got $n"
    done
    got=$(echo $got | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
    echo "$family: $got"
    [ "$got" = "$(cat "$TMP/want.txt")" ] || { echo "$family: prompt lengths differ"; exit 1; }
done

# ShareGPT with a tokenizer: max_tokens is the exact token count of each conversation's answer.
start_server share --ttft-ms 10 --itl-ms 1
bench --base-url "http://127.0.0.1:$PORT_share" --endpoint /v1/chat/completions --no-progress \
    --tokenizer "$NODE_MODELS/tokenizer-llama3/models" --dataset sharegpt tests/bench/sharegpt_sample.json \
    --num-prompts 5 --save-result "$TMP/share.json" >/dev/null
server_log share
python3 - "$TMP/share.log" tests/bench/sharegpt_sample.json "$TMP" <<'PY'
import json, sys
sent = {json.loads(l)["body"]["messages"][0]["content"]: json.loads(l)["body"]["max_tokens"]
        for l in open(sys.argv[1])}
for i, c in enumerate(json.load(open(sys.argv[2]))):
    t = c["conversations"]
    if len(t) >= 2 and t[0]["value"] in sent:
        open(f"{sys.argv[3]}/reply{i}.txt", "w").write(t[1]["value"])
        open(f"{sys.argv[3]}/reply{i}.want", "w").write(str(sent[t[0]["value"]]))
PY
n=0
for f in "$TMP"/reply*.txt; do
    got=$(node tests/tok/hf.mjs encode "$NODE_MODELS/tokenizer-llama3/models" "$f" | wc -w)
    [ "$got" = "$(cat "${f%.txt}.want")" ] || { echo "$f: max_tokens $(cat "${f%.txt}.want"), answer has $got tokens"; exit 1; }
    n=$((n + 1))
done
[ "$n" -eq 5 ] || { echo "expected 5 conversations, matched $n"; exit 1; }
echo "sharegpt: max_tokens = the answer's exact token count for all $n conversations"
echo "bench_tokenizer: text prompts have exactly the asked lengths"
