"""decode_choice.py BASE FE_LOG MODEL — the decode worker chosen by the work ahead, end to end (decode_choice.sh).

Two colocated workers. A (a 1,000-token prompt, 200 tokens out) lands on one; B (a short prompt,
1,800 out) on the other. C (10 out), sent while both decode, must join A: A's worker has the fewer
tokens left to generate (at most 200 against ~1,800), though it has far fewer KV blocks free (A's
prompt holds 63), which is what the frontend used to pick by. /metrics shows each worker's count
while they run; B is then dropped mid-stream and an answer ended at once by EOS (logit_bias), and
once all is idle every count must be back to 0 (decode_choice.sh checks that).
"""
import http.client
import json
import re
import sys
import time
import urllib.parse
import urllib.request

base, fe_log, model = sys.argv[1:4]
url = urllib.parse.urlparse(base)


def open_stream(body):
    """Sends a streamed completion; returns the connection and response once its first token is in."""
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps(dict(body, stream=True)), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    while True:
        line = resp.readline()
        assert line, "stream ended before its first token"
        if line.startswith(b"data: {"):
            return conn, resp


def left_by_worker():
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    return {int(m[1]): int(m[2]) for m in re.finditer(r'^pdserve:router_decode_tokens_left\{worker="(\d+)"[^}]*\} (\d+)', text, re.M)}


def worker_of(out_tokens):
    """The worker the access log names for the request that generated out_tokens tokens."""
    for _ in range(100):
        for line in open(fe_log):
            m = re.search(r" out=(\d+) .*?on=(\d+)", line)
            if m and int(m[1]) == out_tokens:
                return int(m[2])
        time.sleep(0.1)
    raise AssertionError(f"no access log line with out={out_tokens}")


def complete(body):
    req = urllib.request.Request(base + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        sys.exit(1)


a_conn, a = open_stream({"prompt": [3 + i % 1000 for i in range(1000)], "max_tokens": 200, "temperature": 0, "ignore_eos": True})
b_conn, b = open_stream({"prompt": "a long answer", "max_tokens": 1800, "temperature": 0, "ignore_eos": True})
left = left_by_worker()
check(len(left) == 2 and sorted(left.values())[0] <= 199 and sorted(left.values())[1] >= 1500,
      f"while A and B decode, tokens left per worker as counted: {left}")
c = complete({"prompt": "short", "max_tokens": 10, "temperature": 0, "ignore_eos": True})
check(c["usage"]["completion_tokens"] == 10, "C answered")
while a.readline():  # A to its end
    pass
a_conn.close()
b_conn.close()  # B dropped mid-stream: ABORT, its tokens never come
check(worker_of(10) == worker_of(200), f"C joined A on worker {worker_of(200)} (fewer tokens left), not B's")
eos = json.load(open(model + "/config.json"))["eos_token_id"]
e = complete({"prompt": "end now", "max_tokens": 500, "temperature": 0, "logit_bias": {str(eos): 100}})
check(e["choices"][0]["finish_reason"] == "stop" and e["usage"]["completion_tokens"] <= 1,
      f"an answer ended by EOS at once ({e['usage']['completion_tokens']} of 500 tokens)")
