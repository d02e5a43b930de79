#!/usr/bin/env bash
# help.sh — every program pdserve builds answers --help with its usage on stdout and exit status 0.
set -u
BUILD=${BUILD:-build}
fail=0
for b in "$BUILD"/pdserve-*; do
    [ -x "$b" ] || continue
    out=$(timeout 10 "$b" --help 2>/dev/null); rc=$?
    if [ $rc -eq 0 ] && echo "$out" | grep -qi "usage"; then
        echo "ok   $(basename "$b") --help"
    else
        echo "FAIL $(basename "$b") --help: exit $rc, stdout: ${out:0:200}"; fail=1
    fi
done
exit $fail
