#!/usr/bin/env bash
# Admission never wedges (worker level, with tests/drivers/worker_driver.c as the frontend, so the
# frontend's own limit check is not in the way):
#  - a 700-token prompt sent to a pair whose decode pool holds 640 tokens (--kv-blocks 40) is refused
#    at once with a reason, and the small requests sent with it all complete;
#  - a prompt larger than the prefill worker's own pool is refused at once too;
#  - a colocated worker refuses a prompt its pool cannot hold;
#  - a sequence that outgrows the whole decode pool mid-way ends with an ERROR that says so.
# Before the fix the 700-token reservation waited at the head of the decode worker's queue for ever
# and every request behind it hung (the driver's timeout then fails this test).
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
$PY - "$WORK/reqs.json" <<'PYEOF'
import json, random, sys
r = random.Random(7)
reqs = [{"prompt": [r.randrange(3, 500) for _ in range(700)], "max_tokens": 4}]
reqs += [{"prompt": [r.randrange(3, 500) for _ in range(20)], "max_tokens": 8, "ignore_eos": True} for _ in range(5)]
json.dump(reqs, open(sys.argv[1], "w"))
PYEOF

check() { # check OUT LABEL REASON: request 0 refused naming REASON, the others complete
    $PY - "$1" "$2" "$3" <<'PYEOF'
import json, sys
out, label, reason = sys.argv[1:4]
res = {d["i"]: d for d in (json.loads(l) for l in open(out) if l.startswith('{"i"'))}
big, small = res.get(0), [res.get(i) for i in range(1, 6)]
ok = big is not None and big["error"] and reason in big["error"] and not big["tokens"]
print(("ok  " if ok else "FAIL") + f" {label}: the 700-token prompt is refused: {big and big['error']!r}")
good = [s for s in small if s and not s["error"] and len(s["tokens"]) == 8]
print(("ok  " if len(good) == 5 else "FAIL") + f" {label}: {len(good)} of 5 small requests completed behind it")
sys.exit(0 if ok and len(good) == 5 else 1)
PYEOF
}

port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 40 --block-size 16
start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 60 \
    --idle-pools >"$WORK/pd.out" || { echo "FAIL: the driver timed out (a wedged queue?)"; tail -n 5 "$WORK/dec.log"; exit 1; }
check "$WORK/pd.out" "decode pool of 640 tokens" "decode worker's whole pool"
pools_idle "$WORK/pd.out" && echo "ok   every KV block is free afterwards" || { echo "FAIL: blocks in use afterwards"; exit 1; }
stop pre && stop dec

port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400
start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 40 --block-size 16
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/reqs.json" --timeout 60 \
    --idle-pools >"$WORK/pp.out" || { echo "FAIL: the driver timed out"; exit 1; }
check "$WORK/pp.out" "prefill pool of 640 tokens" "prefill worker's whole pool"
stop pre && stop dec

port=$(free_port)
start colo $BUILD/pdserve-decode --colocated --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 40
$BUILD/tests/worker_driver --ucx-port $port --colocated 1 --requests "$WORK/reqs.json" --timeout 60 \
    --idle-pools >"$WORK/co.out" || { echo "FAIL: the driver timed out"; exit 1; }
check "$WORK/co.out" "colocated pool of 640 tokens" "worker's whole pool"
stop colo

# A sequence that alone outgrows the whole decode pool mid-way (the frontend would have refused its
# max_tokens; the driver does not) ends with an ERROR saying so, not a TOKENS whose finish is "error".
$PY - "$WORK/long.json" <<'PYEOF'
import json, sys
json.dump([{"prompt": list(range(3, 23)), "max_tokens": 600, "ignore_eos": True}], open(sys.argv[1], "w"))
PYEOF
port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 24 --block-size 16
start pre $BUILD/pdserve-prefill --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 400
$BUILD/tests/worker_driver --ucx-port $port --prefill 1 --decode 1 --requests "$WORK/long.json" --timeout 60 \
    --idle-pools >"$WORK/long.out" || { echo "FAIL: the driver timed out"; exit 1; }
$PY - "$WORK/long.out" <<'PYEOF' || exit 1
import json, sys
d = next(json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"i"'))
ok = bool(d["error"]) and "outgrew" in d["error"] and 300 < len(d["tokens"]) < 600
print(("ok  " if ok else "FAIL") + f" outgrowing a 384-token pool after {len(d['tokens'])} tokens: error {d['error']!r}")
sys.exit(0 if ok else 1)
PYEOF
pools_idle "$WORK/long.out" && echo "ok   every KV block is free afterwards" || { echo "FAIL: blocks in use afterwards"; exit 1; }
stop pre && stop dec
