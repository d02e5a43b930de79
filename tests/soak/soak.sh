#!/usr/bin/env bash
# soak.sh — `make soak`: minutes of mixed, hostile load on a real cluster while workers restart, then
# proof that nothing accumulated (docs/soak.md).
#
# A frontend, two prefill and two decode workers (p1 p2 d1 d2) on loopback, tiny model. The expected
# answer of every valid request is taken first on the quiet cluster (and checked against
# pdserve-generate); a burst of long requests then takes every KV block once. Each round, CLIENTS
# concurrent clients (tests/soak/soak.py) send for ROUND_SECONDS a seeded mix of valid requests (exact
# answers checked), invalid ones (their 4xx and error body checked), hang-ups at random points, slow
# writers and readers, pipelined requests; meanwhile one of p2/d2 is stopped — SIGTERM (it must drain
# and exit 0) and SIGKILL in turn — and started again. p1, d1 and the frontend are never restarted.
# After each round, once idle: every KV pool empty, and VmRSS, RssAnon, open fds and threads of every
# daemon recorded. At the end every daemon must exit 0 on SIGTERM with no sanitizer report in its log,
# and, after SOAK_WARMUP rounds, memory must be flat and fd and thread counts unchanged.
#
#   SOAK_MINUTES (5) or SOAK_ROUNDS   how long;  SOAK_ROUND_SECONDS (20)  load per round
#   SOAK_CLIENTS (24)   SOAK_WARMUP (2)   SOAK_SEED (1)   SOAK_RESTARTS (1; 0: no worker restarts)
#   SOAK_RESTART_CYCLE ("p2:TERM d2:TERM p2:KILL d2:KILL"): round r does entry (r-1) mod length
#   SOAK_DEADLINE (60 s, 180 under ASan): a request with no complete answer by then is "hung"
#   SOAK_RSS_MAX_GROWTH_KIB (1024), SOAK_RSS_MAX_SLOPE_KIB (128): the flatness limits
#   KEEP_WORK=1 keeps the logs and the per-round JSON (the path is printed).
# Under a sanitizer build (BUILD=build-asan) memory is reported but not judged (ASan's quarantine
# grows by design); LeakSanitizer's report at each SIGTERM exit is the leak check there.
cd "$(dirname "$0")/../.."
source tests/helpers/frontend.sh
set +e   # every step below checks its own status; a failed round must still reach the table
trap 'exit 143' TERM INT
PY=/usr/bin/python3
SOAK=tests/soak/soak.py
ROUND_SECONDS=${SOAK_ROUND_SECONDS:-20}
CLIENTS=${SOAK_CLIENTS:-24}
WARMUP=${SOAK_WARMUP:-2}
SEED=${SOAK_SEED:-1}
RESTARTS=${SOAK_RESTARTS:-1}
ROUNDS=${SOAK_ROUNDS:-$(( (${SOAK_MINUTES:-5} * 60 - 20) / (ROUND_SECONDS + 8) ))}
[ "$ROUNDS" -ge 1 ] || ROUNDS=1
for b in pdserve-frontend pdserve-prefill pdserve-decode pdserve-mkmodel pdserve-generate; do
    [ -x "$BUILD/$b" ] || { echo "FAIL $BUILD/$b is not built (make BUILD=$BUILD all)"; exit 1; }
