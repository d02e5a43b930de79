#!/usr/bin/env python3
"""stream.py — the request stream of the multi-host fault test (tests/deploy/multihost.sh).

  stream.py reference URL OUT.json      one greedy request per prompt on a healthy cluster: the answers
  stream.py run URL REF.json STOPFILE   clients in parallel, streamed and whole requests alternating,
                                        until STOPFILE exists; prints the counts as the last line

Every request is judged: "completed" (HTTP 200 and exactly the reference text and tokens (logprobs),
finish_reason "length" and completion_tokens = max_tokens; greedy answers do not depend on which
workers computed them), "failed" (a clear error: an HTTP error status with an OpenAI error body, or a
stream ending in an error chunk then [DONE]), "hung" (no complete answer within --deadline seconds),
"race" (the reference tokens but the first one, which comes from the prefill worker, shown later or
not at all: tokens the decode worker sent over its own connection overtook it; a frontend bug, see
docs/deploy.md) or "wrong" (anything else: other tokens, a cut connection, a malformed answer). The
test requires hung = wrong = 0."""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

PROMPTS = [f"request {i}: " + "the cluster keeps serving " * (1 + i % 5) for i in range(12)]
MAX_TOKENS = 24


def body(prompt, stream):
    return json.dumps({"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True,
                       "logprobs": 1, "stream": stream})


def post(url, prompt, stream, deadline):
    """Returns (status, raw body bytes); raises socket.timeout / OSError / http.client errors."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=deadline)
    try:
        conn.request("POST", "/v1/completions", body(prompt, stream), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        end = time.monotonic() + deadline
        data = b""
        while True:
            conn.sock.settimeout(max(0.1, end - time.monotonic()))
            chunk = resp.read1(65536) if stream else resp.read()
            if not chunk:
                break
            data += chunk
            if not stream or time.monotonic() > end:
                break
        if time.monotonic() > end:
            raise TimeoutError("deadline")
        return resp.status, data
    finally:
        conn.close()


def error_body(data):
    try:
        msg = json.loads(data)["error"]["message"]
        return msg if isinstance(msg, str) and msg else None
    except (ValueError, KeyError, TypeError):
        return None


def compare(text, tokens, finish, expected, what):
    if finish != "length":
        return "wrong", f"{what} finished with {finish!r}"
    if text == expected["text"] and tokens == expected["tokens"]:
        return "completed", None
    first, rest = expected["tokens"][0], expected["tokens"][1:]
    if tokens == rest:
        return "race", f"{what}: the first token is missing"
    for i, t in enumerate(tokens):
        if t == first and tokens[:i] + tokens[i + 1:] == rest:
            return "race", f"{what}: the first token came after token {i}"
    return "wrong", f"{what} differs: {text!r} {tokens}"


def judge_whole(status, data, expected):
    if status != 200:
        msg = error_body(data)
        return ("failed", f"{status} {msg}") if msg else ("wrong", f"{status} without an error body: {data[:200]!r}")
    try:
        ans = json.loads(data)
        ch = ans["choices"][0]
        verdict = compare(ch["text"], ch["logprobs"]["tokens"], ch["finish_reason"], expected, "answer")
        if verdict[0] == "completed" and ans["usage"]["completion_tokens"] != MAX_TOKENS:
            return "wrong", f"usage says {ans['usage']['completion_tokens']} tokens"
        return verdict
    except (ValueError, KeyError, TypeError, IndexError):
        return "wrong", f"malformed answer {data[:200]!r}"


def judge_stream(status, data, expected):
    if status != 200:
        return judge_whole(status, data, expected)
    events = [ln[6:] for ln in data.decode("utf-8", "replace").split("\n") if ln.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return "wrong", f"stream did not end with [DONE]: {data[-200:]!r}"
    text, tokens, finish = "", [], None
    try:
        for ev in events[:-1]:
            obj = json.loads(ev)
            if "error" in obj:
                msg = obj["error"].get("message")
                return ("failed", f"stream error: {msg}") if msg else ("wrong", "error chunk without a message")
            for ch in obj.get("choices", []):
                text += ch.get("text") or ""
                tokens += (ch.get("logprobs") or {}).get("tokens") or []
                finish = ch.get("finish_reason") or finish
    except (ValueError, AttributeError, TypeError) as e:
        return "wrong", f"malformed stream ({e}): {data[-200:]!r}"
    return compare(text, tokens, finish, expected, "streamed answer")


def one(url, prompt, stream, expected, deadline):
    try:
        status, data = post(url, prompt, stream, deadline)
    except TimeoutError:
        return "hung", f"no complete answer in {deadline} s"
    except (OSError, http.client.HTTPException) as e:
        return "wrong", f"connection failed: {e!r}"
    return (judge_stream if stream else judge_whole)(status, data, expected)


def reference(args):
    out = {}
    for p in PROMPTS:
        status, data = post(args.url, p, False, args.deadline)
        if status != 200:
            sys.exit(f"reference request failed: {status} {data[:300]!r}")
        ch = json.loads(data)["choices"][0]
        out[p] = {"text": ch["text"], "tokens": ch["logprobs"]["tokens"]}
    json.dump(out, open(args.out, "w"))
    print(f"reference answers for {len(out)} prompts")


def run(args):
    ref = json.load(open(args.ref))
    counts = {"sent": 0, "completed": 0, "failed": 0, "hung": 0, "wrong": 0, "race": 0}
    reasons, slowest, lock = {}, {}, threading.Lock()

    def client(k):
        i = k
        while not os.path.exists(args.stopfile):
            p = PROMPTS[i % len(PROMPTS)]
            with lock:
                counts["sent"] += 1
            t0 = time.monotonic()
            verdict, why = one(args.url, p, i % 2 == 0, ref[p], args.deadline)
            took = time.monotonic() - t0
            with lock:
                counts[verdict] += 1
                slowest[verdict] = max(slowest.get(verdict, 0.0), took)
                if why:
                    key = f"{verdict}: {why[:160]}"
                    reasons[key] = reasons.get(key, 0) + 1
                    if verdict in ("hung", "wrong"):
                        print(f"{time.strftime('%H:%M:%S')} {key}", flush=True)
            i += args.clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for why, n in sorted(reasons.items(), key=lambda x: -x[1]):
        print(f"{n:5d}  {why}")
    print("slowest: " + ", ".join(f"{v} {t:.2f} s" for v, t in sorted(slowest.items())))
    print("sent {sent} completed {completed} failed {failed} hung {hung} wrong {wrong} race {race}"
          .format(**counts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["reference", "run"])
    ap.add_argument("url")
    ap.add_argument("ref_or_out")
    ap.add_argument("stopfile", nargs="?")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--deadline", type=float, default=60)
    args = ap.parse_args()
    args.ref = args.out = args.ref_or_out
    (reference if args.mode == "reference" else run)(args)


main()
