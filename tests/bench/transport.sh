#!/usr/bin/env bash
# make bench-transport: KV transfer bandwidth (kvx_put_layer: messages over tcp, puts into a shared
# pool; proto/kv_xfer, 64 KiB - 4 MiB per
# transfer, 16 in flight, flushed at the end) and small-message latency (a 24-byte wire message
# echoed, through proto/ucx) over tcp and over shared memory on loopback, each next to ucx_perftest
# run in the same invocation with the same UCX settings and error handling (-e): tag_bw and
# ucp_put_bw for bandwidth, ucp_am_lat for latency. Every number is the best of BENCH_REPEAT runs
# (this machine may be shared). Prints a table with the ratios; MB/s means MiB/s, as in ucx_perftest.
#
#   BENCH_SIZES="65536 1048576" BENCH_BYTES=536870912 BENCH_REPEAT=3 tests/bench/transport.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PEER="$BUILD/tests/test_wire_peer"
[ -x "$PEER" ] || { echo "$PEER is not built (make BUILD=$BUILD)"; exit 1; }
command -v ucx_perftest >/dev/null || { echo "ucx_perftest is missing (Debian package ucx-utils)"; exit 1; }
SIZES=${BENCH_SIZES:-"65536 262144 1048576 4194304"}
BYTES=${BENCH_BYTES:-1073741824}
REPEAT=${BENCH_REPEAT:-3}
LAT_ITERS=${BENCH_LAT_ITERS:-20000}
# "shm,tcp:pool" = the receiver's pool allocated by UCX (kvx_pool_alloc) in shared memory.
TLS_LIST=${BENCH_TLS:-"tcp shm,tcp shm,tcp:pool"}
# Loopback only: with every interface allowed, UCX also stripes RMA over eth0 to ourselves.
export UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo}
# Shared-memory mode for the shm rows (docs/transport.md), plus what pdserve's transport sets for
# itself (proto/ucx.c), so ucx_perftest runs under the same rules as we do.
export UCX_POSIX_ERROR_HANDLING=y UCX_SYSV_ERROR_HANDLING=y UCX_POSIX_FIFO_ELEM_SIZE=16384 \
       UCX_SYSV_FIFO_ELEM_SIZE=16384 UCX_KEEPALIVE_INTERVAL=1s UCX_WARN_UNUSED_ENV_VARS=n
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$((20000 + RANDOM % 20000))

best() { sort -g | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
lowest() { sort -g | head -n 1; }

# perftest TEST SIZE ITERS FIELD [TIMEOUT]: one ucx_perftest client/server pair; prints the field
# of its "Final:" line (nothing if it did not finish in time).
perftest() {
    PORT=$((PORT + 1))
    ucx_perftest -p "$PORT" -e >"$TMP/pf_server.log" 2>&1 &
    local spid=$!
    PIDS+=($spid)
    sleep 0.5
    timeout "${5:-120}" ucx_perftest 127.0.0.1 -p "$PORT" -e -t "$1" -s "$2" -n "$3" -w 100 2>&1 |
        awk -v f="$4" '/^Final:/ {print $f}'
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
}

ours_bw() {
    "$PEER" bench --connect "127.0.0.1:$PORT_OURS" --size "$1" --iters "$2" | grep -o 'MiBps=[0-9.]*' | cut -d= -f2
}

ours_lat() { # prints "median avg"
    "$PEER" lat --connect "127.0.0.1:$PORT_OURS" --iters "$LAT_ITERS" |
        sed -n 's/.*one_way_avg_us=\([0-9.]*\) one_way_median_us=\([0-9.]*\).*/\2 \1/p'
}

run_tls() {
    export UCX_TLS=${1%:pool}
    local alloc=
    unset PDSERVE_KV_TRANSFER # tcp and shm,tcp: KV runs as messages (RMA is off without RDMA)
    if [ "$1" != "$UCX_TLS" ]; then
        alloc=--ucx-alloc
        export PDSERVE_KV_TRANSFER=put # puts into the mapped shared segment are RMA
    fi
    "$PEER" serve --listen 127.0.0.1:0 --layers 1 --blocks 64 --block-bytes 65536 $alloc >"$TMP/server.log" 2>&1 &
    local spid=$!
    PIDS+=($spid)
    for _ in $(seq 50); do grep -q "listening on port" "$TMP/server.log" && break; sleep 0.1; done
    PORT_OURS=$(grep -o 'listening on port [0-9]*' "$TMP/server.log" | awk '{print $4}')
    "$PEER" lat --connect "127.0.0.1:$PORT_OURS" --iters 10 | grep 'lane\[' | grep -E 'am |rma_bw' | sed "s/^#  */  [$1] lanes: /"
    for size in $SIZES; do
        local iters=$((BYTES / size)) o t p
        # interleaved, so a burst of load elsewhere on the machine hits both sides alike
        for _ in $(seq "$REPEAT"); do
            ours_bw "$size" "$iters" >>"$TMP/o.$size"
            perftest tag_bw "$size" "$iters" 7 >>"$TMP/t.$size"
        done
        o=$(best <"$TMP/o.$size")
        t=$(best <"$TMP/t.$size")
        rm -f "$TMP/o.$size" "$TMP/t.$size"
        # ucp_put_bw over tcp sometimes crawls (tens of MB/s) in UCX 1.13: one run, a quarter of the
        # bytes, 30 s at most; "n/a" when it did not finish.
        p=$(perftest ucp_put_bw "$size" $((iters / 4 + 1)) 7 30 | best)
        printf '%-13s %-12s %9d %12s %14s %14s %9s %9s\n' "$1" "kv put bw" "$size" "$o" "$t" "$p" \
            "$(ratio "$o" "$t")" "$(ratio "$o" "$p")" >>"$TMP/table"
    done
    local ol om pm pa
    ol=$(for _ in $(seq "$REPEAT"); do ours_lat; done | sort -g | head -n 1)
    pm=$(for _ in $(seq "$REPEAT"); do perftest ucp_am_lat 24 "$LAT_ITERS" 3; done | lowest)
    pa=$(for _ in $(seq "$REPEAT"); do perftest ucp_am_lat 24 "$LAT_ITERS" 4; done | lowest)
    printf '%-13s %-12s %9s %12s %14s %14s %9s %9s\n' "$1" "msg lat us" "24" "${ol% *}/${ol#* }" \
        "$pm/$pa" "-" "$(ratio "${ol% *}" "$pm")" "-" >>"$TMP/table"
    kill -TERM "$spid"
    wait "$spid" 2>/dev/null
}

echo "transport benchmark: UCX $(ucx_info -v | sed -n 's/# Version //p'), UCX_NET_DEVICES=$UCX_NET_DEVICES," \
     "best of $REPEAT, $((BYTES >> 20)) MiB per bandwidth run, $LAT_ITERS round trips per latency run"
for tls in $TLS_LIST; do run_tls "$tls"; done
echo
printf '%-13s %-12s %9s %12s %14s %14s %9s %9s\n' UCX_TLS what bytes pdserve perftest-tag perftest-put \
    ours/tag ours/put
printf '%-13s %-12s %9s %12s %14s %14s %9s %9s\n' "" "" "" "(MB/s)" "(MB/s)" "(MB/s)" "" ""
cat "$TMP/table"
echo "(latency rows: one-way microseconds, median/average; perftest column is ucp_am_lat; ratio of medians)"
