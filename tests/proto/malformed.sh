#!/usr/bin/env bash
# Broken messages (short, bad magic, version, type, lying lengths and counts, bad enums, a 200 KB
# rendezvous-sized garbage blob) are rejected and counted by the receiver, which keeps serving.
. "$(dirname "$0")/../helpers/proto.sh"
for tls in $TLS_CHOICES; do
    set_tls "$tls"
    start_server srv 127.0.0.1:0
    client bad malformed "127.0.0.1:$PORT_srv" || die "[$tls] malformed client failed"
    sent=$(grep -o 'sent [0-9]*' "$TMP/bad.log" | awk '{print $2}')
    client echo echo "127.0.0.1:$PORT_srv" || die "[$tls] server stopped serving after malformed input"
    stop_server srv
    rejected=$(stat srv rejected)
    [ -n "$sent" ] && [ "$sent" -ge 10 ] || die "[$tls] client sent ${sent:-no} malformed messages"
    [ "$rejected" = "$sent" ] || die "[$tls] sent $sent malformed messages, server counted $rejected"
    echo "[$tls] $sent malformed messages sent, $rejected rejected and counted"
done
echo PASS
