#!/usr/bin/env bash
# KV blocks granted to a transfer are not granted again while its prefill worker may still write
# into them: the frontend's ABORT can reach the decode worker before the prefill worker has stopped
# putting, and a block handed to another request at that moment would be overwritten by a late put
# (a wrong answer, seen in the soak test). tests/unit/decode_grants.c plays frontend and prefill.
source "$(dirname "$0")/../helpers/workers.sh"
make_model "$WORK/m"
port=$(free_port)
start dec $BUILD/pdserve-decode --model "$WORK/m" --frontend 127.0.0.1:$port --kv-blocks 8 --block-size 16 \
    --load-interval-ms 100
$BUILD/tests/decode_grants --ucx-port $port || { echo "FAIL"; tail -n 20 "$WORK/dec.log"; exit 1; }
echo "ok   blocks wait for the prefill worker's word (ABORT, KV_DONE or its loss) before they are granted again"
