#!/usr/bin/env python3
"""security.py — raw-HTTP requests for tests/frontend/security.sh against a frontend (with workers)
started with API keys, --max-header-bytes 8192, --max-body-bytes 65536, at PDSERVE_LOG=debug:

* right keys from each source are accepted; wrong, missing and malformed keys get 401 with OpenAI's
  error body and `WWW-Authenticate: Bearer`; /health and /metrics need no key and show none;
* the limits added for hardening answer with OpenAI-shaped 4xx (stop string length, chunk
  extensions);
* every request carries MARKER (prompts, chat messages, stop strings, bad JSON, bad templates,
  headers, paths, oversized bodies) so that security.sh can check no daemon logged it.

usage: security.py PORT MARKER WRONG_KEY KEY...   (prints ok/FAIL lines, exits 1 on any FAIL)"""
import json
import socket
import sys

PORT = int(sys.argv[1])
MARKER = sys.argv[2]
WRONG = sys.argv[3]
KEYS = sys.argv[4:]
failures = checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    failures += 0 if cond else 1
    print(("ok   " if cond else "FAIL ") + what, flush=True)


def request(raw):
    """Sends raw bytes on a new connection; returns (status, headers, body) of the one answer."""
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(20)
    s.sendall(raw if isinstance(raw, bytes) else raw.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
    else:  # chunked (a stream): read to the last chunk (it may have come with the head already)
        while not body.endswith(b"0\r\n\r\n"):
            d = s.recv(65536)
            if not d:
                break
            body += d
    s.close()
    return status, headers, body


def post(path, body, key=None, extra=""):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = f"Authorization: Bearer {key if key is not None else KEYS[0]}\r\n" if key != "" else ""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}{extra}Content-Type: application/json\r\n"
    return request(head.encode() + f"Content-Length: {len(b)}\r\n\r\n".encode() + b)


