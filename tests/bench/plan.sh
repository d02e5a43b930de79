#!/usr/bin/env bash
# plan.sh — `make bench-plan`: is pdserve-plan's simulator right about this machine? It measures,
# then predicts, the same deployments:
#   1. `make bench-goodput` (tests/bench/goodput.sh): each deployment's max rate at 90% attainment,
#      per workload and SLO scale; every worker logs its passes (--step-log, NAME.steps);
#   2. the model's profile on one core (pdserve-bench-engine --profile, pinned like the workers);
#   3. pdserve-plan simulate --max-rate for 1P+1D, 2 colocated workers and the SLO-routed deployment
#      (0P+2C --rebalance, or 1P+1C for results from before it started so) with each measurement's workload and SLOs, three times: with
#      pass costs from the engine's profile alone; from every worker's passes (--steps: what the
#      daemons ran under load, sharing the cores with the frontend and the load generator); and from
#      the passes of the *other* workloads' runs only (the out-of-sample check: no pass of the runs
#      predicted went into the costs); and, each measured run served again (--replay) at the costs of
#      the passes its own workers logged while it ran (--run-costs: the machine's speed in that run,
#      which moves 15-48% in an hour here), the highest replayed rate meeting the target;
# and prints measured, simulated and their ratio (the target is within 15%), then each measured
# run served again in simulation (--replay: the same arrivals and lengths, so only the simulator
# differs; measured and simulated plotted side by side in each workload's plan-plots/), then the
# planner's pick for this machine on the first workload. PLAN_REUSE=1 reuses a
# finished bench-goodput in GOODPUT_OUT instead of step 1. Knobs: goodput.sh's (GOODPUT_*),
# PLAN_LINK_GBPS (KV transfer bandwidth over loopback, 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PRESET=${GOODPUT_PRESET:-small}
OUTDIR=${GOODPUT_OUT:-$BUILD/bench-goodput}
LINK=${PLAN_LINK_GBPS:-1}

if [ "${PLAN_REUSE:-0}" != 1 ] || ! ls "$OUTDIR"/*-*-x*/coloc.json >/dev/null 2>&1; then
    ./tests/bench/goodput.sh
fi
echo
echo "profiling $BUILD/models/$PRESET on core 0..."
rm -f "$OUTDIR/profile.json"
taskset -c 0 "$BUILD/pdserve-bench-engine" --model "$BUILD/models/$PRESET" --threads 1 --profile "$OUTDIR/profile.json"

