#!/usr/bin/env bash
# Builds the libFuzzer harness for the wire decoders (tests/proto/fuzz_wire.c) with clang and runs
# it for FUZZ_SECONDS (default 20; `make test` uses that). By hand, longer and keeping the corpus:
#   FUZZ_SECONDS=600 FUZZ_CORPUS=/tmp/wire-corpus BUILD=build tests/proto/fuzz.sh
# Exits 77 (skip) when clang or its libFuzzer runtime (libclang-rt-14-dev) is missing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
out="$BUILD/fuzz"
mkdir -p "$out"
command -v clang >/dev/null || { echo "clang is not installed (tools/deps.sh installs it)"; exit 77; }
SRC="tests/proto/fuzz_wire.c proto/wire.c common/error.c"
INC="-I. -Icommon -Iproto -Itests"
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $INC $SRC \
        -o "$out/fuzz_wire" 2>"$out/build.log"; then
    if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$out/build.log"; then
        echo "clang's libFuzzer runtime is missing (libclang-rt-14-dev)"
        exit 77
    fi
    cat "$out/build.log"
    echo "FAIL: the fuzz harness does not build"
    exit 1
fi
clang -g -O1 -DFUZZ_WRITE_SEEDS $INC $SRC -o "$out/fuzz_wire_seeds" || { echo "FAIL: seed writer"; exit 1; }
corpus=${FUZZ_CORPUS:-$(mktemp -d)}
seeds=$(mktemp -d)
trap '[ -z "${FUZZ_CORPUS:-}" ] && rm -rf "$corpus"; rm -rf "$seeds"' EXIT
mkdir -p "$corpus"
"$out/fuzz_wire_seeds" "$seeds" || { echo "FAIL: writing seeds"; exit 1; }
# -rss_limit_mb: a decoder must never allocate more than its input justifies.
"$out/fuzz_wire" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 "$corpus" "$seeds" 2>&1 | tail -n 25
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] && echo PASS || echo "FAIL: the fuzzer found a problem (exit $rc); the crashing input is in crash-* above"
exit "$rc"
