#!/usr/bin/env python3
"""raw.py — raw-socket HTTP tests of a running pdserve frontend (with workers): every error status with
an OpenAI-shaped body naming the problem, pipelined and chunked requests, a slowloris client that
must not stall others, 500 concurrent streaming clients that must all complete, and a client that
disconnects mid-stream (its work is aborted; tests/helpers/frontend.sh's wait_idle then checks the KV blocks came back).

usage: raw.py PORT API_KEY   (the frontend runs with --api-key KEY --max-body-bytes 65536
       --max-header-bytes 8192 --header-timeout-ms 500 --max-inflight 600)"""
import asyncio
import json
import socket
import sys
import time

PORT = int(sys.argv[1])
KEY = sys.argv[2]
AUTH = f"Authorization: Bearer {KEY}\r\n"
failures = 0
checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
    print(("ok   " if cond else "FAIL ") + what, flush=True)


def connect():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(10)
    return s


class Reader:
    """Reads HTTP/1.1 responses one by one from a socket (pipelining needs that)."""

    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n")
        out, self.buf = self.buf[:i], self.buf[i + 2:]
        return out

    def response(self):
        status = int(self.line().split()[1])
        headers = {}
        while True:
            ln = self.line()
            if not ln:
                break
            k, v = ln.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in headers:
            body = self.take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                n = int(self.line(), 16)
                body += self.take(n)
                self.take(2)
                if n == 0:
                    break
        return status, headers, body


def request(raw):
    s = connect()
    s.sendall(raw.encode() if isinstance(raw, str) else raw)
    r = Reader(s).response()
    s.close()
    return r


def post(path, body, auth=True, extra=""):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH if auth else ''}{extra}Content-Type: application/json\r\n"
    return request(head.encode() + f"Content-Length: {len(b)}\r\n\r\n".encode() + b)


def error_case(what, resp, status, param=None, code=None):
    st, _, body = resp
    try:
        err = json.loads(body)["error"]
        shaped = set(err) == {"message", "type", "param", "code"} and err["message"]
    except (ValueError, KeyError, TypeError):
        err, shaped = {}, False
    ok = st == status and shaped and (param is None or err["param"] == param) and (code is None or err["code"] == code)
    check(ok, f"{what}: {status}" + (f" param={param}" if param else "") + f" (got {st} {body[:160]!r})")


def test_errors():
    good = {"prompt": "hi", "max_tokens": 2}
    error_case("bad JSON", post("/v1/completions", b'{"prompt": "hi",'), 400, code="invalid_json")
    error_case("bad field", post("/v1/completions", {**good, "top_p": "x"}), 400, param="top_p")
    error_case("chat without messages", post("/v1/chat/completions", {"model": "model"}), 400, param="messages")
    error_case("missing API key", post("/v1/completions", good, auth=False), 401, code="invalid_api_key")
    error_case("wrong API key", post("/v1/completions", good, auth=False, extra="Authorization: Bearer nope\r\n"), 401)
    error_case("unknown path", request("GET /v2/nothing HTTP/1.1\r\n\r\n"), 404)
    error_case("unknown model", post("/v1/completions", {**good, "model": "gpt-17"}), 404, param="model")
    st, hd, _ = request(f"GET /v1/completions HTTP/1.1\r\n{AUTH}\r\n")
    check(st == 405 and hd.get("allow") == "POST", f"wrong method: 405 with Allow: POST (got {st} {hd.get('allow')})")
    error_case("body too large", post("/v1/completions", {"prompt": "x" * 70000}), 413)
    error_case("headers too large", request("GET /health HTTP/1.1\r\nX-Big: " + "a" * 9000 + "\r\n\r\n"), 431)
    error_case("prompt longer than the context", post("/v1/completions", {"prompt": [i % 500 for i in range(3000)]}), 400,
               code="context_length_exceeded")
    error_case("prompt + max_tokens over the context", post("/v1/completions", {"prompt": [1, 2], "max_tokens": 5000}),
               400, param="max_tokens")
    error_case("token id outside the vocabulary", post("/v1/completions", {"prompt": [10 ** 6]}), 400, param="prompt")
    error_case("too many sequences at once", post("/v1/completions", {**good, "prompt": ["a"] * 40, "n": 16}), 429)
    error_case("malformed HTTP", request("HELLO\r\n\r\n"), 400)
    st, _, body = request("GET /health HTTP/1.1\r\n\r\n")
    check(st == 200, "health needs no key and is 200 with workers")
    st, hd, body = request("GET /metrics HTTP/1.1\r\n\r\n")
    check(st == 200 and b"pdserve:request_success_total" in body and hd["content-type"].startswith("text/plain"),
          "metrics in Prometheus text")


