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
#     A measured profile whose prompt passes each have a token count of their own (as a short step
#     log's do: CI saw one in three) cannot tell prompt attention from the knots: it is fitted without
#     it, and a lone 30-token prompt takes the 70 ms its pass measured.
#  4. Routed by the SLOs (1P+1C), requests replayed at scripted times (--replay; passes of 100 ms
#     whatever they hold, token budget 2000, TTFT SLO 150 ms, 1 ms per prompt token predicted until
#     measured): r0 at 0 s goes to the prefill worker (nothing queued: 100 ms
#     predicted); r1 at 0.01 s would wait behind it there (200 ms predicted) and goes to the idle
#     colocated worker: both TTFTs 100 ms, all met. 1P+1D on the same file: r1 waits, 190 ms, 50% met.
#  5. The TPOT cut on a colocated worker: r0 and r1 (10 in, 30 out) decode on the two workers when r2
#     (1000 in) reaches r0's at 1.05 s. Unrouted, r2's prompt is one pass: TTFT 150 ms (it starts at
#     the next pass, 1.1 s). Two colocated workers routed by the SLOs (0P+2C) with a TPOT SLO of 101 ms: r0 has no time to
#     give (90.9 ms a token allowed, 100 taken): each pass carries the least, 128 prompt tokens, so 8
#     passes: TTFT 850 ms. With a TPOT SLO of 1000 ms it has: one pass, 150 ms again.
#     Time that gathers: passes of 100 ms + 0.1 ms a token, TPOT SLO 111.5 ms (100.35 ms a token
#     allowed). r0's prompt pass ends at 0.101 s; each decode pass takes 100.1 ms and adds 0.25 ms to
#     what r0 can give: before its k-th token after the first, 0.25 k ms, and it lends the 0.25 ms
#     each of its 29 − k passes to come will leave: 7.25 ms in all, under the 12.8 ms of 128 prompt
#     tokens. With a TTFT SLO of 5000 ms waiting pays, as r0 ends long before r2 is due: r2 waits
#     until r0's 30th token (0.101 + 29 × 0.1001 = 3.0039 s), then takes one pass (0.2 s): TTFT
#     2153.9 ms, r0's TPOT 100.1 ms; mean TTFT (101 + 101 + 2153.9) / 3 = 785.3 ms.
#     With a TTFT SLO of 1500 ms it does not: r2 is due once waiting one pass more and then taking 128
#     tokens a pass (8 passes) would end past 1.05 + 1.5 s (now + 9 × 0.1001 + 1000 × 0.0001 ≥ 2.55),
#     first at the pass starting 0.101 + 15 × 0.1001 = 1.6025 s; until then r0 gathers nothing (its
#     21 tokens to go are all lent already) and does not end. So r2 takes 128 tokens a pass at once,
#     from the pass starting 0.101 + 10 × 0.1001 = 1.102 s: 7 passes of 128 tokens (0.1129 s) and one
#     of 104 (0.1105 s), first token at 2.0028 s, TTFT 952.8 ms; mean (101 + 101 + 952.8) / 3 = 384.9
#     ms, every SLO met (r0's TPOT (2.0028 + 0.1002 + 10 × 0.1001 − 0.101) / 29 = 103.6 ms). Held
#     until due, as the rule was: TTFT 1453.3 ms, and r0's TPOT the same 103.6 ms.
#     The replay saved (--save-result) is a pdserve-bench result: `pdserve-bench plot` draws it
#     beside the measured file, and its attainment and mean TTFT are the ones printed.
#  6. The frontend's rebalancer in the simulation: a prefill worker given up, one taken on, the split
#     kept in the band between (below, by the case).
#  7. --run-costs: each replayed run at the pass costs its workers logged while it ran (below).
#  8. A real profile of the tiny model at 1 thread: the planner picks a deployment, prints its
#     curve, and writes a node's /etc/pdserve files; on nodes of more cores than --group-workers,
#     copies of a group fill them, every worker with its own core and a cluster-unique id; bad
#     options and profiles are refused by name.
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

