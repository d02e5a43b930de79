#!/usr/bin/env bash
# scripted.sh — pdserve-bench against the scripted server, whose delays make every request's TTFT,
# TPOT, ITL and E2E known in advance: the measurements must match them within scheduler noise, and
# attainment, goodput and throughput must follow from them with vLLM's definitions.
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
CHECK=tests/bench/check_result.py

# Delays are multiples of 100 ms and SLOs sit halfway between them, so a punctual server gives
# exact SLO verdicts; measurements are checked against the send times the server logs (median
# error within 10 ms, 90% within 50, all within 250: a loaded machine delays a process at times).

# 1. /v1/completions, token-id prompts of 4..12 tokens, Poisson arrivals. TTFT = 100 ms per
#    prompt token, so the TTFT SLO of 850 ms passes exactly the prompts of up to 8 tokens.
start_server comp --ttft-ms 0 --ttft-per-input-ms 100 --itl-ms 100
bench --base-url "http://127.0.0.1:$PORT_comp" --model scripted --dataset random \
    --input-len 8 --output-len 8 --range-ratio 0.5 --num-prompts 30 --request-rate 10 --seed 7 \
    --ignore-eos --slo-ttft-ms 850 --slo-tpot-ms 150 --save-result "$TMP/comp.json" >"$TMP/comp.txt"
cat "$TMP/comp.txt"
server_log comp
python3 "$CHECK" "$TMP/comp.json" "$TMP/comp.log" --per-input 100 --itl 100 --slo-ttft 850 --slo-tpot 150
python3 - "$TMP/comp.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    b = json.loads(line)["body"]
    assert b["ignore_eos"] is True and b["temperature"] == 0, b
    assert all(isinstance(t, int) and 0 <= t < 1000 for t in b["prompt"]), "token ids out of range"
    assert 4 <= len(b["prompt"]) <= 12 and 4 <= b["max_tokens"] <= 12, b
print("payloads: token-id prompts, ignore_eos, greedy")
PY

# 2. /v1/chat/completions with vLLM's --goodput form; the role-only first chunk is not a token,
#    and every event arrives in two pieces 10 ms apart (timed at its last byte).
start_server chat --ttft-ms 0 --ttft-per-input-ms 100 --itl-ms 100 --split-ms 10
bench --base-url "http://127.0.0.1:$PORT_chat" --endpoint /v1/chat/completions --model scripted \
    --input-len 6 --output-len 4 --range-ratio 0.5 --num-prompts 20 --request-rate 20 --seed 3 \
    --goodput ttft:650 e2el:1050 --save-result "$TMP/chat.json" >/dev/null
server_log chat
python3 "$CHECK" "$TMP/chat.json" "$TMP/chat.log" --per-input 100 --itl 100 --slo-ttft 650 --slo-e2el 1050

# 3. --max-concurrency 2 with everything arriving at once: requests go in pairs, each pair
#    starting when the previous one finished (E2E = 200 + 2 × 100 = 400 ms).
start_server conc --ttft-ms 0 --ttft-per-input-ms 50 --itl-ms 100
bench --base-url "http://127.0.0.1:$PORT_conc" --input-len 4 --output-len 3 --num-prompts 6 \
    --max-concurrency 2 --save-result "$TMP/conc.json" >/dev/null
server_log conc
python3 "$CHECK" "$TMP/conc.json" "$TMP/conc.log" --per-input 50 --itl 100
python3 - "$TMP/conc.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
starts = sorted(x["start_s"] for x in r["requests"])
want = [0, 0, 0.4, 0.4, 0.8, 0.8]
assert all(abs(s - w) < 0.04 for s, w in zip(starts, want)), f"start times {starts}, want {want}"
assert r["max_concurrency"] == 2
print("max-concurrency 2: start times", [round(s, 3) for s in starts])
PY

# 4. A ShareGPT-format file on the chat endpoint.
start_server share --ttft-ms 200 --itl-ms 100
bench --base-url "http://127.0.0.1:$PORT_share" --endpoint /v1/chat/completions \
    --dataset sharegpt tests/bench/sharegpt_sample.json --num-prompts 5 --request-rate inf \
    --save-result "$TMP/share.json" >/dev/null
server_log share
python3 "$CHECK" "$TMP/share.json" "$TMP/share.log" --ttft 200 --itl 100
python3 - "$TMP/share.json" "$TMP/share.log" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
sent = [json.loads(l)["body"]["messages"][0]["content"] for l in open(sys.argv[2])]
assert len(set(sent)) == 5, "five distinct conversations expected"
assert all(s != "hi" for s in sent), "conversations shorter than 4 tokens must be filtered out"
print("sharegpt: 5 distinct usable conversations sent")
PY
echo "bench_scripted: all measurements match the script"
