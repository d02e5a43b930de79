#!/usr/bin/env bash
# boot.sh — the systemd units booted for real. A Debian root (debootstrap, cached in $BUILD/deploy-root/)
# gets `make install`, the one-node example's /etc/pdserve and a CPU-pinning drop-in, and boots with
# systemd-nspawn (systemd as PID 1, its own network namespace). Inside it:
#  - readiness: a decode worker started while the frontend is masked stays `activating` (no READY=1);
#    `systemctl start pdserve.target` returns once the frontend is ready and both workers registered,
#    /health is 200 at once, a completion answers;
#  - the watchdog: a SIGSTOPped worker is killed (SIGABRT) by systemd after WatchdogSec and restarted,
#    and so is a SIGSTOPped frontend (its workers, not restarted, register again by themselves);
#    a SIGKILLed worker is restarted by Restart=on-failure; each time the cluster serves again;
#  - UCX over tcp (the default) and shared memory (UCX_TLS=shm,tcp in cluster.env) under the hardening,
#    and the pinning drop-in in force (CPU affinity, NUMA policy);
#  - `systemd-analyze security` of each unit, recorded and at or under 3.5;
#  - the journal: every daemon's lines there, one entry per line, no request content;
#  - `systemctl stop pdserve.target` drains: a streamed request in flight finishes, every unit exits 0.
# Everything started is stopped on any exit (the container powered off, its copy of the root removed;
# KEEP=1 keeps them). Exit 77 only when the kernel refuses containers. Run by `make test-deploy`.
set -uo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
for b in pdserve-frontend pdserve-prefill pdserve-decode pdserve-mkmodel; do
    [ -x "$BUILD/$b" ] || { echo "FAIL $BUILD/$b is not built"; exit 1; }
done
. tests/deploy/bootlib.sh
boot_check_host
mkdir -p "$BUILD/deploy-root"
WORK=$(mktemp -d "$PWD/$BUILD/deploy-root/run.XXXXXX")
trap boot_cleanup EXIT
trap 'exit 143' TERM INT
M=pdboot$$
FE=http://127.0.0.1:8000
CANARY=canary$RANDOM$RANDOM   # in every prompt: it must never reach the journal

