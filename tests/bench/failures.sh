#!/usr/bin/env bash
# failures.sh — a misbehaving server: 500s, resets, truncated and cut streams, invalid JSON, error
# events, a hung stream, a 1-token answer and a stream without usage. pdserve-bench must finish,
# count each failure once with its reason, and still measure the requests that succeeded.
cd "$(dirname "$0")/../.."
source tests/helpers/bench.sh

start_server bad --ttft-ms 200 --itl-ms 100 \
    --behaviours normal,http500,reset,truncate,cut,badjson,errorevent,hang,onetoken,nousage
bench --base-url "http://127.0.0.1:$PORT_bad" --input-len 10 --output-len 5 --num-prompts 20 \
    --timeout 2 --slo-ttft-ms 400 --save-result "$TMP/bad.json"
python3 - "$TMP/bad.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = {
    'HTTP 500: {"error": {"message": "scripted internal error", "type": "server_error"}}': 2,
    "connection reset by peer": 2,
    "stream ended without [DONE] (truncated stream)": 2,
    "connection closed before the response ended (truncated stream)": 2,
    "server error in stream: scripted engine failure": 2,
    "timeout after 2.0 s": 2,
}
got = dict(r["failure_reasons"])
bad_json = [k for k in got if k.startswith("invalid JSON in stream chunk")]
assert len(bad_json) == 1 and got.pop(bad_json[0]) == 2, f"invalid JSON not counted: {got}"
assert got == want, f"failure reasons {got}"
assert r["failed"] == 14 and r["completed"] == 6, (r["failed"], r["completed"])
ok = [x for x in r["requests"] if x["ok"]]
one = [x for x in ok if x["output_tokens"] == 1]
assert len(one) == 2 and all(x["tpot_ms"] is None and x["itl_ms"] == [] for x in one), one
# A 1-token answer has no TPOT: it is left out of the TPOT statistics and cannot miss its SLO.
tpots = [x["tpot_ms"] for x in ok if x["tpot_ms"] is not None]
assert len(tpots) == 4 and abs(r["mean_tpot_ms"] - sum(tpots) / 4) < 1e-9, r["mean_tpot_ms"]
nousage = [x for x in ok if not x["usage_seen"]]
assert len(nousage) == 2 and all(x["output_tokens"] == 5 for x in nousage), nousage
# Failures count as SLO misses: 6 of 20 succeeded, all well within the 400 ms TTFT SLO.
assert r["good_requests"] == 6 and abs(r["attainment"] - 0.3) < 1e-9, r["attainment"]
assert all(x["error"] for x in r["requests"] if not x["ok"])
print("failure reasons counted exactly:", sum(r["failure_reasons"].values()), "failures")
PY

# Nobody listening: every request fails with the connect error, and the tool still reports.
kill "${SERVER_PIDS[0]}"; wait "${SERVER_PIDS[0]}" 2>/dev/null || true
bench --base-url "http://127.0.0.1:$PORT_bad" --num-prompts 3 --input-len 4 --output-len 2 \
    --save-result "$TMP/refused.json" >/dev/null
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["failure_reasons"] == {"connect: connection refused": 3}, r["failure_reasons"]
assert r["completed"] == 0 and r["mean_ttft_ms"] == 0 and r["attainment"] == 0
print("connection refused: 3 failures, no crash")' "$TMP/refused.json"

# --api-key: without it a server that wants one answers 401, with it the requests go through.
start_server auth --ttft-ms 10 --itl-ms 10 --api-key s3cret
for key in "" s3cret; do
    bench --base-url "http://127.0.0.1:$PORT_auth" --num-prompts 2 --input-len 4 --output-len 2 \
        ${key:+--api-key "$key"} --save-result "$TMP/auth$key.json" >/dev/null
done
python3 -c '
import json, sys
no, yes = (json.load(open(f)) for f in sys.argv[1:])
assert list(no["failure_reasons"]) == ["HTTP 401: {\"error\": {\"message\": \"invalid API key\"}}"], no["failure_reasons"]
assert yes["completed"] == 2, yes["failure_reasons"]
print("api key: 401 without, served with")' "$TMP/auth.json" "$TMP/auths3cret.json"

# Bad options are errors with a message, not crashes.
for args in "--request-rate -1" "--base-url https://x" "--dataset sharegpt" "--goodput ttft" \
            "--sweep 1,2" "--range-ratio 1.5" "--no-such-option" "--seed x" "--num-prompts 0" \
            "--dataset sharegpt /nonexistent.json" "--tokenizer /nonexistent"; do
    if bench $args >"$TMP/err.txt" 2>&1; then echo "accepted bad options: $args"; exit 1; fi
    grep -q "error" "$TMP/err.txt" || { echo "no error message for: $args"; cat "$TMP/err.txt"; exit 1; }
done
echo "bench_failures: every failure counted with its reason"
