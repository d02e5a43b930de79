#!/usr/bin/env bash
# run-all.sh SECONDS NAME... — `make fuzz`: tests/fuzz/run.sh for each harness in turn, then the
# summary lines together with the load average (other work on the machine lowers exec/s).
# Exits 1 if any harness failed.
set -u
cd "$(dirname "$0")/../.."
secs=$1
shift
summary=()
failed=()
for name in "$@"; do
    echo "== $name: fuzzing for ${secs}s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    tests/fuzz/run.sh "$name" "$secs" | tee "${BUILD:-build}/fuzz/$name.summary"
    rc=${PIPESTATUS[0]}
    summary+=("$(grep '^fuzz ' "${BUILD:-build}/fuzz/$name.summary")")
    [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || failed+=("$name")
done
echo
echo "== summary (${secs}s each; load average now $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ] || { echo "FAILED: ${failed[*]} (crash inputs under ${BUILD:-build}/fuzz/crashes/)"; exit 1; }
