#!/usr/bin/env bash
# hostile_netns.sh — the attacks of hostile.sh from another host: three network namespaces on a
# bridge — the frontend's (10.198.0.1), the workers' (.2) and an attacker's (.3) — a cluster key, UCX
# over tcp on the veths. From .3: the sockcm-shaped packet, random bytes and junk to the frontend's
# cluster port and to UCX's own listener; 5,000 idle connections held open while a new worker joins
# from .2 within 2 s (the per-source cap keeps the flood to the attacker's own slots); a worker
# without the key (--insecure-cluster) and a handshake with a wrong key, refused with a log line
# naming 10.198.0.3. Afterwards the daemons serve and their fds are back at the baseline. Needs
# CAP_NET_ADMIN; exits 77 (skip) with the reason when namespaces cannot be made.
set -uo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
T=pdh$$
WORK=$(mktemp -d)
NET=10.198.0
declare -A IP=([fe]=$NET.1 [w]=$NET.2 [x]=$NET.3)
PIDS=()
if ! out=$(ip netns add "${T}sw" 2>&1); then
    rm -rf "$WORK"
    echo "cannot create a network namespace here (ip netns add: $out); needs root or CAP_NET_ADMIN"
    exit 77
fi
cleanup() {
    local p ns
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    for ns in sw fe w x; do ip netns del "$T$ns" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "logs kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
fail() { echo "FAIL $*"; for f in "$WORK"/*.log; do echo "--- $(basename "$f")"; tail -n 8 "$f"; done; exit 1; }
in_ns() { local n=$1; shift; ip netns exec "$T$n" "$@"; }

ip -n "${T}sw" link add br0 type bridge && ip -n "${T}sw" link set br0 up || fail "cannot create a bridge"
for n in fe w x; do
    ip netns add "$T$n" || fail "ip netns add $T$n"
    ip -n "${T}sw" link add "v$n" type veth peer name eth0 netns "$T$n" || fail "veth for $n"
    ip -n "${T}sw" link set "v$n" master br0 up && ip -n "$T$n" link set lo up &&
        ip -n "$T$n" addr add "${IP[$n]}/24" dev eth0 && ip -n "$T$n" link set eth0 up || fail "addressing $n"
done
$BUILD/pdserve-mkmodel --out "$WORK/model" --preset tiny --seed 5 >/dev/null 2>&1 || fail "pdserve-mkmodel"
head -c 32 /dev/urandom | base64 >"$WORK/key" && chmod 600 "$WORK/key"
head -c 32 /dev/urandom | base64 >"$WORK/wrong.key"
export UCX_TLS=tcp UCX_NET_DEVICES=eth0

# start NAME NS CMD...: a daemon in namespace NS; its pid in PID_NAME.
start() {
    local name=$1 ns=$2; shift 2
    ip netns exec "$T$ns" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}
FE=${IP[fe]}:9000
start fe fe $BUILD/pdserve-frontend --model "$WORK/model" --host 127.0.0.1 --port 8000 --ucx-host ${IP[fe]} \
    --ucx-port 9000 --cluster-key-file "$WORK/key"
worker() { # NAME ROLE ID [FLAGS...]
    local name=$1 role=$2 id=$3; shift 3
    start "$name" w $BUILD/pdserve-$role --model "$WORK/model" --frontend $FE --id $id --kv-blocks 256 \
        --load-interval-ms 100 "$@"
}
worker pre prefill 1 --cluster-key-file "$WORK/key"
worker dec decode 1 --cluster-key-file "$WORK/key" --listen ${IP[w]}:9100
complete() { in_ns fe curl -s -o /dev/null -w '%{http_code}' --max-time 30 http://127.0.0.1:8000/v1/completions \
             -d '{"prompt":"hello","max_tokens":4}'; }
for _ in $(seq 300); do [ "$(complete)" = 200 ] && break; sleep 0.1; done
[ "$(complete)" = 200 ] || fail "the cluster does not serve"
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
sleep 1
BASE_FE=$(fds $PID_fe)
OWN=$(in_ns fe ss -Hltnp | grep "pid=$PID_fe," | awk '{print $4}' | grep "^${IP[fe]}:" | sed 's/.*://' | grep -vx 9000 | head -1)
[ -n "$OWN" ] || fail "no UCX tcp listener of the frontend on ${IP[fe]}"
echo "ok   cluster up across namespaces; frontend cluster port 9000, UCX's own listener $OWN, fds $BASE_FE"

ATTACK="ip netns exec ${T}x env HOSTILE_HOST=${IP[fe]} python3 tests/proto/hostile.py"
for port in 9000 $OWN; do
    $ATTACK sockcm $port >/dev/null
    $ATTACK random $port 10 2048 >/dev/null
    $ATTACK random $port 20 300000 >/dev/null
done
$ATTACK truncated 9000 >/dev/null
$ATTACK oversized 9000 >/dev/null || fail "an oversized handshake header was not refused at once"
for d in fe pre dec; do v="PID_$d"; kill -0 "${!v}" 2>/dev/null || fail "$d died"; done
echo "ok   from ${IP[x]}: sockcm-shaped packet, random bytes, junk, truncated and oversized handshakes: all alive"

$ATTACK idle 9000 5000 8 >"$WORK/idle.txt" &
IDLE=$!
PIDS+=($IDLE)
for _ in $(seq 300); do grep -q "connections open" "$WORK/idle.txt" && break; sleep 0.1; done
grep -q "idle: 5000 connections open" "$WORK/idle.txt" || fail "idle: $(cat "$WORK/idle.txt")"
t0=$EPOCHREALTIME
worker new decode 2 --cluster-key-file "$WORK/key" --listen ${IP[w]}:9101
until grep -q "decode worker 2 registered" "$WORK/fe.log"; do
    ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
    [ "$ms" -le 6000 ] || break
    sleep 0.02
done
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
[ "$ms" -le 2000 ] || fail "a worker from ${IP[w]} joined only after $ms ms while ${IP[x]} held 5000 connections"
echo "ok   while ${IP[x]} holds 5000 idle connections (frontend fds $(fds $PID_fe)), a worker from ${IP[w]} joined in $ms ms"
grep -q "unauthenticated connections from ${IP[x]}: closing the oldest" "$WORK/fe.log" ||
    fail "no log line about the per-source cap"
wait $IDLE
kill -TERM $PID_new; wait $PID_new

$ATTACK wrongkey 9000 "$WORK/wrong.key" >/dev/null || fail "a wrong key was not refused"
start nokey x $BUILD/pdserve-decode --model "$WORK/model" --frontend $FE --id 9 --kv-blocks 64 --insecure-cluster
sleep 2.5
kill -KILL $PID_nokey; wait $PID_nokey 2>/dev/null
grep -q "decode worker 9 registered" "$WORK/fe.log" && fail "a worker without the key registered"
grep -q "refused the peer at ${IP[x]}:[0-9]*: its handshake does not match" "$WORK/fe.log" ||
    fail "no log line names ${IP[x]} as refused"
grep -q "refused by $FE" "$WORK/nokey.log" || fail "the refused worker does not say why"
echo "ok   a wrong-key handshake and a keyless worker (--insecure-cluster) from ${IP[x]}: refused, logged with its address"

for _ in $(seq 100); do [ "$(fds $PID_fe)" -le $((BASE_FE + 1)) ] && break; sleep 0.1; done
[ "$(fds $PID_fe)" -le $((BASE_FE + 1)) ] || fail "frontend fds $(fds $PID_fe), baseline $BASE_FE"
[ "$(complete)" = 200 ] || fail "a request failed after the attacks"
echo "ok   afterwards: serving, frontend fds $(fds $PID_fe) (baseline $BASE_FE), log $(wc -l <"$WORK/fe.log") lines"
echo PASS