def openai_error(resp, status, code=None, param=None):
    st, _, body = resp
    try:
        err = json.loads(body)["error"]
        shaped = set(err) == {"message", "type", "param", "code"} and err["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return st == status and shaped and (code is None or err["code"] == code) and (param is None or err["param"] == param)


def test_keys():
    good = {"prompt": f"{MARKER} hello", "max_tokens": 2}
    for i, k in enumerate(KEYS):
        st, _, body = post("/v1/completions", good, key=k)
        check(st == 200 and json.loads(body)["object"] == "text_completion", f"key #{i + 1} accepted ({st})")
    bad = {
        "missing": "",
        "wrong": WRONG,
        "a right key's prefix": KEYS[0][:-1],
        "a right key plus a byte": KEYS[0] + "x",
        "right key, other case": KEYS[0].upper() if KEYS[0].upper() != KEYS[0] else KEYS[0].lower(),
    }
    for what, k in bad.items():
        r = post("/v1/completions", good, key=k)
        check(openai_error(r, 401, code="invalid_api_key") and r[1].get("www-authenticate") == "Bearer",
              f"{what} key: 401 invalid_api_key with WWW-Authenticate ({r[0]} {r[2][:100]!r})")
    for what, header in {"Basic scheme": f"Basic {WRONG}", "no key after Bearer": "Bearer",
                         "Bearer and nothing": "Bearer ", "two spaces": f"Bearer  {KEYS[0]}",
                         "key without scheme": KEYS[0], "wrong key with a NUL-ish tail": f"Bearer {WRONG}%00"}.items():
        r = post("/v1/completions", good, key="", extra=f"Authorization: {header}\r\n")
        check(openai_error(r, 401, code="invalid_api_key"), f"malformed Authorization ({what}): 401 ({r[0]})")
    for path in ["/v1/models", "/tokenize", "/detokenize", "/v1/chat/completions"]:
        method = "GET" if path == "/v1/models" else "POST"
        r = request(f"{method} {path} HTTP/1.1\r\nAuthorization: Bearer {WRONG}\r\nContent-Length: 2\r\n\r\n{{}}")
        check(openai_error(r, 401), f"{path} needs a key ({r[0]})")
    st, _, _ = request("GET /health HTTP/1.1\r\n\r\n")
    check(st == 200, "/health needs no key")
    st, _, body = request("GET /metrics HTTP/1.1\r\n\r\n")
    text = body.decode()
    check(st == 200 and "pdserve:http_requests_total" in text and not any(k in text for k in KEYS + [WRONG]),
          "/metrics needs no key and shows none")


def test_limits():
    r = post("/v1/completions", {"prompt": "x", "max_tokens": 1, "stop": [MARKER, MARKER * (1024 // len(MARKER) + 1)]})
    check(openai_error(r, 400, param="stop"), f"a stop string over 1024 bytes: 400 param=stop ({r[0]})")
    body = json.dumps({"prompt": f"{MARKER}", "max_tokens": 1}).encode()
    ext = f";{MARKER}=" + "e" * 9000
    r = request((f"POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEYS[0]}\r\nTransfer-Encoding: chunked\r\n\r\n"
                 f"{len(body):x}{ext}\r\n").encode() + body + b"\r\n0\r\n\r\n")
    check(openai_error(r, 431), f"9000 bytes of chunk extensions: 431 ({r[0]} {r[2][:100]!r})")
    r = request((f"POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer {KEYS[0]}\r\nTransfer-Encoding: chunked\r\n\r\n"
                 f"{len(body):x};a=b\r\n").encode() + body + b"\r\n0\r\n\r\n")
    check(r[0] == 200, f"a short chunk extension is fine ({r[0]})")


def test_marked_requests():
    """Requests whose text carries MARKER; their answers may quote it back (that is the client's own
    input), the logs must not."""
    ok = lambda r: r[0] == 200
    check(ok(post("/v1/completions", {"prompt": f"say {MARKER}", "max_tokens": 4, "stop": [MARKER, "\n"]})),
          "completion with the marker in prompt and stop")
    check(ok(post("/v1/completions", {"prompt": [f"{MARKER} one", f"two {MARKER}"], "max_tokens": 2, "stream": True,
                                      "echo": True})), "streamed, echoed completion of two prompts")
    check(ok(post("/v1/chat/completions", {"messages": [{"role": "system", "content": f"You are {MARKER}."},
                                                        {"role": "user", "content": [{"type": "text", "text": MARKER}]}],
                                           "max_tokens": 3, "stop": MARKER, "stream": True})),
          "streamed chat with the marker in messages and stop")
    check(ok(post("/tokenize", {"prompt": MARKER})) and ok(post("/tokenize", {"messages": [{"role": "user",
                                                                                           "content": MARKER}]})),
          "/tokenize of the marker")
    r = post("/v1/completions", f'{{"prompt": "{MARKER}", '.encode())
    check(openai_error(r, 400, code="invalid_json"), "bad JSON holding the marker: 400")
    r = post("/v1/completions", f'{{"prompt": "{MARKER}", "{MARKER}": 1, "{MARKER}": 2}}'.encode())
    check(openai_error(r, 400), "duplicate keys named like the marker: 400")
    r = post("/v1/chat/completions", {"messages": [{"role": "user", "content": {MARKER: MARKER}}]})
    check(r[0] in (200, 400), f"chat content the template may refuse ({r[0]})")
    r = post("/v1/chat/completions", {"messages": [{"role": MARKER}], "chat_template_kwargs": {MARKER: [MARKER]},
                                      "tools": [{"type": "function", "function": {"name": MARKER}}]})
    check(r[0] in (200, 400), f"chat with marker role, kwargs and tools ({r[0]})")
    r = post("/v1/completions", {"prompt": MARKER, "top_p": MARKER})
    check(openai_error(r, 400, param="top_p"), "a field of the wrong type holding the marker: 400")
    r = post("/v1/completions", {"prompt": MARKER, "model": MARKER})
    check(openai_error(r, 404, param="model"), "an unknown model named like the marker: 404")
    r = post("/v1/completions", {"prompt": MARKER * 10000})
    check(openai_error(r, 413), "a body over --max-body-bytes full of the marker: 413")
    r = request(f"GET /v1/{MARKER}?{MARKER}=1 HTTP/1.1\r\nX-{MARKER}: {MARKER}\r\n\r\n")
    check(openai_error(r, 404), "an unknown path named like the marker: 404")
    r = request(f"GET /health HTTP/1.1\r\nX-Big: {MARKER * 2000}\r\n\r\n")
    check(openai_error(r, 431), "headers over --max-header-bytes full of the marker: 431")
    r = request(f"{MARKER} / HTTP/1.1\r\n\r\n")
    check(openai_error(r, 400), "a method named like the marker: 400")
    r = post("/detokenize", {"tokens": [MARKER]})
    check(openai_error(r, 400, param="tokens"), "/detokenize of the marker: 400")


test_keys()
test_limits()
test_marked_requests()
print(f"{checks} checks, {failures} failed")
sys.exit(1 if failures else 0)
