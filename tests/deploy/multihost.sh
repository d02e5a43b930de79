#!/usr/bin/env bash
# multihost.sh — a cluster spread over network namespaces ("hosts") that keeps serving through faults.
# The frontend, two prefill and two decode workers and the client each get a namespace with one veth
# into a bridge in a switch namespace (nothing touches the host's own interfaces); UCX runs over tcp.
# Each daemon runs the command line of its systemd unit with that host's own /etc/pdserve files.
# While clients stream requests through the frontend's HTTP API (tests/deploy/stream.py) the test
#   (1) SIGKILLs a decode worker, (2) SIGKILLs a prefill worker, (3) cuts a decode worker's link for
#   10 s, restarting each killed worker (bringing the link back) and waiting until it is re-admitted.
# Every request must complete with the right answer or end with a clear error, none may hang; then a
# burst must reach all four workers (full capacity), every KV block must come back (/metrics), and
# every daemon must drain and exit 0 on SIGTERM. Prints the counts. Needs CAP_NET_ADMIN: exits 77
# with the reason when `ip netns add` is refused. Set KEEP=1 to keep the logs.
set -uo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
T=pdm$$                      # namespace prefix: ${T}sw (switch), ${T}fe, ${T}p0, ...
WORK=$(mktemp -d)
NET=10.203.0
declare -A IP=([fe]=$NET.1 [p0]=$NET.10 [p1]=$NET.11 [d0]=$NET.20 [d1]=$NET.21 [cl]=$NET.100)
declare -A ID=([p0]=1 [p1]=2 [d0]=1 [d1]=2)
declare -A PID=() RUN=()
FE=http://${IP[fe]}:8000
for b in pdserve-frontend pdserve-prefill pdserve-decode pdserve-mkmodel; do
    [ -x "$BUILD/$b" ] || { echo "FAIL $BUILD/$b is not built"; exit 1; }
done

if ! out=$(ip netns add "${T}sw" 2>&1); then
    rm -rf "$WORK"
    echo "cannot create a network namespace here (ip netns add: $out); needs root or CAP_NET_ADMIN"
    exit 77
