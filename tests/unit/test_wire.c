/* test_wire.c — the wire protocol without a network: every message type round-trips, the byte layout
 * is the documented one, and malformed input (truncated, padded, wrong magic/version/type, lying
 * counts, bad enums and floats, random corruption) is rejected without reading out of bounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/check.h"
#include "tests/helpers/wire_samples.h"
#include "proto/ucx.h"
#include "proto/wire.h"

static int encode_sample(uint16_t type, uint64_t seed, struct wire_buf *b, struct wire_msg *m)
{
    struct error err;
    ws_sample(type, seed, m);
    int rc = wire_encode(b, m, &err);
    if (rc)
        fprintf(stderr, "encode %s: %s\n", wire_type_name(type), err.msg);
    return rc;
}

static void test_round_trip_every_type(void)
{
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++) {
        for (uint64_t seed = 0; seed < 20; seed++) {
            struct wire_buf b = {0};
            struct wire_msg m, d;
            struct error err;
            CHECK(encode_sample(t, seed, &b, &m) == 0);
            int rc = wire_decode(b.data, b.len, &d, &err);
            CHECK_MSG(rc == 0, "%s seed %llu: %s", wire_type_name(t), (unsigned long long)seed, err.msg);
            CHECK_MSG(rc == 0 && ws_equal(&m, &d), "%s seed %llu differs after the trip", wire_type_name(t),
                      (unsigned long long)seed);
            wire_msg_release(&m);
            wire_msg_release(&d);
            wire_buf_free(&b);
        }
    }
}

#define ZERO8 0, 0, 0, 0, 0, 0, 0, 0
/* The documented layout, byte for byte: a LOAD is header + six little-endian u32 + a u8, then the
 * prefix cache's u8, two u64 arrays and four u64 counters, then preemptions, SLO-shortened steps and
 * the step histogram. */
static void test_golden_bytes(void)
{
    uint64_t added[1] = {0x1122334455667788ull};
    struct wire_load l = {.worker_id = 1, .queued_requests = 2, .queued_tokens = 3, .running = 4, .free_blocks = 5,
                          .total_blocks = 0x01020304, .draining = 1, .keys_reset = 1, .n_added = 1,
                          .added = added, .query_tokens = 9, .kv_bytes_saved = 0x0a0b};
    struct wire_buf b = {0};
    struct error err;
    CHECK(wire_encode_load(&b, &l, &err) == 0);
    static const uint8_t want[] = {'P', 'D', 'S', 'W', 9, 0, 2, 0, 202, 0, 0, 0, 0, 0, 0, 0,
                                   0,   0,   0,   0,   0, 0, 0, 0, 1,  0, 0, 0, 2, 0, 0, 0,
                                   3,   0,   0,   0,   4, 0, 0, 0, 5,  0, 0, 0, 4, 3, 2, 1, 1,
                                   1,   1,   0,   0,   0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                   0,   0,   0,   0,   9, 0, 0, 0, 0, 0, 0, 0,
                                   0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                   0x0b, 0x0a, 0, 0,  0, 0, 0, 0,
                                   /* preemptions, slo_steps, 12 step buckets, steps, seconds: 16 zero u64s */
                                   ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8, ZERO8,
                                   ZERO8, ZERO8, ZERO8, ZERO8, ZERO8};
    CHECK_EQ_INT(b.len, sizeof want);
    CHECK(b.len == sizeof want && !memcmp(b.data, want, sizeof want));
    wire_buf_free(&b);
}

static void patch_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Every proper prefix fails; so does the whole message with one byte more (length fixed up). */
static void test_truncated_and_padded(void)
{
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++) {
        struct wire_buf b = {0};
        struct wire_msg m, d;
        struct error err;
        encode_sample(t, 3, &b, &m);
        int accepted = 0;
        for (size_t n = 0; n < b.len; n++) {
            uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees any overread */
            memcpy(copy, b.data, n);
            if (n >= WIRE_HDR_SIZE)
                patch_u32(copy + 8, (uint32_t)(n - WIRE_HDR_SIZE));
            if (wire_decode(copy, n, &d, &err) == 0) {
                accepted++;
                wire_msg_release(&d);
            }
            free(copy);
        }
        CHECK_MSG(accepted == 0, "%s: %d truncated forms accepted", wire_type_name(t), accepted);
        uint8_t *pad = malloc(b.len + 1);
        memcpy(pad, b.data, b.len);
        pad[b.len] = 0;
        patch_u32(pad + 8, (uint32_t)(b.len + 1 - WIRE_HDR_SIZE));
        CHECK_MSG(wire_decode(pad, b.len + 1, &d, &err) != 0, "%s with a trailing byte accepted", wire_type_name(t));
        free(pad);
        wire_msg_release(&m);
        wire_buf_free(&b);
    }
}

