#!/usr/bin/env bash
# goodput.sh — `make bench-goodput`: which deployment of two cores serves the most requests within
# their SLOs? Three deployments of the same model on the same two cores, one worker per core, each
# behind a pdserve-frontend:
#   disagg:  one pdserve-prefill (core 0) + one pdserve-decode (core 1)
#   coloc:   two pdserve-decode --colocated workers
#   slo:     two pdserve-decode --colocated workers, the frontend routing by the SLOs
#            (--slo-ttft-ms/--slo-tpot-ms: conditional disaggregation, and the TPOT cut in the
#            workers' steps) and rebalancing the roles (--rebalance: a worker turns prefill when
#            colocation fails the SLOs under heavy prompt work, and back when that work is light;
#            docs/frontend.md) — pdserve's own answer to "which deployment?"
# For each workload (GOODPUT_WORKLOADS, "IN:OUT ...": prompt and output tokens, ±25%) and SLO scale
# (GOODPUT_SLO_SCALES), pdserve-bench --sweep auto finds each deployment's highest request rate at
# which 90% of requests meet both SLOs (DistServe's "max rate at 90% attainment"); the script
# prints them, the SLO-routed one over the better pure one, and the load average during each sweep.
# The three deployments are up at once (idle ones use no core) and swept interleaved: one
# pdserve-bench runs each deployment's search one rate in turn. This machine's speed drifts by
# 15-20% within an hour (a VM with neighbours); swept one after another, a deployment was credited
# with the machine's good quarter of an hour (2 colocated workers at 4.85 req/s with the engine
# decoding at 303 tokens/s, at 4.4 req/s an hour later, at 250 tokens/s, 13-34% attainment).
#
# SLOs: the colocated deployment's unloaded TTFT and TPOT (one request at a time) times the scale
# (DistServe's "SLO scale"), unless GOODPUT_SLO_TTFT_MS / GOODPUT_SLO_TPOT_MS are set.
# Knobs (environment): GOODPUT_PRESET (small), GOODPUT_PROMPTS (100 a rate), GOODPUT_WORKLOADS
# ("512:64 128:256": prefill-heavy, decode-heavy), GOODPUT_SLO_SCALES ("5"), GOODPUT_DEPLOYMENTS
# ("coloc disagg slo", the order their runs take turns in), GOODPUT_OUT ($BUILD/bench-goodput; a folder per
# workload and scale with every result, log and plot), GOODPUT_SWEEP_STEPS (3: the bisection's steps
# after the doubling; each halves the uncertainty of a max rate), GOODPUT_SWEEP_START (req/s: the
# first rate tried; default 2 / the unloaded E2E latency, which moves a little between runs, and the
# rates tried with it), GOODPUT_RATES (req/s, comma-separated: run these rates instead of searching,
# an A/B at a knee; warm-up at the first), GOODPUT_WARMUP_S (30: seconds of traffic at the first rate for each deployment
# before the sweep, not counted). Every worker writes its passes to NAME.steps in the folder (--step-log), for
# `make bench-plan`, and each deployment's /metrics at the end of its sweep is kept as NAME.metrics.
# The numbers mean something only on a machine doing nothing else: before and after the sweep the
# engine alone is timed on core 0 (pdserve-bench-engine: a 512-token prompt, single-sequence decode;
# before-speed.json, after-speed.json), the table shows them, and a change of more than 10% is
# called out: the rates are then not the machine's at one speed (the ratios, interleaved, less so).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PRESET=${GOODPUT_PRESET:-small}
PROMPTS=${GOODPUT_PROMPTS:-100}
WORKLOADS=${GOODPUT_WORKLOADS:-512:64 128:256}
SCALES=${GOODPUT_SLO_SCALES:-5}
DEPLOYMENTS=${GOODPUT_DEPLOYMENTS:-coloc disagg slo}
OUTDIR=${GOODPUT_OUT:-$BUILD/bench-goodput}
SWEEP_STEPS=${GOODPUT_SWEEP_STEPS:-3}
WARMUP_S=${GOODPUT_WARMUP_S:-30}
MODEL=$BUILD/models/$PRESET
BENCH=$BUILD/pdserve-bench

for b in frontend prefill decode mkmodel bench; do
    if [ ! -x "$BUILD/pdserve-$b" ]; then
        echo "bench-goodput: $BUILD/pdserve-$b is not built (make BUILD=$BUILD all); cannot run" >&2
        exit 1
    fi
done
command -v taskset >/dev/null || { echo "bench-goodput: taskset (util-linux) is missing" >&2; exit 1; }
mkdir -p "$OUTDIR" "$BUILD/models"
if [ ! -f "$MODEL/config.json" ]; then
    echo "writing $MODEL (random weights, preset $PRESET)..."
    "$BUILD/pdserve-mkmodel" --out "$MODEL" --preset "$PRESET" --seed 1 >/dev/null
fi

PIDS=()
stop_clusters() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap stop_clusters EXIT

