/* fuzz_wire.c — libFuzzer harness for every wire decoder (tests/proto/fuzz.sh builds and runs it).
 *
 * The first input byte picks the target: 0 → wire_decode (header + payload), 1..11 → the payload
 * decoder of that message type on the rest. Besides "no crash, no overread, no leak" (ASan/UBSan),
 * it checks a property: whatever wire_decode accepts re-encodes to exactly the same bytes (apart
 * from the ignored reserved header word), so the decoder accepts nothing an encoder cannot write.
 *
 * Built with -DFUZZ_WRITE_SEEDS instead, main() writes one encoded example of every message type
 * into the directory given as argv[1], as the starting corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/proto/wire_samples.h"
#include "wire.h"

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
    }
    if (rc == 0)
        wire_msg_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t target = data[0] % (WIRE_TYPE_MAX + 1);
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

#ifdef FUZZ_WRITE_SEEDS
static void write_seed(const char *dir, const char *name, int n, uint8_t sel, const uint8_t *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%d-%u", dir, name, n, sel);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(&sel, 1, 1, f);
    fwrite(p, 1, len, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++) {
        for (int seed = 0; seed < 2; seed++) {
            struct wire_msg m;
            struct wire_buf b = {0};
            struct error err;
            ws_sample(t, (uint64_t)seed, &m);
            if (t == WIRE_GENERATE || t == WIRE_KV_DONE) { /* keep seeds small */
                uint32_t *n = t == WIRE_GENERATE ? &m.u.gen.n_prompt : &m.u.done.n_prompt;
                *n = *n % 8;
            }
            if (t == WIRE_KV_GRANT)
                m.u.grant.n_blocks %= 8;
            if (wire_encode(&b, &m, &err) == 0) {
                write_seed(argv[1], wire_type_name(t), seed, 0, b.data, b.len);
                write_seed(argv[1], wire_type_name(t), seed, (uint8_t)t, b.data + WIRE_HDR_SIZE,
                           b.len - WIRE_HDR_SIZE);
            }
            wire_msg_release(&m);
            wire_buf_free(&b);
        }
    }
    return 0;
}
#endif
