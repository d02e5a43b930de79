#!/usr/bin/env python3
"""soak.py — the client side and the bookkeeping of the soak test (tests/soak/soak.sh; docs/soak.md).

  soak.py reference PORT OUT.json [GENERATE MODEL]
        one quiet pass over CASES: each answer whole and streamed (they must agree); with GENERATE
        (pdserve-generate) and MODEL, the single-prompt completion cases are also computed in one
        process by the engine alone and must be the same text. Writes the expected answers.
  soak.py fill PORT
        a warm-up burst of long requests that takes every KV block of every worker at least once,
        so the pools' first-touch pages are in RSS before memory is measured.
  soak.py round PORT REF.json OUT.json SECONDS CLIENTS SEED DEADLINE
        CLIENTS concurrent clients for SECONDS with a seeded random mix (SCENARIOS): valid requests
        whose answers must equal REF exactly, invalid ones that must get their 4xx with an
        OpenAI-shaped error body, hang-ups at random points, slow writers and readers, pipelining.
        Writes the outcome counts as JSON.
  soak.py record ROUNDS.jsonl ROUND RESTART SEQUENCES KV_IDLE CLIENT.json NAME=PID[@LIFE]...
        VmRSS, VmHWM, RssAnon, open fds and threads of each daemon, once the fd counts are steady,
        appended with the round's client outcomes as one JSON line.
  soak.py report ROUNDS.jsonl WARMUP ENFORCE_MEMORY
        the table per round and per daemon, the memory verdict; exit 1 when anything is wrong.

Outcomes of a request: ok (valid, answered exactly right), refused (invalid, the right 4xx and error
body), cut (the client hung up on purpose), failed (valid, but a clear error: 503 with an error body,
or a stream ending in an error chunk and [DONE] — allowed only in a round where a worker was SIGKILLed), and
the bad ones: wrong (any other answer, status or body), hung (nothing complete within DEADLINE
seconds), broken (connection reset or closed before a complete answer). Stdlib only."""
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time

HOST = "127.0.0.1"
BAD = ("wrong", "hung", "broken")
MAX_BODY = 4194304  # soak.sh starts the frontend with --max-body-bytes 4194304, --header-timeout-ms 3000,
TIMEOUT_S = 3.0    # --body-timeout-ms 3000 and the default --max-header-bytes 16384


# ---------------------------------------------------------------- the valid requests and their answers

def completion(prompt, **kw):
    return {"path": "/v1/completions", "body": {"model": "model", "prompt": prompt, **kw}}


def chat(messages, **kw):
    return {"path": "/v1/chat/completions", "body": {"model": "model", "messages": messages, **kw}}


def user(text):
    return [{"role": "user", "content": text}]


