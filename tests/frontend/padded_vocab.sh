#!/usr/bin/env bash
# padded_vocab.sh — a model whose vocabulary is padded past its tokenizer (pdserve-mkmodel
# --vocab-pad: 512 tokenizer tokens, vocab_size 576, the padded rows with ordinary weights so they get
# generated) served end to end (issue 20). Ids the tokenizer has no token for are valid everywhere
# and decode to "": generated (text and logprobs), in /detokenize and in prompts; ids at or above
# vocab_size are refused with the model's range.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model --vocab-pad 64
python3 - "$MODEL" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1] + "/config.json")); tok = json.load(open(sys.argv[1] + "/tokenizer.json"))
n = max(list(tok["model"]["vocab"].values()) + [t["id"] for t in tok["added_tokens"]]) + 1
assert (cfg["vocab_size"], n) == (576, 512), (cfg["vocab_size"], n)
print("ok   --vocab-pad 64: vocab_size 576, tokenizer 512 tokens")
PY
start_frontend
start_decode dec --colocated
wait_health 200
PROMPT='[5,6,7,8]'
REQ='"max_tokens":64,"temperature":1.0,"seed":7,"ignore_eos":true'
# the ids, from the same engine offline (same seed, same sampler)
IDS=$($BUILD/pdserve-generate --model "$MODEL" --prompt-ids "$PROMPT" --max-tokens 64 --temperature 1.0 --seed 7 --ignore-eos --print-ids 2>/dev/null)
curl -s "$BASE/v1/completions" -d "{\"prompt\":$PROMPT,$REQ,\"logprobs\":0}" >"$WORK/cmpl.json"
curl -sN "$BASE/v1/completions" -d "{\"prompt\":$PROMPT,$REQ,\"logprobs\":0,\"stream\":true}" >"$WORK/stream.txt"
curl -s "$BASE/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$REQ,\"logprobs\":true}" >"$WORK/chat.json"
curl -s -w '\n%{http_code}\n' "$BASE/detokenize" -d "{\"tokens\":$IDS}" >"$WORK/detok.txt"
curl -s -w '\n%{http_code}\n' "$BASE/detokenize" -d '{"tokens":[40,575,512,41]}' >"$WORK/detok_pad.txt"
curl -s -w '\n%{http_code}\n' "$BASE/detokenize" -d '{"tokens":[40,576]}' >"$WORK/detok_bad.txt"
curl -s -w '\n%{http_code}\n' "$BASE/v1/completions" -d '{"prompt":[40,560,41],"max_tokens":3,"echo":true}' >"$WORK/prompt_pad.txt"
curl -s -w '\n%{http_code}\n' "$BASE/v1/completions" -d '{"prompt":[5,576,7],"max_tokens":3}' >"$WORK/prompt_bad.txt"
python3 - "$WORK" "$IDS" <<'PY'
import json, sys
w, ids = sys.argv[1], json.loads(sys.argv[2])
fails = 0
def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += not cond
def answer(name):
    body, code = open(f"{w}/{name}").read().rsplit("\n", 2)[:2]
    return int(code), json.loads(body)
padded = [i for i, t in enumerate(ids) if t >= 512]
check(len(ids) == 64 and padded, f"the model generated padded ids ({len(padded)} of 64 at {padded[:8]}...)")
code, d = answer("detok.txt")
check(code == 200, f"/detokenize of the generated ids (padded ones included): {code}")
text = d.get("prompt")
c = json.load(open(f"{w}/cmpl.json"))["choices"][0]
check(c["text"] == text, "the completion's text is the detokenized ids (padded ids add nothing)")
lp = c["logprobs"]
check(len(lp["tokens"]) == 64 and "".join(lp["tokens"]) == text, "64 logprob tokens joining to the text")
check(all(lp["tokens"][i] == "" for i in padded), "every padded id's token string is \"\"")
chunks = [json.loads(l[6:]) for l in open(f"{w}/stream.txt") if l.startswith("data: {")]
st = "".join(ch["choices"][0]["text"] for ch in chunks if ch["choices"])
stoks = [t for ch in chunks if ch["choices"] and ch["choices"][0]["logprobs"] for t in ch["choices"][0]["logprobs"]["tokens"]]
check(st == text and stoks == lp["tokens"], "streamed: same text and token strings")
ch = json.load(open(f"{w}/chat.json"))["choices"][0]
content = ch["logprobs"]["content"]
check(len(content) == 64 and "".join(e["token"] for e in content) == ch["message"]["content"], "chat: 64 logprob entries joining to the content")
lossy = "\ufffd" in ch["message"]["content"]  # invalid bytes became U+FFFD: raw bytes cannot add up to it
check(lossy or bytes(b for e in content for b in e["bytes"]) == ch["message"]["content"].encode(),
      "chat: bytes concatenate to the content" + (" (skipped: U+FFFD in the content)" if lossy else ""))
code, d = answer("detok_pad.txt")
check(code == 200 and d["prompt"] == "()", f"/detokenize [40,575,512,41] (ids 40, 41 are the bytes ( and )): {code} {d}")
code, d = answer("detok_bad.txt")
check(code == 400 and "575" in d["error"]["message"], f"/detokenize [40,576]: {code} {d.get('error', {}).get('message')}")
code, d = answer("prompt_pad.txt")
check(code == 200 and d["choices"][0]["text"].startswith("()"), f"a prompt [40,560,41] with padded id 560, echoed: {code} {d.get('choices', [{}])[0].get('text', d)!r}")
code, d = answer("prompt_bad.txt")
check(code == 400 and "576" in d["error"]["message"], f"a prompt with id 576: {code} {d.get('error', {}).get('message')}")
sys.exit(1 if fails else 0)
PY
wait_idle
stop_frontend