# steps_of DIR...: --steps FILE for every worker's step log in those folders, one word a line.
steps_of() {
    local d f
    for d in "$@"; do
        for f in "$d"/*.steps; do [ -s "$f" ] && printf -- '--steps\n%s\n' "$f"; done
    done
    return 0
}
# max_rate DEPLOYMENT [--rebalance] ARGS...: the simulated max rate at the attainment target ("-" on
# an error).
max_rate() {
    local dep=(--deployment "$1"); shift
    [ "${1:-}" = --rebalance ] && { dep+=(--rebalance); shift; }
    "$BUILD/pdserve-plan" simulate "$@" "${dep[@]}" --max-rate --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["max_rate"])' || echo -
}

# run_rate FILE DEPLOYMENT [--rebalance]: the highest of FILE's runs that, each replayed at the costs
# its deployment's workers logged while it ran, meets the attainment target ("-" when the logs have no
# "t", or on an error).
run_rate() {
    local file=$1 dep=$2 rebalance=${3:-} steps=()
    mapfile -t steps < <(for f in "${file%.json}"-*.steps; do [ -s "$f" ] && printf -- '--steps\n%s\n' "$f"; done)
    [ ${#steps[@]} -gt 0 ] || { echo -; return; }
    "$BUILD/pdserve-plan" simulate --profile "$OUTDIR/profile.json" "${steps[@]}" --link-gbps "$LINK" \
        --deployment "$dep" $rebalance --replay "$file" --run-costs 2>/dev/null |
        awk '/^  max rate/ { r = $(NF - 1); sub(",", "", r); print r }' | grep . || echo -
}

rows=()
replays=()
for dir in "$OUTDIR"/*-*-x*; do
    [ -f "$dir/coloc.json" ] && [ -f "$dir/disagg.json" ] || continue
    name=$(basename "$dir"); IN=${name%%-*}; rest=${name#*-}; OUT=${rest%%-*}
    read -r TTFT TPOT < <(python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["slo"]
print(s["ttft_ms"], s["tpot_ms"])' "$dir/coloc.json")
    WORKLOAD=(--profile "$OUTDIR/profile.json" --input-len "$IN" --output-len "$OUT" --range-ratio 0.25
              --slo-ttft-ms "$TTFT" --slo-tpot-ms "$TPOT" --attainment 0.9 --link-gbps "$LINK")
    [ ${#rows[@]} -eq 0 ] && FIRST=("${WORKLOAD[@]}")
    mapfile -t ALL < <(steps_of "$OUTDIR"/*-*-x*)
    mapfile -t OTHERS < <(for d in "$OUTDIR"/*-*-x*; do [ "$d" = "$dir" ] || steps_of "$d"; done)
    for file in disagg coloc slo; do
        [ -f "$dir/$file.json" ] || continue
        case $file in
        disagg) dep=(1P+1D) ;;
        coloc)  dep=(2C) ;;
        slo)    dep=(0P+2C --rebalance) # how bench-goodput starts it; before, with a prefill worker
                [ -f "$dir/slo-prefill.steps" ] && dep=(1P+1C --rebalance) ;;
        esac
        engine=$(max_rate "${dep[@]}" "${WORKLOAD[@]}")
        steps=$(max_rate "${dep[@]}" "${WORKLOAD[@]}" "${ALL[@]}")
        others=-; [ ${#OTHERS[@]} -gt 0 ] && others=$(max_rate "${dep[@]}" "${WORKLOAD[@]}" "${OTHERS[@]}")
        own=$(run_rate "$dir/$file.json" "${dep[@]}")
        rows+=("$name ${dep[0]} $dir/$file.json $engine $steps $others $own")
        replays+=("$dir/$file.json ${dep[*]}")
    done
done
[ ${#rows[@]} -gt 0 ] || { echo "bench-plan: no bench-goodput results in $OUTDIR" >&2; exit 1; }
printf '%s\n' "${rows[@]}" >"$OUTDIR/plan-rows.txt"
python3 - "$OUTDIR/plan-rows.txt" <<'PY'
import json, sys
def cell(sim, m):
    return f"{float(sim):8.3f} {float(sim) / m:5.2f}x" if sim != "-" and m else f"{'-':>8} {'':>6}"
print(f"\n{'':<32}{'':>10}  {'simulated (sim / measured), pass costs from':^65}")
print(f"{'workload-SLO scale':<20}{'deployment':<12}{'measured':>10}  {'engine profile':>15} "
      f"{'all workers steps':>17} {'other workloads':>15} {'each run its own':>16}")
for line in open(sys.argv[1]):
    name, dep, path, engine, steps, others, own = line.split()
    m = json.load(open(path))["max_rate_at_attainment"]
    print(f"{name:<20}{dep:<12}{m:>10.3f}  {cell(engine, m)} {cell(steps, m):>17} {cell(others, m):>15} "
          f"{cell(own, m):>16}")
print("(max rate at 90% attainment, req/s; target: simulated within 15% of measured)")
PY
echo
echo "each measured run served again in simulation (costs from every worker's steps):"
for r in "${replays[@]}"; do
    read -r file dep rebalance <<<"$r"
    mkdir -p "$(dirname "$file")/sim"
    "$BUILD/pdserve-plan" simulate --profile "$OUTDIR/profile.json" "${ALL[@]}" --link-gbps "$LINK" \
        --deployment "$dep" $rebalance --replay "$file" --save-result "$(dirname "$file")/sim/$(basename "$file")" 2>/dev/null
done
# measured and simulated attainment (and goodput, TTFT, TPOT) against rate, side by side
for dir in "$OUTDIR"/*-*-x*; do
    [ -d "$dir/sim" ] || continue
    args=()
    for file in disagg coloc slo; do
        [ -f "$dir/sim/$file.json" ] && args+=(--label "$file measured" "$dir/$file.json" --label "$file simulated" "$dir/sim/$file.json")
    done
    "$BUILD/pdserve-bench" plot --out "$dir/plan-plots" "${args[@]}" 2>&1 | tail -1 || true
done
echo
"$BUILD/pdserve-plan" "${FIRST[@]}" "${ALL[@]}" --cores 2
