#!/usr/bin/env bash
# hostile.sh — bytes from an attacker on the cluster network cannot crash a daemon, lock its workers
# out, pin its fds or join the cluster. A frontend, a prefill and a decode worker sharing a cluster key
# (all on loopback); tests/proto/hostile.py attacks the frontend's and the decode worker's peer ports
# (pdserve's control listener) and every TCP listener UCX itself opened in the three daemons: random
# bytes, the sockcm-shaped packet that aborted UCX 1.13's connection manager, truncated and oversized
# handshakes, 5,000 idle connections, junk that closes, a handshake with a wrong key, a recorded
# handshake replayed. While it runs, a client sends requests; none may fail. After each attack: every
# daemon is alive, a request succeeds, a new decode worker joins within 2 s, and every daemon's fd
# count is back at its baseline. Workers without the key, or with another, are refused with a log line
# naming their address; a non-loopback cluster address without a key is refused at start.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
ATTACK="python3 tests/proto/hostile.py"
KEY="$WORK/cluster.key"
head -c 32 /dev/urandom | base64 >"$KEY"
chmod 600 "$KEY"
head -c 32 /dev/urandom | base64 >"$WORK/wrong.key"
JOIN_LIMIT_MS=${JOIN_LIMIT_MS:-2000}

# A non-loopback cluster address needs a key (or --insecure-cluster).
rc=0
$BUILD/pdserve-frontend --model "$MODEL" --port 0 --ucx-host 0.0.0.0 --ucx-port 0 >"$WORK/nokey.txt" 2>&1 || rc=$?
grep -q "no cluster key" "$WORK/nokey.txt" && [ $rc != 0 ] ||
    { echo "FAIL a frontend on 0.0.0.0 without a key started (exit $rc):"; cat "$WORK/nokey.txt"; exit 1; }
rc=0
$BUILD/pdserve-decode --model "$MODEL" --frontend 192.0.2.1:9 >"$WORK/nokey-w.txt" 2>&1 || rc=$?
grep -q "no cluster key" "$WORK/nokey-w.txt" && [ $rc != 0 ] ||
    { echo "FAIL a worker with a non-loopback frontend and no key started (exit $rc):"; cat "$WORK/nokey-w.txt"; exit 1; }
echo "ok   no key: a frontend on 0.0.0.0 and a worker with a non-loopback --frontend refuse to start"

start_frontend --cluster-key-file "$KEY"
start pre $BUILD/pdserve-prefill --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 512 --cluster-key-file "$KEY"
start_decode dec --cluster-key-file "$KEY" --listen 127.0.0.1:0
wait_health 200

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
complete() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$BASE/v1/completions" -d '{"prompt":"hello","max_tokens":4}'; }
[ "$(complete)" = 200 ] || { echo "FAIL the first request did not succeed"; exit 1; }
sleep 1
DEC_PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/dec.log" | head -1 | sed 's/.*://')
declare -A BASE_FDS
for d in fe pre dec; do v="PID_$d"; BASE_FDS[$d]=$(fds "${!v}"); done
# Every TCP listener of the three daemons but the HTTP port: ours and UCX's own.
UCX_OWN=$(ss -Hltnp | grep -E "pid=($PID_fe|$PID_pre|$PID_dec)," | awk '{print $4}' | sed 's/.*://' |
          grep -v -x -e "$HTTP_PORT" -e "$UCX_PORT" -e "$DEC_PORT" | tr '\n' ' ')
echo "ok   cluster up; peer ports: frontend $UCX_PORT, decode $DEC_PORT; UCX's own listeners: $UCX_OWN;" \
     "fds fe/pre/dec ${BASE_FDS[fe]}/${BASE_FDS[pre]}/${BASE_FDS[dec]}"

# Requests all along: every one must succeed.
( n=0; while [ ! -e "$WORK/stop-load" ]; do
      code=$(complete); n=$((n + 1))
      [ "$code" = 200 ] || echo "request $n: HTTP $code" >>"$WORK/load-failures"
      echo $n >"$WORK/load-count"
  done ) &
LOAD=$!
PIDS+=($LOAD)

joins=0
# join_check WHAT: a new decode worker registers with the frontend within JOIN_LIMIT_MS; then it leaves.
join_check() {
    joins=$((joins + 1))
    local id=$((7000 + joins)) t0=$EPOCHREALTIME
    start "new$joins" $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 64 \
        --id $id --cluster-key-file "$KEY"
    local v="PID_new$joins" ms=0
    until grep -q "decode worker $id registered" "$WORK/fe.log"; do
        ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
        [ "$ms" -le $((JOIN_LIMIT_MS * 3)) ] || break
        sleep 0.02
    done
    ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
    kill -TERM "${!v}"; wait "${!v}" || true
    [ "$ms" -le "$JOIN_LIMIT_MS" ] || { echo "FAIL $1: a new worker joined only after $ms ms (or never)"; tail -5 "$WORK/new$joins.log"; exit 1; }
    JOIN_MS=$ms
}

# after ATTACK: alive, serving, joinable, fds back to baseline (the handshake deadline is 5 s).
after() {
    for d in fe pre dec; do alive $d; done
    [ "$(complete)" = 200 ] || { echo "FAIL $1: a request failed afterwards"; exit 1; }
    join_check "$1"
    local d v n ok
    for _ in $(seq 100); do
        ok=1
        for d in fe pre dec; do
            v="PID_$d"; n=$(fds "${!v}")
            [ "$n" -le $((BASE_FDS[$d] + 1)) ] || ok=0
        done
        [ $ok = 1 ] && break
        sleep 0.1
    done
    if [ $ok != 1 ]; then
        echo "FAIL $1: fds did not return to the baseline:"
        for d in fe pre dec; do v="PID_$d"; echo "  $d: $(fds "${!v}") (baseline ${BASE_FDS[$d]})"; done
        exit 1
    fi
    echo "ok   $1: alive, serving, a new worker joined in $JOIN_MS ms, fds $(fds $PID_fe)/$(fds $PID_pre)/$(fds $PID_dec)"
}

