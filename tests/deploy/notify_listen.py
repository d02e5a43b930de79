#!/usr/bin/env python3
"""notify_listen.py SOCKET LOG — plays systemd's side of sd_notify for the deploy tests: binds the
datagram socket a daemon finds in $NOTIFY_SOCKET and appends every assignment it sends (READY=1,
STATUS=..., WATCHDOG=1, STOPPING=1) to LOG, one a line with the time, until killed."""
import os
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1, encoding="utf-8") as out:
    out.write(f"{time.time():.3f} LISTENING\n")
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        for line in data.split("\n"):
            if line:
                out.write(f"{time.time():.3f} {line}\n")
