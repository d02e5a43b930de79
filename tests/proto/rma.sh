#!/usr/bin/env bash
# A UCX peer cannot write into a pdserve process's memory by RMA over tcp. UCX emulates RMA over tcp
# with messages whose handler writes wherever the message says, rkey or not, in any process that
# enabled UCP_FEATURE_RMA. pdserve enables it only with an RDMA device or PDSERVE_KV_TRANSFER=put
# (proto/ucx.c). tests/drivers/rma_probe.c plays the hostile (but authenticated: it passes the
# handshake) peer: it reads the KV pool's address from the REGISTER it is sent and puts 64 bytes
# there with a key of its own making. By default the pool must stay untouched; with RMA forced on the
# same probe does write it (so the check can fail).
. "$(dirname "$0")/../helpers/proto.sh"
PROBE="$BUILD/tests/rma_probe"
[ -x "$PROBE" ] || die "$PROBE is not built"
set_tls tcp
POOL="--layers 2 --blocks 8 --block-bytes 4096"
start_server safe 127.0.0.1:0 $POOL
"$PROBE" "127.0.0.1:$PORT_safe" >"$TMP/probe1.log" 2>&1 || die "the probe failed: $(cat "$TMP/probe1.log")"
stop_server safe
[ "$(stat safe pool_nonzero)" = 0 ] || die "default: the probe wrote $(stat safe pool_nonzero) bytes into the pool"
echo "default: $(grep probe: "$TMP/probe1.log"); the pool is untouched"
PDSERVE_KV_TRANSFER=put start_server open 127.0.0.1:0 $POOL
"$PROBE" "127.0.0.1:$PORT_open" >"$TMP/probe2.log" 2>&1 || die "the probe failed: $(cat "$TMP/probe2.log")"
stop_server open
[ "$(stat open pool_nonzero)" = 64 ] || die "RMA on: the probe should have written 64 bytes, pool has $(stat open pool_nonzero)"
echo "PDSERVE_KV_TRANSFER=put: $(grep probe: "$TMP/probe2.log"); 64 bytes of the pool overwritten, as expected"
echo PASS
