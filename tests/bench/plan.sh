#!/usr/bin/env bash
# plan.sh — `make bench-plan`: is pdserve-plan's simulator right about this machine? It measures,
# then predicts, the same deployments:
#   1. `make bench-goodput` (tests/bench/goodput.sh): each deployment's max rate at 90% attainment,
#      per workload and SLO scale;
#   2. the model's profile on one core (pdserve-bench-engine --profile, pinned like the workers);
#   3. pdserve-plan simulate --max-rate for 1P+1D and 2 colocated workers with each measurement's
#      workload and SLOs (the simulator does not model the SLO-routed deployment);
# and prints measured, simulated and their ratio (the target is within 15%), then the planner's pick
# for this machine on the first workload. PLAN_REUSE=1 reuses a finished bench-goodput in
# GOODPUT_OUT instead of step 1. Knobs: goodput.sh's (GOODPUT_*), PLAN_LINK_GBPS (KV transfer
# bandwidth over loopback, 1).
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

rows=()
for dir in "$OUTDIR"/*-*-x*; do
    [ -f "$dir/coloc.json" ] && [ -f "$dir/disagg.json" ] || continue
    name=$(basename "$dir"); IN=${name%%-*}; rest=${name#*-}; OUT=${rest%%-*}
    read -r TTFT TPOT < <(python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["slo"]
print(s["ttft_ms"], s["tpot_ms"])' "$dir/coloc.json")
    WORKLOAD=(--profile "$OUTDIR/profile.json" --input-len "$IN" --output-len "$OUT" --range-ratio 0.25
              --slo-ttft-ms "$TTFT" --slo-tpot-ms "$TPOT" --attainment 0.9 --link-gbps "$LINK")
    [ ${#rows[@]} -eq 0 ] && FIRST=("${WORKLOAD[@]}")
    for dep in 1P+1D 2C; do
        sim=$("$BUILD/pdserve-plan" simulate "${WORKLOAD[@]}" --deployment "$dep" --max-rate --json 2>/dev/null |
              python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["max_rate"])')
        file=disagg; [ "$dep" = 2C ] && file=coloc
        rows+=("$name $dep $dir/$file.json $sim")
    done
done
[ ${#rows[@]} -gt 0 ] || { echo "bench-plan: no bench-goodput results in $OUTDIR" >&2; exit 1; }
printf '%s\n' "${rows[@]}" >"$OUTDIR/plan-rows.txt"
python3 - "$OUTDIR/plan-rows.txt" <<'PY'
import json, sys
head = ("workload-SLO scale", "deployment", "measured", "simulated", "sim / measured")
print(f"\n{head[0]:<20}{head[1]:<12}{head[2]:>10}{head[3]:>11}{head[4]:>16}")
for line in open(sys.argv[1]):
    name, dep, path, sim = line.split()
    m, s = json.load(open(path))["max_rate_at_attainment"], float(sim)
    ratio = f"{s / m:.2f}x" if m else "n/a"
    print(f"{name:<20}{dep:<12}{m:>10.3f}{s:>11.3f}{ratio:>16}")
print("(max rate at 90% attainment, req/s)")
PY
echo
"$BUILD/pdserve-plan" "${FIRST[@]}" --cores 2
