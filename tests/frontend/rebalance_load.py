"""rebalance_load.py CONTROL OUT BASE — the client of tests/frontend/rebalance.sh: sends greedy
completions without a pause until the file CONTROL says "stop". CONTROL says "light" (short prompts,
one at a time, with pauses) or "heavy" (long prompts, four at a time). Every answer must be a 200 and
the same text for the same prompt, whichever workers and roles served it. Writes a summary to OUT:
"ok N" or "FAIL why"."""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

control, out, base = sys.argv[1:4]
SHORT = ["one two three four", "the quick brown fox", "alpha beta gamma"]
LONG = [" ".join("w%d" % (i * k % 97) for i in range(180)) for k in (3, 5, 7)]
seen, lock = {}, threading.Lock()
count = {"light": 0, "heavy": 0}
failure = []


last = ["light"]


def mode():
    """The control file's word; the last one read while the file is being rewritten (empty)."""
    try:
        word = open(control).read().strip()
    except OSError:
        word = ""
    if word in ("light", "heavy", "stop"):
        last[0] = word
    return last[0]


def ask(prompt):
    body = json.dumps({"prompt": prompt, "max_tokens": 12, "temperature": 0, "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)["choices"][0]["text"]
    except urllib.error.HTTPError as e:
        raise RuntimeError("HTTP %d: %s" % (e.code, e.read()[:300]))


def client(index):
    n = 0
    while not failure:
        m = mode()
        if m == "stop" or (m == "light" and index > 0):
            if m == "stop":
                return
            time.sleep(0.05)
            continue
        prompt = (LONG if m == "heavy" else SHORT)[n % 3]
        n += 1
        try:
            text = ask(prompt)
        except Exception as e:  # noqa: BLE001 - any failure fails the test
            failure.append("request failed (%s): %s" % (m, e))
            return
        with lock:
            if seen.setdefault(prompt, text) != text:
                failure.append("%s prompt %r: %r, before %r" % (m, prompt[:20], text, seen[prompt]))
            count[m] += 1
        if m == "light":
            time.sleep(0.2)


threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out, "w") as f:
    f.write("FAIL %s\n" % failure[0] if failure else "ok %d light %d heavy\n" % (count["light"], count["heavy"]))
