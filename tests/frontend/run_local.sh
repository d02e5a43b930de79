#!/usr/bin/env bash
# run_local.sh — tools/run-local.sh (what `make run` calls) brings up a working cluster, prints how
# to use it, and Ctrl-C (SIGINT) stops every daemon it started.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
# A background job of a script starts with SIGINT ignored; restore it so the test's SIGINT is the
# terminal's Ctrl-C.
BUILD=$BUILD MODEL="$MODEL" PORT=$HTTP_PORT WORKER_PORT=$UCX_PORT python3 -c \
    'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    tools/run-local.sh >"$WORK/run.log" 2>&1 &
rl=$!
PIDS+=($rl)
wait_health 200
for _ in $(seq 50); do grep -q "ready on" "$WORK/run.log" && break; sleep 0.1; done
grep -q "curl http://127.0.0.1:$HTTP_PORT/v1/completions" "$WORK/run.log" && echo "ok   run-local is ready and prints the curl commands" \
    || { echo "FAIL no ready message"; cat "$WORK/run.log"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/completions" -d '{"prompt":"hi","max_tokens":4}')
[ "$code" = 200 ] && echo "ok   a completion works" || { echo "FAIL completion: $code"; exit 1; }
kids=$(pgrep -P $rl | tr '\n' ' ')
PIDS+=($kids)  # so a failing test still stops them
[ "$(echo $kids | wc -w)" = 3 ] || { echo "FAIL expected 3 daemons, got: $kids"; exit 1; }
kill -INT $rl
for _ in $(seq 100); do kill -0 $rl 2>/dev/null || break; sleep 0.1; done
left=0; for k in $kids; do kill -0 "$k" 2>/dev/null && left=$((left + 1)); done
[ $left = 0 ] && ! kill -0 $rl 2>/dev/null && echo "ok   Ctrl-C stopped all three daemons" || { echo "FAIL $left daemons left"; exit 1; }