fi
cleanup() {
    local p ns
    for p in "${PID[@]}" ${CLIENT:-}; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    for ns in sw "${!IP[@]}"; do ip netns del "$T$ns" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "logs kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that cleanup runs when the test runner's timeout stops us
fail() {
    echo "FAIL $*"
    echo "namespaces: $(ip netns list | grep -c "^$T") of 7 left"
    local f
    for f in "$WORK"/*.log; do echo "--- $(basename "$f")"; grep -v ' debug ' "$f" | tail -n 12; done
    exit 1
}
in_ns() { local n=$1; shift; ip netns exec "$T$n" "$@"; }

# ---- the network: a bridge in the switch namespace, one veth per host ----
ip -n "${T}sw" link add br0 type bridge && ip -n "${T}sw" link set br0 up || fail "cannot create a bridge"
for n in "${!IP[@]}"; do
    ip netns add "$T$n" || fail "ip netns add $T$n"
    ip -n "${T}sw" link add "v$n" type veth peer name eth0 netns "$T$n" || fail "veth for $n"
    ip -n "${T}sw" link set "v$n" master br0 up && ip -n "$T$n" link set lo up &&
        ip -n "$T$n" addr add "${IP[$n]}/24" dev eth0 && ip -n "$T$n" link set eth0 up || fail "addressing $n"
done
echo "ok   6 namespaces on a bridge: frontend ${IP[fe]}, prefill ${IP[p0]} ${IP[p1]}, decode ${IP[d0]} ${IP[d1]}, client ${IP[cl]}"

MODEL=$WORK/model
$BUILD/pdserve-mkmodel --out "$MODEL" --preset tiny --seed 5 >/dev/null 2>&1 || fail "pdserve-mkmodel"

# Each "host" gets its own /etc/pdserve (conf-NODE/) in the layout of the three-node example, and its
# daemon is started with the command line its systemd unit would run (tests/deploy/unitexec.py).
# UCX_TCP_PORT_RANGE keeps the tcp transport's listeners in the documented range (checked below).
# Every daemon proves the same cluster key before it joins (non-loopback addresses need one).
head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"
chmod 600 "$WORK/cluster.key"
mkdir "$WORK/units"
for u in deploy/*.service; do sed "s|@BINDIR@|$PWD/$BUILD|g" "$u" >"$WORK/units/$(basename "$u")"; done
for n in fe p0 p1 d0 d1; do
    mkdir "$WORK/conf-$n"
    cat >"$WORK/conf-$n/cluster.env" <<ENV
PDSERVE_MODEL=$MODEL
PDSERVE_FRONTEND=${IP[fe]}:9000
PDSERVE_WORKER_ARGS=--kv-blocks 256 --load-interval-ms 100 --drain-timeout 10 --cluster-key-file $WORK/cluster.key
UCX_TLS=tcp
UCX_NET_DEVICES=eth0
UCX_TCP_PORT_RANGE=9200-9299
ENV
    case $n in
    fe) echo "PDSERVE_ARGS=--host ${IP[fe]} --port 8000 --ucx-host ${IP[fe]} --ucx-port 9000 --worker-timeout-ms 3000 --cluster-key-file $WORK/cluster.key" ;;
    p*) printf 'PDSERVE_ID=%s\nPDSERVE_LOG=debug\n' "${ID[$n]}" ;;
    d*) printf 'PDSERVE_ID=%s\nPDSERVE_LOG=debug\nPDSERVE_ARGS=--listen 0.0.0.0:9100 --advertise %s:9100\n' "${ID[$n]}" "${IP[$n]}" ;;
    esac >"$WORK/conf-$n/$([ $n = fe ] && echo frontend || echo $n).env"
done

# start NODE: (re)starts the daemon of that namespace; each run logs to NODE.RUN.log.
start() {
    local n=$1 cmd
    RUN[$n]=$((${RUN[$n]:-0} + 1))
    case $n in
    fe) mapfile -d '' cmd < <(python3 tests/deploy/unitexec.py "$WORK/units/pdserve-frontend.service" "" "$WORK/conf-fe") ;;
    p*) mapfile -d '' cmd < <(python3 tests/deploy/unitexec.py "$WORK/units/pdserve-prefill@.service" $n "$WORK/conf-$n") ;;
    d*) mapfile -d '' cmd < <(python3 tests/deploy/unitexec.py "$WORK/units/pdserve-decode@.service" $n "$WORK/conf-$n") ;;
    esac
    [ ${#cmd[@]} -gt 2 ] || fail "cannot expand the unit's ExecStart for $n"
    # Not through in_ns: `ip netns exec` execs env, which execs the daemon: $! is the daemon's own pid.
    ip netns exec "$T$n" "${cmd[@]}" >"$WORK/$n.${RUN[$n]}.log" 2>&1 &
    PID[$n]=$!
}
log_of() { echo "$WORK/$1.${RUN[$1]}.log"; }
metrics() { in_ns cl curl -s --max-time 5 "$FE/metrics"; }
workers() { metrics | awk -v r="$1" '$1 == "pdserve:workers{role=\"" r "\"}" { print $2 }'; }
# wait_workers P D SECONDS: until the frontend has P prefill and D decode workers registered.
wait_workers() {
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -le "$3" ]; do
        [ "$(workers prefill)" = "$1" ] && [ "$(workers decode)" = "$2" ] && return 0
        sleep 0.2
    done
    fail "the frontend did not get to $1 prefill + $2 decode workers in $3 s (has $(workers prefill) + $(workers decode))"
}
alive() { for n in "$@"; do kill -0 "${PID[$n]}" 2>/dev/null || fail "$n died"; done; }

start fe
for _ in $(seq 100); do in_ns cl curl -s -o /dev/null --max-time 2 "$FE/health" && break; sleep 0.1; done
for n in p0 p1 d0 d1; do start $n; done
wait_workers 2 2 30
in_ns cl python3 tests/deploy/stream.py reference "$FE" "$WORK/ref.json" || fail "reference answers"
echo "ok   cluster up: 2 prefill + 2 decode workers registered across namespaces; reference answers taken"
for n in fe p0 p1 d0 d1; do
    for port in $(in_ns $n ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | sort -un); do
        case $port in 8000 | 9000 | 9100 | 92[0-9][0-9]) ;; *) fail "$n listens on port $port, outside the documented ones" ;; esac
        listening+=" $n:$port"
    done
done
echo "ok   TCP listeners only on the documented ports:$listening"

touch "$WORK/go"; rm -f "$WORK/stop"
ip netns exec "${T}cl" python3 tests/deploy/stream.py run "$FE" "$WORK/ref.json" "$WORK/stop" --clients 4 --deadline 60 \
    >"$WORK/client.log" 2>&1 &
CLIENT=$!
sleep 3

# kill_and_restart NODE ROLE P_WITHOUT D_WITHOUT
kill_and_restart() {
    local n=$1 t0=$SECONDS
    kill -KILL "${PID[$n]}"; wait "${PID[$n]}" 2>/dev/null
    wait_workers "$3" "$4" 20
    echo "ok   ($2) $n SIGKILLed: the frontend dropped it after $((SECONDS - t0)) s; the stream goes on"
    sleep 2
    t0=$SECONDS
    start "$n"
    wait_workers 2 2 30
    echo "ok   ($2) $n restarted: re-admitted after $((SECONDS - t0)) s"
    sleep 3
}
kill_and_restart d0 1 2 1
kill_and_restart p0 2 1 2
t0=$SECONDS
ip -n "${T}d1" link set eth0 down || fail "cannot cut d1's link"
wait_workers 2 1 10
echo "ok   (3) d1's link cut: the frontend dropped it after $((SECONDS - t0)) s"
sleep $((10 - (SECONDS - t0)))
ip -n "${T}d1" link set eth0 up || fail "cannot restore d1's link"
t0=$SECONDS
wait_workers 2 2 30
echo "ok   (3) d1's link back after 10 s: re-registered after $((SECONDS - t0)) s"
sleep 3
alive fe p0 p1 d0 d1
touch "$WORK/stop"
for _ in $(seq 900); do kill -0 $CLIENT 2>/dev/null || break; sleep 0.1; done
kill -0 $CLIENT 2>/dev/null && fail "the clients did not finish within 90 s of being told to stop"
wait $CLIENT || fail "stream.py failed: $(tail -5 "$WORK/client.log")"
CLIENT=
cat "$WORK/client.log"
counts=$(tail -n 1 "$WORK/client.log")
read -r _ sent _ done _ failed _ hung _ wrong _ race <<<"$counts"
echo "counts: requests sent $sent, completed $done, failed with an error $failed, hung $hung, wrong $wrong"
[ "$hung" = 0 ] && [ "$wrong" = 0 ] || fail "$hung hung and $wrong wrong requests"
# The prefill worker's first token and the decode worker's tokens travel on different connections;
# the frontend holds decode tokens that overtake the first one, so no answer may show it late.
[ "$race" = 0 ] || fail "$race answers had the first token late or missing (first-token race)"
[ "$done" -gt "$failed" ] || fail "fewer completed ($done) than failed ($failed): the cluster did not keep serving"
echo "ok   every request completed correctly or failed with a clear error; none hung"

# Full capacity: a burst after the faults must reach every worker (their debug lines per request).
declare -A MARK
for n in p0 p1 d0 d1; do MARK[$n]=$(stat -c %s "$(log_of $n)"); done
rm -f "$WORK/stop"
ip netns exec "${T}cl" python3 tests/deploy/stream.py run "$FE" "$WORK/ref.json" "$WORK/stop" --clients 8 --deadline 60 \
    >"$WORK/burst.log" 2>&1 &
CLIENT=$!
sleep 6; touch "$WORK/stop"; wait $CLIENT; CLIENT=
burst=$(tail -n 1 "$WORK/burst.log")
read -r _ bsent _ bdone _ bfailed _ bhung _ bwrong _ brace <<<"$burst"
[ "$((bdone + brace))" = "$bsent" ] || fail "after the restarts not every request completed: $burst"
for n in p0 p1 d0 d1; do
    [[ $n == p* ]] && pat="KV_DONE sent" || pat="admitted"
    k=$(tail -c +$((MARK[$n] + 1)) "$(log_of $n)" | grep -c "$pat")
    [ "$k" -gt 0 ] || fail "$n got no request in the burst after the restarts"
    served+="$n $k, "
done
echo "ok   full capacity: a burst of $bsent requests all completed, spread over ${served%, }"

# No leaked KV blocks: every worker's usage back to zero, nothing running.
for _ in $(seq 150); do
    m=$(metrics)
    used=$(awk '/^pdserve:kv_cache_usage_perc/ && $NF + 0 != 0' <<<"$m" | wc -l)
    nw=$(grep -c '^pdserve:kv_cache_usage_perc' <<<"$m")
    run=$(awk '/^pdserve:num_requests_running/ { print $NF }' <<<"$m")
    [ "$used" = 0 ] && [ "$nw" = 4 ] && [ "$run" = 0 ] && break
    sleep 0.1
done
[ "$used" = 0 ] && [ "$nw" = 4 ] && [ "$run" = 0 ] \
    || fail "not idle: $(grep -E '^pdserve:(kv_cache_usage|num_requests_running)' <<<"$m")"
echo "ok   idle: KV usage 0 on all 4 workers, no request running (no block leaked)"

# SIGTERM drains: every daemon exits 0 (workers first, as systemd stops them before the frontend).
for n in p0 p1 d0 d1 fe; do
    kill -TERM "${PID[$n]}"
    for _ in $(seq 150); do kill -0 "${PID[$n]}" 2>/dev/null || break; sleep 0.1; done
    wait "${PID[$n]}"; rc=$?
    [ $rc = 0 ] || fail "$n exited $rc on SIGTERM"
    grep -q "Sanitizer" "$WORK"/$n.*.log && fail "sanitizer report in $n's log: $(grep -h -A20 Sanitizer "$WORK"/$n.*.log | head -40)"
done
echo "ok   SIGTERM: all five daemons drained and exited 0"
echo "PASS sent $sent completed $done failed $failed hung $hung"