free_port() { /usr/bin/python3 tests/helpers/free_port.py "$DIR/.ports"; }

# worker CORE NAME ARGS...: a worker pinned to CORE, logging to $DIR/NAME.log, its passes to NAME.steps.
worker() {
    local core=$1 name=$2; shift 2
    taskset -c "$core" "$@" --model "$MODEL" --frontend "127.0.0.1:$UCX" --threads 1 \
        --step-log "$DIR/$name.steps" >"$DIR/$name.log" 2>&1 &
    PIDS+=($!)
}

# start_cluster disagg|coloc|slo: a frontend and two workers pinned one per core; sets URL[mode].
# Clusters started together stay up together: an idle one takes 0.4% of a core (heartbeats).
declare -A URL
start_cluster() {
    local mode=$1 http fe_flags=()
    http=$(free_port); UCX=$(free_port)
    URL[$mode]="http://127.0.0.1:$http"
    [ "$mode" = slo ] && fe_flags=(--slo-ttft-ms "$SLO_TTFT" --slo-tpot-ms "$SLO_TPOT" --rebalance)
    "$BUILD/pdserve-frontend" --port "$http" --model "$MODEL" --ucx-port "$UCX" "${fe_flags[@]}" \
        >"$DIR/$mode-frontend.log" 2>&1 &
    PIDS+=($!)
    case $mode in
    disagg) worker 0 "$mode-prefill" "$BUILD/pdserve-prefill" --id 1
            worker 1 "$mode-decode" "$BUILD/pdserve-decode" --id 2 ;;
    coloc)  worker 0 "$mode-worker0" "$BUILD/pdserve-decode" --colocated --id 1
            worker 1 "$mode-worker1" "$BUILD/pdserve-decode" --colocated --id 2 ;;
    slo)    worker 0 "$mode-worker0" "$BUILD/pdserve-decode" --colocated --id 1
            worker 1 "$mode-worker1" "$BUILD/pdserve-decode" --colocated --id 2 ;;
    esac
    # Ready when a real request completes end to end (model loaded, workers registered).
    for _ in $(seq 120); do
        if "$BENCH" --base-url "${URL[$mode]}" --model "$PRESET" --num-prompts 1 --input-len 4 --output-len 2 \
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

# slos SCALE: SLO_TTFT, SLO_TPOT and the first sweep rate from the colocated unloaded latencies.
slos() {
    start_cluster coloc
    "$BENCH" --base-url "${URL[coloc]}" "${WORKLOAD[@]}" --num-prompts 4 --max-concurrency 1 --no-progress \
        --save-result "$DIR/unloaded.json" >/dev/null
    stop_clusters
    read -r TTFT0 TPOT0 E2E0 < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["median_ttft_ms"], r["median_tpot_ms"], r["median_e2el_ms"])' "$DIR/unloaded.json")
    SLO_TTFT=${GOODPUT_SLO_TTFT_MS:-$(python3 -c "print(round($1 * $TTFT0))")}
    SLO_TPOT=${GOODPUT_SLO_TPOT_MS:-$(python3 -c "print(round($1 * $TPOT0))")}
    # Two workers serve two requests at a time at their unloaded latency: every deployment meets its
    # SLOs there or close, so the sweep starts at 2 / E2E (a slower start only spends minutes on
    # rates that pass; one that fails is halved).
    START=${GOODPUT_SWEEP_START:-$(python3 -c "print(round(2000 / $E2E0, 3))")}
    echo "unloaded (colocated): TTFT $TTFT0 ms, TPOT $TPOT0 ms, E2E $E2E0 ms"
    echo "SLOs (scale $1): TTFT <= $SLO_TTFT ms, TPOT <= $SLO_TPOT ms; sweeps start at $START req/s"
}

# speed NAME: the engine alone on core 0, the machine's speed at that moment, as NAME-speed.json.
speed() {
    taskset -c 0 "$BUILD/pdserve-bench-engine" --model "$MODEL" --threads 1 --prompt-lens 512 \
        --decode-steps 64 --json >"$DIR/$1-speed.json" 2>/dev/null || rm -f "$DIR/$1-speed.json"
}

label() {
    case $1 in
    disagg) echo "disaggregated (1P+1D)" ;;
    coloc)  echo "colocated (2 workers)" ;;
    slo)    echo "SLO-routed, rebalanced (0P+2C start)" ;;
    esac
}

