#!/usr/bin/env python3
"""chaos.py — 400 concurrent clients with a seeded random mix: streamed or whole, n 1 or 2, stop strings,
logprobs, greedy or sampled, and 30% hanging up at a random point. Every client that stays must get a
200. usage: chaos.py PORT"""
import asyncio, json, random, sys
PORT = int(sys.argv[1])
async def one(i):
    r = random.Random(i)
    stream = r.random() < 0.6
    body = {"prompt": f"chaos {i} " * r.randint(1, 30), "max_tokens": r.randint(1, 120), "ignore_eos": r.random() < 0.5,
            "temperature": r.choice([0, 0.7, 1.0]), "n": r.choice([1, 1, 2]), "stream": stream}
    if r.random() < 0.3: body["stop"] = ["e", "th"]
    if r.random() < 0.2: body["logprobs"] = 1
    b = json.dumps(body).encode()
    rd, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(f"POST /v1/completions HTTP/1.1\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b)
    await w.drain()
    cut = r.random() < 0.3
    data = b""
    try:
        while not complete(data, stream):
            d = await asyncio.wait_for(rd.read(65536), 120)  # generous: ASan on a busy machine
            if not d:
                break
            data += d
            if cut and len(data) > r.randint(10, 400):
                return True  # hangs up; the server must abort its work
    finally:
        w.close()
    return data.startswith(b"HTTP/1.1 200") and complete(data, stream)


def complete(data, stream):
    """A whole streamed (chunked, ends with [DONE] and the last chunk) or Content-Length response."""
    if stream:
        return b"data: [DONE]" in data and data.endswith(b"0\r\n\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = [int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
    return bool(length) and len(body) >= length[0]


async def main():
    res = await asyncio.gather(*(one(i) for i in range(400)), return_exceptions=True)
    bad = [x for x in res if x is not True]
    print(f"{len(res) - len(bad)} of {len(res)} clients ok; bad: {bad[:3]}")
    sys.exit(1 if bad else 0)
asyncio.run(main())
