#!/usr/bin/env bash
# notify.sh — the daemons keep the contract their systemd units rely on. Each is started exactly as its
# unit would start it (ExecStart expanded with the one-node example environment, tests/deploy/unitexec.py)
# with $NOTIFY_SOCKET and $WATCHDOG_USEC pointing at a listener playing systemd (notify_listen.py):
#  - workers started before the frontend say STATUS= but not READY=1 until the frontend is up and has
#    accepted them (Type=notify); then WATCHDOG=1 comes well within WatchdogSec;
#  - after the frontend is SIGKILLed and restarted, the workers re-register by themselves and serve;
#  - SIGTERM: STOPPING=1, the request in flight still completes, exit 0 within the unit's TimeoutStopSec.
# The frontend is checked against the Type= its unit declares.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that cleanup runs when the test runner's timeout stops us
fail() {
    echo "FAIL $*"
    for f in "$WORK"/*.log; do echo "--- $(basename "$f")"; tail -n 8 "$f"; done
    exit 1
}
free_port() { /usr/bin/python3 tests/helpers/free_port.py "$WORK/ports"; }
HTTP=$(free_port) UCXP=$(free_port) DPORT=$(free_port)
BASE=http://127.0.0.1:$HTTP

# The units, pointing at this build; the one-node example, pointing at a tiny model and free ports.
$BUILD/pdserve-mkmodel --out "$WORK/model" --preset tiny --seed 5 --max-pos 32768 >/dev/null 2>&1 || fail "mkmodel"
mkdir "$WORK/units" "$WORK/conf"
for u in deploy/*.service; do sed "s|@BINDIR@|$PWD/$BUILD|g" "$u" >"$WORK/units/$(basename "$u")"; done
cp deploy/examples/one-node/*.env "$WORK/conf/"
sed -i -e "s|^PDSERVE_MODEL=.*|PDSERVE_MODEL=$WORK/model|" -e "s|:9000|:$UCXP|" \
    -e "s|^PDSERVE_WORKER_ARGS=\(.*\)|PDSERVE_WORKER_ARGS=\1 --kv-blocks 512|" "$WORK/conf/cluster.env"
sed -i -e "s|--port 8000|--port $HTTP|" -e "s|--ucx-port 9000|--ucx-port $UCXP|" -e "s|--host 0.0.0.0|--host 127.0.0.1|" \
    "$WORK/conf/frontend.env"
sed -i "s|:9100|:$DPORT|" "$WORK/conf/decode0.env"
unit_value() { sed -n "s/^$2=//p" "$WORK/units/$1" | tail -n 1; }

# start NAME UNIT INSTANCE: the unit's command with a notify listener; NAME.log, NAME.notify.
start() {
    local name=$1 unit=$2 inst=$3 cmd
    if [ ! -e "$WORK/$name.sock" ]; then
        python3 tests/deploy/notify_listen.py "$WORK/$name.sock" "$WORK/$name.notify" &
        PIDS+=($!)
        for _ in $(seq 50); do [ -S "$WORK/$name.sock" ] && break; sleep 0.1; done
    fi
    mapfile -d '' cmd < <(python3 tests/deploy/unitexec.py "$WORK/units/$unit" "$inst" "$WORK/conf")
    NOTIFY_SOCKET=$WORK/$name.sock WATCHDOG_USEC=3000000 "${cmd[@]}" >>"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}
said() { grep -c -- " $2" "$WORK/$1.notify" 2>/dev/null || true; }
wait_said() { # NAME WHAT SECONDS [COUNT]
    for _ in $(seq $(($3 * 10))); do [ "$(said "$1" "$2")" -ge "${4:-1}" ] && return 0; sleep 0.1; done
    fail "$1 did not send $2 (x${4:-1}) within $3 s"
}
health() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/health" || true; }
wait_health() { for _ in $(seq 150); do [ "$(health)" = 200 ] && return 0; sleep 0.1; done; fail "/health never 200"; }
complete() { curl -s --max-time 60 "$BASE/v1/completions" -d '{"prompt":"hello","max_tokens":8}' | grep -q '"finish_reason"'; }

# 1. Workers first: they load, say so, and wait for the frontend without claiming readiness.
start pre pdserve-prefill@.service prefill0
start dec pdserve-decode@.service decode0
wait_said pre "STATUS=model" 30
wait_said dec "STATUS=model" 30
sleep 1.5
[ "$(said pre READY=1)$(said dec READY=1)" = 00 ] || fail "a worker said READY=1 with no frontend up"
echo "ok   workers started before the frontend: STATUS '$(grep -m1 -o 'STATUS=model.*' "$WORK/pre.notify" | cut -c1-60)...', no READY=1 yet"
start fe pdserve-frontend.service ""
wait_said pre READY=1 15
wait_said dec READY=1 15
wait_health
complete || fail "no completion through the units' command lines"
echo "ok   READY=1 from both workers once the frontend accepted them; a completion is served"
fe_type=$(unit_value pdserve-frontend.service Type)
if [ "$fe_type" = notify ]; then
    wait_said fe READY=1 5
    echo "ok   frontend (Type=notify) sent READY=1; $(grep -m1 -o 'STATUS=.*' "$WORK/fe.notify" | tail -n 1)"
elif [ "$(said fe READY=1)" -gt 0 ]; then
    fail "the frontend sends READY=1 but its unit is Type=$fe_type: make it Type=notify with a WatchdogSec"
else
    echo "ok   frontend unit is Type=$fe_type and the frontend sends no READY=1"
fi

# 2. Watchdog pings come far more often than WatchdogSec (WATCHDOG_USEC here is 3 s).
wd=$(unit_value pdserve-decode@.service WatchdogSec)
a=$(said dec WATCHDOG=1); sleep 2; b=$(said dec WATCHDOG=1)
[ $((b - a)) -ge 4 ] || fail "only $((b - a)) WATCHDOG=1 in 2 s from the decode worker"
[ "$(said pre WATCHDOG=1)" -gt 0 ] || fail "no WATCHDOG=1 from the prefill worker"
echo "ok   WATCHDOG=1: $((b - a)) in 2 s from the decode worker (unit WatchdogSec=$wd)"
if [ -n "$(unit_value pdserve-frontend.service WatchdogSec)" ]; then
    [ "$(said fe WATCHDOG=1)" -gt 0 ] || fail "the frontend unit sets WatchdogSec but the frontend sent no WATCHDOG=1"
    echo "ok   WATCHDOG=1 from the frontend too ($(said fe WATCHDOG=1) so far; unit WatchdogSec=$(unit_value pdserve-frontend.service WatchdogSec))"
fi

# 3. The frontend dies and comes back: both workers register again by themselves.
kill -KILL "$PID_fe"; wait "$PID_fe" 2>/dev/null || true
t0=$SECONDS
sleep 1
start fe pdserve-frontend.service ""
wait_said pre "STATUS=registered" 20 2
wait_said dec "STATUS=registered" 20 2
wait_health
complete || fail "no completion after the frontend restart"
echo "ok   frontend SIGKILLed and restarted: both workers re-registered within $((SECONDS - t0)) s and serve"

# 4. SIGTERM drains: STOPPING=1, exit 0 within the unit's TimeoutStopSec, and the decode worker finishes
#    the request it is generating.
stop_limit=$(unit_value pdserve-decode@.service TimeoutStopSec); stop_limit=${stop_limit%s}
start_long() {
    curl -s --max-time 120 "$BASE/v1/completions" -d '{"prompt":"long","max_tokens":3000,"ignore_eos":true}' \
        >"$WORK/long.out" &
    LONG=$!
    for _ in $(seq 100); do
        [ "$(curl -s "$BASE/metrics" | awk '/^pdserve:num_requests_running/ { print $NF }')" = 1 ] && break
        sleep 0.05
    done
    sleep 0.5
}
long_ok() { wait $LONG && grep -q '"finish_reason":"length"' "$WORK/long.out" && ! grep -q '"error"' "$WORK/long.out"; }
drain() { # NAME: SIGTERM, STOPPING=1, exit 0 in time
    local v=PID_$1 rc=0 t0=$SECONDS
    kill -TERM "${!v}"
    wait_said "$1" STOPPING=1 5
    wait "${!v}" || rc=$?
    [ $rc = 0 ] || fail "$1 exited $rc after SIGTERM"
    [ $((SECONDS - t0)) -lt "$stop_limit" ] || fail "$1 drained in $((SECONDS - t0)) s, over TimeoutStopSec=$stop_limit"
    DRAIN_S=$((SECONDS - t0))
}
start_long
drain pre
echo "ok   SIGTERM: STOPPING=1, the prefill worker exited 0 after $DRAIN_S s"
# Its request was generating on the decode worker: the prefill worker leaving must not disturb it.
long_ok && echo "ok   the request generating on the decode worker was not disturbed" \
    || fail "the frontend failed a request in its decode phase when its prefill worker drained: $(head -c 200 "$WORK/long.out")"
start pre pdserve-prefill@.service prefill0
wait_said pre "STATUS=registered" 20 3
start_long
drain dec
long_ok || fail "the request in flight did not complete during the drain: $(head -c 300 "$WORK/long.out")"
echo "ok   SIGTERM: STOPPING=1, the request in flight completed, the decode worker exited 0 after $DRAIN_S s (TimeoutStopSec=${stop_limit}s)"
drain pre
kill -TERM "$PID_fe"; rc=0; wait "$PID_fe" || rc=$?
[ $rc = 0 ] || fail "frontend exited $rc on SIGTERM"
if [ "$fe_type" = notify ]; then
    [ "$(said fe STOPPING=1)" -gt 0 ] || fail "the frontend sent no STOPPING=1 on SIGTERM"
    echo "ok   SIGTERM: STOPPING=1 from the frontend, which exited 0"
fi
! grep -q Sanitizer "$WORK"/*.log || fail "sanitizer report: $(grep -h -A20 Sanitizer "$WORK"/*.log | head -40)"
echo PASS