static int decode_fails(const struct wire_buf *b, size_t off, const void *bytes, size_t n)
{
    uint8_t *copy = malloc(b->len);
    memcpy(copy, b->data, b->len);
    memcpy(copy + off, bytes, n);
    struct wire_msg d;
    struct error err;
    int rc = wire_decode(copy, b->len, &d, &err);
    if (rc == 0)
        wire_msg_release(&d);
    free(copy);
    return rc != 0;
}

static void test_bad_header(void)
{
    struct wire_buf b = {0};
    struct wire_msg m;
    encode_sample(WIRE_ABORT, 1, &b, &m);
    CHECK(decode_fails(&b, 0, "XDSW", 4));
    CHECK(decode_fails(&b, 4, "\x0a\x00", 2));   /* version 10 */
    CHECK(decode_fails(&b, 4, "\x08\x00", 2));   /* version 8 (no TTFT SLO in GENERATE) */
    CHECK(decode_fails(&b, 4, "\x07\x00", 2));   /* version 7 (no TPOT SLO in GENERATE and KV_DONE) */
    CHECK(decode_fails(&b, 4, "\x06\x00", 2));   /* version 6 (no ROLE, REGISTER without pinned) */
    CHECK(decode_fails(&b, 4, "\x05\x00", 2));   /* version 5 (no top logprobs, no logit bias) */
    CHECK(decode_fails(&b, 4, "\x04\x00", 2));   /* version 4 (REGISTER without the KV dtype) */
    CHECK(decode_fails(&b, 4, "\x03\x00", 2));   /* version 3 (no prefix caching) */
    CHECK(decode_fails(&b, 4, "\x02\x00", 2));   /* version 2 (sampling params without the logprobs mode) */
    CHECK(decode_fails(&b, 4, "\x01\x00", 2));   /* version 1 (LOAD without the draining flag) */
    CHECK(decode_fails(&b, 4, "\x00\x00", 2));   /* version 0 */
    CHECK(decode_fails(&b, 6, "\x00\x00", 2));   /* type 0 */
    CHECK(decode_fails(&b, 6, "\x0c\x00", 2));   /* type 12 */
    CHECK(decode_fails(&b, 6, "\xff\xff", 2));
    CHECK(decode_fails(&b, 8, "\x01\x00\x00\x00", 4)); /* claims a byte that is not there */
    CHECK(decode_fails(&b, 8, "\xff\xff\xff\xff", 4));
    CHECK(!decode_fails(&b, 12, "\x01\x02\x03\x04", 4)); /* reserved: ignored */
    wire_msg_release(&m);
    wire_buf_free(&b);
}

/* A count that promises more elements than the payload holds must fail before any allocation. */
static void test_lying_counts(void)
{
    struct wire_buf b = {0};
    struct wire_msg m;
    encode_sample(WIRE_KV_GRANT, 4, &b, &m);
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\xff\xff\xff\xff", 4));
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\xff\xff\xff\x3f", 4));
    wire_msg_release(&m);
    wire_buf_free(&b);
    encode_sample(WIRE_TOKENS, 5, &b, &m);
    CHECK(decode_fails(&b, WIRE_HDR_SIZE + 2, "\x00\x00\x00\x40", 4));
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\x05", 1)); /* finish reason 5 */
    CHECK(decode_fails(&b, WIRE_HDR_SIZE + 1, "\x02", 1)); /* has_logprobs 2 */
    wire_msg_release(&m);
    wire_buf_free(&b);
    encode_sample(WIRE_REGISTER, 6, &b, &m);
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\x00", 1)); /* role 0 */
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\x09", 1)); /* role 9 */
    CHECK(decode_fails(&b, WIRE_HDR_SIZE + 17, "\xff\x00\x00\x00", 4)); /* address longer than allowed */
    CHECK(decode_fails(&b, WIRE_HDR_SIZE + 21, "\x00", 1)); /* NUL inside the address */
    CHECK(decode_fails(&b, b.len - 3, "\x03", 1));          /* KV dtype 3 (q8 is not a KV dtype) */
    CHECK(decode_fails(&b, b.len - 2, "\x02", 1));          /* weights 2 */
    CHECK(decode_fails(&b, b.len - 1, "\x02", 1));          /* pinned 2 */
    CHECK(!decode_fails(&b, b.len - 3, "\x02\x01\x01", 3)); /* bf16 KV, q8 weights, pinned */
    wire_msg_release(&m);
    wire_buf_free(&b);
    encode_sample(WIRE_ROLE, 1, &b, &m);
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\x01", 1)); /* role FRONTEND */
    CHECK(decode_fails(&b, WIRE_HDR_SIZE, "\x05", 1)); /* role 5 */
    CHECK(decode_fails(&b, 16, "\x01", 1));            /* a request id: ROLE belongs to none */
    wire_msg_release(&m);
    wire_buf_free(&b);
}

