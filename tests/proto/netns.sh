#!/usr/bin/env bash
# Two network namespaces joined by a veth pair: messages and KV transfers between them over each
# UCX_TLS choice, then the link is cut (tcp only: shared memory does not cross the cable) and both
# sides must report the loss within seconds (UCX_KEEPALIVE_INTERVAL and UCX_TCP_KEEP* defaults).
# Needs CAP_NET_ADMIN; exits 77 (skip) with the reason when namespaces cannot be made.
. "$(dirname "$0")/../helpers/proto.sh"
A=pdwA$$ B=pdwB$$ VA=pdva$$ VB=pdvb$$
if ! out=$(ip netns add "$A" 2>&1); then
    echo "cannot create a network namespace here (ip netns add: $out); needs root or CAP_NET_ADMIN"
    exit 77
fi
trap 'cleanup; ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null' EXIT
ip netns add "$B" || die "ip netns add $B"
ip link add "$VA" type veth peer name "$VB" || die "cannot create a veth pair"
ip link set "$VA" netns "$A" && ip link set "$VB" netns "$B" || die "cannot move the veth ends"
ip -n "$A" addr add 10.199.0.1/24 dev "$VA" && ip -n "$B" addr add 10.199.0.2/24 dev "$VB" || die "addresses"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "$VA" up && ip -n "$B" link set "$VB" up || die "link up"
LIMIT=${CUT_LIMIT_SECONDS:-20}

for tls in $TLS_CHOICES; do
    set_tls "$tls"
    NS=$A start_server srv 10.199.0.1:0 --layers 4 --blocks 64 --block-bytes 16384
    NS=$B client echo echo "10.199.0.1:$PORT_srv" || die "[$tls] echo across namespaces failed"
    NS=$B client kv kv "10.199.0.1:$PORT_srv" --requests 30 --inflight 3 --max-blocks 30 || die "[$tls] KV across namespaces failed"
    stop_server srv
    [ "$(stat srv kv_bad)" = 0 ] && [ "$(stat srv kv_ok)" = 30 ] || die "[$tls] receiver verified $(stat srv kv_ok) of 30"
    echo "[$tls] across namespaces: $(grep -h 'came back\|verified' "$TMP/echo.log" "$TMP/kv.log" | tr '\n' ' ')"
done

set_tls tcp
NS=$A start_server cut 10.199.0.1:0 --layers 4 --blocks 256 --block-bytes 65536
NS=$B start_client victim kv "10.199.0.1:$PORT_cut" --requests 1000000 --inflight 2 --max-blocks 16
wait_for "$TMP/victim.log" "lane" 30 || die "client in $B never connected"
sleep 1
ip -n "$B" link set "$VB" down
t0=$SECONDS
wait_for "$TMP/victim.log" "server lost" "$LIMIT" || die "[tcp] client did not notice the cut link in ${LIMIT}s"
echo "[tcp] link cut: client reported it after $((SECONDS - t0))s: $(grep -m1 'server lost' "$TMP/victim.log")"
wait_for "$TMP/cut.log" "^peer lost" "$LIMIT" || die "[tcp] server did not notice the cut link in ${LIMIT}s"
echo "[tcp] link cut: server reported it after $((SECONDS - t0))s: $(grep -m1 '^peer lost' "$TMP/cut.log")"
wait "$CPID_victim"
[ $? = 3 ] || die "client should exit 3 (peer lost)"
stop_server cut
echo PASS