CASES = {
    # greedy completions
    "c-hello": completion("Hello", max_tokens=16, temperature=0),
    "c-fox": completion("The quick brown fox jumps over the lazy dog. " * 3, max_tokens=32, temperature=0,
                        ignore_eos=True),
    "c-long": completion("a soak test runs for minutes " * 24, max_tokens=48, temperature=0, ignore_eos=True,
                         logprobs=1),
    "c-ids": completion(list(range(1, 41)), max_tokens=20, temperature=0, ignore_eos=True),
    "c-two-prompts": completion(["alpha beta", "gamma delta epsilon"], max_tokens=12, temperature=0, ignore_eos=True),
    "c-n2": completion("Once upon a time", n=2, max_tokens=20, temperature=0, ignore_eos=True),
    "c-stop": completion("Hello", stop=["ometres", "zzz"], max_tokens=16, temperature=0),  # stops mid-answer
    "c-asks-nothing": completion("unimplemented fields that ask for nothing pass", max_tokens=10, temperature=0,
                                 logit_bias={}, suffix="", user="soak"),
    "c-one": completion("x", max_tokens=1, temperature=0),
    "c-multibyte": completion("héllo wörld ✓ 日本", max_tokens=24, temperature=0, ignore_eos=True),
    # greedy chat
    "h-hi": chat(user("Hi"), max_tokens=16, temperature=0),
    "h-turns": chat([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
                     {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"}],
                    max_tokens=32, temperature=0, ignore_eos=True),
    "h-parts": chat([{"role": "user", "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "work"}]}],
                    max_tokens=8, temperature=0, ignore_eos=True),
    "h-logprobs": chat(user("with logprobs"), max_tokens=12, temperature=0, logprobs=True, ignore_eos=True),
    # sampled with a seed: reproducible, sample j of n uses seed + j
    "s-top-p": completion("sample me", temperature=0.8, top_p=0.9, seed=1234, max_tokens=24, ignore_eos=True, n=2),
    "s-chat-top-k": chat(user("sample a chat"), temperature=1.0, top_k=40, seed=99, max_tokens=20, ignore_eos=True),
    "s-penalties": completion("penalties change the sampling", temperature=0.7, seed=5, presence_penalty=0.5,
                              frequency_penalty=0.3, repetition_penalty=1.1, max_tokens=30, ignore_eos=True),
    "s-min-p": completion("min p", temperature=1.2, min_p=0.05, seed=77, max_tokens=16),
}
# the cases whose answer pdserve-generate computes too: one string prompt, one choice
GENERATE_CASES = ["c-hello", "c-fox", "c-long", "c-one", "c-multibyte", "s-penalties", "s-min-p"]


def error_body_ok(body):
    """An OpenAI error body: {"error": {"message": non-empty, "type": str, "param", "code"}}."""
    try:
        err = json.loads(body)["error"]
        return (isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"] != ""
                and isinstance(err.get("type"), str) and "param" in err and "code" in err), err
    except (ValueError, KeyError, TypeError):
        return False, None


def normalize_whole(case, body):
    """The answer of a non-streamed request as {"choices": [[text, finish, tokens]...], "usage": {...}}."""
    ans = json.loads(body)
    chat_kind = case["path"].endswith("chat/completions")
    if ans.get("object") != ("chat.completion" if chat_kind else "text_completion"):
        raise ValueError(f"object is {ans.get('object')!r}")
    choices = sorted(ans["choices"], key=lambda c: c["index"])
    out = []
    for c in choices:
        text = c["message"]["content"] if chat_kind else c["text"]
        lp = c.get("logprobs")
        if chat_kind:
            tokens = [t["token"] for t in lp["content"]] if lp else None
        else:
            tokens = lp["tokens"] if lp else None
        out.append([text, c["finish_reason"], tokens])
    return {"choices": out, "usage": ans["usage"]}


def normalize_stream(case, data):
    """The same from the SSE events of a streamed answer; an error chunk raises StreamError."""
    chat_kind = case["path"].endswith("chat/completions")
    events = [ln[6:] for ln in data.decode("utf-8").split("\n") if ln.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        raise ValueError("the stream does not end with data: [DONE]")
    choices, usage = {}, None
    for ev in events[:-1]:
        obj = json.loads(ev)
        if "error" in obj:
            ok, err = error_body_ok(ev)
            raise StreamError(err.get("message") if ok else None)
        if obj.get("object") != ("chat.completion.chunk" if chat_kind else "text_completion"):
            raise ValueError(f"chunk object is {obj.get('object')!r}")
        if obj.get("usage"):
            usage = obj["usage"]
        for c in obj["choices"]:
            ch = choices.setdefault(c["index"], ["", None, None])
            if chat_kind:
                ch[0] += c["delta"].get("content") or ""
                lp = c.get("logprobs")
                if lp:
                    ch[2] = (ch[2] or []) + [t["token"] for t in lp["content"]]
            else:
                ch[0] += c["text"]
                lp = c.get("logprobs")
                if lp:
                    ch[2] = (ch[2] or []) + lp["tokens"]
            ch[1] = c.get("finish_reason") or ch[1]
    return {"choices": [choices[i] for i in sorted(choices)], "usage": usage}


class StreamError(Exception):
    pass


def without_cached(usage):
    """Usage without prompt_tokens_details: how much of a prompt a worker's prefix cache held depends on
    what ran before (any value from 0 to all but the last prompt token is right)."""
    return {k: v for k, v in usage.items() if k != "prompt_tokens_details"} if usage else usage


def comparable(answer):
    return {**answer, "usage": without_cached(answer["usage"])}


def same_answer(got, want, usage_expected):
    if got["choices"] != want["choices"]:
        return f"choices differ: got {json.dumps(got['choices'])[:300]} want {json.dumps(want['choices'])[:300]}"
    if usage_expected and without_cached(got["usage"]) != without_cached(want["usage"]):
        return f"usage differs: got {got['usage']} want {want['usage']}"
    cached = ((got["usage"] or {}).get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    if usage_expected and got["usage"] and not 0 <= cached < got["usage"]["prompt_tokens"]:
        return f"cached_tokens {cached} of {got['usage']['prompt_tokens']} prompt tokens"
    if not usage_expected and got["usage"] is not None:
        return "usage sent without stream_options.include_usage"
    return None


# ---------------------------------------------------------------- raw HTTP over asyncio streams

class Conn:
    """One client connection: write raw bytes, read HTTP/1.1 responses (Content-Length or chunked);
    `slow` reads 128 bytes at a time with a pause, like a client on a slow link."""

    def __init__(self, r, w, slow=False):
        self.r, self.w, self.buf, self.slow = r, w, b"", slow

    @classmethod
    async def open(cls, port, slow=False):
        r, w = await asyncio.open_connection(HOST, port)
        return cls(r, w, slow)

    async def send(self, data):
        self.w.write(data)
        await self.w.drain()

    def close(self):
        try:
            self.w.close()
        except Exception:
            pass

    async def fill(self):
        if self.slow:
            await asyncio.sleep(0.02)
        d = await self.r.read(128 if self.slow else 65536)
        if not d:
            raise EOFError("the server closed the connection")
        self.buf += d

    async def until(self, sep):
        while sep not in self.buf:
            await self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    async def take(self, n):
        while len(self.buf) < n:
            await self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def response(self, on_chunk=None):
        """(status, headers, body). on_chunk(bytes so far) may return True to stop reading (a hang-up)."""
        head = (await self.until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for ln in head[1:]:
            if ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in headers:
            body = await self.take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                n = int((await self.until(b"\r\n")).strip(), 16)
                body += await self.take(n)
                await self.take(2)
                if n == 0:
                    break
                if on_chunk and on_chunk(body):
                    return status, headers, None
        return status, headers, body


def http_request(method, path, body=None, extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: soak\r\n{extra}"
    if body is None:
        return (head + "\r\n").encode()
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b


# ---------------------------------------------------------------- scenarios

class Ctx:
    def __init__(self, port, ref, rng):
        self.port, self.ref, self.rng = port, ref, rng


def pick_valid(ctx):
    """A random case, streamed or not (streamed ones sometimes with usage), and its request bytes."""
    name = ctx.rng.choice(sorted(ctx.ref))
    case = CASES[name]
    body = dict(case["body"])
    stream = ctx.rng.random() < 0.5
    usage = not stream
    if stream:
        body["stream"] = True
        if ctx.rng.random() < 0.5:
            body["stream_options"] = {"include_usage": True}
            usage = True
    return name, case, stream, usage, body


def judge_valid(ctx, name, case, stream, usage, status, data):
    if status == 503:
        ok, _ = error_body_ok(data)
        return ("failed", f"{name}: 503") if ok else ("wrong", f"{name}: 503 without an error body {data[:200]!r}")
    if status != 200:
        return "wrong", f"{name}: status {status} {data[:200]!r}"
    try:
        got = normalize_stream(case, data) if stream else normalize_whole(case, data)
    except StreamError as e:
        return ("failed", f"{name}: stream error chunk") if e.args[0] else ("wrong", f"{name}: error chunk without message")
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as e:
        return "wrong", f"{name}: malformed answer ({e}) {data[:200]!r}"
    why = same_answer(got, ctx.ref[name], usage)
    if why is None:
        return "ok", None
    m = re.search(rb'"id":"([^"]+)"', data)
    return "wrong", f"{name} ({'stream' if stream else 'whole'}, {m.group(1).decode() if m else '?'}): {why}"


async def sc_valid(ctx):
    name, case, stream, usage, body = pick_valid(ctx)
    c = await Conn.open(ctx.port)
    try:
        await c.send(http_request("POST", case["path"], body))
        status, _, data = await c.response()
    finally:
        c.close()
    return judge_valid(ctx, name, case, stream, usage, status, data)


async def sc_slow_write(ctx):
    """Head and body trickled a few bytes at a time (each pause well under the frontend's timeouts)."""
    name, case, stream, usage, body = pick_valid(ctx)
    raw = http_request("POST", case["path"], body)
    c = await Conn.open(ctx.port)
    try:
        i = 0
        while i < len(raw):
            n = ctx.rng.randint(1, 48)
            await c.send(raw[i:i + n])
            i += n
            await asyncio.sleep(ctx.rng.uniform(0.005, 0.03))
        status, _, data = await c.response()
    finally:
        c.close()
    return judge_valid(ctx, name, case, stream, usage, status, data)


async def sc_slow_read(ctx):
    """A streamed answer read 128 bytes at a time with pauses."""
    name, case, _, _, body = pick_valid(ctx)
    body["stream"] = True
    usage = "stream_options" in body
    c = await Conn.open(ctx.port, slow=True)
    try:
        await c.send(http_request("POST", case["path"], body))
        status, _, data = await c.response()
    finally:
        c.close()
    return judge_valid(ctx, name, case, True, usage, status, data)


async def sc_keepalive(ctx):
    """Three requests on one connection, pipelined or one after another; answers in order."""
    reqs = []
    for _ in range(3):
        kind = ctx.rng.random()
        if kind < 0.6:
            name, case, stream, usage, body = pick_valid(ctx)
            reqs.append(("valid", (name, case, stream, usage), http_request("POST", case["path"], body)))
        elif kind < 0.8:
            reqs.append(("error", 400, http_request("POST", "/v1/completions", b'{"prompt": "unterminated",')))
        else:
            reqs.append(("get", 200, http_request("GET", ctx.rng.choice(["/health", "/v1/models"]))))
    pipelined = ctx.rng.random() < 0.5
    c = await Conn.open(ctx.port)
    verdicts = []
    try:
        if pipelined:
            await c.send(b"".join(r[2] for r in reqs))
        for kind, what, raw in reqs:
            if not pipelined:
                await c.send(raw)
            status, _, data = await c.response()
            if kind == "valid":
                verdicts.append(judge_valid(ctx, *what, status, data))
            elif kind == "error":
                ok, _ = error_body_ok(data)
                verdicts.append(("ok", None) if status == 400 and ok else ("wrong", f"keep-alive bad JSON got {status}"))
            else:
                verdicts.append(("ok", None) if status == 200 else ("wrong", f"keep-alive GET got {status}"))
    finally:
        c.close()
    for v in verdicts:
        if v[0] != "ok":
            return v
    return "ok", None


def invalid_cases():
    """(name, request bytes, expected status, expected param or None, expected code or None)."""
    good = {"model": "model", "prompt": "hi", "max_tokens": 4}
    C = "/v1/completions"
    H = "/v1/chat/completions"
    big = json.dumps({"prompt": "x" * (MAX_BODY + 1000)}).encode()
    return [
        ("bad JSON", http_request("POST", C, b'{"prompt": "hi",'), 400, None, "invalid_json"),
        ("not an object", http_request("POST", C, b"[1, 2]"), 400, None, "invalid_json"),
        ("duplicate keys", http_request("POST", C, b'{"prompt": "a", "prompt": "b"}'), 400, None, "invalid_json"),
        ("empty body", http_request("POST", C, b""), 400, None, None),
        ("max_tokens a string", http_request("POST", C, {**good, "max_tokens": "ten"}), 400, "max_tokens", None),
        ("temperature out of range", http_request("POST", C, {**good, "temperature": 5}), 400, "temperature", None),
        ("n zero", http_request("POST", C, {**good, "n": 0}), 400, "n", None),
        ("top_p a string", http_request("POST", C, {**good, "top_p": "x"}), 400, "top_p", None),
        ("stop list too long", http_request("POST", C, {**good, "stop": ["a"] * 9}), 400, "stop", None),
        ("logprobs true on completions", http_request("POST", C, {**good, "logprobs": True}), 400, "logprobs", None),
        ("an unknown field", http_request("POST", C, {**good, "bogus_field": {"x": 1}}), 400, "bogus_field", None),
        ("logit_bias out of range", http_request("POST", C, {**good, "logit_bias": {"5": 101}}), 400, "logit_bias", None),
        ("suffix without FIM tokens", http_request("POST", C, {**good, "suffix": " end"}), 400, "suffix", None),
        ("stream_options without stream", http_request("POST", C, {**good, "stream_options": {"include_usage": True}}),
         400, "stream_options", None),
        ("prompt a number", http_request("POST", C, {**good, "prompt": 5}), 400, "prompt", None),
        ("token id outside the vocabulary", http_request("POST", C, {**good, "prompt": [10 ** 6]}), 400, "prompt", None),
        ("prompt over the context", http_request("POST", C, {**good, "prompt": [i % 500 for i in range(3000)]}), 400,
         None, "context_length_exceeded"),
        ("prompt + max_tokens over the context", http_request("POST", C, {**good, "max_tokens": 5000}), 400,
         "max_tokens", None),
        ("NUL in a string", http_request("POST", C, b'{"prompt": "a\\u0000b"}'), 400, None, None),
        ("messages a string", http_request("POST", H, {"messages": "hi"}), 400, "messages", None),
        ("messages missing", http_request("POST", H, {"model": "model"}), 400, "messages", None),
        ("message without role", http_request("POST", H, {"messages": [{"content": "hi"}]}), 400, "messages", None),
        ("unknown model", http_request("POST", C, {**good, "model": "gpt-17"}), 404, "model", "model_not_found"),
        ("unknown path", http_request("GET", "/v2/nothing"), 404, None, None),
        ("unknown POST path", http_request("POST", "/v1/nothing", good), 404, None, None),
        ("GET on a POST path", http_request("GET", C), 405, None, None),
        ("DELETE on a POST path", http_request("DELETE", H), 405, None, None),
        ("POST on a GET path", http_request("POST", "/v1/models", good), 405, None, None),
        ("detokenize a bad id", http_request("POST", "/detokenize", {"tokens": [1, -5]}), 400, "tokens", None),
        ("tokenize nothing", http_request("POST", "/tokenize", {"x": 1}), 400, "prompt", None),
        ("malformed request line", b"HELLO\r\n\r\n", 400, None, None),
        ("bad Content-Length", b"POST /v1/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, None, None),
        ("body over the limit (Content-Length)", http_request("POST", C, big), 413, None, None),
        ("body over the limit (100-continue)",
         f"POST {C} HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {MAX_BODY * 4}\r\n\r\n".encode(), 413, None, None),
        ("body over the limit (chunked)",
         f"POST {C} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + b"".join(
             b"8000\r\n" + b"x" * 0x8000 + b"\r\n" for _ in range(MAX_BODY // 0x8000 + 2)) + b"0\r\n\r\n",
         (413, 503), None, None),  # 503 server_busy should sc_big's bodies fill --max-buffered-bytes first
        ("header over the limit", http_request("GET", "/health", extra="X-Big: " + "a" * 20000 + "\r\n"), 431, None, None),
        ("too many header lines", http_request("GET", "/health", extra="".join(f"X-H{i}: {i}\r\n" for i in range(120))),
         431, None, None),
    ]


INVALID = invalid_cases()


async def sc_invalid(ctx):
    name, raw, status, param, code = ctx.rng.choice(INVALID)
    c = await Conn.open(ctx.port)

    async def write_all():  # a big body may be refused before it is all sent: keep reading meanwhile
        try:
            await c.send(raw)
        except (ConnectionError, OSError):
            pass
    writer = asyncio.ensure_future(write_all())
    try:
        st, headers, data = await c.response()
    finally:
        writer.cancel()
        c.close()
    ok, err = error_body_ok(data)
    if st not in (status if isinstance(status, tuple) else (status,)) or not ok:
        return "wrong", f"{name}: want {status}, got {st} {data[:200]!r}"
    if st == 503 and err["code"] != "server_busy":
        return "wrong", f"{name}: 503 that is not server_busy: {err}"
    if (param and err["param"] != param) or (code and err["code"] != code):
        return "wrong", f"{name}: want param={param} code={code}, got {err}"
    if status == 405 and not headers.get("allow"):
        return "wrong", f"{name}: 405 without Allow"
    return "refused", None


BIG_BODIES = 6  # sc_big: bodies sent at once, each of BIG_IDS token ids (~3 MB), over the context: with the
                # default --max-buffered-bytes (64 MiB) two bursts at once still fit, so other clients'
                # requests are not refused (the 503 itself is tested in frontend_http)
BIG_IDS = 450000
BIG = http_request("POST", "/v1/completions", json.dumps(
    {"model": "model", "prompt": [i % 500 for i in range(BIG_IDS)], "max_tokens": 4}).encode())


async def sc_big(ctx):
    """A burst of big bodies at once: each is refused — over the context (400) or, should the bodies in
    flight fill the frontend's --max-buffered-bytes, 503 server_busy — and the memory they took must
    be given back (the memory criterion sees the frontend at idle after the round)."""
    async def one():
        c = await Conn.open(ctx.port)
        try:
            try:
                await c.send(BIG)
            except (ConnectionError, OSError):
                pass
            return await c.response()
        finally:
            c.close()
    for st, _, data in await asyncio.gather(*[one() for _ in range(BIG_BODIES)]):
        ok, err = error_body_ok(data)
        want = {400: "context_length_exceeded", 503: "server_busy"}.get(st)
        if not ok or err["code"] != want:
            return "wrong", f"big body: want 400 context_length_exceeded or 503 server_busy, got {st} {data[:200]!r}"
    return "refused", None


async def sc_timeout(ctx):
    """A client that stops sending its head or its body for longer than the frontend's timeouts: 408."""
    if ctx.rng.random() < 0.5:
        raw, what = b"GET /health HTTP/1.1\r\nX-Slow: ", "head"
    else:
        raw, what = b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"prompt\": ", "body"
    c = await Conn.open(ctx.port)
    try:
        await c.send(raw)
        t0 = time.monotonic()
        st, _, data = await c.response()
    finally:
        c.close()
    ok, _ = error_body_ok(data)
    took = time.monotonic() - t0
    if st != 408 or not ok:
        return "wrong", f"stalled {what}: want 408, got {st} {data[:200]!r}"
    if took > TIMEOUT_S + 5:
        return "wrong", f"stalled {what}: 408 only after {took:.1f} s"
    return "refused", None


async def sc_cut(ctx):
    """Hang up: in the head, in the body, right after sending, while waiting, or after k stream chunks."""
    name, case, _, _, body = pick_valid(ctx)
    how = ctx.rng.choice(["head", "body", "sent", "waiting", "stream"])
    if how == "stream":
        body["stream"] = True
    body["max_tokens"] = max(body.get("max_tokens", 16), 64)
    body["ignore_eos"] = True
    raw = http_request("POST", case["path"], body)
    head_len = raw.index(b"\r\n\r\n") + 4
    c = await Conn.open(ctx.port)
    try:
        if how == "head":
            await c.send(raw[:ctx.rng.randint(1, head_len - 1)])
            await asyncio.sleep(ctx.rng.uniform(0, 0.2))
        elif how == "body":
            await c.send(raw[:ctx.rng.randint(head_len, len(raw) - 1)])
            await asyncio.sleep(ctx.rng.uniform(0, 0.2))
        elif how == "sent":
            await c.send(raw)
        elif how == "waiting":
            await c.send(raw)
            await asyncio.sleep(ctx.rng.uniform(0, 0.5))
        else:
            await c.send(raw)
            k = ctx.rng.randint(0, 6)
            await c.response(on_chunk=lambda b: b.count(b"data: ") >= k)
    finally:
        c.close()
    return "cut", None


SCENARIOS = [  # (weight, kind, function)
    (40, "valid", sc_valid),
    (6, "slow-write", sc_slow_write),
    (6, "slow-read", sc_slow_read),
    (8, "keep-alive", sc_keepalive),
    (24, "invalid", sc_invalid),
    (1, "timeout", sc_timeout),
    (1, "big", sc_big),
    (15, "cut", sc_cut),
]


async def client(ctx, end, deadline, counts, by_kind, bad):
    while time.monotonic() < end:
        _, kind, fn = ctx.rng.choices(SCENARIOS, weights=[s[0] for s in SCENARIOS])[0]
        try:
            outcome, why = await asyncio.wait_for(fn(ctx), deadline)
        except asyncio.TimeoutError:
            outcome, why = "hung", f"{kind}: nothing complete within {deadline} s"
        except (ConnectionError, EOFError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            outcome, why = "broken", f"{kind}: {type(e).__name__}: {e}"
        counts[outcome] = counts.get(outcome, 0) + 1
        k = by_kind.setdefault(kind, {})
        k[outcome] = k.get(outcome, 0) + 1
        if why and (outcome in BAD or outcome == "failed"):
            bad.append(f"{time.strftime('%H:%M:%S')} {outcome} {why}")
            if outcome in BAD:
                print(f"soak.py: {outcome}: {why}", file=sys.stderr, flush=True)


async def run_round(port, ref, seconds, n_clients, seed, deadline):
    counts, by_kind, bad = {}, {}, []
    end = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*(client(Ctx(port, ref, random.Random(seed * 1000 + i)), end, deadline, counts, by_kind, bad)
                           for i in range(n_clients)))
    return {"counts": counts, "by_kind": by_kind, "bad": bad[:40], "n_bad": len(bad), "seconds": time.monotonic() - t0}


# ---------------------------------------------------------------- reference, fill

async def one_request(port, path, body):
    c = await Conn.open(port)
    try:
        await c.send(http_request("POST", path, body))
        return await c.response()
    finally:
        c.close()


async def take_reference(port, gen, model):
    ref = {}
    for name, case in CASES.items():
        st, _, data = await one_request(port, case["path"], case["body"])
        if st != 200:
            sys.exit(f"reference: {name} got {st} {data[:300]!r}")
        whole = normalize_whole(case, data)
        st, _, data = await one_request(port, case["path"],
                                        {**case["body"], "stream": True, "stream_options": {"include_usage": True}})
        streamed = normalize_stream(case, data)
        if st != 200 or comparable(streamed) != comparable(whole):
            sys.exit(f"reference: {name} streamed differs from whole:\n  {streamed}\n  {whole}")
        ref[name] = whole
        if gen and name in GENERATE_CASES:
            b = case["body"]
            cmd = [gen, "--model", model, "--prompt", b["prompt"], "--max-tokens", str(b["max_tokens"]),
                   "--temperature", str(b.get("temperature", 1.0))]
            for flag, key in [("--top-p", "top_p"), ("--top-k", "top_k"), ("--min-p", "min_p"), ("--seed", "seed"),
                              ("--presence-penalty", "presence_penalty"), ("--frequency-penalty", "frequency_penalty"),
                              ("--repetition-penalty", "repetition_penalty")]:
                if key in b:
                    cmd += [flag, str(b[key])]
            if b.get("ignore_eos"):
                cmd.append("--ignore-eos")
            out = subprocess.run(cmd, capture_output=True, check=True).stdout.decode("utf-8", "replace")
            out = out[:-1] if out.endswith("\n") else out
            if out != whole["choices"][0][0]:
                sys.exit(f"reference: {name}: the cluster says {whole['choices'][0][0]!r}, "
                         f"pdserve-generate says {out!r}")
    return ref


async def fill(port, n=64):
    async def one(i):
        body = {"prompt": [(i * 7 + j) % 500 + 1 for j in range(200)], "max_tokens": 120, "ignore_eos": True,
                "temperature": 0}
        st, _, data = await one_request(port, "/v1/completions", body)
        return st == 200 and json.loads(data)["usage"]["completion_tokens"] == 120
    res = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    bad = [r for r in res if r is not True]
    return n - len(bad), bad[:3]


# ---------------------------------------------------------------- measurement

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def measure(pairs):
    """Samples until every fd count is the same twice in a row 0.5 s apart (connections still closing)."""
    last = None
    for _ in range(40):
        now = {name: proc_status(pid) for name, pid in pairs}
        if last and all(now[n]["fds"] == last[n]["fds"] and now[n]["Threads"] == last[n]["Threads"] for n in now):
            return now
        last = now
        time.sleep(0.5)
    return last


def record(out, rnd, restart, seqs, kv_idle, client_json, daemons):
    """Measures the daemons (NAME=PID or NAME=PID@LIFE for a restarted worker's LIFE-th run) and appends
    the round's line to OUT; prints a one-line summary."""
    pairs = [(a.split("=")[0], int(a.split("=")[1].split("@")[0])) for a in daemons]
    life = {a.split("=")[0]: int(a.split("@")[1]) for a in daemons if "@" in a}
    mem = measure(pairs)
    for name, n in life.items():
        mem[name]["life"] = n
    cl = json.load(open(client_json))
    line = {"round": int(rnd), "restart": restart, "sequences": int(seqs), "kv_idle": kv_idle == "1",
            "client": cl, "mem": mem}
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")
    c = cl["counts"]
    print(f"round {rnd}: {sum(c.values())} requests in {cl['seconds']:.0f} s (" +
          ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + f"), {seqs} sequences; restart: {restart or 'none'}; "
          + ", ".join(f"{n} {m['VmRSS']} KiB/{m['fds']} fds/{m['Threads']} thr" for n, m in mem.items()), flush=True)
    for b in cl["bad"][:10]:
        print(f"  {b}")


# ---------------------------------------------------------------- report

def lsq_slope(ys):
    n = len(ys)
    xm, ym = (n - 1) / 2, sum(ys) / n
    return sum((i - xm) * (y - ym) for i, y in enumerate(ys)) / sum((i - xm) ** 2 for i in range(n))


def report(path, warmup, enforce):
    rounds = [json.loads(ln) for ln in open(path)]
    grow_max = int(os.environ.get("SOAK_RSS_MAX_GROWTH_KIB", "1024"))
    slope_max = int(os.environ.get("SOAK_RSS_MAX_SLOPE_KIB", "128"))
    problems = []
    outcomes = ["ok", "refused", "cut", "failed", "wrong", "hung", "broken"]
    print("\nround  secs  restart        " + " ".join(f"{o:>7}" for o in outcomes) + "  sequences  KV idle")
    for r in rounds:
        c = r["client"]["counts"]
        print(f"{r['round']:>5} {r['client']['seconds']:5.0f}  {r['restart']:<14} " +
              " ".join(f"{c.get(o, 0):>7}" for o in outcomes) + f"  {r['sequences']:>9}  {'yes' if r['kv_idle'] else 'NO'}")
        nbad = sum(c.get(o, 0) for o in BAD)
        if nbad:
            problems.append(f"round {r['round']}: {nbad} bad requests")
        if c.get("failed", 0) and "KILL" not in (r["restart"] or ""):
            problems.append(f"round {r['round']}: {c['failed']} requests failed with no worker killed "
                            "(a SIGTERM drain must lose nothing)")
        if not r["kv_idle"]:
            problems.append(f"round {r['round']}: KV pools not empty or requests still running when idle")
    tot = {o: sum(r["client"]["counts"].get(o, 0) for r in rounds) for o in outcomes}
    print("total                     " + " ".join(f"{tot[o]:>7}" for o in outcomes) +
          f"  {sum(r['sequences'] for r in rounds):>9}")

    daemons = list(rounds[0]["mem"])
    print("\nmemory after each round, idle: VmRSS KiB, RssAnon KiB, open fds, threads; #N = a restarted "
          "worker's N-th run; * = warm-up round")
    print("round " + "".join(f"{d:>31}" for d in daemons))
    for r in rounds:
        cells = []
        for d in daemons:
            m = r["mem"][d]
            life = f"#{m['life']}" if "life" in m else ""
            cells.append(f"{life} {m['VmRSS']:>7} {m['RssAnon']:>6} {m['fds']:>4} {m['Threads']:>3}".rjust(31))
        print(f"{r['round']:>4}{'*' if r['round'] <= warmup else ' '} " + "".join(cells))

    print(f"\nflatness over the measured rounds (after {warmup} warm-up) of each daemon's run: growth = last - "
          f"first VmRSS, slope by least squares; limits: growth {grow_max} KiB, slope {slope_max} KiB/round "
          f"when most steps grow; fds and threads unchanged")
    measured = [r for r in rounds if r["round"] > warmup]
    for d in daemons:
        runs = {}
        for r in measured:
            runs.setdefault(r["mem"][d].get("life", 0), []).append(r)
        for life, rs in runs.items():
            label = d + (f"#{life}" if life else "")
            if len(rs) < 3:
                print(f"  {label:<6} measured after {len(rs)} round(s) of this run: too few to judge")
                continue
            pts = [r["mem"][d] for r in rs]
            rss = [m["VmRSS"] for m in pts]
            fds = sorted({m["fds"] for m in pts})
            thr = sorted({m["Threads"] for m in pts})
            growth, slope = rss[-1] - rss[0], lsq_slope(rss)
            ups = sum(1 for a, b in zip(rss, rss[1:]) if b > a)
            # a leak of 1 KiB per request would add this much between the first and the last point:
            # per HTTP request for the frontend, per sequence for a worker (half the cluster's: two per role)
            handled = [sum(r["client"]["counts"].values()) if d == "fe" else r["sequences"] / 2 for r in rs[1:]]
            verdict = []
            if enforce and growth > grow_max:
                verdict.append(f"VmRSS grew {growth} KiB > {grow_max}")
            if enforce and slope > slope_max and ups * 2 > len(rss) - 1:
                verdict.append(f"slope {slope:.0f} KiB/round > {slope_max} with {ups} of {len(rss) - 1} steps up")
            if len(fds) > 1:
                verdict.append(f"open fds changed {fds}")
            if len(thr) > 1:
                verdict.append(f"threads changed {thr}")
            print(f"  {label:<6} VmRSS {rss[0]} -> {rss[-1]} KiB ({growth:+d}, slope {slope:+.0f} KiB/round, "
                  f"RssAnon {pts[0]['RssAnon']} -> {pts[-1]['RssAnon']}), fds {fds}, threads {thr}; "
                  f"a 1 KiB/request leak would add ~{sum(handled):.0f} KiB: {'; '.join(verdict) or 'flat'}")
            problems += [f"{label}: {v}" for v in verdict]
    if not enforce:
        print("  (memory growth reported, not judged: a sanitizer build's quarantine grows by design; "
              "LeakSanitizer at exit is the leak check there)")
    return problems


def main():
    mode = sys.argv[1]
    if mode == "reference":
        port, out = int(sys.argv[2]), sys.argv[3]
        gen, model = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
        ref = asyncio.run(take_reference(port, gen, model))
        json.dump(ref, open(out, "w"))
        print(f"reference answers for {len(ref)} cases (streamed = whole" +
              (f"; {len(GENERATE_CASES)} also = pdserve-generate)" if gen else ")"))
    elif mode == "fill":
        done, bad = asyncio.run(fill(int(sys.argv[2])))
        print(f"fill: {done} long requests completed" + (f"; failures: {bad}" if bad else ""))
        sys.exit(1 if bad else 0)
    elif mode == "round":
        port, ref, out = int(sys.argv[2]), json.load(open(sys.argv[3])), sys.argv[4]
        seconds, clients, seed, deadline = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
        res = asyncio.run(run_round(port, ref, seconds, clients, seed, deadline))
        json.dump(res, open(out, "w"))
    elif mode == "record":
        record(*sys.argv[2:8], sys.argv[8:])
    elif mode == "report":
        problems = report(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
        for p in problems:
            print(f"FAIL {p}")
        sys.exit(1 if problems else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
