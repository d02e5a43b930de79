#!/usr/bin/env bash
# Two processes, every message type and every message size from 30 bytes to 16 KiB round-trips
# identical (plus one 4 MiB message, large enough for UCX's rendezvous protocol), over each UCX_TLS
# choice. The server must reject nothing.
. "$(dirname "$0")/../helpers/proto.sh"
for tls in $TLS_CHOICES; do
    set_tls "$tls"
    start_server srv 127.0.0.1:0
    client echo echo "127.0.0.1:$PORT_srv" || die "[$tls] echo client failed"
    grep -q "came back identical" "$TMP/echo.log" || die "[$tls] no echo result"
    client sizes sizes "127.0.0.1:$PORT_srv" || die "[$tls] sizes client failed"
    stop_server srv
    [ "$(stat srv rejected)" = 0 ] || die "[$tls] server rejected valid messages"
    echo "[$tls] $(grep -h 'came back' "$TMP/echo.log" "$TMP/sizes.log" | tr '\n' ' ')"
    grep -m1 'lane\[1\]' "$TMP/echo.log"
done
echo PASS