def test_tokenize_and_metrics():
    st, _, body = post("/tokenize", {"prompt": "Hello world, again", "add_special_tokens": False})
    tok = json.loads(body)
    check(st == 200 and tok["count"] == len(tok["tokens"]) > 0 and tok["max_model_len"] == 2048, f"/tokenize {tok}")
    st, _, body = post("/detokenize", {"tokens": tok["tokens"]})
    check(st == 200 and json.loads(body)["prompt"] == "Hello world, again", f"/detokenize round trip ({body[:80]!r})")
    error_case("/detokenize with a bad id", post("/detokenize", {"tokens": [1, -5]}), 400, param="tokens")
    error_case("/tokenize with a body that is not JSON", post("/tokenize", b"{not json"), 400)
    error_case("/tokenize with neither prompt nor messages", post("/tokenize", {"text": "x"}), 400, param="prompt")
    error_case("/detokenize without tokens", post("/detokenize", b"[]"), 400, param="tokens")
    st, _, body = post("/tokenize", {"messages": [{"role": "user", "content": "hi"}]})
    check(st == 200 and json.loads(body)["count"] > 1, "/tokenize applies the chat template to messages")
    post("/v1/completions", {"prompt": "count me", "max_tokens": 3, "ignore_eos": True})
    _, _, m = request("GET /metrics HTTP/1.1\r\n\r\n")
    text = m.decode()
    for name in ["pdserve:time_to_first_token_seconds_bucket", "pdserve:time_per_output_token_seconds_count",
                 "pdserve:e2e_request_latency_seconds_sum", "pdserve:request_queue_time_seconds_count",
                 "pdserve:frontend_token_processing_seconds_count", "pdserve:num_requests_waiting",
                 'pdserve:kv_cache_usage_perc{model_name="model",worker=', 'pdserve:workers{role="prefill"} 1',
                 'pdserve:workers{role="decode"} 1', "pdserve:prompt_tokens_total", 'finished_reason="length"']:
        check(name in text, f"/metrics has {name}")
    gen = [ln for ln in text.splitlines() if ln.startswith("pdserve:generation_tokens_total")]
    check(gen and float(gen[0].split()[-1]) >= 3, f"generation tokens counted ({gen})")


def test_pipelined_and_chunked():
    s = connect()
    comp = json.dumps({"prompt": "hi", "max_tokens": 3, "temperature": 0}).encode()
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n" + f"GET /v1/models HTTP/1.1\r\n{AUTH}\r\n".encode() +
              f"POST /v1/completions HTTP/1.1\r\n{AUTH}Content-Length: {len(comp)}\r\n\r\n".encode() + comp +
              b"GET /nope HTTP/1.1\r\n\r\n")
    r = Reader(s)
    got = [r.response() for _ in range(4)]
    s.close()
    check([g[0] for g in got] == [200, 200, 200, 404], f"4 pipelined requests answered in order ({[g[0] for g in got]})")
    check(json.loads(got[1][2])["object"] == "list" and json.loads(got[2][2])["object"] == "text_completion",
          "pipelined bodies are the right ones")
    half = len(comp) // 2
    raw = (f"POST /v1/completions HTTP/1.1\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode() +
           f"{half:x}\r\n".encode() + comp[:half] + f"\r\n{len(comp) - half:x}\r\n".encode() + comp[half:] + b"\r\n0\r\n\r\n")
    st, _, body = request(raw)
    check(st == 200 and json.loads(body)["choices"][0]["finish_reason"] == "length", "chunked request body")
    st, _, body = request(f"GET /v1/models HTTP/1.0\r\n{AUTH}\r\n")
    check(st == 200 and json.loads(body)["data"], "HTTP/1.0 client")


