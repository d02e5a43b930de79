# frontend.sh — shared by the frontend's script tests: a tiny model made by pdserve-mkmodel, free ports,
# a frontend plus workers started in the background and always stopped (trap), and waiting for
# readiness. Source it with BUILD set.
set -euo pipefail
BUILD=${BUILD:-build}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# free_port: a port free on 127.0.0.1, below the ephemeral range, not handed out before in this test.
free_port() { /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py" "$WORK/ports"; }

# start NAME CMD...: a daemon in the background, logging to $WORK/NAME.log; its pid in PID_NAME.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}

# stop NAME: SIGKILL one daemon started with start (the others keep running).
stop() { local v="PID_$1"; kill -KILL "${!v}" 2>/dev/null || true; wait "${!v}" 2>/dev/null || true; }

MODEL="$WORK/model"
make_model() { $BUILD/pdserve-mkmodel --out "$MODEL" --preset tiny --seed 5 "$@" >/dev/null 2>&1; }

# start_frontend [flags...]: HTTP on $HTTP_PORT, workers on $UCX_PORT.
HTTP_PORT=$(free_port)
UCX_PORT=$(free_port)
BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend() {
    start fe $BUILD/pdserve-frontend --model "$MODEL" --port "$HTTP_PORT" --ucx-port "$UCX_PORT" "$@"
    for _ in $(seq 300); do curl -s -o /dev/null "$BASE/health" && return 0; sleep 0.1; done
    echo "frontend did not come up"; cat "$WORK/fe.log"; exit 1
}
start_prefill() { start "${1:-pre}" $BUILD/pdserve-prefill --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 512 --load-interval-ms 100 "${@:2}"; }
start_decode() { start "${1:-dec}" $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 512 --load-interval-ms 100 "${@:2}"; }

# wait_health CODE: until /health answers CODE (30 s: ASan builds on a loaded machine are slow).
wait_health() {
    for _ in $(seq 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health")" = "$1" ] && return 0
        sleep 0.1
    done
    echo "FAIL /health never answered $1"; tail -5 "$WORK"/*.log; exit 1
}

# metric NAME_AND_LABELS: its value in /metrics (sum over matching lines).
metric() { curl -s "$BASE/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

# wait_workers ROLE N: until N workers of ROLE are registered (30 s). /health answers 200 once one
# worker can serve, which may be before the others have registered.
wait_workers() {
    for _ in $(seq 300); do
        [ "$(metric "pdserve:workers{role=\"$1\"}")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "FAIL $2 $1 worker(s) never registered"; tail -5 "$WORK"/*.log; exit 1
}

# wait_idle: every KV block free on every worker and nothing in flight (30 s).
wait_idle() {
    for _ in $(seq 300); do
        if [ "$(metric 'pdserve:num_requests_running')" = 0 ] && \
           [ "$(curl -s "$BASE/metrics" | awk '/^pdserve:kv_cache_usage_perc/ && $NF != "0.000000"' | wc -l)" = 0 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "FAIL still busy:"; curl -s "$BASE/metrics" | grep -E '^pdserve:(kv_cache|num_requests)'; return 1
}

# colocated_then_pair CMD...: runs `CMD... OUT` against a colocated worker (OUT = $WORK/colo.txt),
# then against a prefill + decode pair ($WORK/disagg.txt), and fails unless the two outputs are the
# same once FILTER (a sed expression, default none) has run over both. Prefix caching is off: a cache
# hit reuses K/V computed in another batch shape, equal only to rounding, and answers are compared byte
# for byte. The frontend must be up; the pair is left running (stop pre, stop dec).
colocated_then_pair() {
    start_decode colo --colocated --no-prefix-cache
    wait_health 200
    "$@" "$WORK/colo.txt" || exit 1
    stop colo
    wait_health 503
    start_prefill pre --no-prefix-cache
    start_decode dec --no-prefix-cache
    wait_health 200
    "$@" "$WORK/disagg.txt" || exit 1
    if [ "$(sed -E "${FILTER:-}" "$WORK/colo.txt")" = "$(sed -E "${FILTER:-}" "$WORK/disagg.txt")" ]; then
        echo "ok   colocated and disaggregated answers identical"
    else
        echo "FAIL colocated and disaggregated answers differ:"
        diff <(sed -E "${FILTER:-}" "$WORK/colo.txt") <(sed -E "${FILTER:-}" "$WORK/disagg.txt") | head -c 2000
        exit 1
    fi
}

# alive NAME: fails the test if the daemon died (a crash would otherwise pass unnoticed).
alive() {
    local v="PID_$1"
    kill -0 "${!v}" 2>/dev/null && return 0
    echo "FAIL $1 died:"; tail -20 "$WORK/$1.log"; exit 1
}

# stop_frontend: SIGTERM, then the frontend must exit 0 within 10 s with no sanitizer report in its
# log (under `make asan` this is where leaks show).
stop_frontend() {
    alive fe
    kill -TERM "$PID_fe"
    local rc=0
    for _ in $(seq 100); do kill -0 "$PID_fe" 2>/dev/null || break; sleep 0.1; done
    wait "$PID_fe" || rc=$?
    if [ $rc -ne 0 ] || grep -q "Sanitizer" "$WORK/fe.log"; then
        echo "FAIL frontend exit $rc on SIGTERM:"; grep -A30 "Sanitizer" "$WORK/fe.log" | head -60; tail -5 "$WORK/fe.log"; exit 1
    fi
    echo "ok   frontend stopped cleanly on SIGTERM"
}
