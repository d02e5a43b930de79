#!/usr/bin/env bash
# Admission at the frontend (issue: one prompt larger than a decode pool wedged that worker):
#  - the deployment's max_model_len is what the workers' KV pools hold (/v1/models), and a prompt or
#    a prompt + max_tokens over it is refused at once with 400 context_length_exceeded naming it,
#    while small requests go on being answered;
#  - without max_tokens a request gets what the pool leaves, and completes;
#  - a client that gives up on a 4,000-token prompt stops the prefill worker's computation before
#    the prompt is done, and every KV block comes back;
#  - strict header syntax on the real server ("Host : x", obsolete line folding: 400);
#  - under an open-file limit below --max-connections the limit is lowered with a warning, extra
#    clients get 503 (not a reset), and the refusals log one line, not one per connection.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
start_frontend
start_prefill
start "dec" $BUILD/pdserve-decode --model "$MODEL" --frontend 127.0.0.1:$UCX_PORT --kv-blocks 40 --block-size 16 \
    --load-interval-ms 100
wait_health 200
ids() { python3 -c "import json,random; random.seed($2); print(json.dumps([random.randrange(3,500) for _ in range($1)]))"; }
post() { curl -s -o "$WORK/out.json" -w '%{http_code}' "$BASE/v1/completions" -H 'Content-Type: application/json' -d "$1"; }
field() { python3 -c "import json,sys; d=json.load(open('$WORK/out.json')); print(eval(sys.argv[1]))" "$1"; }

