#!/usr/bin/python3
"""free_port.py [USED_FILE] — prints a TCP port that is free on 127.0.0.1 now, for a test daemon to
listen on a moment later.

The port is below the kernel's ephemeral range. One the kernel handed out from that range (bind to
port 0) can meanwhile be handed out again to any socket bound to port 0 or connecting out — UCX
opens such sockets while a daemon starts, before that daemon listens on the port it was given — and
then the daemon cannot listen ("address already in use"; seen in CI). Below the range, only another
test's explicit choice can take it. USED_FILE, when given, lists the ports already handed out to this
test, one a line; the new one is never one of them and is appended."""
import random
import socket
import sys

lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
used = set()
if len(sys.argv) > 1:
    try:
        used = {int(line) for line in open(sys.argv[1]) if line.strip()}
    except FileNotFoundError:
        pass
for _ in range(1000):
    port = random.randrange(max(1024, lo - 12000), lo)
    if port in used:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "a") as f:
            f.write(f"{port}\n")
    print(port)
    sys.exit(0)
sys.exit("free_port.py: no free port below the ephemeral range")
