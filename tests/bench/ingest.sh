#!/usr/bin/env bash
# ingest.sh — `make bench-ingest`: what receiving KV costs a decode worker. One pdserve-prefill (core
# 0) and one pdserve-decode (core 1) behind a frontend; on the decode worker, INGEST_STREAMS
# sequences decode for long (32 in / INGEST_DECODE_LEN out, all at once). Each transport mode runs
# two phases:
#   alone:  only the decoding sequences;
#   ingest: the same, while a second client sends INGEST_RATE prompts/s of INGEST_PROMPT_LEN tokens
#           with max_tokens 2, so each pushes its whole KV to the decode worker and leaves at once.
# It prints, per phase, the decoding sequences' median and p90 TPOT, the KV bytes received, and the
# CPU seconds of the decode worker's loop thread (network, KV copies) and of its other threads (the
# engine); then TPOT with ingest over TPOT alone, and loop-thread CPU per GB received. Modes
# (INGEST_MODES): tcp (the default transport: KV runs as messages the loop thread copies into the
# pool) and shm (shared-memory mode, docs/transport.md: the prefill worker's puts are memcpys into the
# decode worker's pool). The numbers mean something only on a machine doing nothing else.
# The daemons are started, stopped and waited for with the frontend tests' helpers.
source "$(dirname "$0")/../helpers/frontend.sh"
PRESET=${INGEST_PRESET:-small}
STREAMS=${INGEST_STREAMS:-8}
DECODE_LEN=${INGEST_DECODE_LEN:-1024}
PROMPT_LEN=${INGEST_PROMPT_LEN:-512}
RATE=${INGEST_RATE:-2}
MODES=${INGEST_MODES:-tcp shm}
OUT=${INGEST_OUT:-$BUILD/bench-ingest}
MODEL=$BUILD/models/$PRESET
BENCH=$BUILD/pdserve-bench
mkdir -p "$OUT" "$BUILD/models"
[ -f "$MODEL/config.json" ] || "$BUILD/pdserve-mkmodel" --out "$MODEL" --preset "$PRESET" --seed 1 >/dev/null

# start_mode MODE: frontend and prefill on core 0, decode on core 1 (alone: nothing else of the
# benchmark runs there, the clients are on core 0 too); sets URL and DEC (the decode pid).
start_mode() {
    if [ "$1" = shm ]; then
        export UCX_TLS=shm,tcp UCX_POSIX_ERROR_HANDLING=y UCX_SYSV_ERROR_HANDLING=y
    else
        unset UCX_TLS UCX_POSIX_ERROR_HANDLING UCX_SYSV_ERROR_HANDLING
    fi
    HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"; URL=$BASE
    start_frontend
    taskset -cp 0 "$PID_fe" >/dev/null
    start_prefill pre --id 1 --no-prefix-cache
    taskset -cp 0 "$PID_pre" >/dev/null
    start dec taskset -c 1 "$BUILD/pdserve-decode" --model "$MODEL" --frontend "127.0.0.1:$UCX_PORT" --id 2 \
        --no-prefix-cache
    DEC=$PID_dec
    wait_health 200
}

# stop_mode MODE: the daemons stopped, their logs kept in $OUT.
stop_mode() {
    stop fe; stop pre; stop dec
    for n in fe pre dec; do cp "$WORK/$n.log" "$OUT/$1-$n.log"; done
}

# CPU seconds of the decode worker's loop thread (the main one) and of all its others.
cpu() {
    python3 - "$DEC" <<'PY'
import os, sys
pid = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
loop = rest = 0.0
for tid in os.listdir(f"/proc/{pid}/task"):
    f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    s = (int(f[11]) + int(f[12])) / tick
    if tid == pid:
        loop += s
    else:
        rest += s
print(loop, rest)
PY
}
kv_bytes() { curl -s "$URL/metrics" | awk '/^pdserve:request_kv_transfer_bytes_sum/ { s += $NF } END { print s + 0 }'; }

# phase MODE NAME: the decoding sequences, with the prompt stream when NAME is ingest.
phase() {
    local kv0 pstream= t0 t1
    read -r l0 r0 < <(cpu); kv0=$(kv_bytes); t0=$(date +%s.%N)
    if [ "$2" = ingest ]; then
        local n; n=$(python3 -c "print(max(1, int($RATE * 60)))")
        taskset -c 0 "$BENCH" --base-url "$URL" --model "$PRESET" --dataset random --input-len "$PROMPT_LEN" --output-len 2 \
            --num-prompts "$n" --request-rate "$RATE" --seed 7 --ignore-eos --no-progress \
            --save-result "$OUT/$1-prompts.json" >/dev/null &
        pstream=$!
        sleep 2 # the stream is under way when the decoding starts
    fi
    taskset -c 0 "$BENCH" --base-url "$URL" --model "$PRESET" --dataset random --input-len 32 --output-len "$DECODE_LEN" \
        --num-prompts "$STREAMS" --max-concurrency "$STREAMS" --seed 3 --ignore-eos --no-progress \
        --save-result "$OUT/$1-$2.json" >/dev/null
    read -r l1 r1 < <(cpu); kv1=$(kv_bytes); t1=$(date +%s.%N)
    [ -n "$pstream" ] && kill "$pstream" 2>/dev/null && wait "$pstream" 2>/dev/null || true
    python3 - "$OUT/$1-$2.json" "$1" "$2" "$l0" "$l1" "$r0" "$r1" "$kv0" "$kv1" "$t0" "$t1" <<'PY' | tee -a "$OUT/table.txt"
import json, sys
r = json.load(open(sys.argv[1]))
l0, l1, r0, r1, k0, k1, t0, t1 = map(float, sys.argv[4:12])
print(f"{sys.argv[2]:<5}{sys.argv[3]:<8}{r['median_tpot_ms']:>10.2f}{r['p90_tpot_ms']:>10.2f}{(k1 - k0) / 1e6:>10.1f}"
      f"{l1 - l0:>10.2f}{r1 - r0:>10.2f}{t1 - t0:>10.1f}")
PY
}

: >"$OUT/table.txt"
echo "mode phase  TPOT med  TPOT p90   KV (MB)  loop cpu  rest cpu    wall s   ($STREAMS x 32:$DECODE_LEN decoding; $RATE x $PROMPT_LEN-token prompts/s)"
for mode in $MODES; do
    start_mode "$mode"
    phase "$mode" alone
    phase "$mode" ingest
    stop_mode "$mode"
done
python3 - "$OUT/table.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows[(f[0], f[1])] = [float(x) for x in f[2:]]
for mode in dict.fromkeys(m for m, _ in rows):
    a, i = rows.get((mode, "alone")), rows.get((mode, "ingest"))
    if not a or not i or not a[0] or not a[5]:
        print(f"{mode}: a phase did not complete; see the logs in the output folder")
        continue
    gb = i[2] / 1e3
    extra = i[3] - a[3] * i[5] / a[5]  # the loop thread's CPU beyond its rate without ingest
    per_gb = extra / gb if gb > 0 else float("nan")
    print(f"{mode}: TPOT with ingest / alone {i[0] / a[0]:.2f}x (median), {i[1] / a[1]:.2f}x (p90); "
          f"loop thread +{extra:.2f} CPU s for {i[2]:.0f} MB received ({per_gb:.2f} s/GB)")
PY
