#!/usr/bin/env bash
# make bench-pipeline: the disaggregated pipeline on one machine — one prefill and one decode worker,
# one core each, on the qwen2.5-0.5b shape. Reports TTFT and TPOT of a lone request, decode tokens/s
# at batch 1, 8 and 32, and how long after a prompt's forward pass its KV_DONE leaves (near zero when
# the layer-by-layer push has already moved the KV cache).
source "$(dirname "$0")/../helpers/workers.sh"
model=$BUILD/models/qwen2.5-0.5b
[ -f "$model/config.json" ] || $BUILD/pdserve-mkmodel --out "$model" --preset qwen2.5-0.5b --dtype bf16 --seed 1 >/dev/null
port=$(free_port)
PDSERVE_LOG=debug start pre taskset -c 0 $BUILD/pdserve-prefill --model "$model" --frontend 127.0.0.1:$port --kv-gib 1
start dec taskset -c 1 $BUILD/pdserve-decode --model "$model" --frontend 127.0.0.1:$port --kv-gib 2
batch() { # batch N PROMPT_LEN OUTPUT_LEN
    $PY -c "import json,sys; n,p,o=map(int,sys.argv[1:]); print(json.dumps([{'prompt':[(i*7+k*13)%1000+3 for k in range(p)],'max_tokens':o,'ignore_eos':True,'seed':i} for i in range(n)]))" "$@" >"$WORK/b.json"
    $BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/b.json" --timeout 900 2>/dev/null >"$WORK/b.out"
}
report() { # report LABEL
    $PY - "$1" "$WORK/b.out" <<'PYEOF'
import json, sys
r = [json.loads(l) for l in open(sys.argv[2]) if l.startswith('{"i"')]
n = sum(len(x["tokens"]) - 1 for x in r)
span = max(x["e2e_ms"] for x in r) - min(x["ttft_ms"] for x in r)
tpot = sum((x["e2e_ms"] - x["ttft_ms"]) / (len(x["tokens"]) - 1) for x in r) / len(r)
print(f"{sys.argv[1]:>28}: TTFT mean {sum(x['ttft_ms'] for x in r)/len(r):8.1f} ms   TPOT mean {tpot:7.1f} ms   "
      f"decode {n / span * 1000:7.1f} tok/s")
PYEOF
}
batch 1 16 4 >/dev/null   # warm-up: connections, first touches of the KV pool
batch 1 256 64; report "256-token prompt, 1 request"
# Decode throughput: short prompts, so the decode batch fills at once and prefill does not dilute it.
for n in 1 8 32; do batch $n 16 64; report "decode, batch $n"; done
grep -o "KV_DONE sent [0-9.]* ms" "$WORK/pre.log" | awk '{s+=$3; if ($3>m) m=$3; n++} END {printf "KV_DONE after the forward pass: mean %.3f ms, max %.3f ms over %d prompts\n", s/n, m, n}'
