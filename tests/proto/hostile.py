#!/usr/bin/env python3
"""hostile.py — an attacker on the cluster network, for tests/proto/hostile.sh. Each command attacks
one port of HOSTILE_HOST (default 127.0.0.1): the peer port of a daemon, or one of UCX's own tcp
listeners; it prints one line saying what it did. It knows the handshake's framing (proto/handshake.h) only as far as an attacker could.

  random PORT N BYTES         N connections, each sends BYTES random bytes and closes
  sockcm PORT                 the packet that aborted UCX 1.13's sockcm listener: size_t 16, 8 zero
                              bytes, then 2 KiB
  truncated PORT              handshake frames cut short: a header only, half a HELLO, then close
  oversized PORT              headers that promise huge or wrong payloads
  idle PORT N SECONDS         N connections that send nothing, held open SECONDS, then closed
  wrongkey PORT KEYFILE       a full handshake with a key that is not the cluster's: must be refused
  replay PORT LISTEN KEYFILE  relays one real worker's handshake from LISTEN to PORT, recording it,
                              then replays the recorded HELLO and AUTH on a new connection
"""
import hashlib
import hmac
import os
import resource
import select
import socket
import struct
import sys
import threading
import time

HOST = os.environ.get("HOSTILE_HOST", "127.0.0.1")  # the address attacked
MAGIC, VERSION = 0x48534450, 1
HELLO, CHALLENGE, AUTH, WELCOME, REFUSE = 1, 2, 3, 4, 5


def frame(typ, payload):
    return struct.pack("<IHHI", MAGIC, VERSION, typ, len(payload)) + payload


def read_frame(s, timeout=5.0):
    s.settimeout(timeout)
    hdr = b""
    while len(hdr) < 12:
        c = s.recv(12 - len(hdr))
        if not c:
            return None, None
        hdr += c
    _, _, typ, n = struct.unpack("<IHHI", hdr)
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            return None, None
        body += c
    return typ, body


def connect(port):
    return socket.create_connection((HOST, port), timeout=5)


def cmd_random(port, n, nbytes):
    sent = 0
    for _ in range(int(n)):
        s = connect(port)
        try:
            s.sendall(os.urandom(int(nbytes)))
            sent += 1
        except OSError:
            pass  # the daemon closed it first: what it should do
        s.close()
    print(f"random: {n} connections, {nbytes} bytes each ({sent} fully sent)")


def cmd_sockcm(port):
    s = connect(port)
    try:
        s.sendall(struct.pack("<Q", 16) + b"\0" * 8 + os.urandom(2048))
        time.sleep(0.3)
    except OSError:
        pass
    s.close()
    print("sockcm: sent the sockcm-shaped packet")


def cmd_truncated(port):
    for data in (frame(HELLO, os.urandom(32))[:12], frame(HELLO, os.urandom(32))[:28], b"PDSH"):
        s = connect(port)
        s.sendall(data)
        time.sleep(0.1)
        s.close()
    print("truncated: header only, half a HELLO, half a header")


def cmd_oversized(port):
    hdrs = [struct.pack("<IHHI", MAGIC, VERSION, AUTH, 1 << 30), struct.pack("<IHHI", MAGIC, VERSION, HELLO, 33),
            struct.pack("<IHHI", MAGIC, VERSION, 99, 32), struct.pack("<IHHI", MAGIC, 7, HELLO, 32),
            struct.pack("<IHHI", MAGIC, VERSION, REFUSE, 0xFFFFFFFF)]
    closed = 0
    for h in hdrs:
        s = connect(port)
        try:
            s.sendall(h + os.urandom(4096))
            s.settimeout(5)
            closed += s.recv(1) == b""  # the daemon must close at once, not wait for 1 GiB
        except OSError:
            closed += 1
        s.close()
    print(f"oversized: {closed}/{len(hdrs)} closed by the daemon right after the header")
    if closed != len(hdrs):
        sys.exit(1)


def cmd_idle(port, n, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, int(n) + 256), hard))
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(socket.create_connection((HOST, port), timeout=5))
        except OSError as e:
            print(f"idle: connect {len(socks)} failed: {e}")
            break
    print(f"idle: {len(socks)} connections open", flush=True)
    time.sleep(float(seconds))
    for s in socks:
        s.close()
    print("idle: closed")


def mac(key, label, nc, ns, token, addr):
    return hmac.new(key, label + nc + ns + struct.pack("<Q", token) + addr, hashlib.sha256).digest()


def cmd_wrongkey(port, keyfile):
    key = open(keyfile, "rb").read().rstrip()
    s = connect(port)
    nc = os.urandom(32)
    s.sendall(frame(HELLO, nc))
    typ, ns = read_frame(s)
    if typ != CHALLENGE:
        sys.exit(f"wrongkey: expected CHALLENGE, got {typ}")
    addr = os.urandom(200)
    m = mac(key, b"pdserve-hs1 client", nc, ns, 42, addr)
    s.sendall(frame(AUTH, m + struct.pack("<QI", 42, len(addr)) + addr))
    typ, body = read_frame(s)
    if typ != REFUSE:
        sys.exit(f"wrongkey: expected REFUSE, got {typ}")
    print(f"wrongkey: refused: {body[4:].decode()}")
    s.close()


def relay_once(listen_port, port, record):
    """Accepts one connection on listen_port and relays it to port, recording client frames."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    cli, _ = srv.accept()
    up = connect(port)
    up.settimeout(None)
    buf = b""
    while True:
        r, _, _ = select.select([cli, up], [], [], 30)
        if not r:
            break
        for s in r:
            data = s.recv(65536)
            if not data:
                return
            (up if s is cli else cli).sendall(data)
            if s is cli:
                buf += data
                record[:] = [buf]


def cmd_replay(port, listen_port, keyfile):
    record = [b""]
    t = threading.Thread(target=relay_once, args=(int(listen_port), int(port), record), daemon=True)
    t.start()
    print("replay: relay ready", flush=True)
    deadline = time.time() + 30
    while time.time() < deadline and len(record[0]) < 12 + 32 + 12 + 44:
        time.sleep(0.1)
    time.sleep(0.5)
    hello_auth = record[0]
    if len(hello_auth) < 12 + 32 + 12 + 45:
        sys.exit(f"replay: recorded only {len(hello_auth)} bytes of the worker's handshake")
    s = connect(port)
    s.sendall(hello_auth[:44])
    typ, _ = read_frame(s)
    s.sendall(hello_auth[44:])
    typ, body = read_frame(s)
    if typ != REFUSE:
        sys.exit(f"replay: the replayed AUTH was not refused (got {typ})")
    print(f"replay: a recorded HELLO+AUTH ({len(hello_auth)} bytes) replayed: refused: {body[4:].decode()}")


if __name__ == "__main__":
    cmds = {"random": cmd_random, "sockcm": cmd_sockcm, "truncated": cmd_truncated, "oversized": cmd_oversized,
            "idle": cmd_idle, "wrongkey": cmd_wrongkey, "replay": cmd_replay}
    args = sys.argv[1:]
    if not args or args[0] not in cmds:
        sys.exit(__doc__)
    cmds[args[0]](*[int(args[1])] + args[2:])
