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

# The launcher's failure cases: each must end at once with a message, leaving nothing running.
runlocal() { # runlocal LOG VAR=VALUE...: run-local in the foreground, for at most 60 s; its exit status
    local log=$1; shift
    set +e
    env BUILD=$BUILD MODEL="$MODEL" PORT=$HTTP_PORT WORKER_PORT=$UCX_PORT "$@" timeout 60 tools/run-local.sh >"$log" 2>&1
    local rc=$?
    set -e
    return $rc
}
# 1. the HTTP port is taken by another server
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(120)' "$HTTP_PORT" &
squatter=$!
PIDS+=($squatter)
sleep 0.3
start=$SECONDS
if runlocal "$WORK/busy.log"; then echo "FAIL run-local succeeded on a port in use"; cat "$WORK/busy.log"; exit 1; fi
grep -q "127.0.0.1:$HTTP_PORT is in use" "$WORK/busy.log" && [ $((SECONDS - start)) -lt 10 ] &&
    echo "ok   a port in use: refused at once ($(tail -n 1 "$WORK/busy.log"))" || { echo "FAIL busy port:"; cat "$WORK/busy.log"; exit 1; }
kill "$squatter"; wait "$squatter" 2>/dev/null || true
# 2. a model folder the daemons refuse
cp -r "$MODEL" "$WORK/broken"
python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); c["architectures"] = ["NoSuchForCausalLM"]; json.dump(c, open(sys.argv[1], "w"))' \
    "$WORK/broken/config.json"
start=$SECONDS
if runlocal "$WORK/broken.log" MODEL="$WORK/broken"; then echo "FAIL run-local succeeded on a broken model"; exit 1; fi
grep -q "exited (status [1-9]" "$WORK/broken.log" && grep -qi "NoSuchForCausalLM\|architecture" "$WORK/broken.log" &&
    [ $((SECONDS - start)) -lt 30 ] && echo "ok   a broken model: the daemon's error, then run-local stops in $((SECONDS - start)) s" ||
    { echo "FAIL broken model ($((SECONDS - start)) s):"; cat "$WORK/broken.log"; exit 1; }
[ -z "$(pgrep -f "$WORK/broken" || true)" ] || { echo "FAIL daemons left running"; exit 1; }
# 3. with an API key: the banner names the model and its curl lines carry the key
PDSERVE_API_KEY=k-run-local BUILD=$BUILD MODEL="$MODEL" PORT=$HTTP_PORT WORKER_PORT=$UCX_PORT python3 -c \
    'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    tools/run-local.sh >"$WORK/key.log" 2>&1 &
rl=$!
PIDS+=($rl)
for _ in $(seq 300); do grep -q "ready on" "$WORK/key.log" && break; sleep 0.1; done
PIDS+=($(pgrep -P $rl | tr '\n' ' '))
model_name=$(basename "$MODEL")
grep -q "(model \"$model_name\")" "$WORK/key.log" && grep -q 'Authorization: Bearer $PDSERVE_API_KEY' "$WORK/key.log" ||
    { echo "FAIL banner with a key:"; cat "$WORK/key.log"; exit 1; }
code=$(PDSERVE_API_KEY=k-run-local bash -c "$(grep -A1 '^  curl http' "$WORK/key.log" | sed 's/\\$//' | tr -d '\n') -s -o /dev/null -w '%{http_code}'")
[ "$code" = 200 ] && echo "ok   with a key: the banner names model \"$model_name\" and its curl line works" ||
    { echo "FAIL the banner's curl line gave $code"; cat "$WORK/key.log"; exit 1; }
kill -INT $rl
for _ in $(seq 100); do kill -0 $rl 2>/dev/null || break; sleep 0.1; done
