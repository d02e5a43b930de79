/* failalloc_wire.c — every allocation the wire encoders and decoders make, failed once each: for
 * every message type, encoding and decoding are run again and again with allocation N failing, for
 * N = 1, 2, ... until a run reaches no N-th allocation. Each failed run must return -1 with a
 * message and leave nothing allocated (LeakSanitizer checks that under make asan); the run that
 * succeeds must give the message back exactly. */
#include <string.h>

#include "proto/wire.h"
#include "tests/helpers/check.h"
#include "tests/helpers/failalloc.h"
#include "tests/helpers/wire_samples.h"

/* Returns how many allocations a successful encode made. */
static long walk_encoder(const struct wire_msg *m, size_t want_len)
{
    for (long n = 1;; n++) {
        struct wire_buf b = {0};
        struct error err = {{0}};
        failalloc_arm(n);
        int rc = wire_encode(&b, m, &err);
        bool fired = failalloc_disarm();
        if (!fired) {
            CHECK_MSG(rc == 0 && b.len == want_len, "%s: encode without a failure: rc %d", wire_type_name(m->type),
                      rc);
            wire_buf_free(&b);
            return n - 1;
        }
        CHECK_MSG(rc < 0 && err.msg[0], "%s: encode with allocation %ld failing: rc %d, message \"%s\"",
                  wire_type_name(m->type), n, rc, err.msg);
        wire_buf_free(&b);
    }
}

static long walk_decoder(const struct wire_msg *m, const struct wire_buf *b)
{
    for (long n = 1;; n++) {
        struct wire_msg d;
        struct error err = {{0}};
        failalloc_arm(n);
        int rc = wire_decode(b->data, b->len, &d, &err);
        bool fired = failalloc_disarm();
        if (!fired) {
            CHECK_MSG(rc == 0 && ws_equal(m, &d), "%s: decode without a failure: rc %d (%s)",
                      wire_type_name(m->type), rc, err.msg);
            wire_msg_release(&d);
            return n - 1;
        }
        CHECK_MSG(rc < 0 && err.msg[0], "%s: decode with allocation %ld failing: rc %d, message \"%s\"",
                  wire_type_name(m->type), n, rc, err.msg);
        struct wire_msg empty;
        memset(&empty, 0, sizeof empty);
        CHECK_MSG(rc == 0 || memcmp(&d, &empty, sizeof d) == 0, "%s: a failed decode left fields set",
                  wire_type_name(m->type));
    }
}

static void test_every_type(void)
{
    long total_enc = 0, total_dec = 0;
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++) {
        struct wire_msg m;
        struct wire_buf b = {0};
        struct error err;
        ws_sample(t, 3, &m);
        CHECK(wire_encode(&b, &m, &err) == 0);
        total_enc += walk_encoder(&m, b.len);
        total_dec += walk_decoder(&m, &b);
        wire_msg_release(&m);
        wire_buf_free(&b);
    }
    printf("failed each of %ld encoder and %ld decoder allocations once\n", total_enc, total_dec);
    CHECK(total_enc >= WIRE_TYPE_MAX && total_dec > 0); /* the wrappers are really in the path */
}

int main(void)
{
    RUN(test_every_type);
    return check_report();
}
