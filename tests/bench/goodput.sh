#!/usr/bin/env bash
# goodput.sh — `make bench-goodput`: does disaggregation pay on this machine? Two deployments of
# the same model on the same two cores, the same workload and the same SLOs:
#   disaggregated: one pdserve-prefill (core 0) + one pdserve-decode (core 1)
#   colocated:     two pdserve-decode --colocated workers (core 0, core 1)
# each behind a pdserve-frontend. For each, pdserve-bench --sweep auto finds the highest request
# rate at which 90% of requests meet both SLOs (DistServe's "max rate at 90% attainment"); the
# script prints both and their ratio, and writes the plots.
#
# SLOs: unless GOODPUT_SLO_TTFT_MS / GOODPUT_SLO_TPOT_MS are set, they are the colocated
# deployment's unloaded latencies (one request at a time) times GOODPUT_TTFT_SCALE and
# GOODPUT_TPOT_SCALE (5 each; DistServe's "SLO scale"): room for some queueing before the first
# token, and for a few prefills interleaved with a request's decoding.
# Knobs (environment): GOODPUT_PRESET (small), GOODPUT_PROMPTS (20), GOODPUT_INPUT_LEN (256),
# GOODPUT_OUTPUT_LEN (64), GOODPUT_OUT ($BUILD/bench-goodput), GOODPUT_ORDER ("coloc disagg":
# which sweep runs first; swap it to see how much the machine's other work moved the result).
# The load average during each sweep is printed at the end: the numbers mean something only on
# a machine doing nothing else.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PRESET=${GOODPUT_PRESET:-small}
PROMPTS=${GOODPUT_PROMPTS:-20}
TTFT_SCALE=${GOODPUT_TTFT_SCALE:-5}
TPOT_SCALE=${GOODPUT_TPOT_SCALE:-5}
IN=${GOODPUT_INPUT_LEN:-256}
OUT=${GOODPUT_OUTPUT_LEN:-64}
DIR=${GOODPUT_OUT:-$BUILD/bench-goodput}
MODEL=$BUILD/models/$PRESET
BENCH=$BUILD/pdserve-bench

for b in frontend prefill decode mkmodel bench; do
    if [ ! -x "$BUILD/pdserve-$b" ]; then
        echo "bench-goodput: $BUILD/pdserve-$b is not built (make BUILD=$BUILD all); cannot run" >&2
        exit 1
    fi
done
command -v taskset >/dev/null || { echo "bench-goodput: taskset (util-linux) is missing" >&2; exit 1; }
mkdir -p "$DIR" "$BUILD/models"
if [ ! -f "$MODEL/config.json" ]; then
    echo "writing $MODEL (random weights, preset $PRESET)..."
    "$BUILD/pdserve-mkmodel" --out "$MODEL" --preset "$PRESET" --seed 1 >/dev/null
fi

PIDS=()
stop_cluster() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap stop_cluster EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cluster disagg|coloc: a frontend and two workers pinned one per core; sets URL.
start_cluster() {
    local mode=$1 http ucx
    http=$(free_port); ucx=$(free_port)
    URL="http://127.0.0.1:$http"
    "$BUILD/pdserve-frontend" --port "$http" --model "$MODEL" --ucx-port "$ucx" \
        >"$DIR/$mode-frontend.log" 2>&1 &
    PIDS+=($!)
    local worker=(--model "$MODEL" --frontend "127.0.0.1:$ucx" --threads 1)
    if [ "$mode" = disagg ]; then
        taskset -c 0 "$BUILD/pdserve-prefill" "${worker[@]}" --id 1 >"$DIR/$mode-prefill.log" 2>&1 &
        PIDS+=($!)
        taskset -c 1 "$BUILD/pdserve-decode" "${worker[@]}" --id 2 >"$DIR/$mode-decode.log" 2>&1 &
        PIDS+=($!)
    else
        for core in 0 1; do
            taskset -c $core "$BUILD/pdserve-decode" --colocated "${worker[@]}" --id $((core + 1)) \
                >"$DIR/$mode-worker$core.log" 2>&1 &
            PIDS+=($!)
        done
    fi
    # Ready when a real request completes end to end (model loaded, workers registered).
    for _ in $(seq 120); do
        if "$BENCH" --base-url "$URL" --model "$PRESET" --num-prompts 1 --input-len 4 --output-len 2 \
               --timeout 30 --no-progress --save-result "$DIR/ready.json" >/dev/null 2>&1 &&
           python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["completed"] != 1)' \
               "$DIR/ready.json"; then
            return 0
        fi
        sleep 1
    done
    echo "bench-goodput: the $mode cluster did not serve a request within 2 minutes; logs in $DIR" >&2
    exit 1
}