boot_root_cached
boot_make_root $M
ROOT=${BOOT_ROOT[$M]}
# The one-node example as it is, but for a pool sized for the tiny model.
cp deploy/examples/one-node/*.env "$ROOT/etc/pdserve/"
sed -i 's|^PDSERVE_WORKER_ARGS=\(.*\)|PDSERVE_WORKER_ARGS=\1 --kv-blocks 1024|' "$ROOT/etc/pdserve/cluster.env"
# The pinning drop-in of docs/deploy.md, on this machine's last core.
PIN_CPU=$(($(nproc) - 1))
install -d "$ROOT/etc/systemd/system/pdserve-decode@decode0.service.d"
printf '[Service]\nCPUAffinity=%s\nNUMAPolicy=bind\nNUMAMask=0\nMemoryMax=4G\n' "$PIN_CPU" \
    >"$ROOT/etc/systemd/system/pdserve-decode@decode0.service.d/pin.conf"
echo "ok   make install DESTDIR=root (PREFIX=/usr/local), one-node /etc/pdserve, pin.conf drop-in for decode0 (CPU $PIN_CPU)"

boot_start $M --private-network
inside $M getent passwd pdserve >/dev/null || fail "systemd-sysusers did not create the pdserve user from /usr/local/lib/sysusers.d"
inside $M systemctl enable pdserve-frontend.service pdserve-prefill@prefill0.service pdserve-decode@decode0.service \
    >/dev/null 2>&1 || fail "systemctl enable"
echo "ok   sysusers made the pdserve user; the three units enabled into pdserve.target"

prop() { inside $M systemctl show -p "$2" --value "$1"; }
health() { on_net $M curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$FE/health"; }
wait_health() { for _ in $(seq 200); do [ "$(health)" = 200 ] && return 0; sleep 0.1; done; fail "/health never 200"; }
complete() {
    local out
    out=$(on_net $M curl -s --max-time 60 "$FE/v1/completions" \
        -d "{\"prompt\":\"$CANARY $1 tell me a story\",\"max_tokens\":8,\"ignore_eos\":true}")
    grep -q '"finish_reason":"length"' <<<"$out" || fail "completion ($1): $out"
}
# wait_restart UNIT OLD_PID OLD_NRESTARTS SECONDS: the unit active again with a new main process.
wait_restart() {
    for _ in $(seq $(($4 * 5))); do
        if [ "$(prop "$1" ActiveState)" = active ] && [ "$(prop "$1" NRestarts)" -gt "$3" ] \
            && [ "$(prop "$1" MainPID)" != "$2" ] && [ "$(prop "$1" MainPID)" != 0 ]; then
            return 0
        fi
        sleep 0.2
    done
    fail "$1 not active again within $4 s (state $(prop "$1" ActiveState), restarts $(prop "$1" NRestarts))"
}
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) / 1000 }'; }

# ---- readiness ----
# A worker whose frontend is not there must not be `active`: it loads, says so, and waits.
inside $M systemctl mask --runtime pdserve-frontend.service >/dev/null 2>&1
inside $M systemctl start --no-block pdserve-decode@decode0.service
for _ in $(seq 100); do [[ $(prop pdserve-decode@decode0.service StatusText) == model* ]] && break; sleep 0.1; done
dpid=$(prop pdserve-decode@decode0.service MainPID)
# Longer than WatchdogSec: systemd arms the watchdog only once the service is ready, so a worker
# waiting for its frontend (or loading a large model) is not killed for sending no WATCHDOG=1.
wd=$(prop pdserve-decode@decode0.service WatchdogUSec); wd_s=${wd%s}
sleep $((wd_s + 2))
st=$(prop pdserve-decode@decode0.service ActiveState)/$(prop pdserve-decode@decode0.service SubState)
[ "$st" = activating/start ] || fail "decode0 with no frontend is $st, expected activating/start (READY=1 too early?)"
[ "$(prop pdserve-decode@decode0.service MainPID)" = "$dpid" ] && [ "$(prop pdserve-decode@decode0.service NRestarts)" = 0 ] \
    || fail "decode0 was restarted while waiting for its frontend"
echo "ok   no frontend: decode0 stays $st for $((wd_s + 2)) s (> WatchdogSec=$wd, not killed), STATUS \"$(prop pdserve-decode@decode0.service StatusText | cut -c1-60)...\""
inside $M systemctl unmask --runtime pdserve-frontend.service >/dev/null 2>&1
t0=$EPOCHREALTIME
inside $M systemctl start pdserve.target || fail "systemctl start pdserve.target"
start_ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
for u in pdserve-frontend.service pdserve-prefill@prefill0.service pdserve-decode@decode0.service; do
    [ "$(prop $u ActiveState)" = active ] || fail "$u is $(prop $u ActiveState) after systemctl start pdserve.target"
done
[ "$(health)" = 200 ] || fail "systemctl start returned but /health is $(health): readiness claimed too early"
fe_exec=$(prop pdserve-frontend.service ExecMainStartTimestampMonotonic)
fe_act=$(prop pdserve-frontend.service ActiveEnterTimestampMonotonic)
pre_exec=$(prop pdserve-prefill@prefill0.service ExecMainStartTimestampMonotonic)
pre_act=$(prop pdserve-prefill@prefill0.service ActiveEnterTimestampMonotonic)
dec_act=$(prop pdserve-decode@decode0.service ActiveEnterTimestampMonotonic)
[ "$fe_act" -lt "$pre_exec" ] || fail "prefill0 started before the frontend was ready (After= not honoured)"
[ "$fe_act" -lt "$dec_act" ] && [ "$pre_exec" -lt "$pre_act" ] || fail "a worker was active before the frontend"
echo "ok   systemctl start pdserve.target returned in $start_ms ms with all three active and /health 200 at once;" \
    "frontend exec→active $(ms_between "$fe_exec" "$fe_act") ms, then prefill0 exec→active $(ms_between "$pre_exec" "$pre_act") ms," \
    "decode0 active $(ms_between "$fe_act" "$dec_act") ms after the frontend"
complete readiness
echo "ok   a completion answers through the frontend"

# ---- pinning, as the drop-in says ----
dpid=$(prop pdserve-decode@decode0.service MainPID)
cpus=$(inside $M awk '/^Cpus_allowed_list/ { print $2 }' /proc/"$dpid"/status)
[ "$cpus" = "$PIN_CPU" ] || fail "decode0 runs on CPUs $cpus, the drop-in says $PIN_CPU"
inside $M grep -q ' bind:0' /proc/"$dpid"/numa_maps || fail "decode0's memory policy is not bind:0 (NUMAPolicy=bind)"
echo "ok   the pin.conf drop-in holds under the hardening: decode0 on CPU $cpus, memory policy bind:0"

# ---- the watchdog: a frozen worker is killed and restarted ----
n0=$(prop pdserve-decode@decode0.service NRestarts)
t0=$EPOCHREALTIME
inside $M bash -c "kill -STOP $dpid"
wait_restart pdserve-decode@decode0.service "$dpid" "$n0" $((wd_s + 20))
t_back=$EPOCHREALTIME
t_wd=$(inside $M journalctl -u pdserve-decode@decode0.service -o short-unix --no-pager -g 'Watchdog timeout' | tail -n 1 | cut -d' ' -f1)
[ -n "$t_wd" ] || fail "no 'Watchdog timeout' in the journal"
# (grep on a variable, not a pipe: grep -q leaving early would fail the pipe under pipefail)
jr=$(inside $M journalctl -u pdserve-decode@decode0.service -o cat --no-pager)
grep -q "Failed with result 'watchdog'" <<<"$jr" \
    || fail "decode0 was restarted, but not by the watchdog"
wd_after=$(awk -v a="$t0" -v b="$t_wd" 'BEGIN { printf "%.1f", b - a }')
back_after=$(awk -v a="$t0" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }')
awk -v w="$wd_after" -v l="$wd_s" 'BEGIN { exit !(w >= l - 1 && w <= l + 3) }' \
    || fail "the watchdog fired $wd_after s after SIGSTOP, WatchdogSec=$wd"
wait_health
complete watchdog
echo "ok   SIGSTOP decode0: systemd's watchdog fired after $wd_after s (WatchdogSec=$wd), SIGABRT, restarted and active again after $back_after s; serves"

# ---- the frontend's watchdog: the same for a frozen frontend; the workers re-register by themselves ----
fpid=$(prop pdserve-frontend.service MainPID)
wpids="$(prop pdserve-prefill@prefill0.service MainPID) $(prop pdserve-decode@decode0.service MainPID)"
n0=$(prop pdserve-frontend.service NRestarts)
fwd=$(prop pdserve-frontend.service WatchdogUSec); fwd_s=${fwd%s}
t0=$EPOCHREALTIME
inside $M bash -c "kill -STOP $fpid"
wait_restart pdserve-frontend.service "$fpid" "$n0" $((fwd_s + 20))
t_back=$EPOCHREALTIME
t_wd=$(inside $M journalctl -u pdserve-frontend.service -o short-unix --no-pager -g 'Watchdog timeout' | tail -n 1 | cut -d' ' -f1)
[ -n "$t_wd" ] || fail "no 'Watchdog timeout' for the frontend in the journal"
jr=$(inside $M journalctl -u pdserve-frontend.service -o cat --no-pager)
grep -q "Failed with result 'watchdog'" <<<"$jr" || fail "the frontend was restarted, but not by the watchdog"
wd_after=$(awk -v a="$t0" -v b="$t_wd" 'BEGIN { printf "%.1f", b - a }')
back_after=$(awk -v a="$t0" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }')
# The frontend pings at half the period (sd_watchdog_enabled(3)), so systemd's timer, counted from the
# last ping, runs out between WatchdogSec/2 and WatchdogSec after the freeze (the workers ping every
# --load-interval-ms, so for them it is WatchdogSec).
awk -v w="$wd_after" -v l="$fwd_s" 'BEGIN { exit !(w >= l / 2 - 1 && w <= l + 3) }' \
    || fail "the frontend's watchdog fired $wd_after s after SIGSTOP, WatchdogSec=$fwd (pings every $((fwd_s / 2)) s)"
wait_health
t_health=$EPOCHREALTIME
complete frontend-watchdog
[ "$(prop pdserve-prefill@prefill0.service MainPID) $(prop pdserve-decode@decode0.service MainPID)" = "$wpids" ] \
    || fail "the workers were restarted with the frontend; they should re-register by themselves"
echo "ok   SIGSTOP the frontend: its watchdog fired after $wd_after s (WatchdogSec=$fwd), restarted and active after $back_after s;" \
    "both workers (not restarted) re-registered, /health 200 after $(awk -v a="$t0" -v b="$t_health" 'BEGIN { printf "%.1f", b - a }') s; serves"

# ---- Restart=on-failure after SIGKILL ----
ppid_=$(prop pdserve-prefill@prefill0.service MainPID)
n0=$(prop pdserve-prefill@prefill0.service NRestarts)
t0=$EPOCHREALTIME
inside $M bash -c "kill -KILL $ppid_"
wait_restart pdserve-prefill@prefill0.service "$ppid_" "$n0" 30
back_after=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
wait_health
complete sigkill
echo "ok   SIGKILL prefill0: Restart=on-failure brought it back in $back_after s (RestartSec=$(prop pdserve-prefill@prefill0.service RestartUSec)); serves"

# ---- UCX over shared memory, under the same hardening ----
printf 'UCX_TLS=shm,tcp\nUCX_POSIX_ERROR_HANDLING=y\nUCX_SYSV_ERROR_HANDLING=y\n' >>"$ROOT/etc/pdserve/cluster.env"
inside $M systemctl restart pdserve.target || fail "systemctl restart pdserve.target"
wait_health
complete shm
dpid=$(prop pdserve-decode@decode0.service MainPID)
ppid_=$(prop pdserve-prefill@prefill0.service MainPID)
shm=$(inside $M bash -c "grep -hcE '/dev/shm/|SYSV' /proc/$dpid/maps /proc/$ppid_/maps" | tr '\n' ' ')
[[ $shm != *"0 "* ]] || fail "UCX_TLS=shm,tcp but a worker has no shared-memory mapping (maps: $shm)"
echo "ok   UCX shared memory (UCX_TLS=shm,tcp): restart of pdserve.target, a completion, shared-memory segments mapped in both workers ($shm)"

# ---- hardening as systemd itself rates it ----
for u in pdserve-frontend.service pdserve-prefill@prefill0.service pdserve-decode@decode0.service; do
    line=$(inside $M systemd-analyze security --no-pager "$u" 2>&1 | tail -n 1)
    score=$(grep -oE '[0-9]+\.[0-9]+' <<<"$line" | tail -n 1)
    [ -n "$score" ] || fail "systemd-analyze security $u: $line"
    awk -v s="$score" 'BEGIN { exit !(s <= 3.5) }' || fail "$u: exposure $score over 3.5"
    echo "ok   systemd-analyze security $u (in the booted system): ${line#*: }"
done

# ---- the journal ----
inside $M journalctl --no-pager -o json -u 'pdserve*' >"$WORK/journal.json"
python3 - "$WORK/journal.json" "$CANARY" <<'PY' || fail "journal check"
import json, sys
path, canary = sys.argv[1], sys.argv[2]
per_unit, bad, prios = {}, [], {}
want = {"debug": "7", "info": "6", "warn": "4", "error": "3"}
for line in open(path):
    e = json.loads(line)
    msg = e.get("MESSAGE")
    if isinstance(msg, list):  # journald stores non-UTF-8 as bytes
        msg = bytes(msg).decode("utf-8", "replace")
    if msg is None:
        continue
    unit = e.get("_SYSTEMD_UNIT") or e.get("UNIT") or "?"
    if e.get("_COMM", "").startswith("pdserve") and e.get("_TRANSPORT") == "stdout":
        per_unit[unit] = per_unit.get(unit, 0) + 1
        level = msg.split(" ", 1)[0]
        # pdserve's own lines carry their level as the journal priority (UCX's own stderr lines do not).
        if level in want:
            prios[level] = prios.get(level, 0) + 1
            if e.get("PRIORITY") != want[level]:
                bad.append(f"{level} line with PRIORITY={e.get('PRIORITY')} from {unit}: {msg!r}")
    if "\n" in msg or not msg.strip():
        bad.append(f"multi-line or empty entry from {unit}: {msg!r}")
    if canary in msg:
        bad.append(f"request content in the journal ({unit}): {msg!r}")
for u in ("pdserve-frontend.service", "pdserve-prefill@prefill0.service", "pdserve-decode@decode0.service"):
    if not per_unit.get(u):
        bad.append(f"no line from {u}'s daemon in the journal")
if "warn" not in prios:
    bad.append("no warning in the journal, though a worker was SIGKILLed")
if bad:
    print("\n".join(bad[:10]))
    sys.exit(1)
print("ok   journal: " + ", ".join(f"{u} {n} lines" for u, n in sorted(per_unit.items()))
      + "; each entry one line, priority = level ("
      + ", ".join(f"{n} {l}" for l, n in sorted(prios.items())) + "); no prompt text")
PY
ex=$(inside $M journalctl -u pdserve-decode@decode0.service -o cat --no-pager -g 'registered with the frontend' | tail -n 1)
echo "     e.g. $ex"

# ---- stopping drains ----
# `systemctl stop pdserve.target` returns once the target is stopped, which (ordering reversed on stop)
# is before its daemons: they drain after it. So: wait for every unit to be inactive, within
# TimeoutStopSec, and check how each exited. The stream is 10000 tokens (a pool of 1024 blocks of 16
# holds it): the tiny model makes 4000 in about a second here, which sometimes ended before the stop.
on_net $M curl -sN --max-time 120 "$FE/v1/completions" \
    -d "{\"prompt\":\"$CANARY long\",\"max_tokens\":10000,\"ignore_eos\":true,\"stream\":true}" >"$WORK/long.out" &
LONG=$!
for _ in $(seq 100); do
    [ "$(on_net $M curl -s "$FE/metrics" | awk '/^pdserve:num_requests_running/ { print $NF }')" = 1 ] && break
    sleep 0.05
done
sleep 0.5
kill -0 $LONG 2>/dev/null || fail "the long request ended before the stop: $(tail -c 200 "$WORK/long.out")"
UNITS="pdserve-frontend.service pdserve-prefill@prefill0.service pdserve-decode@decode0.service"
t0=$EPOCHREALTIME
inside $M systemctl stop pdserve.target || fail "systemctl stop pdserve.target"
ret_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
limit=$(prop pdserve-decode@decode0.service TimeoutStopUSec); limit=${limit%s}
for _ in $(seq $((limit * 10))); do
    act=$(for u in $UNITS; do prop $u ActiveState; done | sort -u | tr '\n' ' ')
    [ "$act" = "inactive " ] && break
    sleep 0.1
done
stop_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[ "$act" = "inactive " ] || fail "units still $act $limit s after systemctl stop pdserve.target"
wait $LONG
grep -q '"finish_reason":"length"' "$WORK/long.out" && [ "$(grep -v '^[[:space:]]*$' "$WORK/long.out" | tail -n 1 | tr -d '\r')" = "data: [DONE]" ] \
    && ! grep -q '"error"' "$WORK/long.out" || fail "the stream in flight did not finish during the drain: $(tail -c 300 "$WORK/long.out")"
ntok=$(grep -c '"text"' "$WORK/long.out")
for u in $UNITS; do
    stopped_cleanly $M $u "$t0" || fail "$u did not exit 0: $(inside $M journalctl -u $u -o cat --no-pager -n 5)"
done
order=$(inside $M journalctl -o cat --no-pager -g '^Stopped pdserve' | tail -n 3 | sed 's/ - .*//; s/Stopped //' | tr '\n' ' ')
[[ $order == *pdserve-frontend.service" " ]] || fail "the frontend did not stop last: $order"
echo "ok   systemctl stop pdserve.target returned after $ret_s s, the daemons drained and were all inactive after $stop_s s:" \
    "the stream in flight finished ($ntok chunks, finish_reason length, [DONE]); every unit exited 0; stop order: $order"

# `systemctl stop 'pdserve*'` names the daemons too, so it returns only when they have drained.
inside $M systemctl start pdserve.target || fail "systemctl start pdserve.target (again)"
inside $M systemctl stop 'pdserve*' || fail "systemctl stop 'pdserve*'"
act=$(for u in $UNITS; do prop $u ActiveState; done | sort -u | tr '\n' ' ')
[ "$act" = "inactive " ] || fail "systemctl stop 'pdserve*' returned with units $act"
echo "ok   systemctl stop 'pdserve*' returns only once every daemon is stopped"

boot_stop $M
[ "${BOOT_EXIT[$M]}" = 0 ] || fail "$M did not power off cleanly (systemd-nspawn exit ${BOOT_EXIT[$M]}): $(tail -n 3 "$WORK/$M.console")"
echo "ok   $M powered off"
echo PASS
