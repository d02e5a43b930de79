#!/usr/bin/env bash
# colocated.sh — the same frontend serves a colocated worker (pdserve-decode --colocated) and a
# disaggregated prefill+decode pair, and the answers are identical for the same requests (greedy and
# seeded sampling, streamed and whole): the transfer of the KV cache changes nothing.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend --worker-timeout-ms 1500 --served-model-name tiny-test
curl -s "$BASE/v1/models" | grep -q '"id":"tiny-test"' && echo "ok   --served-model-name shows in /v1/models" || { echo "FAIL served name"; exit 1; }
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
}
start dec_colo $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 512 --colocated --load-interval-ms 100
wait_health 200
[ "$(metric 'pdserve:workers{role="colocated"}')" = 1 ] && echo "ok   colocated worker registered; /health 200" || { echo "FAIL no colocated worker"; exit 1; }
ask "$WORK/colo.txt"
stop dec_colo
wait_health 503
start_prefill
start_decode
wait_health 200
ask "$WORK/disagg.txt"
n=$(wc -l <"$WORK/colo.txt")
if [ "$n" = 6 ] && cmp -s "$WORK/colo.txt" "$WORK/disagg.txt"; then
    echo "ok   colocated and disaggregated answers identical ($n answers)"
else
    echo "FAIL answers differ ($n lines):"; diff "$WORK/colo.txt" "$WORK/disagg.txt"; exit 1
fi
wait_idle
stop_frontend