done
ENFORCE_MEMORY=1
DEADLINE=${SOAK_DEADLINE:-60}
if ldd "$BUILD/pdserve-frontend" | grep -q libasan; then
    ENFORCE_MEMORY=0
    DEADLINE=${SOAK_DEADLINE:-180}
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
fi
ulimit -n 4096
[ -n "${KEEP_WORK:-}" ] && echo "soak: logs and round data in $WORK"
T0=$SECONDS
PROBLEMS=()
problem() { echo "FAIL $*"; PROBLEMS+=("$*"); }
die() {
    echo "FAIL $*"
    local f
    for f in "$WORK"/*.log; do echo "--- $(basename "$f")"; grep -v ' debug ' "$f" | tail -n 15; done
    exit 1
}

make_model || die "pdserve-mkmodel"
# Timeouts of 3 s so that the stalled clients of the mix get their 408 soon; a body limit of 256 KiB
# so that the oversized bodies stay cheap (soak.py knows both).
start_frontend --max-body-bytes 4194304 --header-timeout-ms 3000 --body-timeout-ms 3000 --worker-timeout-ms 3000

# Workers: p1 p2 (prefill) and d1 d2 (decode), ids 1 and 2 per role, kept across restarts. LIFE[w]
# counts a worker's runs; each run logs to w_LIFE.log and its pid is PID_w_LIFE (tests/helpers/frontend.sh's start).
declare -A LIFE
launch() {
    local w=$1 role
    [[ $w == p* ]] && role=prefill || role=decode
    LIFE[$w]=$(( ${LIFE[$w]:-0} + 1 ))
    start "${w}_${LIFE[$w]}" "$BUILD/pdserve-$role" --model "$MODEL" --frontend "127.0.0.1:$UCX_PORT" --id "${w:1}" \
        --kv-blocks 512 --load-interval-ms 100 --drain-timeout 10
}
pid_of() { local v="PID_${1}_${LIFE[$1]}"; echo "${!v}"; }
workers() { metric "pdserve:workers{role=\"$1\"}"; }
wait_workers() {   # P D SECONDS
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -le "$3" ]; do
        [ "$(workers prefill)" = "$1" ] && [ "$(workers decode)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
check_alive() {
    kill -0 "$PID_fe" 2>/dev/null || die "the frontend died"
    local w
    for w in p1 p2 d1 d2; do kill -0 "$(pid_of $w)" 2>/dev/null || die "$w (run ${LIFE[$w]}) died"; done
}
# stop_term W: SIGTERM, then it must drain and exit 0 within 30 s.
stop_term() {
    local pid rc
    pid=$(pid_of "$1")
    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { problem "$1 (run ${LIFE[$1]}) still running 30 s after SIGTERM"; kill -KILL "$pid"; }
    wait "$pid"; rc=$?
    [ $rc = 0 ] || problem "$1 (run ${LIFE[$1]}) exited $rc on SIGTERM"
}
# restart_one ROUND: stops p2 or d2 (SIGTERM or SIGKILL by turn), starts it again, waits until the
# frontend has two workers of each role again; says what it did in RESTART.
CYCLE=(${SOAK_RESTART_CYCLE:-p2:TERM d2:TERM p2:KILL d2:KILL})
restart_one() {
    local step=${CYCLE[$(( ($1 - 1) % ${#CYCLE[@]} ))]} t0=$SECONDS
    local w=${step%:*} how=${step#*:}
    if [ $how = TERM ]; then
        stop_term $w
    else
        kill -KILL "$(pid_of $w)"; wait "$(pid_of $w)" 2>/dev/null
    fi
    sleep 0.5
    launch $w
    wait_workers 2 2 60 || die "$w was not re-admitted within 60 s of its restart"
    RESTART="$w $how $((SECONDS - t0))s"
}

for w in p1 p2 d1 d2; do launch $w; done
wait_workers 2 2 60 || die "the workers did not register within 60 s"
$PY $SOAK reference "$HTTP_PORT" "$WORK/ref.json" "$BUILD/pdserve-generate" "$MODEL" || die "reference answers"
$PY $SOAK fill "$HTTP_PORT" || die "the warm-up burst"
wait_idle || die "not idle after the warm-up burst"
echo "soak: $BUILD, $ROUNDS rounds of ${ROUND_SECONDS} s with $CLIENTS clients, the first $WARMUP warm-up" \
     "$([ "$RESTARTS" = 1 ] && echo "(a worker restarted in each)")"

seqs_before=$(metric 'pdserve:request_success_total')
for r in $(seq "$ROUNDS"); do
    $PY $SOAK round "$HTTP_PORT" "$WORK/ref.json" "$WORK/client.$r.json" "$ROUND_SECONDS" "$CLIENTS" \
        $((SEED * 1000 + r)) "$DEADLINE" 2>"$WORK/client.$r.err" &
    client=$!
    RESTART=""
    if [ "$RESTARTS" = 1 ]; then
        sleep $((ROUND_SECONDS / 3))
        restart_one "$r"
    fi
    wait $client || die "the soak client failed in round $r: $(tail -5 "$WORK/client.$r.err")"
    check_alive
    wait_workers 2 2 30 || die "round $r: not all four workers registered"
    kv_idle=1
    wait_idle || kv_idle=0
    seqs_now=$(metric 'pdserve:request_success_total')
    sleep 1
    $PY $SOAK record "$WORK/rounds.jsonl" "$r" "$RESTART" $((seqs_now - seqs_before)) $kv_idle "$WORK/client.$r.json" \
        fe="$PID_fe" p1="$(pid_of p1)" d1="$(pid_of d1)" p2="$(pid_of p2)@${LIFE[p2]}" d2="$(pid_of d2)@${LIFE[d2]}" \
        || die "cannot measure the daemons after round $r"
    seqs_before=$seqs_now
done

# Workers first (as systemd stops them), then the frontend: each drains and exits 0.
for w in p1 p2 d1 d2; do stop_term $w; done
kill -TERM "$PID_fe"
for _ in $(seq 300); do kill -0 "$PID_fe" 2>/dev/null || break; sleep 0.1; done
wait "$PID_fe"; rc=$?
[ $rc = 0 ] || problem "the frontend exited $rc on SIGTERM"
for f in "$WORK"/*.log; do
    if grep -qE "Sanitizer|runtime error" "$f"; then
        problem "sanitizer report in $(basename "$f"):"
        grep -E -A25 "Sanitizer|runtime error" "$f" | head -50
    fi
done

$PY $SOAK report "$WORK/rounds.jsonl" "$WARMUP" "$ENFORCE_MEMORY" || PROBLEMS+=("see the FAIL lines of the report")
mins=$(awk -v s=$((SECONDS - T0)) 'BEGIN { printf "%.1f", s / 60 }')
if [ ${#PROBLEMS[@]} = 0 ]; then
    mem="memory flat, fds and threads steady"
    [ "$ENFORCE_MEMORY" = 1 ] || mem="memory reported, not judged (sanitizer build)"
    [ $((ROUNDS - WARMUP)) -ge 3 ] || mem="memory not judged (fewer than 3 rounds after warm-up)"
    echo "PASS soak: $ROUNDS rounds in $mins min; every valid answer right, every error a 4xx with its body, KV pools" \
         "empty when idle, $mem, every daemon exited 0"
else
    echo "FAIL soak: $ROUNDS rounds in $mins min; ${#PROBLEMS[@]} problem(s): ${PROBLEMS[*]}"
    exit 1
fi
