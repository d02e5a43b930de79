#!/usr/bin/env bash
# fuzz.sh — builds the request-parsing fuzz harness with clang's libFuzzer (+ASan/UBSan) and runs it
# for FUZZ_SECONDS (default 20) from a seed corpus of valid and invalid bodies. Any crash, leak or
# sanitizer report fails the test. Exits 77 (skip) when clang's libFuzzer runtime is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
out="$BUILD/fuzz"
mkdir -p "$out/corpus"
if ! command -v clang >/dev/null; then echo "clang not installed (tools/deps.sh installs it)"; exit 77; fi
bin="$out/fuzz_request"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE \
    -I. -Icommon $(pkg-config --cflags jansson libuv) \
    tests/frontend/fuzz_request.c frontend/api_req.c frontend/apierr.c frontend/stopstr.c common/strbuf.c frontend/oai_resp.c \
    common/sample.c $(pkg-config --libs jansson libuv) -lm -o "$bin" 2>"$out/build.log" || {
    if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$out/build.log"; then
        echo "clang's libFuzzer runtime is missing (libclang-rt-14-dev)"; exit 77
    fi
    cat "$out/build.log"; exit 1; }
seed() { printf '%s' "$2" >"$out/corpus/$1"; }
seed c1 '0{"prompt":"hello","max_tokens":5,"stop":["ll","o w"],"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}'
seed c2 '0{"prompt":[[1,2,3],[4]],"n":2,"logprobs":3,"echo":true,"seed":7,"stop_token_ids":[1]}'
seed c3 '1{"messages":[{"role":"user","content":"hi"}],"top_logprobs":2,"logprobs":true,"chat_template_kwargs":{"a":1}}'
seed c4 '1{"messages":[{"role":"system","content":[{"type":"text","text":"x"}]}],"stop":"\u00e9","tools":[]}'
seed c5 '0{"prompt":"x","temperature":"hot","top_p":0}'
seed c6 '0[1,2,{"a":null}]'
"$bin" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
    -artifact_prefix="$out/" "$out/corpus" 2>&1 | tail -n 5
echo "fuzz: no crash, leak or sanitizer report"