WORKLOAD=(--model "$PRESET" --dataset random --input-len "$IN" --output-len "$OUT" --range-ratio 0.25
          --num-prompts "$PROMPTS" --seed 1 --ignore-eos --timeout 300 --attainment 0.9)

# Unloaded latencies of the colocated baseline fix the SLOs (unless given) and the first rate.
start_cluster coloc
"$BENCH" --base-url "$URL" "${WORKLOAD[@]}" --num-prompts 4 --max-concurrency 1 --no-progress \
    --save-result "$DIR/unloaded.json" >/dev/null
read -r TTFT0 TPOT0 E2E0 < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["median_ttft_ms"], r["median_tpot_ms"], r["median_e2el_ms"])' "$DIR/unloaded.json")
SLO_TTFT=${GOODPUT_SLO_TTFT_MS:-$(python3 -c "print(round($TTFT_SCALE * $TTFT0))")}
SLO_TPOT=${GOODPUT_SLO_TPOT_MS:-$(python3 -c "print(round($TPOT_SCALE * $TPOT0))")}
START=$(python3 -c "print(round(1000 / $E2E0, 3))")
echo "unloaded (colocated): TTFT $TTFT0 ms, TPOT $TPOT0 ms, E2E $E2E0 ms"
echo "SLOs: TTFT <= $SLO_TTFT ms, TPOT <= $SLO_TPOT ms; sweeps start at $START req/s"
SWEEP=(--slo-ttft-ms "$SLO_TTFT" --slo-tpot-ms "$SLO_TPOT" --sweep auto --sweep-start "$START"
       --sweep-steps 3)

stop_cluster

# sweep_deployment disagg|coloc: the whole sweep on a fresh cluster.
sweep_deployment() {
    local label="colocated (2 workers)"
    [ "$1" = disagg ] && label="disaggregated (1P+1D)"
    start_cluster "$1"
    "$BENCH" --base-url "$URL" "${WORKLOAD[@]}" "${SWEEP[@]}" --label "$label" \
        --save-result "$DIR/$1.json" | tee "$DIR/$1.txt"
    stop_cluster
}
for mode in ${GOODPUT_ORDER:-coloc disagg}; do
    sweep_deployment "$mode"
done

"$BENCH" plot --out "$DIR/plots" "$DIR/disagg.json" "$DIR/coloc.json"
python3 - "$DIR/disagg.json" "$DIR/coloc.json" <<'PY'
import json, sys
d, c = (json.load(open(f)) for f in sys.argv[1:])
print()
print(f"{'deployment':<28}{'max rate @90% attainment':>26}")
for r in (d, c):
    best = r["max_rate_at_attainment"]
    print(f"{r['label']:<28}{(f'{best:.3f} req/s' if best else 'none'):>26}")
db, cb = d["max_rate_at_attainment"], c["max_rate_at_attainment"]
print(f"{'ratio (disagg / coloc)':<28}{(f'{db / cb:.2f}x' if db and cb else 'n/a'):>26}")
# The two sweeps run one after the other: other work on the machine meanwhile skews one of them.
for r in (d, c):
    loads = [l for run in r["runs"] for l in run.get("load_average", []) if l >= 0]
    if loads:
        print(f"load average during {r['label']}: {min(loads):.1f} .. {max(loads):.1f}")
PY
echo "plots: $DIR/plots/{attainment,goodput,ttft,tpot}.png"
