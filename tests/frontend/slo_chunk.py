"""slo_chunk.py BASE — the client of tests/frontend/slo_chunk.sh. A long greedy generation streams on
the only worker (a colocated one) while a long prompt arrives; both answers must be the texts each
request gets alone. Prints the prompt request's TTFT, as a line "ttft SECONDS"."""
import json
import sys
import threading
import time
import urllib.request

base = sys.argv[1]
slo = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
LONG_PROMPT = [100 + (i * 37) % 300 for i in range(1000)]
GEN = dict({"prompt": "once upon a time", "max_tokens": 400, "temperature": 0, "ignore_eos": True}, **slo)
PROMPT = {"prompt": LONG_PROMPT, "max_tokens": 6, "temperature": 0, "ignore_eos": True}


def post(body):
    req = urllib.request.Request(base + "/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=120)


def text(body):
    return json.load(post(body))["choices"][0]["text"]


def stream_text(body, started):
    """The streamed text; sets `started` once the first token came."""
    out = []
    with post(dict(body, stream=True)) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            out.append(json.loads(line[6:])["choices"][0]["text"])
            started.set()
    return "".join(out)


want_gen, want_prompt = text(GEN), text(PROMPT)
started, got = threading.Event(), {}
t = threading.Thread(target=lambda: got.__setitem__("gen", stream_text(GEN, started)))
t.start()
if not started.wait(60):
    sys.exit("FAIL the generation did not start")
t0 = time.monotonic()
got["prompt"] = text(PROMPT)
ttft = time.monotonic() - t0
t.join(120)
if got.get("gen") != want_gen:
    sys.exit("FAIL the generation's text changed: %r vs %r" % (got.get("gen"), want_gen))
if got["prompt"] != want_prompt:
    sys.exit("FAIL the prompt's text changed: %r vs %r" % (got["prompt"], want_prompt))
print("ttft %.3f" % ttft)
