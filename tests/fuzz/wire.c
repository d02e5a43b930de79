/* wire.c — fuzz harness: bytes a peer sends over UCX (a prefill or decode worker, or anything that
 * reaches the transport port) into every wire decoder of proto/wire.c.
 *
 * The first input byte picks the target: 0 → wire_decode (header + payload), 1..11 → the payload
 * decoder of that message type on the rest, 12 → the header of a KV run sent as a message in tcp mode
 * (kvx_run_place; the next 4 bytes say how many bytes of blocks follow), which must never place a run
 * outside the pool it is checked against. Besides "no crash, no overread, no leak" (ASan/UBSan),
 * it checks a property: whatever wire_decode accepts re-encodes to exactly the same bytes (apart
 * from the ignored reserved header word), so the decoder accepts nothing an encoder cannot write.
 * The seeds in tests/fuzz/corpus/wire are two encoded examples of every message type (from
 * tests/helpers/wire_samples.h), whole and as payload only; FILE-n-0 is the whole message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kv_xfer.h"
#include "proto/wire.h"

static void check_reencodes(const uint8_t *data, size_t size, const struct wire_msg *m)
{
    struct wire_buf b = {0};
    struct error err;
    if (wire_encode(&b, m, &err) != 0 || b.len != size || memcmp(b.data, data, 12) ||
        memcmp(b.data + 16, data + 16, size - 16)) {
        fprintf(stderr, "accepted %zu bytes of %s do not re-encode identically\n", size, wire_type_name(m->type));
        abort();
    }
    wire_buf_free(&b);
}

static void decode_payload(uint8_t type, const uint8_t *p, size_t n)
{
    struct wire_msg m = {.type = type};
    struct error err;
    int rc = -1;
    switch (type) {
    case WIRE_REGISTER: rc = wire_decode_register(p, n, &m.u.reg, &err); break;
    case WIRE_LOAD: rc = wire_decode_load(p, n, &m.u.load, &err); break;
    case WIRE_GENERATE: rc = wire_decode_generate(p, n, &m.u.gen, &err); break;
    case WIRE_KV_RESERVE: rc = wire_decode_kv_reserve(p, n, &m.u.reserve, &err); break;
    case WIRE_KV_GRANT: rc = wire_decode_kv_grant(p, n, &m.u.grant, &err); break;
    case WIRE_KV_WAIT: rc = wire_decode_kv_wait(p, n, &m.u.wait, &err); break;
    case WIRE_KV_DONE: rc = wire_decode_kv_done(p, n, &m.u.done, &err); break;
    case WIRE_KV_ACK:
    case WIRE_ABORT: rc = wire_decode_empty(p, n, &err); break;
    case WIRE_TOKENS: rc = wire_decode_tokens(p, n, &m.u.tokens, &err); break;
    case WIRE_ERROR: rc = wire_decode_error(p, n, &m.u.error, &err); break;
    case WIRE_KV_STATS: rc = wire_decode_kv_stats(p, n, &m.u.stats, &err); break;
    case WIRE_PROMPT_LOGPROBS: rc = wire_decode_prompt_logprobs(p, n, &m.u.prompt_lp, &err); break;
    }
    if (rc == 0)
        wire_msg_release(&m);
}

#define KV_TARGET (WIRE_TYPE_MAX + 1)

/* A pool of 3 layers × 5 blocks × 48 bytes. */
static void kv_run(const uint8_t *p, size_t n)
{
    if (n < 4)
        return;
    size_t length = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    uint8_t *hdr = malloc(n - 4 ? n - 4 : 1); /* exact size: an overread is caught */
    memcpy(hdr, p + 4, n - 4);
    struct kvx_run run;
    if (kvx_run_place(hdr, n - 4, length, 3, 5, 48, &run) == 0 &&
        (run.offset % 48 || run.offset + length > 3 * 5 * 48 || length == 0)) {
        fprintf(stderr, "accepted KV run (layer %u, blocks %u+%u) lies outside the pool\n", run.layer, run.dst,
                run.count);
        abort();
    }
    free(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t target = data[0] % (KV_TARGET + 1);
    if (target == KV_TARGET) {
        kv_run(data + 1, size - 1);
        return 0;
    }
    if (target) {
        decode_payload(target, data + 1, size - 1);
        return 0;
    }
    /* an exact-size copy, so any read past the end is caught */
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    memcpy(copy, data + 1, size - 1);
    struct wire_msg m;
    struct error err;
    if (wire_decode(copy, size - 1, &m, &err) == 0) {
        check_reencodes(copy, size - 1, &m);
        wire_msg_release(&m);
    }
    free(copy);
    return 0;
}
