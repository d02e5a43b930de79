#!/usr/bin/env bash
# Prefix caching end to end (issue 17): conversations that share 300-token prefixes, greedy and
# seeded-sampled, answered the same with the cache on as with it off — disaggregated (the decode
# worker's grant says which prefix blocks it holds; those are not sent) and colocated — while
# usage.prompt_tokens_details.cached_tokens and the workers' metrics show the reuse; the same under
# eviction in small pools (requests at once are the abort step's); a restarted worker's entries leave the frontend's
# routing index.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
answers() { python3 tests/frontend/prefix_cache.py "$BASE" "$WORK/$1.jsonl" "${@:2}"; }
same() { # same A B: generated texts equal, request by request
    python3 - "$WORK/$1.jsonl" "$WORK/$2.jsonl" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
diff = [x["i"] for x, y in zip(a, b) if (x["text"], x["finish"]) != (y["text"], y["finish"])]
print(("ok  " if not diff and len(a) == len(b) else "FAIL") +
      f" {sys.argv[2].split('/')[-1]}: {len(a) - len(diff)} of {len(a)} answers as {sys.argv[1].split('/')[-1]}")
sys.exit(1 if diff or len(a) != len(b) else 0)
PYEOF
}
cached_some() { python3 -c "import json,sys; a=[json.loads(l) for l in open('$WORK/$1.jsonl')]; sys.exit(0 if sum(x['cached'] > 0 for x in a) >= len(a) // 2 and max(x['cached'] for x in a) >= 288 else 1)" \
    && echo "ok   $1: cached_tokens reported (at least 288 of the 300 shared tokens)" || { echo "FAIL $1: no cached_tokens"; cat "$WORK/$1.jsonl"; exit 1; }; }
cluster() { # cluster colocated|disagg [worker flags...]
    HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
    start_frontend
    if [ "$1" = colocated ]; then start_decode colo --colocated "${@:2}"; else start_prefill pre "${@:2}"; start_decode dec "${@:2}"; fi
    wait_health 200
}
down() { # wait_idle, then stop the frontend and the workers of this cluster
    wait_idle; stop_frontend
    local n v
    for n in colo pre dec pre2; do v="PID_$n"; [ -z "${!v:-}" ] || { stop $n; unset "PID_$n"; }; done
}

cluster disagg --no-prefix-cache
answers ref | sed 's/^/     no cache: /'
python3 -c "import json,sys; sys.exit(any(json.loads(l)['cached'] for l in open('$WORK/ref.jsonl')))" \
    && echo "ok   no cache: cached_tokens 0" || { echo "FAIL cached_tokens without a cache"; exit 1; }
down

cluster disagg
answers disagg | sed 's/^/     disaggregated: /'
same ref disagg
cached_some disagg
saved=$(metric 'pdserve:kv_transfer_saved_bytes_total'); sent=$(metric 'pdserve:kv_transfer_bytes_total')
hits=$(metric 'pdserve:prefix_cache_hits_total')
[ "$saved" -gt 0 ] && [ "$hits" -gt 0 ] && echo "ok   KV bytes pushed $sent, not pushed (the decode worker's cache had them) $saved; prefill hits $hits tokens" \
    || { echo "FAIL metrics: saved $saved hits $hits"; curl -s "$BASE/metrics" | grep -E 'prefix|kv_transfer'; exit 1; }
indexed=$(curl -s "$BASE/metrics" | awk -v w="worker=\"$PID_pre\"" '/^pdserve:prefix_cache_blocks/ && index($0, w) { print $NF }')
[ "${indexed:-0}" -gt 0 ] && echo "ok   the frontend's index holds $indexed blocks of the prefill worker" || { echo "FAIL index empty"; curl -s "$BASE/metrics" | grep prefix_cache_blocks; exit 1; }
# a restarted prefill worker: its old entries leave the index, the new one starts over
old=$PID_pre
stop pre
start_prefill pre2
for _ in $(seq 100); do curl -s "$BASE/metrics" | grep -q "worker=\"$old\"" || break; sleep 0.1; done
curl -s "$BASE/metrics" | grep -q "worker=\"$old\"" && { echo "FAIL the killed worker's entries stay"; exit 1; }
wait_health 200
answers disagg2 >/dev/null
same ref disagg2
echo "ok   a killed prefill worker's entries left the index; its successor answers the same"
down

cluster colocated
answers colo | sed 's/^/     colocated: /'
same ref colo
cached_some colo
down

# eviction: pools of 64 blocks (16 tokens each) for conversations on 6 prefixes of 19 blocks
cluster disagg --no-prefix-cache
answers ref6 --prefixes 6 >/dev/null
down
HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend
start pre $BUILD/pdserve-prefill --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 64 --load-interval-ms 100
start dec $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 64 --load-interval-ms 100
wait_health 200
answers small --prefixes 6 | sed 's/^/     small pools: /'
same ref6 small
down

# an abort while others share the prefix: they complete, every block comes back
cluster disagg
answers warm >/dev/null
python3 - "$BASE" <<'PYEOF' || exit 1
import json, random, socket, sys, threading, urllib.request
base = sys.argv[1]; port = int(base.rsplit(":", 1)[1])
r = random.Random(11)
prefix = [r.randrange(3, 500) for _ in range(300)]
def body(i, stream=False):
    return json.dumps({"prompt": prefix + [3 + i] * 20, "max_tokens": 40, "ignore_eos": True, "stream": stream}).encode()
# one streaming client hangs up after its first chunk
s = socket.create_connection(("127.0.0.1", port))
b = body(99, True)
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
results = []
def run(i):
    req = urllib.request.Request(base + "/v1/completions", body(i), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        d = json.loads(resp.read())
        results.append((d["choices"][0]["finish_reason"], d["usage"]["completion_tokens"]))
ts = [threading.Thread(target=run, args=(i,)) for i in range(5)]
for t in ts: t.start()
s.recv(200); s.close()
for t in ts: t.join()
ok = len(results) == 5 and all(r == ("length", 40) for r in results)
print(("ok  " if ok else "FAIL") + f" a client hung up while 5 others shared its prefix: {results}")
sys.exit(0 if ok else 1)
PYEOF
down
