#!/usr/bin/env bash
# A receiver SIGKILLed and restarted on the same port at once (UCX_TCP_CM_REUSEADDR): it can listen
# again immediately, and the sender reconnects and finishes all its transfers.
. "$(dirname "$0")/../helpers/proto.sh"
POOL="--layers 4 --blocks 128 --block-bytes 65536"
# A port below the kernel's ephemeral range: one taken from that range can meanwhile become the source
# port of one of the sender's reconnection attempts, and then nothing can listen on it (seen once
# under ASan, where the restart is slow).
for tls in $TLS_CHOICES; do
    set_tls "$tls"
    port=$(/usr/bin/python3 tests/helpers/free_port.py)
    start_server srv "127.0.0.1:$port" $POOL
    start_client sender kv "127.0.0.1:$port" --requests 400 --inflight 2 --max-blocks 16 --reconnect \
        --pace-ms 10 # >= 2 s in all, so the restart lands mid-run
    wait_for "$TMP/sender.log" "lane" 30 || die "[$tls] sender never connected"
    sleep 1
    kill -KILL "$SPID_srv"
    start_server srv2 "127.0.0.1:$port" $POOL
    [ "$PORT_srv2" = "$port" ] || die "[$tls] restarted server is on port $PORT_srv2, not $port"
    wait "$CPID_sender" || die "[$tls] sender did not finish after the restart"
    grep -q "server lost" "$TMP/sender.log" || die "[$tls] sender never saw the restart"
    stop_server srv2
    [ "$(stat srv2 kv_ok)" -gt 0 ] || die "[$tls] no transfer reached the restarted server"
    [ "$(stat srv2 kv_bad)" = 0 ] || die "[$tls] corrupted KV data"
    echo "[$tls] restarted on port $port; $(stat srv2 kv_ok) transfers verified by the new server"
done
echo PASS
