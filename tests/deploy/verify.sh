#!/usr/bin/env bash
# verify.sh — `make install` into a staging root (DESTDIR) lays out binaries, units, the sysusers entry,
# docs and examples; every unit (templates as instances, with the example CPU-pinning drop-ins) passes
# `systemd-analyze verify` with no warning at all and `systemd-analyze security` under a threshold; the
# ExecStart lines, expanded with the example environment files, are accepted by the daemons' flag parsers.
# systemd-analyze checks that ExecStart binaries exist, so the units are verified with their /usr/bin
# paths rewritten into the staging root (the only change).
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
fail() { echo "FAIL $*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"

# -o all: install what this BUILD already holds; never rebuild it with other flags (make asan).
make --no-print-directory -s -o all BUILD="$BUILD" DESTDIR="$STAGE" PREFIX=/usr install >"$STAGE.log" 2>&1 \
    || { cat "$STAGE.log"; rm -f "$STAGE.log"; fail "make install"; }
rm -f "$STAGE.log"
R=$STAGE/usr
for f in bin/pdserve-frontend bin/pdserve-prefill bin/pdserve-decode lib/sysusers.d/pdserve.conf \
         lib/systemd/system/pdserve.target lib/systemd/system/pdserve-frontend.service \
         lib/systemd/system/pdserve-prefill@.service lib/systemd/system/pdserve-decode@.service \
         share/doc/pdserve/deploy.md share/doc/pdserve/examples/one-node/cluster.env; do
    [ -s "$R/$f" ] || fail "make install did not install $f"
done
[ -x "$R/bin/pdserve-frontend" ] || fail "binaries are not executable"
! grep -l '@[A-Z_]*@' "$R"/lib/systemd/system/* || fail "placeholders left in installed units"
grep -q '^ExecStart=/usr/bin/pdserve-prefill ' "$R/lib/systemd/system/pdserve-prefill@.service" \
    || fail "ExecStart does not point into PREFIX/bin"
echo "ok   make install PREFIX=/usr DESTDIR=...: binaries, units, sysusers.d, docs, examples"
# Another prefix: every path in the units follows it.
make --no-print-directory -s -o all BUILD="$BUILD" DESTDIR="$STAGE/opt" PREFIX=/opt/pdserve install >/dev/null 2>&1 \
    || fail "make install PREFIX=/opt/pdserve"
u=$STAGE/opt/opt/pdserve/lib/systemd/system/pdserve-decode@.service
grep -q '^ExecStart=/opt/pdserve/bin/pdserve-decode ' "$u" && grep -q '^Documentation=file:///opt/pdserve/share/doc/pdserve/deploy.md' "$u" \
    && [ -x "$STAGE/opt/opt/pdserve/bin/pdserve-decode" ] || fail "PREFIX=/opt/pdserve not honoured: $(grep -E '^(ExecStart|Documentation)' "$u")"
echo "ok   make install PREFIX=/opt/pdserve: binaries and unit paths under /opt/pdserve"

UNITS=$STAGE/units
mkdir "$UNITS"
for u in "$R"/lib/systemd/system/*; do sed "s|=/usr/bin/|=$R/bin/|" "$u" >"$UNITS/$(basename "$u")"; done
cp -R deploy/examples/three-node/node1/*.service.d deploy/examples/three-node/node2/*.service.d "$UNITS/"
names="pdserve.target pdserve-frontend.service pdserve-prefill@.service pdserve-decode@.service
       pdserve-prefill@prefill0.service pdserve-prefill@prefill1.service pdserve-decode@decode0.service"
for n in $names; do
    # SYSTEMD_UNIT_PATH: our directory first, so drop-ins there apply; the host's units after it.
    out=$(SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify "$n" 2>&1) || fail "systemd-analyze verify $n: $out"
    [ -z "$out" ] || fail "systemd-analyze verify $n warns: $out"
    score=$(SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze security --offline=yes --threshold=35 "$n" 2>&1 | tail -n 1) \
        || { [[ $n == *.target ]] || fail "$n: hardening regressed: $score"; }
    [[ $n == *.target ]] && score=""
    echo "ok   systemd-analyze verify $n${score:+ (${score#→ })}"
done
# A broken key must be caught (the check above is not vacuous).
printf '[Service]\nCPUAfinity=1\n' >"$UNITS/pdserve-decode@decode0.service.d/typo.conf"
out=$(SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify pdserve-decode@decode0.service 2>&1 || true)
[ -n "$out" ] && echo "ok   a misspelt key in a drop-in is reported" || fail "a misspelt key went unnoticed"
rm "$UNITS/pdserve-decode@decode0.service.d/typo.conf"

# Each ExecStart with each example's environment files (read through the unit's own EnvironmentFile=
# lines), the model folder missing: the daemon must reject the model (exit 1), not the flags (exit 2).
check_exec() { # UNIT INSTANCE CONFDIR
    local rc=0
    mapfile -d '' cmd < <(python3 tests/deploy/unitexec.py "$UNITS/$1" "$2" "$3")
    [ ${#cmd[@]} -gt 1 ] || fail "$1: could not expand ExecStart"
    "${cmd[@]}" >"$STAGE/exec.log" 2>&1 || rc=$?
    [ $rc = 1 ] && grep -q "$STAGE/no-model" "$STAGE/exec.log" \
        || { cat "$STAGE/exec.log"; fail "$1 ($3/$2.env): exit $rc, expected 1 for the missing model"; }
}
for dir in deploy/examples/one-node deploy/examples/three-node/node*; do
    conf=$STAGE/conf-$(basename "$dir")
    cp -R "$dir" "$conf"
    sed -i "s|^PDSERVE_MODEL=.*|PDSERVE_MODEL=$STAGE/no-model|" "$conf/cluster.env"
    for env in "$conf"/*.env; do
        name=$(basename "$env" .env)
        case $name in
        cluster) continue ;;
        frontend) check_exec pdserve-frontend.service "" "$conf" ;;
        prefill*) check_exec pdserve-prefill@.service "$name" "$conf" ;;
        decode*) check_exec pdserve-decode@.service "$name" "$conf" ;;
        *) fail "$dir/$name.env: which unit reads it?" ;;
        esac
        echo "ok   $dir/$name.env: the unit's ExecStart is accepted"
    done
done
echo PASS