len=$(curl -s "$BASE/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["max_model_len"])')
[ "$len" = 640 ] && echo "ok   /v1/models: max_model_len 640, the decode pool (40 blocks of 16)" || { echo "FAIL max_model_len $len"; exit 1; }

code=$(post "{\"prompt\":$(ids 700 1),\"max_tokens\":4}")
[ "$code" = 400 ] && [ "$(field 'd["error"]["code"]')" = context_length_exceeded ] && field 'd["error"]["message"]' | grep -q 640 \
    && echo "ok   a 700-token prompt: 400 context_length_exceeded naming 640" || { echo "FAIL 700-token prompt: $code"; cat "$WORK/out.json"; exit 1; }
code=$(post "{\"prompt\":$(ids 100 2),\"max_tokens\":600}")
[ "$code" = 400 ] && [ "$(field 'd["error"]["param"]')" = max_tokens ] \
    && echo "ok   100 prompt + 600 max_tokens: 400 on max_tokens" || { echo "FAIL prompt + max_tokens: $code"; cat "$WORK/out.json"; exit 1; }
for i in 1 2 3; do
    code=$(post "{\"prompt\":$(ids 20 $((10 + i))),\"max_tokens\":5,\"ignore_eos\":true}")
    [ "$code" = 200 ] || { echo "FAIL a small request after them: $code"; cat "$WORK/out.json"; exit 1; }
done
echo "ok   small requests are answered after them"
code=$(post "{\"prompt\":$(ids 100 3),\"ignore_eos\":true}")
[ "$code" = 200 ] && [ "$(field 'd["usage"]["completion_tokens"]')" = 540 ] && [ "$(field 'd["choices"][0]["finish_reason"]')" = length ] \
    && echo "ok   no max_tokens: 540 tokens, what the pool leaves" || { echo "FAIL default max_tokens: $code"; cat "$WORK/out.json"; exit 1; }
wait_idle

# strict headers, on the real server
for raw in 'GET /health HTTP/1.1\r\nHost : x\r\n\r\n' 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'; do
    st=$(python3 - "$HTTP_PORT" "$raw" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
print(s.recv(100).split(b" ")[1].decode())
PYEOF
)
    [ "$st" = 400 ] || { echo "FAIL strict headers: $st for $raw"; exit 1; }
done
echo "ok   'Host : x' and obsolete line folding get 400"
stop_frontend
stop dec; stop pre

# A client gone during a long prefill (4,000 tokens, chunks of 512): the prefill worker stops before
# the end of the prompt (its debug log says how much it had computed) and goes idle.
make_model --preset small  # 4,096 positions, and slow enough that a 4,000-token prompt takes seconds
HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start_frontend
PDSERVE_LOG=debug start_prefill
start_decode
wait_health 200
printf '{"prompt":%s,"max_tokens":4,"stream":true}' "$(ids 4000 4)" >"$WORK/long.json"
cpu() { awk '{print $14 + $15}' "/proc/$PID_pre/stat"; }
curl -sN "$BASE/v1/completions" -H 'Content-Type: application/json' -d @"$WORK/long.json" >/dev/null &
client=$!
for _ in $(seq 200); do grep -q 'decode blocks granted' "$WORK/pre.log" && break; sleep 0.05; done
a=$(cpu); sleep 0.5; b=$(cpu)
[ $((b - a)) -gt 10 ] || { echo "FAIL the prefill worker is not computing ($((b - a)) ticks)"; exit 1; }
kill "$client"; wait "$client" 2>/dev/null || true
for _ in $(seq 200); do grep -q 'dropped with' "$WORK/pre.log" && break; sleep 0.05; done
line=$(grep 'dropped with' "$WORK/pre.log" || true)
echo "     prefill worker: ${line#*prefill: }"
done_tokens=$(echo "$line" | sed -n 's/.*dropped with \([0-9]*\) of its 4000.*/\1/p')
[ -n "$done_tokens" ] && [ "$done_tokens" -lt 4000 ] && echo "ok   the prefill stopped with $done_tokens of 4000 tokens computed" \
    || { echo "FAIL the prefill was not stopped early"; tail -5 "$WORK/pre.log"; exit 1; }
wait_idle && echo "ok   every KV block is back"
a=$(cpu); sleep 1; b=$(cpu)
[ $((b - a)) -lt 30 ] && echo "ok   the prefill worker is idle ($((b - a)) ticks in 1 s)" || { echo "FAIL still busy: $((b - a)) ticks in 1 s"; exit 1; }
stop_frontend

# An open-file limit below --max-connections (4096 by default)
HTTP_PORT=$(free_port); UCX_PORT=$(free_port); BASE="http://127.0.0.1:$HTTP_PORT"
start fe prlimit --nofile=300:300 $BUILD/pdserve-frontend --model "$MODEL" --port "$HTTP_PORT" --ucx-port "$UCX_PORT"
for _ in $(seq 300); do curl -s -o /dev/null "$BASE/health" && break; sleep 0.1; done
grep -q 'max-connections lowered from 4096 to 150' "$WORK/fe.log" && echo "ok   --max-connections lowered to fit the open-file limit" \
    || { echo "FAIL no warning"; cat "$WORK/fe.log"; exit 1; }
python3 - "$HTTP_PORT" <<'PYEOF' || exit 1
import socket, sys
port = int(sys.argv[1])
socks, codes = [], {}
for i in range(220):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
for s in socks:
    s.settimeout(0.2)
    try:
        data = s.recv(64)
        code = data.split(b" ")[1].decode() if data else "closed"
    except socket.timeout:
        code = "open"
    except ConnectionResetError:
        code = "reset"
    codes[code] = codes.get(code, 0) + 1
print(f"     220 idle connections: {codes}")
ok = codes.get("503", 0) >= 60 and "reset" not in codes and codes.get("open", 0) >= 140
print(("ok  " if ok else "FAIL") + " the connections over the limit get 503, none a reset")
sys.exit(0 if ok else 1)
PYEOF
n=$(grep -c 'connections open, the limit' "$WORK/fe.log" || true)
[ "$n" -le 2 ] && echo "ok   $n log line(s) for the refused connections" || { echo "FAIL $n log lines for the refused connections"; exit 1; }
stop_frontend
