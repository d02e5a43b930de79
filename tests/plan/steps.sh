#!/usr/bin/env bash
# steps.sh — a worker's --step-log, read back by pdserve-plan. A colocated worker (tiny model, prefix
# cache off, so every token is computed exactly once) logs its passes while pdserve-bench sends it
# real requests, two at a time:
#  1. the passes add up to exactly what the requests computed: a request of `in` prompt tokens that
#     generated `out` tokens computes L = in + out − 1 tokens (the last one is never fed back), whose
#     attention spans 1 + 2 + … + L (query, key) pairs, and produces `out` rows of logits;
#  2. two requests at a time give decode passes of two sequences, logged as decode attention;
#  3. pdserve-plan fits its costs to the log (--steps) and serves the measured run again (--replay):
#     one row, the measured columns the result file's own;
#  4. a log with a line that is not a pass is refused, naming the file and line.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/helpers/frontend.sh
fail() { echo "FAIL $*"; tail -n 5 "$WORK"/*.log; exit 1; }

make_model
LOG=$WORK/worker.steps
start_frontend
start_decode dec --colocated --no-prefix-cache --step-log "$LOG"
wait_health 200
"$BUILD/pdserve-bench" --base-url "$BASE" --model model --dataset random --input-len 40 --output-len 32 --vocab-size 500 \
    --range-ratio 0.5 --num-prompts 6 --max-concurrency 2 --ignore-eos --seed 3 --slo-ttft-ms 5000 \
    --slo-tpot-ms 1000 --no-progress --save-result "$WORK/run.json" >/dev/null
stop dec # the log is written a line at a time: a killed worker keeps it

python3 - "$LOG" "$WORK/run.json" <<'PY' || fail "the passes do not add up to the requests"
import json, sys
passes = [json.loads(l) for l in open(sys.argv[1])]
run = json.load(open(sys.argv[2]))
reqs = [r for r in run["requests"] if r["ok"]]
assert len(reqs) == 6, run["requests"]
L = [r["input_tokens"] + r["output_tokens"] - 1 for r in reqs]
want = {"tokens": sum(L), "pairs": sum(l * (l + 1) // 2 for l in L), "logits": sum(r["output_tokens"] for r in reqs)}
got = {"tokens": sum(p["tokens"] for p in passes),
       "pairs": sum(p["prompt_attn"] + p["decode_attn"] for p in passes),
       "logits": sum(p["logits"] for p in passes)}
print(f"{len(passes)} passes: {got}; the requests: {want}")
assert got == want
assert all(p["threads"] == 1 and p["secs"] > 0 for p in passes)
# each pass's start on the monotonic clock: in order, none before the last one ended
assert all(b["t"] >= a["t"] + a["secs"] - 1e-6 for a, b in zip(passes, passes[1:])), "passes overlap in t"
two = [p for p in passes if p["tokens"] == 2 and p["prompt_attn"] == 0]
assert two, "no decode pass of two sequences"
PY
echo "ok   the worker's passes add up to its requests' tokens, attention pairs and logits rows, one after another in t"

"$BUILD/pdserve-bench-engine" --model "$MODEL" --threads 1 --profile "$WORK/profile.json" >/dev/null
"$BUILD/pdserve-plan" simulate --profile "$WORK/profile.json" --steps "$LOG" --deployment 1C \
    --replay "$WORK/run.json" 2>"$WORK/plan.err" | tee "$WORK/replay.txt" || fail "replay: $(cat "$WORK/plan.err")"
grep -q "cost fitted to [0-9]* passes" "$WORK/plan.err" || fail "no fit reported: $(cat "$WORK/plan.err")"
python3 - "$WORK/replay.txt" "$WORK/run.json" <<'PY' || fail "replay rows"
import json, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and l.split()[0].replace(".", "").isdigit()]
run = json.load(open(sys.argv[2]))
assert len(rows) == 1, rows
rate, n, att_m, att_s, ttft_m, ttft_s, tpot_m, tpot_s = rows[0]
assert int(n) == 6 and att_m == f"{100 * run['attainment']:.1f}%", rows[0]
assert abs(float(ttft_m) - run["mean_ttft_ms"]) < 0.1 and float(ttft_s) > 0 and float(tpot_s) > 0, rows[0]
PY
echo "ok   pdserve-plan fitted the log and replayed the run beside its measurement"

cp "$LOG" "$WORK/bad.steps"
echo '{"tokens": 3}' >>"$WORK/bad.steps"
set +e
"$BUILD/pdserve-plan" simulate --profile "$WORK/profile.json" --steps "$WORK/bad.steps" --deployment 1C \
    --replay "$WORK/run.json" >/dev/null 2>"$WORK/err"
rc=$?
set -e
n=$(wc -l <"$WORK/bad.steps")
[ $rc = 1 ] && grep -q "bad.steps:$n: not a pass" "$WORK/err" || fail "bad step log: rc $rc, $(cat "$WORK/err")"
echo "ok   a step log with a line that is not a pass is refused: $(cat "$WORK/err")"
echo "plan_steps: all checks passed"
