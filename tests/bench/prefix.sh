#!/usr/bin/env bash
# make bench-prefix: prefix caching on multi-turn conversations (pdserve-bench --dataset multi-turn:
# a shared system prompt of PREFIX_LEN tokens, TURNS turns of SUFFIX_LEN new tokens and a REPLY_LEN
# reply each, the history resent every turn), one request at a time so TTFT is the prompt's own
# cost. The same conversations go to a disaggregated pair without the cache and with it, and to a
# colocated worker with it; prints TTFT, the KV bytes the prefill worker pushed per request, and the
# hit rate, with the ratios of the cached runs to the uncached one.
source "$(dirname "$0")/../helpers/frontend.sh"
PREFIX_LEN=${PREFIX_LEN:-1000} SUFFIX_LEN=${SUFFIX_LEN:-50} REPLY_LEN=${REPLY_LEN:-16} TURNS=${TURNS:-4}
CONVS=${CONVS:-8}
model=$BUILD/models/small
mkdir -p "$BUILD/models"
[ -f "$model/config.json" ] || $BUILD/pdserve-mkmodel --out "$model" --preset small --seed 1 >/dev/null
MODEL=$model
run() { # run LABEL colocated|disagg [worker flags...]: one cluster, one bench run, one result line
    local label=$1 kind=$2; shift 2
    HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
    start_frontend
    if [ "$kind" = colocated ]; then start_decode colo --colocated "$@"; else start_prefill pre "$@"; start_decode dec "$@"; fi
    wait_health 200
    $BUILD/pdserve-bench --base-url "$BASE" --model small --dataset multi-turn --prefix-len "$PREFIX_LEN" \
        --input-len "$SUFFIX_LEN" --output-len "$REPLY_LEN" --turns "$TURNS" --num-prompts $((CONVS * TURNS)) \
        --vocab-size 2000 --ignore-eos --max-concurrency 1 --no-progress --save-result "$WORK/$label.json" >/dev/null
    curl -s "$BASE/metrics" >"$WORK/$label.metrics"
    stop_frontend >/dev/null
    local n v; for n in colo pre dec; do v="PID_$n"; [ -z "${!v:-}" ] || { stop $n; unset "PID_$n"; }; done
}
run nocache disagg --no-prefix-cache
run cache disagg
run colocated colocated
python3 - "$WORK" $((CONVS * TURNS)) <<'PYEOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
def metric(label, name):
    return sum(float(l.split()[-1]) for l in open(f"{work}/{label}.metrics") if l.startswith(name + "{"))
rows = {}
for label in ("nocache", "cache", "colocated"):
    r = json.load(open(f"{work}/{label}.json"))
    if r["completed"] != n:
        sys.exit(f"{label}: {r['completed']} of {n} requests completed; see the result file")
    q, h = metric(label, "pdserve:prefix_cache_queries_total"), metric(label, "pdserve:prefix_cache_hits_total")
    rows[label] = (r["mean_ttft_ms"], r["median_ttft_ms"], metric(label, "pdserve:kv_transfer_bytes_total") / n,
                   h / q if q else 0.0)
print(f"{'':>24} {'TTFT mean ms':>13} {'TTFT median':>12} {'KV bytes/request':>17} {'hit rate':>9}")
for label, (mean, med, kv, hit) in rows.items():
    print(f"{label:>24} {mean:13.1f} {med:12.1f} {kv:17.0f} {hit:9.1%}")
base = rows["nocache"]
for label in ("cache", "colocated"):
    r = rows[label]
    kv = f"{base[2] / r[2]:.1f}x fewer KV bytes" if r[2] else "no KV bytes (colocated)"
    print(f"{label} vs no cache: TTFT {base[0] / r[0]:.1f}x lower (mean), {base[1] / r[1]:.1f}x (median); {kv}")
PYEOF
