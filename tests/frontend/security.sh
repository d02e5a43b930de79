#!/usr/bin/env bash
# security.sh — secrets and request text stay out of logs and `ps`, keys are checked, the hardening
# limits answer 4xx. A frontend with one API key from each source (--api-key, --api-key-file,
# PDSERVE_API_KEY) and a prefill + decode pair, every daemon at PDSERVE_LOG=debug; security.py sends
# right, wrong, missing and malformed keys and requests full of a marker word (prompts, chat
# messages, stop strings, bad JSON, headers, oversized bodies). Afterwards no daemon's log may hold a
# key, the wrong key a client sent, or the marker; nor may the frontend's command line hold its key.
# All addresses being loopback ones, no daemon may listen on any other interface.
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
MARKER=Zebracorn4417
ARGV_KEY=argv-SECRET-1a2b3c
FILE_KEY=file-SECRET-4d5e6f
ENV_KEY=env-SECRET-7a8b9c
WRONG_KEY=wrong-SECRET-0d1e2f
export PDSERVE_LOG=debug
unset UCX_NET_DEVICES

# Start-up errors name the source of a bad key, never the key.
printf 'ok-key\n%s with-a-space\n' "$FILE_KEY" >"$WORK/badkeys"
chmod 600 "$WORK/badkeys"
for args in "--api-key-file $WORK/badkeys" "--api-kye=$ARGV_KEY" "--api-key k1 $ARGV_KEY"; do
    rc=0
    $BUILD/pdserve-frontend --model "$MODEL" --port 0 $args >"$WORK/bad-start.txt" 2>&1 || rc=$?
    if [ $rc != 2 ] || grep -q SECRET "$WORK/bad-start.txt"; then
        echo "FAIL pdserve-frontend ${args//SECRET/...}: exit $rc:"; cat "$WORK/bad-start.txt"; exit 1
    fi
done
echo "ok   a bad key file line, a mistyped flag and a stray argument: exit 2, the key not in the message"

printf '# API keys\n\n  %s  \n' "$FILE_KEY" >"$WORK/keys"
chmod 600 "$WORK/keys"
PDSERVE_API_KEY=$ENV_KEY start_frontend --api-key "$ARGV_KEY" --api-key-file "$WORK/keys" \
    --max-header-bytes 8192 --max-body-bytes 65536
if tr '\0' ' ' <"/proc/$PID_fe/cmdline" | grep -q "$ARGV_KEY"; then
    echo "FAIL the --api-key value is visible in /proc/PID/cmdline (ps)"; exit 1
fi
echo "ok   the --api-key value is overwritten in the frontend's argv (ps shows $(tr '\0' ' ' <"/proc/$PID_fe/cmdline" | grep -o -- '--api-key [^ ]*'))"
start_prefill
start_decode
wait_health 200
# With every configured address a loopback one, UCX's own tcp listeners stay on lo too (they listen
# on every interface unless UCX_NET_DEVICES says otherwise).
outside=$(ss -Hltnp | grep -E "pid=($PID_fe|$PID_pre|$PID_dec)," | awk '$4 !~ /^(127\.|\[::1\]:)/' || true)
[ -z "$outside" ] || { echo "FAIL a daemon listens beyond loopback:"; echo "$outside"; exit 1; }
echo "ok   every listener of the three daemons is on a loopback address ($(ss -Hltnp | grep -cE "pid=($PID_fe|$PID_pre|$PID_dec),"))"

python3 tests/frontend/security.py "$HTTP_PORT" "$MARKER" "$WRONG_KEY" "$ARGV_KEY" "$FILE_KEY" "$ENV_KEY"
alive pre
alive dec
stop_frontend
for w in pre dec; do v="PID_$w"; kill -TERM "${!v}"; wait "${!v}" || true; done

for log in fe pre dec; do
    grep -q ' debug ' "$WORK/$log.log" || { echo "FAIL $log.log has no debug line: PDSERVE_LOG=debug not in effect"; exit 1; }
done
leaked=0
for s in "$MARKER" "$ARGV_KEY" "$FILE_KEY" "$ENV_KEY" "$WRONG_KEY" SECRET; do
    if grep -n -F -- "$s" "$WORK"/fe.log "$WORK"/pre.log "$WORK"/dec.log; then
        echo "FAIL \"$s\" is in a daemon's log (above)"; leaked=1
    fi
done
[ $leaked = 0 ] || exit 1
echo "ok   no key, no client-sent key and no request text in any daemon's log at PDSERVE_LOG=debug ($(cat "$WORK"/fe.log "$WORK"/pre.log "$WORK"/dec.log | wc -l) lines)"
