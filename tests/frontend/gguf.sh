#!/usr/bin/env bash
# gguf.sh — the whole server on `--model FILE.gguf`: the frontend takes the tokenizer, the chat template
# and the context length from the GGUF metadata, the workers the weights, and completions, chat
# completions (greedy and seeded sampling) and a stream give the same texts as the same server on the
# Hugging Face folder the file was converted from (a Gemma2 model with a sliding window; tests/engine/
# st2gguf.py writes the file).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model --arch gemma2 --sliding-window 13 --layers 4
/usr/bin/python3 tests/engine/st2gguf.py --model "$MODEL" --out "$WORK/model.gguf"
ask() { # ask OUT: five requests, their texts one a line
    local out=$1; : >"$out"
    for body in '{"prompt":"one two three","max_tokens":30,"temperature":0,"ignore_eos":true}' \
                '{"prompt":"once upon","max_tokens":30,"temperature":0.8,"top_p":0.9,"seed":11,"ignore_eos":true}' \
                '{"prompt":[5,6,7,8,9,10],"max_tokens":20,"temperature":1.0,"top_k":20,"seed":3,"n":2,"ignore_eos":true}' \
                '{"messages":[{"role":"user","content":"hello there"}],"max_tokens":25,"temperature":0.7,"seed":5,"ignore_eos":true}'; do
        local path=/v1/completions
        [[ "$body" == *messages* ]] && path=/v1/chat/completions
        curl -s "$BASE$path" -d "$body" | python3 -c 'import json,sys; r=json.load(sys.stdin); [print(json.dumps(c.get("text", c.get("message",{}).get("content")))) for c in r["choices"]]' >>"$out"
    done
    curl -sN "$BASE/v1/completions" -d '{"prompt":"stream me","max_tokens":30,"temperature":0.9,"seed":8,"stream":true,"ignore_eos":true}' \
        | python3 -c 'import json,sys; print(json.dumps("".join(json.loads(l[6:])["choices"][0]["text"] for l in sys.stdin if l.startswith("data: {"))))' >>"$out"
    curl -s "$BASE/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["max_model_len"])' >>"$out"
}
serve() { # serve OUT: frontend + prefill + decode on $MODEL, the answers into OUT
    start_frontend --served-model-name m
    start_prefill
    start_decode
    wait_health 200
    ask "$1"
    wait_idle
    stop pre; stop dec
    stop_frontend
}
serve "$WORK/folder.txt"
MODEL="$WORK/model.gguf"
serve "$WORK/gguf.txt"
n=$(wc -l <"$WORK/folder.txt")
if [ "$n" = 7 ] && cmp -s "$WORK/folder.txt" "$WORK/gguf.txt"; then
    echo "ok   the server on the .gguf file answers as on the folder ($n answers: texts, chat, stream, max_model_len)"
else
    echo "FAIL answers differ ($n lines):"; diff "$WORK/folder.txt" "$WORK/gguf.txt"; exit 1
fi
