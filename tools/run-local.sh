#!/usr/bin/env bash
# run-local.sh — a one-machine pdserve cluster in the foreground (what `make run` calls): a frontend
# on http://$HOST:$PORT plus one prefill and one decode worker. Ctrl-C stops all three; so does any
# one of them dying. With no MODEL it generates a random-weight model (pdserve-mkmodel --preset
# small) in $BUILD/models/default once.
#
#   MODEL=DIR       a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)
#   HOST, PORT      HTTP address (127.0.0.1, 8000);  WORKER_PORT  where workers register, UCX (9000)
#   THREADS         compute threads per worker (1);  KV_GIB   KV cache per worker (0.5)
#   PDSERVE_API_KEY clients must send 'Authorization: Bearer KEY' (the frontend reads it)
#   FRONTEND_FLAGS, PREFILL_FLAGS, DECODE_FLAGS     extra flags for each daemon
# It fails at once, with a message, when a port is taken or a daemon exits before the cluster is
# ready (the daemon's own error is just above on the terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
WORKER_PORT=${WORKER_PORT:-9000}
THREADS=${THREADS:-1}
KV_GIB=${KV_GIB:-0.5}
MODEL=${MODEL:-$BUILD/models/default}

for b in pdserve-frontend pdserve-prefill pdserve-decode; do
    [ -x "$BUILD/$b" ] || { echo "run-local: $BUILD/$b is missing; run 'make' first" >&2; exit 1; }
done
if [ ! -f "$MODEL/config.json" ]; then
    if [ "$MODEL" != "$BUILD/models/default" ]; then
        echo "run-local: $MODEL has no config.json (give MODEL=a Hugging Face model folder)" >&2; exit 1
    fi
    echo "run-local: generating a random-weight model in $MODEL (pdserve-mkmodel --preset small)"
    mkdir -p "$(dirname "$MODEL")"
    "$BUILD/pdserve-mkmodel" --out "$MODEL" --preset small
fi

port_free() { # port_free HOST PORT: nothing listens there (we can bind it)
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))' "$1" "$2" 2>/dev/null
}
port_free "$HOST" "$PORT" ||
    { echo "run-local: $HOST:$PORT is in use (another server?); choose another with PORT=..." >&2; exit 1; }
port_free 127.0.0.1 "$WORKER_PORT" ||
    { echo "run-local: 127.0.0.1:$WORKER_PORT is in use; choose another with WORKER_PORT=..." >&2; exit 1; }

pids=()
names=()
stop_all() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

start() { # start NAME CMD...: a daemon in the background
    names+=("$1"); shift
    "$@" &
    pids+=($!)
}
# shellcheck disable=SC2086
start pdserve-frontend "$BUILD/pdserve-frontend" --model "$MODEL" --host "$HOST" --port "$PORT" \
    --ucx-port "$WORKER_PORT" ${FRONTEND_FLAGS:-}
sleep 0.3
# shellcheck disable=SC2086
start pdserve-prefill "$BUILD/pdserve-prefill" --model "$MODEL" --frontend "127.0.0.1:$WORKER_PORT" \
    --threads "$THREADS" --kv-gib "$KV_GIB" ${PREFILL_FLAGS:-}
# shellcheck disable=SC2086
start pdserve-decode "$BUILD/pdserve-decode" --model "$MODEL" --frontend "127.0.0.1:$WORKER_PORT" \
    --threads "$THREADS" --kv-gib "$KV_GIB" ${DECODE_FLAGS:-}

auth=()
[ -n "${PDSERVE_API_KEY:-}" ] && auth=(-H "Authorization: Bearer $PDSERVE_API_KEY")
# Ready when /health says so; a daemon that exits first ends the wait at once.
ready=0
for _ in $(seq 1200); do
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            rc=0; wait "${pids[$i]}" || rc=$?
            echo "run-local: ${names[$i]} exited (status $rc) before the cluster was ready; its error is above" >&2
            exit 1
        fi
    done
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/health" 2>/dev/null)" = 200 ] && { ready=1; break; }
    sleep 0.1
done
[ $ready = 1 ] || { echo "run-local: the cluster was not ready within 120 s (http://$HOST:$PORT/health)" >&2; exit 1; }
name=$(curl -s "${auth[@]}" "http://$HOST:$PORT/v1/models" | python3 -c 'import json, sys
print(json.load(sys.stdin)["data"][0]["id"])')
key_line=""
[ -n "${PDSERVE_API_KEY:-}" ] && key_line=" -H \"Authorization: Bearer \$PDSERVE_API_KEY\""
cat <<MSG
run-local: ready on http://$HOST:$PORT (model "$name"); Ctrl-C stops the cluster. Try:
  curl http://$HOST:$PORT/v1/completions -H 'Content-Type: application/json'$key_line \\
       -d '{"model":"$name","prompt":"Hello","max_tokens":16}'
  curl -N http://$HOST:$PORT/v1/chat/completions -H 'Content-Type: application/json'$key_line \\
       -d '{"model":"$name","messages":[{"role":"user","content":"Hi"}],"max_tokens":32,"stream":true}'
MSG
[ -n "${PDSERVE_API_KEY:-}" ] && echo "  (with PDSERVE_API_KEY exported in that shell)"
wait -n "${pids[@]}" || true
echo "run-local: a daemon exited; stopping the others" >&2
