# workers.sh — shared by the worker tests: a model, free ports, daemons started in the background and
# always stopped (trap), the protocol driver, and result comparison. Source it; needs $BUILD.
set -euo pipefail
BUILD=${BUILD:-build}
PY=/usr/bin/python3
WORK=$(mktemp -d)
PIDS=()
NAMES=()
# Stops every daemon still running with SIGTERM (they drain and exit 0; under ASan a leak or error
# makes the exit status non-zero) and fails the test if one does not exit cleanly within 20 s.
cleanup() {
    local rc=$? i p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in "${!PIDS[@]}"; do
        p=${PIDS[$i]}
        for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null; echo "FAIL: ${NAMES[$i]} did not stop on SIGTERM"; rc=1
        elif ! wait "$p"; then
            echo "FAIL: ${NAMES[$i]} exited with an error:"; tail -n 20 "$WORK/${NAMES[$i]}.log"; rc=1
        fi
    done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
[ -n "${KEEP_WORK:-}" ] && trap - EXIT

# free_port: a port free on 127.0.0.1, below the ephemeral range, not handed out before in this test.
free_port() { $PY "$(dirname "${BASH_SOURCE[0]}")/free_port.py" "$WORK/ports"; }

make_model() { # make_model DIR [mkmodel flags...]
    local dir=$1; shift
    $BUILD/pdserve-mkmodel --out "$dir" --preset tiny --seed 5 "$@" >/dev/null 2>&1
}

# make_requests FILE N SEED [greedy]: N requests of mixed prompt and output lengths, greedy and
# sampled (only greedy with a fourth argument).
make_requests() {
    $PY - "$1" "$2" "$3" "${4:-mixed}" <<'PYEOF'
import json, random, sys
path, n, seed, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = random.Random(seed)
reqs = []
for i in range(n):
    q = {"prompt": [r.randrange(3, 500) for _ in range(r.choice([1, 5, 16, 17, 40, 100, 170]))],
         "max_tokens": r.randrange(1, 40), "seed": i, "ignore_eos": True}
    if i % 2 and kind != "greedy":
        q.update(temperature=0.9, top_p=0.95, top_k=r.choice([0, 50]))
    reqs.append(q)
json.dump(reqs, open(path, "w"))
PYEOF
}

# start NAME CMD...: runs a daemon in the background, logging to $WORK/NAME.log.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    NAMES+=("$name")
    eval "PID_$name=$!"
}

# stop NAME [SIGNAL]: stops one daemon now (default SIGTERM; it must exit 0) and forgets it.
stop() {
    local name=$1 sig=${2:-TERM} i rc=0
    for i in "${!NAMES[@]}"; do
        [ "${NAMES[$i]}" = "$name" ] || continue
        kill -"$sig" "${PIDS[$i]}" 2>/dev/null || true
        wait "${PIDS[$i]}" 2>/dev/null || rc=$?
        unset 'PIDS[i]' 'NAMES[i]'
        if [ "$sig" = TERM ] && [ $rc -ne 0 ]; then
            echo "FAIL: $name exited with status $rc:"; tail -n 20 "$WORK/$name.log"; return 1
        fi
    done
}

# same_tokens A B: every request's tokens equal in two driver outputs.
same_tokens() {
    $PY - "$1" "$2" <<'PYEOF'
import json, sys
def load(p): return [json.loads(l) for l in open(p) if l.startswith('{"i"')]
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [x["i"] for x, y in zip(a, b) if x["tokens"] != y["tokens"] or x["error"] or y["error"]]
ok = len(a) == len(b) and len(a) > 0 and not bad
print(f"{len(a)} requests, {len(a) - len(bad)} identical" + ("" if ok else f"; differing: {bad[:10]}"))
for i in bad[:5]:
    x, y = a[i], b[i]
    at = next((k for k, (p, q) in enumerate(zip(x["tokens"], y["tokens"])) if p != q), None)
    print(f"  request {i}: {len(x['tokens'])} vs {len(y['tokens'])} tokens, first difference at {at}, "
          f"finish {x['finish']} vs {y['finish']}, errors {x['error']!r} vs {y['error']!r}")
sys.exit(0 if ok else 1)
PYEOF
}

pools_idle() { grep -q '"pools_idle": true' "$1"; }
