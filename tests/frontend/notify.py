#!/usr/bin/env python3
"""notify.py — the frontend speaks systemd's notify protocol: READY=1 once listening, STATUS=,
WATCHDOG=1 about twice per WatchdogSec, STOPPING=1 on SIGTERM, then exit 0.
usage: notify.py FRONTEND_BINARY MODEL_DIR HTTP_PORT UCX_PORT"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

binary, model, http_port, ucx_port = sys.argv[1:5]
failures = 0


def check(cond, what):
    global failures
    failures += not cond
    print(("ok   " if cond else "FAIL ") + what, flush=True)


path = os.path.join(tempfile.mkdtemp(), "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(0.2)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
proc = subprocess.Popen([binary, "--model", model, "--port", http_port, "--ucx-port", ucx_port],
                        env=env, stderr=subprocess.DEVNULL)
msgs = []


def collect(seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            msgs.extend(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            pass


try:
    collect(2.0)
    check("READY=1" in msgs, "READY=1 once listening")
    check(any(m.startswith("STATUS=") and "waiting for workers" in m for m in msgs), "STATUS= says it waits for workers")
    pings = msgs.count("WATCHDOG=1")
    check(pings >= 6, f"WATCHDOG=1 about every 200 ms for WATCHDOG_USEC=400000 ({pings} in ~2 s)")
    proc.send_signal(signal.SIGTERM)
    collect(1.0)
    check("STOPPING=1" in msgs, "STOPPING=1 on SIGTERM")
    check(proc.wait(timeout=10) == 0, "exit 0")
finally:
    if proc.poll() is None:
        proc.kill()
sys.exit(1 if failures else 0)
