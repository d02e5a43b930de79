#!/usr/bin/env bash
# plan.sh — pdserve-plan's simulator against queues computed by hand, and the planner end to end on a
# profile measured by pdserve-bench-engine --profile.
#  1. M/D/1: one prefill worker whose every pass takes D = 100 ms, one prompt a pass (token budget =
#     prompt length), one output token, Poisson arrivals at λ: mean TTFT = D + ρD / (2(1 − ρ)), ρ = λD
#     (Pollaczek–Khinchine). 100,000 requests land within 2% at ρ = 0.2, 0.5 and 0.8.
#  2. A lone request on a colocated worker with constant passes: TTFT = D, TPOT = D, exactly.
#  3. A lone disaggregated request whose KV transfer (100 tokens × 1000 B at 100 kB/s = 1 s) outlasts
#     its pass: decoding starts after 1 s − D (what the pass hid) + the 1 ms latency; then 4 passes,
#     so TPOT = (0.9 + 0.001 + 0.4) s / 4 = 325.25 ms.
#  4. A real profile of the tiny model at 1 thread: the planner picks a deployment, prints its
#     curve, and writes a node's /etc/pdserve files; bad options and profiles are refused by name.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PLAN=$BUILD/pdserve-plan
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL $*"; exit 1; }

echo '{"model":"const","kv_bytes_per_token":1000,"cost":[{"threads":1,"c":[0.1,0,0,0,0]}]}' >"$TMP/const.json"
SIM=("$PLAN" simulate --profile "$TMP/const.json" --slo-ttft-ms 1000 --slo-tpot-ms 1000 --json)
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

for rate in 2 5 8; do
    got=$("${SIM[@]}" --deployment 1P+1D --rate $rate --input-len 100 --output-len 1 --token-budget 100 \
          --num-prompts 100000 | field ttft_mean_ms)
    python3 - "$rate" "$got" <<'PY' || fail "M/D/1 at rate $rate"
import sys
lam, got = float(sys.argv[1]), float(sys.argv[2])
D = 0.1; rho = lam * D
want = 1000 * (D + rho * D / (2 * (1 - rho)))
print(f"M/D/1 rho={rho:.1f}: mean TTFT {got:.1f} ms, Pollaczek-Khinchine {want:.1f} ms")
sys.exit(abs(got - want) / want > 0.02)
PY
done

out=$("${SIM[@]}" --deployment 1C --rate 0.001 --num-prompts 3 --input-len 100 --output-len 5)
[ "$(echo "$out" | field ttft_mean_ms)" = 100.0 ] && [ "$(echo "$out" | field tpot_mean_ms)" = 100.0 ] ||
    fail "colocated lone request: $out"
echo "ok   colocated lone request: TTFT = TPOT = 100 ms"

out=$("${SIM[@]}" --deployment 1P+1D --rate 0.001 --num-prompts 3 --input-len 100 --output-len 5 \
      --link-gbps 0.0001 --link-latency-ms 1)
[ "$(echo "$out" | field ttft_mean_ms)" = 100.0 ] && [ "$(echo "$out" | field tpot_mean_ms)" = 325.25 ] ||
    fail "disaggregated lone request with a slow link: $out"
echo "ok   disaggregated lone request behind a 1 s transfer: TPOT 325.25 ms"

"$BUILD/pdserve-mkmodel" --out "$TMP/model" --preset tiny --seed 1 >/dev/null
"$BUILD/pdserve-bench-engine" --model "$TMP/model" --threads 1 --profile "$TMP/profile.json"
python3 - "$TMP/profile.json" <<'PY' || fail "profile contents"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["kv_bytes_per_token"] > 0 and len(p["passes"]) >= 9, p
assert all(x["threads"] == 1 and x["secs"] > 0 for x in p["passes"])
PY
"$PLAN" --profile "$TMP/profile.json" --input-len 64 --output-len 16 --slo-ttft-ms 2000 --slo-tpot-ms 500 \
    --num-prompts 200 --nodes 2 --cores 2 --write-env "$TMP/env" | tee "$TMP/plan.txt"
grep -q "^best: .* on each of 2 node(s)" "$TMP/plan.txt" || fail "no best deployment"
grep -q "attainment" "$TMP/plan.txt" || fail "no curve"
for node in node1 node2; do
    [ -s "$TMP/env/$node/units" ] && grep -q -- "--threads 1" "$TMP/env/$node/cluster.env" || fail "$node files"
    while read -r unit; do
        name=${unit#*@}; name=${name%.service}
        grep -q "^PDSERVE_ID=" "$TMP/env/$node/$name.env" || fail "$node/$name.env"
        grep -q "^CPUAffinity=" "$TMP/env/$node/$unit.d/pin.conf" || fail "$node pin of $unit"
    done <"$TMP/env/$node/units"
done
[ "$(sort "$TMP"/env/node*/units | uniq -d)" = "" ] || fail "a unit is named on two nodes"
echo "ok   plan for 2 nodes written: $(cat "$TMP"/env/node*/units | tr '\n' ' ')"

refused() { # refused EXIT_CODE MESSAGE ARGS...: the planner exits so, saying so
    local want=$1 msg=$2; shift 2
    set +e; "$PLAN" "$@" >/dev/null 2>"$TMP/err"; rc=$?; set -e
    [ $rc -eq "$want" ] && grep -q -- "$msg" "$TMP/err" || fail "$* gave $rc: $(cat "$TMP/err")"
}
refused 2 "missing --profile" --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--deployment 3X" simulate --profile "$TMP/const.json" --deployment 3X --rate 1 --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--attainment" --profile "$TMP/const.json" --attainment 2 --slo-ttft-ms 1 --slo-tpot-ms 1
echo '{"passes":[{"threads":1,"tokens":1,"attn":1,"logits":1,"secs":1}]}' >"$TMP/few.json"
refused 1 "need two more passes" --profile "$TMP/few.json" --slo-ttft-ms 1 --slo-tpot-ms 1
echo '{"passes":' >"$TMP/broken.json"
refused 1 "broken.json" --profile "$TMP/broken.json" --slo-ttft-ms 1 --slo-tpot-ms 1
refused 1 "no 2-thread" simulate --profile "$TMP/const.json" --deployment 1C --threads 2 --rate 1 --slo-ttft-ms 1 --slo-tpot-ms 1
echo "ok   bad options and profiles refused by name"
"$PLAN" --help | grep -q "usage: pdserve-plan" || fail "--help"
echo "plan: all checks passed"
