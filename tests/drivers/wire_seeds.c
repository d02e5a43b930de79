/* wire_seeds.c — writes the wire fuzz harness's seeds (tests/fuzz/corpus/wire) from the samples of
 * tests/helpers/wire_samples.h: for seeds 0 and 1 of every message type, TYPE-s-0 is selector byte 0
 * then the whole message, TYPE-s-T selector byte T then the payload alone. Rerun it whenever the wire
 * format changes: build/tests/wire_seeds tests/fuzz/corpus/wire (the KV_RUN-* seeds are hand-made). */
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"
#include "tests/helpers/wire_samples.h"

static int write_seed(const char *dir, const char *name, int s, int sel, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%d-%d", dir, name, s, sel);
    FILE *f = fopen(path, "wb");
    uint8_t b = (uint8_t)sel;
    int ok = f && fwrite(&b, 1, 1, f) == 1 && fwrite(p, 1, n, f) == n;
    if (f && fclose(f))
        ok = 0;
    if (!ok)
        fprintf(stderr, "wire_seeds: cannot write %s\n", path);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    (void)ws_equal; /* the samples header serves the round-trip tests too */
    if (argc != 2) {
        fprintf(stderr, "usage: wire_seeds DIR\n");
        return 2;
    }
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++)
        for (int s = 0; s < 2; s++) {
            struct wire_buf b = {0};
            struct wire_msg m;
            struct error err;
            ws_sample(t, (uint64_t)s, &m);
            int rc = wire_encode(&b, &m, &err);
            if (rc)
                fprintf(stderr, "wire_seeds: %s: %s\n", wire_type_name(t), err.msg);
            else
                rc = write_seed(argv[1], wire_type_name(t), s, 0, b.data, b.len) ||
                     write_seed(argv[1], wire_type_name(t), s, t, b.data + WIRE_HDR_SIZE, b.len - WIRE_HDR_SIZE);
            wire_msg_release(&m);
            wire_buf_free(&b);
            if (rc)
                return 1;
        }
    return 0;
}
