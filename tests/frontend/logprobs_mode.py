"""logprobs_mode.py — asks a running frontend for logprobs in each mode and prints the answers' token
logprobs, one JSON line per request (so two clusters' answers can be compared byte for byte), after
checking what each mode means (issue 20):
  raw_logprobs (the default): the model's own log_softmax, whatever temperature and penalties. With
    top_k 1 the tokens are the greedy ones at any temperature, so their raw logprobs must equal the
    greedy request's, bit for bit;
  processed_logprobs: after penalties and temperature: at temperature 2 every chosen (argmax) token is
    less likely than raw;
  a bad logprobs_mode is a 400 naming the field.
usage: python3 logprobs_mode.py BASE_URL OUT [--default-processed]"""
import json, sys, urllib.request, urllib.error

base, out = sys.argv[1], sys.argv[2]
default = "processed_logprobs" if "--default-processed" in sys.argv else "raw_logprobs"
fails = 0
def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += not cond

def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def lps(body, chat=False, stream=False):
    code, text = post("/v1/chat/completions" if chat else "/v1/completions", {**body, "stream": stream})
    assert code == 200, (code, text)
    if stream:
        chunks = [json.loads(l[6:]) for l in text.splitlines() if l.startswith("data: {")]
        ls = [ch["choices"][0]["logprobs"] for ch in chunks if ch["choices"] and ch["choices"][0]["logprobs"]]
    else:
        ls = [json.loads(text)["choices"][0]["logprobs"]]
    if chat:
        return [e["logprob"] for l in ls for e in l["content"]]
    return [x for l in ls for x in l["token_logprobs"]]

base_req = {"prompt": "The quick brown fox", "max_tokens": 12, "ignore_eos": True, "logprobs": 0}
greedy = lps({**base_req, "temperature": 0})
hot = {**base_req, "temperature": 2.0, "top_k": 1, "seed": 1}
hot_default = lps(hot)
hot_raw = lps({**hot, "logprobs_mode": "raw_logprobs"})
hot_proc = lps({**hot, "logprobs_mode": "processed_logprobs"})
check(hot_raw == greedy, "raw_logprobs at temperature 2 (top_k 1: greedy tokens) equal the greedy ones, bit for bit")
pen = {**base_req, "temperature": 0, "repetition_penalty": 1.5, "frequency_penalty": 1.0}
pen_raw, pen_proc = lps({**pen, "logprobs_mode": "raw_logprobs"}), lps({**pen, "logprobs_mode": "processed_logprobs"})
check(pen_raw != pen_proc, "with penalties, raw and processed logprobs differ")
check(all(p < r for p, r in zip(hot_proc, hot_raw)) and len(hot_proc) == 12,
      "processed_logprobs at temperature 2: every chosen token less likely than raw")
check(hot_default == (hot_proc if default == "processed_logprobs" else hot_raw), f"no logprobs_mode: {default}")
chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "ignore_eos": True,
        "logprobs": True, "temperature": 2.0, "top_k": 1}
chat_raw = lps({**chat, "logprobs_mode": "raw_logprobs"}, chat=True)
chat_raw_s = lps({**chat, "logprobs_mode": "raw_logprobs"}, chat=True, stream=True)
chat_proc_s = lps({**chat, "logprobs_mode": "processed_logprobs"}, chat=True, stream=True)
chat_greedy = lps({**chat, "temperature": 0}, chat=True)
check(chat_raw == chat_raw_s == chat_greedy, "chat raw_logprobs, streamed or not, equal greedy ones")
check(all(p < r for p, r in zip(chat_proc_s, chat_raw)), "chat processed_logprobs streamed: below raw")
sampled = {**base_req, "temperature": 0.8, "top_p": 0.9, "seed": 5, "presence_penalty": 0.5}
answers = [greedy, hot_raw, hot_proc, pen_raw, pen_proc, chat_raw_s, chat_proc_s,
           lps({**sampled, "logprobs_mode": "raw_logprobs"}), lps({**sampled, "logprobs_mode": "processed_logprobs"}, stream=True)]
for bad in ["raw_logits", "", 3]:
    code, text = post("/v1/completions", {**base_req, "logprobs_mode": bad})
    err = json.loads(text).get("error", {})
    check(code == 400 and err.get("param") == "logprobs_mode" and err.get("type") == "invalid_request_error",
          f"logprobs_mode {bad!r}: 400 naming the field ({code} {err.get('message')})")
with open(out, "w") as f:
    for a in answers:
        f.write(json.dumps(a) + "\n")
sys.exit(1 if fails else 0)
