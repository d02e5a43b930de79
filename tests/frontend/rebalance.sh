#!/usr/bin/env bash
# rebalance.sh — live prefill:decode rebalancing with real daemons (--rebalance): one prefill and one
# colocated worker behind a frontend, under a client that never stops (rebalance_load.py, every answer
# checked: a 200, and the same greedy text for the same prompt whichever roles served it).
#  - light load: the prompt work is under --rebalance-low, so the prefill worker drains and becomes
#    colocated;
#  - heavy load (long prompts, four at a time): over --rebalance-high, so a colocated worker becomes a
#    prefill worker again; light load once more turns it back;
#  - a prefill worker started with --pin-role keeps its role under the same light load.
# The thresholds are scaled to the tiny model, whose prompts take microseconds: its heavy load's
# prompts wait more than 0.8 ms for their first token and its decodes take more than 0.8 ms a token,
# so the SLOs of 1 ms are failing and a prefill worker may be taken on. Its measured prompt work is
# mostly the requests' fixed costs (10-15 workers under the heavy load), hence no --rebalance-max
# cap. --rebalance-low leaves
# room for an ASan build's slower light load, which must stay under it for the 3 windows in a row a
# prefill worker is given up after.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
RB=(--slo-ttft-ms 1 --slo-tpot-ms 1 --rebalance --rebalance-max 0 --rebalance-window-s 1 --rebalance-low 0.04 --rebalance-high 0.2)
start_frontend "${RB[@]}"
start_prefill pre --no-prefix-cache --id 1
start_decode colo --colocated --no-prefix-cache --id 2
wait_health 200

roles() { echo "prefill=$(metric 'pdserve:workers{role="prefill"}') colocated=$(metric 'pdserve:workers{role="colocated"}')"; }
# wait_for ROLES SECONDS: until roles() says ROLES.
wait_for() {
    for _ in $(seq $(($2 * 10))); do
        [ "$(roles)" = "$1" ] && return 0
        [ -s "$WORK/load.out" ] && break
        sleep 0.1
    done
    echo "FAIL roles $(roles), expected $1"; cat "$WORK/load.out" 2>/dev/null; tail -5 "$WORK"/fe.log; exit 1
}

echo light >"$WORK/control"
python3 "$(dirname "$0")/rebalance_load.py" "$WORK/control" "$WORK/load.out" "$BASE" &
LOAD=$!
PIDS+=($LOAD)
wait_for "prefill=0 colocated=2" 30
grep -q "switched from prefill to colocated" "$WORK/pre.log" || { echo "FAIL no switch in the worker's log"; exit 1; }
grep -q "rebalance: switching prefill worker 1 to colocated: prompt work" "$WORK/fe.log" ||
    { echo "FAIL the frontend did not log the switch and why"; exit 1; }
echo "ok   light load: prefill worker 1 drained and became colocated"

echo heavy >"$WORK/control"
wait_for "prefill=1 colocated=1" 60
for _ in $(seq 20); do [ "$(metric 'pdserve:role_switches_total')" = 2 ] && break; sleep 0.1; done
[ "$(metric 'pdserve:role_switches_total')" = 2 ] || { echo "FAIL switches: $(metric 'pdserve:role_switches_total')"; exit 1; }
grep -q "rebalance: switching colocated worker [12] to prefill" "$WORK/fe.log" || { echo "FAIL no log of the switch back"; exit 1; }
echo "ok   heavy load: a colocated worker became a prefill worker again"
sleep 2 # requests served in the new roles too

# light again: back to two colocated workers (one of them takes the decode role a second time)
echo light >"$WORK/control"
wait_for "prefill=0 colocated=2" 30
for _ in $(seq 20); do [ "$(metric 'pdserve:role_switches_total')" = 3 ] && break; sleep 0.1; done
[ "$(metric 'pdserve:role_switches_total')" = 3 ] || { echo "FAIL switches: $(metric 'pdserve:role_switches_total')"; exit 1; }
echo "ok   light load again: back to two colocated workers"
sleep 1

echo stop >"$WORK/control"
wait "$LOAD"
read -r verdict light _ heavy _ <"$WORK/load.out"
[ "$verdict" = ok ] && [ "$light" -ge 5 ] && [ "$heavy" -ge 20 ] || { echo "FAIL client: $(cat "$WORK/load.out")"; exit 1; }
echo "ok   every answer under load ($light light, $heavy heavy) a 200 with the same greedy text across switches"
alive pre
alive colo
wait_idle
stop pre
stop colo
stop fe

# --pin-role: the same light load leaves a pinned prefill worker alone.
HTTP_PORT=$(free_port) UCX_PORT=$(free_port)
BASE="http://127.0.0.1:$HTTP_PORT"
rm -f "$WORK/load.out"
start_frontend "${RB[@]}"
start_prefill pre2 --no-prefix-cache --id 1 --pin-role
start_decode colo2 --colocated --no-prefix-cache --id 2
wait_health 200
echo light >"$WORK/control"
python3 "$(dirname "$0")/rebalance_load.py" "$WORK/control" "$WORK/load.out" "$BASE" &
LOAD=$!
PIDS+=($LOAD)
sleep 7 # an unpinned worker switches after about 4 s of this (the first part)
echo stop >"$WORK/control"
wait "$LOAD"
grep -q '^ok' "$WORK/load.out" || { echo "FAIL client: $(cat "$WORK/load.out")"; exit 1; }
[ "$(roles)" = "prefill=1 colocated=1" ] && ! grep -q "rebalance: switching" "$WORK/fe.log" ||
    { echo "FAIL a pinned worker was switched: $(roles)"; exit 1; }
echo "ok   --pin-role: the prefill worker kept its role under light load"
alive pre2
stop_frontend
