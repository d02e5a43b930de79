# bench.sh — helpers the pdserve-bench script tests source: a scratch directory and scripted servers
# that are stopped when the test exits, however it exits.
set -euo pipefail
BUILD="${BUILD:-build}"
BENCH="$BUILD/pdserve-bench"
[ -x "$BENCH" ] || { echo "missing $BENCH: build it first (make BUILD=$BUILD)"; exit 1; }
TMP="$(mktemp -d)"
# The tests compare timings to the millisecond; on a busy machine a higher priority for the
# server and the client keeps other processes' time slices out of the measurements. Only root
# may raise it; otherwise the tests run as they are.
PRIO=()
if nice -n -10 true 2>/dev/null; then PRIO=(nice -n -10); fi
bench() { "${PRIO[@]}" "$BENCH" "$@"; }
SERVER_PIDS=()

cleanup() {
    for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# start_server NAME [scripted_server.js options...]: starts a server, sets PORT_<NAME>.
start_server() {
    local name="$1"; shift
    "${PRIO[@]}" node tests/bench/scripted_server.js --port-file "$TMP/$name.port" "$@" \
        >"$TMP/$name.out" 2>&1 &
    SERVER_PIDS+=($!)
    for _ in $(seq 100); do
        [ -s "$TMP/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$TMP/$name.port" ] || { cat "$TMP/$name.out"; echo "scripted server $name did not start"; exit 1; }
    printf -v "PORT_$name" '%s' "$(cat "$TMP/$name.port")"
    # Warm both endpoints' code paths in the server before anything is measured.
    local ep
    for ep in /v1/completions /v1/chat/completions; do
        "$BENCH" --base-url "http://127.0.0.1:$(cat "$TMP/$name.port")" --endpoint "$ep" \
            --model __warmup__ --num-prompts 4 --input-len 1 --output-len 2 --no-progress \
            >/dev/null 2>&1 || true
    done
}

# server_log NAME: the requests server NAME received, as JSON lines, into $TMP/NAME.log.
server_log() {
    local port="PORT_$1"
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "http://127.0.0.1:${!port}/log" >"$TMP/$1.log"
}
