#!/usr/bin/env bash
# A daemon started before its network interface is up (at boot, before the link or its address):
# UCX lists the devices once, in ucp_init, and one that is down then stays unused, so the daemon
# would reach no peer ("Destination is unreachable") for its whole life. With UCX_NET_DEVICES naming
# that interface, ucx_create waits until it is up with an address: here the server starts with its
# link down, the link comes up 2 s later, and an echo across the namespaces must then work.
# Needs CAP_NET_ADMIN; exits 77 (skip) with the reason when namespaces cannot be made.
. "$(dirname "$0")/../helpers/proto.sh"
A=pdlA$$ B=pdlB$$ VA=pdla$$ VB=pdlb$$
if ! out=$(ip netns add "$A" 2>&1); then
    echo "cannot create a network namespace here (ip netns add: $out); needs root or CAP_NET_ADMIN"
    exit 77
fi
trap 'cleanup; ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null' EXIT
ip netns add "$B" || die "ip netns add $B"
ip link add "$VA" netns "$A" type veth peer name "$VB" netns "$B" || die "cannot create a veth pair"
ip -n "$A" addr add 10.198.0.1/24 dev "$VA" && ip -n "$B" addr add 10.198.0.2/24 dev "$VB" || die "addresses"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "$VA" up || die "link up"
export UCX_TLS=tcp,self,sysv,posix   # as in deploy/examples/three-node: with only tcp, ucp_init would fail outright

# The server's side of the link is still down when it starts; it comes up 2 s later.
(sleep 2; ip -n "$B" link set "$VB" up) &
UP=$!
UCX_NET_DEVICES=$VB NS=$B start_server srv 10.198.0.2:0
wait $UP
grep -q "waiting for a device of UCX_NET_DEVICES=$VB" "$TMP/srv.log" || die "the server did not wait for $VB"
grep -q "is up after" "$TMP/srv.log" || die "no line saying the device came up"
UCX_NET_DEVICES=$VA NS=$A client echo echo "10.198.0.2:$PORT_srv" || die "echo across the namespaces failed after the link came up"
echo "ok   started with its link down, the server waited ($(grep -o 'is up after [0-9.]* s' "$TMP/srv.log")), then served an echo from the other namespace"

# A name that is no interface here is UCX's to judge: no waiting, UCX's own error at once.
t0=$SECONDS
UCX_NET_DEVICES=nosuchdev0 NS=$A client bad echo "10.198.0.2:$PORT_srv" && die "a client with UCX_NET_DEVICES=nosuchdev0 succeeded"
[ $((SECONDS - t0)) -lt 5 ] && ! grep -q "waiting for a device" "$TMP/bad.log" || die "waited for an interface that does not exist"
echo "ok   UCX_NET_DEVICES=nosuchdev0: no waiting, UCX's error at once"
stop_server srv
echo PASS