static void test_bad_params(void)
{
    struct wire_buf b = {0};
    struct wire_msg m;
    encode_sample(WIRE_GENERATE, 7, &b, &m);
    size_t params = WIRE_HDR_SIZE + 4 + 4 + strlen(m.u.gen.decode_addr) + 1 + 4 + 4;
    CHECK(decode_fails(&b, params, "\x00\x00\xc0\x7f", 4));      /* temperature NaN */
    CHECK(decode_fails(&b, params + 4, "\x00\x00\x80\x7f", 4));  /* top_p +inf */
    CHECK(decode_fails(&b, params + 40, "\x02", 1));             /* ignore_eos 2 */
    CHECK(decode_fails(&b, params + 41, "\x02", 1));             /* logprobs mode 2 */
    CHECK(!decode_fails(&b, params + 41, "\x01", 1));            /* processed logprobs */
    CHECK(decode_fails(&b, params + 42, "\x11\x00\x00\x00", 4)); /* 17 stop ids */
    size_t after_stops = params + 46 + 4 * (size_t)m.u.gen.params.n_stop_ids;
    CHECK(decode_fails(&b, after_stops, "\x15", 1));             /* 21 top logprobs */
    CHECK(!decode_fails(&b, after_stops, "\x14", 1));            /* 20 */
    CHECK(!decode_fails(&b, params, "\x00\x00\x00\x00", 4));     /* temperature 0 is fine */
    wire_buf_free(&b);
    /* a logit bias outside -100..100, or NaN, is refused */
    struct error err;
    m.u.gen.params.n_logit_bias = 1;
    m.u.gen.params.bias_ids[0] = 5;
    m.u.gen.params.bias_values[0] = 100.0f;
    CHECK(wire_encode(&b, &m, &err) == 0);
    size_t bias = after_stops + 1 + 4 + 4;
    CHECK(!decode_fails(&b, bias, "\x00\x00\xc8\xc2", 4));       /* -100 */
    CHECK(decode_fails(&b, bias, "\x00\x00\xca\x42", 4));        /* 101 */
    CHECK(decode_fails(&b, bias, "\x00\x00\xc0\x7f", 4));        /* NaN */
    CHECK(decode_fails(&b, after_stops + 1, "\x2d\x01\x00\x00", 4)); /* 301 biases */
    wire_msg_release(&m);
    wire_buf_free(&b);
}

static void test_encoder_refuses(void)
{
    struct wire_buf b = {0};
    struct error err;
    struct wire_generate g = {0};
    g.params.n_stop_ids = SAMPLE_MAX_STOP_IDS + 1;
    CHECK(wire_encode_generate(&b, 1, &g, &err) == -1);
    CHECK_EQ_INT(b.len, 0);
    g.params.n_stop_ids = 0;
    g.params.logprobs_mode = SAMPLE_LOGPROBS_MODES;
    CHECK(wire_encode_generate(&b, 1, &g, &err) == -1);
    CHECK_EQ_INT(b.len, 0);
    struct wire_error e = {.code = 1};
    memset(e.message, 'x', sizeof e.message); /* no NUL: too long */
    CHECK(wire_encode_error(&b, 1, &e, &err) == -1);
    struct wire_tokens t = {.finish = 9};
    CHECK(wire_encode_tokens(&b, 1, &t, &err) == -1);
    struct wire_msg bogus = {.type = 99};
    CHECK(wire_encode(&b, &bogus, &err) == -1);
    wire_buf_free(&b);
}

