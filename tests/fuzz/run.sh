#!/usr/bin/env bash
# run.sh — builds one libFuzzer harness (tests/fuzz/NAME.c → $BUILD/fuzz/NAME, through make, so the
# instrumented archives are shared and incremental) and runs it.
#
#   tests/fuzz/run.sh NAME [SECONDS]        fuzz for SECONDS (default $FUZZ_SECONDS, else 60), starting
#                                           from tests/fuzz/corpus/NAME and keeping what it finds in
#                                           $BUILD/fuzz/corpus/NAME; prints one "fuzz NAME ..." line
#   tests/fuzz/run.sh NAME SECONDS --fresh  the same from the committed corpus alone, in a scratch
#                                           working corpus (tests/TESTS: a fixed start, a bounded time)
#   tests/fuzz/run.sh NAME --repro FILE...  runs the harness once on each FILE, no fuzzing
#
# tests/fuzz/NAME.options, when present, holds extra libFuzzer flags for that harness (one line).
# Exits 0 when nothing was found, 1 on any crash, leak, sanitizer report, timeout (-timeout) or
# out-of-memory (-rss_limit_mb), and 77 (the test runner's skip) only when clang or its libFuzzer
# runtime is missing (tools/deps.sh installs clang and libclang-rt-14-dev).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
name=${1:?usage: tests/fuzz/run.sh NAME [SECONDS | --repro FILE...]}
shift
[ -f "tests/fuzz/$name.c" ] || { echo "no harness tests/fuzz/$name.c"; exit 1; }
out="$BUILD/fuzz"
bin="$out/$name"
mkdir -p "$out"

command -v "${FUZZ_CC:-clang}" >/dev/null || { echo "clang is not installed (tools/deps.sh installs it)"; exit 77; }
probe="$out/.probe"
if [ ! -x "$probe" ]; then
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        "${FUZZ_CC:-clang}" -x c - -fsanitize=fuzzer -o "$probe" 2>/dev/null ||
        { echo "clang's libFuzzer runtime is missing (libclang-rt-14-dev)"; exit 77; }
fi

if ! make --no-print-directory -j"$(nproc)" BUILD="$BUILD" "$bin" >"$out/build-$name.log" 2>&1; then
    tail -n 40 "$out/build-$name.log"
    echo "FAIL: the harness $name does not build (log: $out/build-$name.log)"
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
if [ "${1:-}" = "--repro" ]; then
    shift
    [ $# -gt 0 ] || { echo "--repro needs the input file(s)"; exit 1; }
    "$bin" -error_exitcode=1 -timeout=30 -rss_limit_mb=2048 "$@"
    rc=$?
    [ $rc -eq 0 ] && echo "repro $name: no failure on $*" || echo "repro $name: FAILED (exit $rc)"
    [ $rc -eq 0 ]; exit
fi

secs=${1:-${FUZZ_SECONDS:-60}}
work="$out/corpus/$name"
if [ "${2:-}" = "--fresh" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
crashes="$out/crashes/$name"
log="$out/$name.log"
mkdir -p "$work" "$crashes"
before=$(ls "$work" | wc -l)
extra=$(cat "tests/fuzz/$name.options" 2>/dev/null || true)
# Every failure kind exits 1; libFuzzer's defaults (77 for a crash, 70 for a timeout) would read as
# "skipped" and "software error" to the runner.
# shellcheck disable=SC2086
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 \
    -print_final_stats=1 -artifact_prefix="$crashes/" $extra "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
rc=$?

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
units=$(ls "$work" | wc -l)
crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
printf 'fuzz %-12s %10s execs %8s exec/s  %-22s corpus %5s units (+%s new)  %s\n' "$name" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" "${cov:-cov: ?}" "$units" \
    "$((units - before))" "$([ $rc -eq 0 ] && echo ok || echo FAILED)"
if [ $rc -ne 0 ]; then
    # The report: from the first error line on, bounded.
    grep -q -E 'harness: |==ERROR|ERROR: libFuzzer|runtime error:' "$log" &&
        sed -n "$(grep -n -m1 -E 'harness: |==ERROR|ERROR: libFuzzer|runtime error:' "$log" | cut -d: -f1),+40p" "$log" ||
        tail -n 60 "$log"
    echo "FAIL: $name: ${crash:-see $log}"
    [ -n "$crash" ] && echo "reproduce: tests/fuzz/run.sh $name --repro $crash"
    exit 1
fi
exit 0
