/* handshake.c — fuzz harness: the bytes anyone who reaches a cluster port can send before proving
 * the cluster key, into the handshake decoder of proto/handshake.c — the way proto/ucx_ctl.c reads
 * them: hs_frame_size on the first 12 bytes decides how much of the rest is taken, then hs_decode on
 * exactly that frame. Besides "no crash, no overread" (ASan/UBSan) it checks that whatever the
 * decoder accepts re-encodes to exactly the same bytes. The seeds in tests/fuzz/corpus/handshake are
 * one frame of every type (tests/fuzz/gen_corpus.py writes them). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hs_msg m;
    static uint8_t again[HS_FRAME_MAX];
    struct error err;
    size_t want, len;
    while (size >= HS_HDR_SIZE) { /* frames one after another, as they arrive on a connection */
        if (hs_frame_size(data, &want, &err) || want > size)
            return 0;
        if (hs_decode(data, want, &m, &err) == 0) {
            if (hs_encode(&m, again, sizeof again, &len, &err) || len != want || memcmp(again, data, len))
                abort();
        }
        data += want;
        size -= want;
    }
    return 0;
}