def test_slowloris():
    slow = connect()
    slow.sendall(b"GET /health HTTP/1.1\r\n")
    t0 = time.time()
    closed_with = None
    others_ok = True
    while time.time() - t0 < 3:
        try:
            slow.sendall(b"X-Drip: 1\r\n")
        except OSError:
            break
        st, _, _ = request("GET /health HTTP/1.1\r\n\r\n")  # other clients are served meanwhile
        others_ok &= st == 200
        time.sleep(0.1)
        slow.setblocking(False)
        try:
            d = slow.recv(4096)
            closed_with = d
            break
        except BlockingIOError:
            pass
        finally:
            slow.setblocking(True)
    slow.close()
    check(closed_with is not None and b" 408 " in closed_with[:20] and time.time() - t0 < 2.5,
          f"slowloris client cut off with 408 after the head timeout ({closed_with[:30] if closed_with else None})")
    check(others_ok, "other clients served while it dripped")


async def stream_one(i, max_tokens):
    body = json.dumps({"prompt": f"client {i}", "max_tokens": max_tokens, "stream": True, "ignore_eos": True,
                       "temperature": 0}).encode()
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(f"POST /v1/completions HTTP/1.1\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await w.drain()
    data = b""
    while b"data: [DONE]" not in data or not data.endswith(b"0\r\n\r\n"):
        d = await r.read(65536)
        if not d:
            break
        data += d
    w.close()
    chunks = data.count(b'"text_completion"')
    return data.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in data and b'"finish_reason":"length"' in data \
        and chunks >= 1


async def many_streams(n, max_tokens):
    return await asyncio.gather(*(stream_one(i, max_tokens) for i in range(n)), return_exceptions=True)


def test_concurrent_streams():
    t0 = time.time()
    res = asyncio.run(many_streams(500, 8))
    ok = sum(1 for x in res if x is True)
    errs = [x for x in res if x is not True][:3]
    check(ok == 500, f"500 concurrent streaming clients all complete ({ok} did, {time.time() - t0:.1f} s) {errs}")


def finished_before(s, done_marker):
    """Whether the answer had already ended (done_marker arrived) when the client hangs up: then the
    server finished it, and no abort is due. On loopback whatever the server sent is already here."""
    s.setblocking(False)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except BlockingIOError:
        pass
    return done_marker in got


def test_disconnect():
    """Returns how many of its two requests the server had not finished when their clients hung up."""
    body = json.dumps({"prompt": "go on", "max_tokens": 1500, "stream": True, "ignore_eos": True}).encode()
    s = connect()
    s.sendall(f"POST /v1/completions HTTP/1.1\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while got.count(b"data: ") < 3:
        got += s.recv(65536)
    # wait until a worker's load report shows the blocks this stream holds, so that tests/helpers/frontend.sh's later
    # "every block free" check proves they came back rather than never having been counted
    used = False
    t0 = time.time()
    while not used and time.time() - t0 < 5:
        _, _, m = request("GET /metrics HTTP/1.1\r\n\r\n")
        used = any(ln.startswith(b"pdserve:kv_cache_usage_perc") and not ln.endswith(b" 0.000000")
                   for ln in m.splitlines())
        time.sleep(0.05)
    due = 0 if finished_before(s, b"data: [DONE]") else 1
    s.close()
    check(used, "a long stream holds KV blocks (seen in /metrics); the client hangs up")
    # and a client waiting for a whole (non-streamed) answer that gives up
    body = json.dumps({"prompt": "wait for it", "max_tokens": 2000, "ignore_eos": True}).encode()
    s = connect()
    s.sendall(f"POST /v1/completions HTTP/1.1\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    running = False
    t0 = time.time()
    while not running and time.time() - t0 < 5:  # hang up while it is surely still generating
        _, _, m = request("GET /metrics HTTP/1.1\r\n\r\n")
        running = any(ln.startswith(b"pdserve:num_requests_running") and not ln.endswith(b" 0")
                      for ln in m.splitlines())
    due += 0 if finished_before(s, b"HTTP/1.1 200") else 1
    s.close()
    check(True, "a client waiting for a whole answer hangs up")
    return due


test_errors()
test_tokenize_and_metrics()
test_pipelined_and_chunked()
test_slowloris()
test_concurrent_streams()
aborts_due = test_disconnect()
print(f"{checks} checks, {failures} failed")
print(f"aborts due: {aborts_due}")
sys.exit(1 if failures else 0)
