#!/usr/bin/env bash
# KV blocks by RMA, verified byte for byte by the receiver: one sender; then two senders into one
# receiver at once (three processes); then into a pool allocated by UCX (kvx_pool_alloc). The receiver's pool is small enough that reservations have
# to wait (KV_WAIT, then KV_GRANT when blocks free up).
. "$(dirname "$0")/../helpers/proto.sh"
POOL="--layers 4 --blocks 64 --block-bytes 16384"
for tls in $TLS_CHOICES; do
    set_tls "$tls"
    start_server srv 127.0.0.1:0 $POOL
    client one kv "127.0.0.1:$PORT_srv" --requests 40 --inflight 3 --max-blocks 30 || die "[$tls] sender failed"
    start_client a kv "127.0.0.1:$PORT_srv" --requests 40 --inflight 3 --max-blocks 30
    start_client b kv "127.0.0.1:$PORT_srv" --requests 40 --inflight 3 --max-blocks 30
    wait "$CPID_a" || die "[$tls] sender a of two failed"
    wait "$CPID_b" || die "[$tls] sender b of two failed"
    stop_server srv
    [ "$(stat srv kv_ok)" = 120 ] || die "[$tls] receiver verified $(stat srv kv_ok) of 120 transfers"
    [ "$(stat srv kv_bad)" = 0 ] || die "[$tls] receiver saw corrupted KV data"
    [ "$(stat srv waits)" -gt 0 ] || die "[$tls] no reservation ever waited; the KV_WAIT path went untested"
    [ "$(stat srv kv_rejected)" = 0 ] || die "[$tls] receiver refused $(stat srv kv_rejected) KV runs"
    echo "[$tls] 120 transfers verified byte for byte, $(stat srv waits) reservations waited," \
         "$(stat srv kv_rx) runs arrived as messages"
    grep -m1 'rma_bw#0' "$TMP/one.log"
    # RMA over tcp is UCX's emulation: the blocks go as messages instead (kv_xfer.c says why).
    if grep -m1 'rma_bw#0' "$TMP/one.log" | grep -q ':tcp/'; then
        [ "$(stat srv kv_rx)" -gt 0 ] || die "[$tls] RMA lane is tcp but no KV run came as a message"
    fi
done
# Forced puts (PDSERVE_KV_TRANSFER=put) still work where someone wants UCX's emulated RMA over tcp.
set_tls tcp
export PDSERVE_KV_TRANSFER=put
start_server put 127.0.0.1:0 $POOL
client oneput kv "127.0.0.1:$PORT_put" --requests 20 --inflight 3 --max-blocks 30 || die "[put] sender failed"
stop_server put
[ "$(stat put kv_ok)" = 20 ] && [ "$(stat put kv_rx)" = 0 ] || die "[put] $(stat put kv_ok) of 20 verified, $(stat put kv_rx) by message"
echo "[tcp, PDSERVE_KV_TRANSFER=put] 20 transfers verified byte for byte, all by RMA"
unset PDSERVE_KV_TRANSFER
# The receiver's pool allocated by UCX (kvx_pool_alloc): in shared memory, written by plain copies.
# That is RMA (a put into a mapped segment), which pdserve turns on only when asked or with RDMA.
set_tls shm
export PDSERVE_KV_TRANSFER=put
start_server pool 127.0.0.1:0 $POOL --ucx-alloc
client onep kv "127.0.0.1:$PORT_pool" --requests 40 --inflight 3 --max-blocks 30 || die "[pool] sender failed"
stop_server pool
[ "$(stat pool kv_ok)" = 40 ] && [ "$(stat pool kv_bad)" = 0 ] || die "[pool] receiver verified $(stat pool kv_ok) of 40"
grep -m1 "rma_bw#0" "$TMP/onep.log"
[ "$(stat pool kv_rx)" = 0 ] || die "[pool] a pool in shared memory should be written by puts (memcpy), not messages"
echo "[shm,tcp, UCX-allocated pool] 40 transfers verified byte for byte, by puts into shared memory"
unset PDSERVE_KV_TRANSFER
echo PASS
