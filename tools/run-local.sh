#!/usr/bin/env bash
# run-local.sh — a one-machine pdserve cluster in the foreground (what `make run` calls): a frontend
# on http://$HOST:$PORT plus one prefill and one decode worker. Ctrl-C stops all three; so does any
# one of them dying. With no MODEL it generates a random-weight model (pdserve-mkmodel --preset
# small) in $BUILD/models/default once.
#
#   MODEL=DIR       a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)
#   HOST, PORT      HTTP address (127.0.0.1, 8000);  WORKER_PORT  where workers register, UCX (9000)
#   THREADS         compute threads per worker (1);  KV_GIB   KV cache per worker (0.5)
#   FRONTEND_FLAGS, PREFILL_FLAGS, DECODE_FLAGS     extra flags for each daemon
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

pids=()
stop_all() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

# shellcheck disable=SC2086
"$BUILD/pdserve-frontend" --model "$MODEL" --host "$HOST" --port "$PORT" --ucx-port "$WORKER_PORT" ${FRONTEND_FLAGS:-} &
pids+=($!)
sleep 0.3
# shellcheck disable=SC2086
"$BUILD/pdserve-prefill" --model "$MODEL" --frontend "127.0.0.1:$WORKER_PORT" --threads "$THREADS" --kv-gib "$KV_GIB" ${PREFILL_FLAGS:-} &
pids+=($!)
# shellcheck disable=SC2086
"$BUILD/pdserve-decode" --model "$MODEL" --frontend "127.0.0.1:$WORKER_PORT" --threads "$THREADS" --kv-gib "$KV_GIB" ${DECODE_FLAGS:-} &
pids+=($!)

for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/health" 2>/dev/null)" = 200 ] && break
    sleep 0.1
done
name=$(curl -s "http://$HOST:$PORT/v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
cat <<MSG
run-local: ready on http://$HOST:$PORT (model "$name"); Ctrl-C stops the cluster. Try:
  curl http://$HOST:$PORT/v1/completions -H 'Content-Type: application/json' \\
       -d '{"model":"$name","prompt":"Hello","max_tokens":16}'
  curl -N http://$HOST:$PORT/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"$name","messages":[{"role":"user","content":"Hi"}],"stream":true}'
MSG
wait -n "${pids[@]}" || true
echo "run-local: a daemon exited; stopping the others" >&2