python3 - "$TMP/own.json" <<'PY'
import json, sys
dec = [(1, 10, 0.010), (1, 20, 0.011), (1, 30, 0.012), (2, 40, 0.015), (2, 60, 0.016)]
passes = [dict(tokens=t, prompt_attn=0, decode_attn=a, secs=s) for t, a, s in dec]
passes += [dict(tokens=t, prompt_attn=t * (t + 1) // 2, decode_attn=0, secs=s) for t, s in ((20, 0.05), (30, 0.07), (40, 0.09))]
json.dump({"model": "own", "passes": [dict(p, threads=1, logits=1) for p in passes]}, open(sys.argv[1], "w"))
PY
out=$("$PLAN" simulate --profile "$TMP/own.json" --slo-ttft-ms 1000 --slo-tpot-ms 1000 --json --deployment 1C \
      --rate 0.001 --num-prompts 3 --input-len 30 --output-len 1)
[ "$(echo "$out" | field ttft_mean_ms)" = 70.0 ] || fail "prompts of a length each: $out"
echo "ok   every prompt pass of a length of its own (a short step log): a 30-token prompt takes the 70 ms measured"

# replayed RESULT DEPLOYMENT [FLAGS...]: "attainment% mean-TTFT" of the simulated replay of RESULT,
# passes costing what $PROFILE says (default: 100 ms, whatever they hold).
replayed() {
    local file=$1 dep=$2; shift 2
    "$PLAN" simulate --profile "${PROFILE:-$TMP/const.json}" --token-budget 2000 --link-gbps 2 --deployment "$dep" "$@" \
        --replay "$file" | awk '$1 ~ /^[0-9.]+$/ { print $4, $6 }'
}
# result FILE TTFT_SLO TPOT_SLO "START IN OUT" ...: a pdserve-bench result with those requests.
result() {
    local file=$1 ttft=$2 tpot=$3; shift 3
    python3 - "$file" "$ttft" "$tpot" "$@" <<'PY'
import json, sys
reqs = [dict(zip(("start_s", "input_tokens", "output_tokens"), map(float, r.split())), ok=True) for r in sys.argv[4:]]
run = {"request_rate": 1, "attainment": 1, "mean_ttft_ms": 0, "mean_tpot_ms": 0, "requests": reqs}
json.dump({"slo": {"ttft_ms": float(sys.argv[2]), "tpot_ms": float(sys.argv[3])}, "runs": [run]}, open(sys.argv[1], "w"))
PY
}
result "$TMP/overflow.json" 150 1000 "0 100 2" "0.01 100 2"
[ "$(replayed "$TMP/overflow.json" 1P+1C)" = "100.0% 100.0" ] || fail "SLO routing: $(replayed "$TMP/overflow.json" 1P+1C)"
[ "$(replayed "$TMP/overflow.json" 1P+1D)" = "50.0% 145.0" ] || fail "1P+1D: $(replayed "$TMP/overflow.json" 1P+1D)"
echo "ok   routed by the SLOs, the second prompt goes to the idle colocated worker: TTFTs 100 and 100 ms"
result "$TMP/cut.json" 5000 101 "0 10 30" "0.001 10 30" "1.05 1000 2"
[ "$(replayed "$TMP/cut.json" 2C)" = "100.0% 116.7" ] || fail "2C: $(replayed "$TMP/cut.json" 2C)"
[ "$(replayed "$TMP/cut.json" 0P+2C)" = "100.0% 350.0" ] ||
    fail "TPOT cut: $(replayed "$TMP/cut.json" 0P+2C)"
result "$TMP/slack.json" 5000 1000 "0 10 30" "0.001 10 30" "1.05 1000 2"
[ "$(replayed "$TMP/slack.json" 0P+2C)" = "100.0% 116.7" ] ||
    fail "TPOT slack: $(replayed "$TMP/slack.json" 0P+2C)"
echo "ok   a decoding colocated worker without time to give takes the prompt 128 tokens a pass (TTFT 850 ms);
     one with time to give, in one pass (150 ms)"
echo '{"model":"linear","kv_bytes_per_token":1000,"cost":[{"threads":1,"c":[0.1,0.0001,0,0,0]}]}' >"$TMP/linear.json"
result "$TMP/gather.json" 5000 111.5 "0 10 30" "0.001 10 30" "1.05 1000 2"
[ "$(PROFILE=$TMP/linear.json replayed "$TMP/gather.json" 0P+2C)" = "100.0% 785.3" ] ||
    fail "TPOT time gathering: $(PROFILE=$TMP/linear.json replayed "$TMP/gather.json" 0P+2C)"
echo "ok   a decoding colocated worker whose time gathers too slowly keeps the prompt waiting for its end (TTFT 2153.9 ms)"
result "$TMP/due.json" 1500 111.5 "0 10 30" "0.001 10 30" "1.05 1000 2"
[ "$(PROFILE=$TMP/linear.json replayed "$TMP/due.json" 0P+2C)" = "100.0% 384.9" ] ||
    fail "TTFT due: $(PROFILE=$TMP/linear.json replayed "$TMP/due.json" 0P+2C)"
echo "ok   ... but not when the prompt would be due first: it starts at once (TTFT 952.8 ms of 1500, not 1453.3)"
"$PLAN" simulate --profile "$TMP/linear.json" --token-budget 2000 --deployment 0P+2C --replay "$TMP/gather.json" \
    --save-result "$TMP/gather-sim.json" >/dev/null
python3 - "$TMP/gather-sim.json" <<'PY' || fail "saved replay"
import json, sys
r = json.load(open(sys.argv[1]))
run = r["runs"][0]
assert r["slo"] == {"ttft_ms": 5000, "tpot_ms": 111.5} and "simulated" in r["label"], r
assert run["request_rate"] == 1 and run["attainment"] == 1 and round(run["mean_ttft_ms"], 1) == 785.3, run
assert round(run["p99_ttft_ms"], 1) == 2153.9 and round(run["median_ttft_ms"], 1) == 101, run
PY
"$BUILD/pdserve-bench" plot --out "$TMP/plots" --label measured "$TMP/gather.json" --label simulated "$TMP/gather-sim.json" \
    >/dev/null 2>&1 && [ -s "$TMP/plots/attainment.png" ] || fail "plotting the saved replay"
echo "ok   a replay saved as a pdserve-bench result and plotted beside the measured one"

# 6. The rebalancer, simulated (its policy is the frontend's): 60 prompts, one every 0.25 s, passes of
#    100 ms, window 1 s. 10-token prompts on 1P+1C: the prefill worker measures 100 ms / 10 tokens =
#    10 ms a token, so 40 tokens/s are 0.4 workers of prompt work, under --rebalance-low 0.5 from the
#    first tick on; at 3.25 s that has lasted 3 windows and the prefill worker turns colocated, so the
#    measured second serving begins, and ends, as 0P+2C. 1000-token prompts on 0P+2C: 0.1 ms a token
#    (the colocated workers' measure, no prefill worker having been measured), 4000 tokens/s, 0.4
#    workers, at least --rebalance-high 0.3 for one prefill worker; but colocation meets the SLOs
#    (5000 / 1000 ms) with room (TTFTs and TPOTs of 100 ms), and the split stays 0P+2C. The same at
#    SLOs of 120 / 100 ms: TTFT and TPOT at 80% of them and more from the first prompt on, colocation
#    is failing, and after a window one worker turns prefill, 1P+1C.
python3 - "$TMP/low.json" "$TMP/high.json" "$TMP/strained.json" <<'PY'
import json, sys
for path, n_in, slo in zip(sys.argv[1:], (10, 1000, 1000), ((5000, 1000), (5000, 1000), (120, 100))):
    reqs = [{"start_s": i * 0.25, "input_tokens": n_in, "output_tokens": 2, "ok": True} for i in range(60)]
    run = {"request_rate": 4, "attainment": 1, "mean_ttft_ms": 0, "mean_tpot_ms": 0, "requests": reqs}
    json.dump({"slo": {"ttft_ms": slo[0], "tpot_ms": slo[1]}, "runs": [run]}, open(path, "w"))
PY
split_of() { # split_of FILE DEPLOYMENT FLAGS...: "attainment split" of the simulated replay
    local file=$1 dep=$2; shift 2
    "$PLAN" simulate --profile "$TMP/const.json" --token-budget 2000 --deployment "$dep" --rebalance \
        --rebalance-window-s 1 "$@" --replay "$file" | awk '$1 ~ /^[0-9.]+$/ { print $4, $NF }'
}
[ "$(split_of "$TMP/low.json" 1P+1C --rebalance-low 0.5 --rebalance-high 0.9 --rebalance-max 1)" = "100.0% 0P→0P" ] ||
    fail "rebalanced on low prompt work: $(split_of "$TMP/low.json" 1P+1C --rebalance-low 0.5 --rebalance-high 0.9 --rebalance-max 1)"
[ "$(split_of "$TMP/low.json" 1P+1C)" = "100.0% 1P→1P" ] || fail "0.4 workers of prompt work, in the band: $(split_of "$TMP/low.json" 1P+1C)"
[ "$(split_of "$TMP/high.json" 0P+2C --rebalance-low 0.1 --rebalance-high 0.3)" = "100.0% 0P→0P" ] ||
    fail "high prompt work, colocation meeting the SLOs: $(split_of "$TMP/high.json" 0P+2C --rebalance-low 0.1 --rebalance-high 0.3)"
strained=$(split_of "$TMP/strained.json" 0P+2C --rebalance-low 0.1 --rebalance-high 0.3)
[ "${strained#* }" = "1P→1P" ] || fail "rebalanced on high prompt work, colocation failing: $strained"
echo "ok   the simulated rebalancer gives a prefill worker up under --rebalance-low, takes one on at --rebalance-high
     while colocation fails the SLOs, keeps the split between them"

# 7. --run-costs: each run replayed at the speed its workers logged while it ran. Two runs of one
#    request (10 in, 2 out) on 1C, 10 s each from 100 and 200 s on the monotonic clock; the logged
#    passes (a 10-token prompt, a 1-token decode) take 0.1 s within the first, 1 s between the two,
#    0.2 s within the second. Each run's own: TTFTs 100 and 200 ms. Pooled: one cost for both.
python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
runs = [{"request_rate": rate, "attainment": 1, "mean_ttft_ms": 0, "mean_tpot_ms": 0, "duration": 10,
         "start_monotonic_ns": t0 * 10**9, "requests": [{"start_s": 0, "input_tokens": 10, "output_tokens": 2, "ok": True}]}
        for rate, t0 in ((1, 100), (2, 200))]
json.dump({"slo": {"ttft_ms": 5000, "tpot_ms": 1000}, "runs": runs}, open(d + "/timed.json", "w"))
with open(d + "/timed.steps", "w") as f:
    for t0, secs in ((100, 0.1), (150, 1.0), (200, 0.2)):
        for k in range(4):
            for tokens, prompt, decode in ((10, 55, 0), (1, 0, 11)):
                f.write(json.dumps({"threads": 1, "tokens": tokens, "prompt_attn": prompt, "decode_attn": decode,
                                    "logits": 1, "secs": secs, "t": t0 + k + tokens / 100}) + "\n")
passes = [{"threads": 1, "tokens": t, "prompt_attn": 0, "decode_attn": t, "logits": t, "secs": t / 100} for t in (1, 4, 16)]
json.dump({"model": "timed", "kv_bytes_per_token": 1000, "passes": passes}, open(d + "/timed-profile.json", "w"))
PY
timed() { # timed FLAGS...: the simulated TTFT of each replayed run, then the max-rate line's ratio
    "$PLAN" simulate --profile "$TMP/timed-profile.json" --steps "$TMP/timed.steps" --deployment 1C "$@" \
        --replay "$TMP/timed.json" 2>/dev/null | awk '$1 ~ /^[0-9.]+$/ { printf "%s ", $6 } /^  max rate/ { print $NF }'
}
[ "$(timed --run-costs)" = "100.0 200.0 (1.00x)" ] || fail "--run-costs: $(timed --run-costs)"
pooled=$(timed)
[ "${pooled%% *}" != 100.0 ] && [ "$(echo "$pooled" | awk '{ print $1 == $2 }')" = 1 ] || fail "pooled costs: $pooled"
sed 's/, "t": [0-9.]*//' "$TMP/timed.steps" >"$TMP/untimed.steps" # as logged before passes carried t
set +e; "$PLAN" simulate --profile "$TMP/timed-profile.json" --steps "$TMP/untimed.steps" --deployment 1C --run-costs \
    --replay "$TMP/timed.json" >/dev/null 2>"$TMP/err"; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "no logged pass began within 100.000-110.000 s" "$TMP/err" || fail "untimed passes: $(cat "$TMP/err")"
echo "ok   --run-costs replays each run at the speed logged while it ran (TTFTs 100 and 200 ms); passes without t refused"

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

rm -rf "$TMP/env"
"$PLAN" --profile "$TMP/profile.json" --input-len 64 --output-len 16 --slo-ttft-ms 2000 --slo-tpot-ms 500 \
    --num-prompts 200 --nodes 2 --cores 6 --group-workers 2 --write-env "$TMP/env" | tee "$TMP/plan6.txt"
grep -qE "^best: (3|6) × .* on each of 2 node\(s\)" "$TMP/plan6.txt" || fail "6 cores in groups of at most 2 workers: not 3 or 6 groups"
for node in node1 node2; do
    [ "$(wc -l <"$TMP/env/$node/units")" = 6 ] || fail "$node: not 6 workers"
    [ "$(cat "$TMP/env/$node"/*.d/pin.conf | grep '^CPUAffinity' | sort -u | wc -l)" = 6 ] || fail "$node: cores shared"
done
[ "$(cat "$TMP"/env/node*/*.env | grep '^PDSERVE_ID' | sort | uniq -d)" = "" ] || fail "an id used twice"
echo "ok   6-core nodes planned as copies of a group of at most 2 workers: 12 workers, a core and an id each"

refused() { # refused EXIT_CODE MESSAGE ARGS...: the planner exits so, saying so
    local want=$1 msg=$2; shift 2
    set +e; "$PLAN" "$@" >/dev/null 2>"$TMP/err"; rc=$?; set -e
    [ $rc -eq "$want" ] && grep -q -- "$msg" "$TMP/err" || fail "$* gave $rc: $(cat "$TMP/err")"
}
refused 2 "missing --profile" --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--deployment 3X" simulate --profile "$TMP/const.json" --deployment 3X --rate 1 --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--attainment" --profile "$TMP/const.json" --attainment 2 --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--rebalance switches" simulate --profile "$TMP/const.json" --deployment 2C --rebalance --rate 1 \
    --slo-ttft-ms 1 --slo-tpot-ms 1
echo '{"passes":[{"threads":1,"tokens":1,"attn":1,"logits":1,"secs":1}]}' >"$TMP/few.json"
refused 1 "need two more passes" --profile "$TMP/few.json" --slo-ttft-ms 1 --slo-tpot-ms 1
echo '{"passes":' >"$TMP/broken.json"
refused 1 "broken.json" --profile "$TMP/broken.json" --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "--run-costs fits" simulate --profile "$TMP/const.json" --deployment 1C --rate 1 --run-costs \
    --slo-ttft-ms 1 --slo-tpot-ms 1
refused 2 "give --replay" simulate --profile "$TMP/const.json" --deployment 1C --rate 1 --save-result "$TMP/x.json" \
    --slo-ttft-ms 1 --slo-tpot-ms 1
refused 1 "no 2-thread" simulate --profile "$TMP/const.json" --deployment 1C --threads 2 --rate 1 --slo-ttft-ms 1 --slo-tpot-ms 1
echo "ok   bad options and profiles refused by name"
"$PLAN" --help | grep -q "usage: pdserve-plan" || fail "--help"
echo "plan: all checks passed"