# sweep_deployments: every deployment up at once, each warmed, then one interleaved sweep of all
# (pdserve-bench: each deployment's search takes one run in turn), so the machine's drift moves
# them alike; the engine alone is timed before and after.
sweep_deployments() {
    local mode args=()
    speed before
    for mode in $DEPLOYMENTS; do
        start_cluster "$mode"
    done
    # Warm-up, not counted: GOODPUT_WARMUP_S of traffic at the start rate, so a deployment that adapts
    # (the rebalancer switches after 10-30 s) is swept as it runs, not as it starts; the first run
    # caps the bisection, and it used to be spent in the starting layout. Every deployment gets it.
    # The rebalancer decides nothing without a whole window of traffic: it sits out the others' runs.
    SWEEP=(--sweep auto --sweep-start "$START" --sweep-steps "$SWEEP_STEPS")
    [ -n "${GOODPUT_RATES:-}" ] && SWEEP=(--sweep "$GOODPUT_RATES") && START=${GOODPUT_RATES%%,*}
    for mode in $DEPLOYMENTS; do
        [ "$WARMUP_S" -gt 0 ] || break
        "$BENCH" --base-url "${URL[$mode]}" "${WORKLOAD[@]}" --request-rate "$START" --no-progress \
            --num-prompts "$(python3 -c "print(max(1, round($START * $WARMUP_S)))")" --seed 2 \
            --save-result "$DIR/$mode-warmup.json" >/dev/null
    done
    for mode in $DEPLOYMENTS; do
        args+=(--base-url "${URL[$mode]}" --label "$(label "$mode")" --save-result "$DIR/$mode.json")
    done
    "$BENCH" "${args[@]}" "${WORKLOAD[@]}" --slo-ttft-ms "$SLO_TTFT" --slo-tpot-ms "$SLO_TPOT" \
        "${SWEEP[@]}" | tee "$DIR/sweep.txt"
    for mode in $DEPLOYMENTS; do
        curl -s "${URL[$mode]}/metrics" >"$DIR/$mode.metrics" || true
    done
    stop_clusters
    speed after
}

for wl in $WORKLOADS; do
    IN=${wl%%:*} OUT=${wl##*:}
    WORKLOAD=(--model "$PRESET" --dataset random --input-len "$IN" --output-len "$OUT" --range-ratio 0.25
              --num-prompts "$PROMPTS" --seed 1 --ignore-eos --timeout 300 --attainment 0.9)
    for scale in $SCALES; do
        DIR=$OUTDIR/$IN-$OUT-x$scale
        mkdir -p "$DIR"
        rm -f "$DIR"/*.steps "$DIR"/*speed.json "$DIR/.ports"
        echo "== workload $IN in / $OUT out, SLO scale $scale: $DIR"
        slos "$scale"
        sweep_deployments
        plots=()
        for mode in $DEPLOYMENTS; do plots+=("$DIR/$mode.json"); done
        "$BENCH" plot --out "$DIR/plots" "${plots[@]}" 2>/dev/null | tail -1 || true
    done
done

python3 - "$OUTDIR" <<'PY'
import glob, json, os, sys
rows = []
for d in sorted(glob.glob(os.path.join(sys.argv[1], "*-*-x*"))):
    res = {m: json.load(open(f"{d}/{m}.json")) for m in ("disagg", "coloc", "slo") if os.path.exists(f"{d}/{m}.json")}
    if res:
        rows.append((os.path.basename(d), res))
def speed(d, m):
    try:
        s = json.load(open(f"{d}/{m}-speed.json"))
        return s["prefill"]["512"], s["decode"]
    except (OSError, ValueError, KeyError):
        return None
print(f"\n{'workload-SLO scale':<20}{'1P+1D':>10}{'2 coloc':>10}{'SLO-routed':>12}{'routed / best pure':>20}   load during sweeps")
drift = []
for name, res in rows:
    rate = {m: r["max_rate_at_attainment"] for m, r in res.items()}
    pure = max(rate.get("disagg", 0), rate.get("coloc", 0))
    ratio = f"{rate['slo'] / pure:.2f}x" if "slo" in rate and pure else "n/a"
    loads = []
    for m, r in res.items():
        l = [x for run in r["runs"] for x in run.get("load_average", []) if x >= 0]
        loads.append(f"{m} {min(l):.1f}-{max(l):.1f}" if l else m)
    cells = "".join(f"{rate[m]:>{w}.3f}" if m in rate else f"{'-':>{w}}" for m, w in (("disagg", 10), ("coloc", 10), ("slo", 12)))
    print(f"{name:<20}{cells}{ratio:>20}   {', '.join(loads)}")
    d = os.path.join(sys.argv[1], name)
    sp = [speed(d, m) for m in ("before", "after")]
    if all(sp):
        print(f"{'':<20}engine alone before / after the sweeps, prefill / decode tok/s: "
              f"{sp[0][0]:.0f} / {sp[0][1]:.1f}, {sp[1][0]:.0f} / {sp[1][1]:.1f}")
        for k in (0, 1):
            v = [x[k] for x in sp]
            if max(v) > 1.1 * min(v):
                drift.append(f"{name}: the engine's {('prefill', 'decode')[k]} speed moved "
                             f"{100 * (max(v) / min(v) - 1):.0f}% during the sweeps")
print("(max rate at 90% attainment, req/s; plots in each workload's folder)")
for line in drift:
    print(f"warning: {line}: the rates are not this machine's at one speed (interleaved, the "
          f"deployments' ratios are less moved than their rates)")
PY
