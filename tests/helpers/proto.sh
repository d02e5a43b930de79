# proto.sh — shared by the transport's multi-process tests (tests/proto/*.sh): starts test_wire_peer
# servers and clients, remembers every process it started and stops them all when the script exits,
# however it exits (trap). Source it; $BUILD must be set (tests/run does).
set -u
PEER="${BUILD:?BUILD is not set}/tests/test_wire_peer"
[ -x "$PEER" ] || { echo "FAIL: $PEER is not built (make BUILD=$BUILD)"; exit 1; }
TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

die() {
    echo "FAIL: $*"
    local f
    [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$TMP"/*.log "$KEEP_LOGS"/ # all of every log
    for f in "$TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f")"
        grep -m 8 -A 3 -E 'ERROR|Sanitizer|runtime error|Caught signal' "$f"
        grep -v '^#' "$f" | tail -n 15
    done
    exit 1
}

# wait_for FILE REGEX SECONDS: succeeds as soon as FILE has a line matching REGEX.
wait_for() {
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -le $deadline ]; do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_server NAME ADDR [ARGS...]: a server listening on ADDR (host:port, port 0 = any); sets
# SPID_<NAME> and PORT_<NAME>. $NS (optional) runs it inside that network namespace.
start_server() {
    local name=$1 addr=$2
    shift 2
    rm -f "$TMP/$name.log" # an old log's "listening" line must not be taken for this server's
    ${NS:+ip netns exec "$NS"} "$PEER" serve --listen "$addr" "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    eval "SPID_$name=$!"
    wait_for "$TMP/$name.log" "listening on port" 30 || die "server $name did not start"
    eval "PORT_$name=$(grep -o 'listening on port [0-9]*' "$TMP/$name.log" | awk '{print $4}')"
}

# stop_server NAME: SIGTERM, then its exit status must be 0 (no KV check failed, no leak under ASan).
stop_server() {
    local pid
    eval "pid=\$SPID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" || die "server $1 exited with status $?"
}

# stat NAME KEY: a counter from the server's final "stats:" line.
stat() {
    grep -oE "(^| )$2=[0-9]+" "$TMP/$1.log" | tail -n 1 | cut -d= -f2
}

# client NAME MODE ADDR [ARGS...]: runs a client in the foreground; its output goes to NAME.log.
client() {
    local name=$1 mode=$2 addr=$3
    shift 3
    ${NS:+ip netns exec "$NS"} "$PEER" "$mode" --connect "$addr" "$@" >"$TMP/$name.log" 2>&1
}

# start_client NAME MODE ADDR [ARGS...]: the same in the background; sets CPID_<NAME>.
start_client() {
    local name=$1 mode=$2 addr=$3
    shift 3
    rm -f "$TMP/$name.log"
    ${NS:+ip netns exec "$NS"} "$PEER" "$mode" --connect "$addr" "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    eval "CPID_$name=$!"
}

# The transport choices every test runs under: "tcp", and "shm" = UCX_TLS=shm,tcp with shared
# memory enabled for PEER-mode endpoints (messages through shm FIFOs, RMA into UCX-allocated pools
# by memcpy; tcp for connection setup). set_tls CHOICE exports the environment for one.
TLS_CHOICES="${TLS_CHOICES:-tcp shm}"
set_tls() {
    unset UCX_POSIX_ERROR_HANDLING UCX_SYSV_ERROR_HANDLING
    export UCX_TLS=tcp
    if [ "$1" = shm ]; then
        export UCX_TLS=shm,tcp UCX_POSIX_ERROR_HANDLING=y UCX_SYSV_ERROR_HANDLING=y
    fi
}