/* Random corruption never crashes, and whatever the decoder accepts re-encodes to the same bytes
 * (apart from the ignored reserved word): the decoder accepts only what an encoder could write. */
static void test_mutations(void)
{
    uint64_t s = 12345;
    int accepted = 0, total = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint16_t t = (uint16_t)(1 + ws_mix(&s) % WIRE_TYPE_MAX);
        struct wire_buf b = {0}, re = {0};
        struct wire_msg m, d;
        struct error err;
        encode_sample(t, ws_mix(&s) % 8, &b, &m);
        int flips = 1 + (int)(ws_mix(&s) % 4);
        for (int f = 0; f < flips; f++)
            b.data[ws_mix(&s) % b.len] ^= (uint8_t)(1u << (ws_mix(&s) % 8));
        memset(b.data + 12, 0, 4);
        total++;
        if (wire_decode(b.data, b.len, &d, &err) == 0) {
            accepted++;
            CHECK(wire_encode(&re, &d, &err) == 0);
            CHECK_MSG(re.len == b.len && !memcmp(re.data, b.data, b.len), "%s: accepted bytes do not re-encode",
                      wire_type_name(d.type));
            wire_msg_release(&d);
        }
        wire_msg_release(&m);
        wire_buf_free(&b);
        wire_buf_free(&re);
    }
    fprintf(stderr, "mutations: %d of %d still decoded (and re-encoded identically)\n", accepted, total);
}

/* The KV run header: its bytes, and a decoder that takes exactly 16 of them. */
static void test_kv_run(void)
{
    uint8_t b[WIRE_KV_RUN_SIZE + 1];
    static const uint8_t golden[WIRE_KV_RUN_SIZE] = {3, 0, 0, 0, 0x10, 0x20, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0};
    wire_encode_kv_run(b, &(struct wire_kv_run){3, 0x2010, 7});
    CHECK(memcmp(b, golden, sizeof golden) == 0);
    struct wire_kv_run r;
    CHECK(wire_decode_kv_run(b, WIRE_KV_RUN_SIZE, &r) == 0);
    CHECK(r.layer == 3 && r.dst == 0x2010 && r.count == 7);
    CHECK(wire_decode_kv_run(b, WIRE_KV_RUN_SIZE - 1, &r) < 0 && r.count == 0);
    CHECK(wire_decode_kv_run(b, WIRE_KV_RUN_SIZE + 1, &r) < 0 && r.layer == 0);
    CHECK(wire_decode_kv_run(NULL, 0, &r) < 0);
}

static void test_parse_addr(void)
{
    char host[64];
    uint16_t port = 0;
    struct error err;
    CHECK(ucx_parse_addr("10.0.0.5:7001", host, sizeof host, &port, &err) == 0);
    CHECK_EQ_STR(host, "10.0.0.5");
    CHECK_EQ_INT(port, 7001);
    CHECK(ucx_parse_addr("[::1]:80", host, sizeof host, &port, &err) == 0);
    CHECK_EQ_STR(host, "::1");
    CHECK(ucx_parse_addr("decode-3.local:0", host, sizeof host, &port, &err) == 0 && port == 0);
    const char *bad[] = {"", "host", ":80", "host:", "host:65536", "host:-1", "host:8x", "[]:5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(ucx_parse_addr(bad[i], host, sizeof host, &port, &err) == -1, "'%s' accepted", bad[i]);
    char longhost[100];
    memset(longhost, 'h', sizeof longhost);
    snprintf(longhost + 90, 10, ":1");
    CHECK(ucx_parse_addr(longhost, host, sizeof host, &port, &err) == -1);
}

int main(void)
{
    RUN(test_round_trip_every_type);
    RUN(test_golden_bytes);
    RUN(test_kv_run);
    RUN(test_truncated_and_padded);
    RUN(test_bad_header);
    RUN(test_lying_counts);
    RUN(test_bad_params);
    RUN(test_encoder_refuses);
    RUN(test_mutations);
    RUN(test_parse_addr);
    return check_report();
}