for port in $UCX_PORT $DEC_PORT $UCX_OWN; do
    $ATTACK sockcm $port >/dev/null
done
after "the sockcm-shaped packet to every port"
for port in $UCX_PORT $DEC_PORT $UCX_OWN; do
    $ATTACK random $port 10 2048 >/dev/null
done
after "random bytes to every port (10 x 2 KiB each)"
for port in $UCX_PORT $DEC_PORT $UCX_OWN; do
    $ATTACK random $port 40 300000 >/dev/null
done
after "junk that closes (40 x 300 KB to every port)"
for port in $UCX_PORT $DEC_PORT; do
    $ATTACK truncated $port >/dev/null
    $ATTACK oversized $port || { echo "FAIL an oversized handshake header was not refused at once"; exit 1; }
done
after "truncated and oversized handshakes"

$ATTACK idle $UCX_PORT 5000 8 >"$WORK/idle.txt" &
IDLE=$!
PIDS+=($IDLE)
for _ in $(seq 300); do grep -q "connections open" "$WORK/idle.txt" && break; sleep 0.1; done
grep -q "idle: 5000 connections open" "$WORK/idle.txt" || { echo "FAIL idle: $(cat "$WORK/idle.txt")"; exit 1; }
echo "ok   5000 idle connections open to the frontend's peer port: fds fe $(fds $PID_fe)"
join_check "while 5000 idle connections are open"
echo "ok   while they are open: a new worker joined in $JOIN_MS ms"
wait $IDLE
after "5000 idle connections"
FE_OWN=$(ss -Hltnp | grep -E "pid=$PID_fe," | awk '{print $4}' | sed 's/.*://' |
         grep -v -x -e "$HTTP_PORT" -e "$UCX_PORT" | head -1)
$ATTACK idle $FE_OWN 5000 8 >"$WORK/idle2.txt" &
IDLE=$!
PIDS+=($IDLE)
for _ in $(seq 300); do grep -q "connections open" "$WORK/idle2.txt" && break; sleep 0.1; done
echo "ok   $(head -1 "$WORK/idle2.txt") to UCX's own tcp listener in the frontend: fds fe $(fds $PID_fe)"
join_check "while 5000 idle connections to UCX's own listener are open"
echo "ok   while they are open: a new worker joined in $JOIN_MS ms"
wait $IDLE
after "5000 idle connections to UCX's own listener"

$ATTACK wrongkey $UCX_PORT "$WORK/wrong.key" || { echo "FAIL a wrong key was not refused"; exit 1; }
grep -q "refused the peer at 127.0.0.1:[0-9]*: its handshake does not match" "$WORK/fe.log" ||
    { echo "FAIL no log line names the refused peer"; exit 1; }
start badw $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 64 --id 6001 \
    --cluster-key-file "$WORK/wrong.key"
start now $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 64 --id 6002
sleep 2.5
if grep -qE "decode worker (6001|6002) registered" "$WORK/fe.log"; then
    echo "FAIL a worker without the cluster key registered"; exit 1
fi
grep -q "refused by 127.0.0.1:$UCX_PORT" "$WORK/badw.log" && grep -q "refused by 127.0.0.1:$UCX_PORT" "$WORK/now.log" ||
    { echo "FAIL a refused worker does not say so:"; tail -3 "$WORK/badw.log" "$WORK/now.log"; exit 1; }
stop badw; stop now
refused=$(metric 'pdserve:cluster_handshakes_total{outcome="refused"}')
[ "$refused" -ge 3 ] || { echo "FAIL /metrics counts $refused refused handshakes"; exit 1; }
echo "ok   a handshake with a wrong key, a worker with another key and one with none: refused," \
     "logged ($(grep -c 'refused the peer' "$WORK/fe.log") lines in the frontend's log), $refused in /metrics"
after "wrong keys"

RELAY=$(free_port)
$ATTACK replay $UCX_PORT $RELAY "$KEY" >"$WORK/replay.txt" 2>&1 &
REPLAY=$!
PIDS+=($REPLAY)
for _ in $(seq 50); do grep -q "relay ready" "$WORK/replay.txt" && break; sleep 0.1; done
start relayed $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$RELAY --kv-blocks 64 --id 6003 \
    --cluster-key-file "$KEY"
wait $REPLAY || { echo "FAIL replay: $(cat "$WORK/replay.txt")"; exit 1; }
grep -q "decode worker 6003 registered" "$WORK/fe.log" || { echo "FAIL the relayed worker did not register"; exit 1; }
stop relayed
echo "ok   $(tail -1 "$WORK/replay.txt")"
after "a replayed handshake"

touch "$WORK/stop-load"
wait "$LOAD" 2>/dev/null || true
[ ! -s "$WORK/load-failures" ] || { echo "FAIL requests failed during the attacks:"; cat "$WORK/load-failures"; exit 1; }
echo "ok   $(cat "$WORK/load-count") requests sent during the attacks, none failed"
echo "ok   /metrics: $(curl -s "$BASE/metrics" | grep -E '^pdserve:cluster_(handshakes|messages)' | tr '\n' ' ')"
# The attacks' lines, not the access log's line per served request (oplog.c), must stay few.
lines=$(grep -cv " id=" "$WORK/fe.log" || true)
[ "$lines" -lt 400 ] || { echo "FAIL the frontend logged $lines lines besides the access log: not rate-limited"; exit 1; }
echo "ok   the frontend's log has $lines lines (rate-limited per cause)"
stop_frontend
echo PASS
