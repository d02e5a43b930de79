#!/usr/bin/env bash
# plan.sh — `make bench-plan`: is pdserve-plan's simulator right about this machine? It measures,
# then predicts, the same two deployments:
#   1. `make bench-goodput`'s measurement (tests/bench/goodput.sh): the max rate at 90% attainment of
#      1P+1D and of 2 colocated workers, one core each, with its workload and SLOs;
#   2. the model's profile on one core (pdserve-bench-engine --profile, pinned like the workers);
#   3. pdserve-plan simulate --max-rate for each deployment with the same workload and SLOs;
# and prints measured, simulated and their ratio (the target is within 15%), plus the planner's own
# pick for this machine. PLAN_REUSE=1 reuses a finished bench-goodput in GOODPUT_OUT instead of step 1.
# Knobs: those of goodput.sh (GOODPUT_*), PLAN_LINK_GBPS (KV transfer over loopback, 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PRESET=${GOODPUT_PRESET:-small}
IN=${GOODPUT_INPUT_LEN:-256}
OUT=${GOODPUT_OUTPUT_LEN:-64}
DIR=${GOODPUT_OUT:-$BUILD/bench-goodput}
LINK=${PLAN_LINK_GBPS:-1}

if [ "${PLAN_REUSE:-0}" != 1 ] || [ ! -f "$DIR/disagg.json" ] || [ ! -f "$DIR/coloc.json" ]; then
    ./tests/bench/goodput.sh
fi
echo
echo "profiling $BUILD/models/$PRESET on core 0..."
rm -f "$DIR/profile.json"
taskset -c 0 "$BUILD/pdserve-bench-engine" --model "$BUILD/models/$PRESET" --threads 1 --profile "$DIR/profile.json"

read -r TTFT TPOT < <(python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))["slo"]
print(s["ttft_ms"], s["tpot_ms"])' "$DIR/coloc.json")
WORKLOAD=(--profile "$DIR/profile.json" --input-len "$IN" --output-len "$OUT" --range-ratio 0.25
          --slo-ttft-ms "$TTFT" --slo-tpot-ms "$TPOT" --attainment 0.9 --link-gbps "$LINK")
simulated() {
    "$BUILD/pdserve-plan" simulate "${WORKLOAD[@]}" --deployment "$1" --max-rate --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["max_rate"])'
}
SIM_DISAGG=$(simulated 1P+1D)
SIM_COLOC=$(simulated 2C)
python3 - "$DIR/disagg.json" "$DIR/coloc.json" "$SIM_DISAGG" "$SIM_COLOC" "$TTFT" "$TPOT" <<'PY'
import json, sys
measured = [json.load(open(f))["max_rate_at_attainment"] for f in sys.argv[1:3]]
simulated = [float(x) for x in sys.argv[3:5]]
print(f"\nSLOs TTFT {sys.argv[5]} ms, TPOT {sys.argv[6]} ms; max rate at 90% attainment (req/s):")
print(f"{'deployment':<24}{'measured':>10}{'simulated':>11}{'sim / measured':>16}")
for name, m, s in zip(["disaggregated (1P+1D)", "colocated (2 workers)"], measured, simulated):
    ratio = f"{s / m:.2f}x" if m else "n/a"
    print(f"{name:<24}{m:>10.3f}{s:>11.3f}{ratio:>16}")
PY
echo
"$BUILD/pdserve-plan" "${WORKLOAD[@]}" --cores 2
