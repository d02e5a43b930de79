/* test_sha256.c — SHA-256 against FIPS 180-4's examples, HMAC-SHA256 against RFC 4231, the
 * constant-time compare, and the handshake frames (proto/handshake.h): every type round-trips, and
 * truncations, bad header fields, wrong lengths and lying address counts are refused. */
#include <stdlib.h>

#include "common/util/sha256.h"
#include "proto/handshake.h"
#include "tests/helpers/check.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const void *data, size_t n, const char *want)
{
    struct sha256 s;
    uint8_t out[SHA256_LEN];
    char h[65];
    sha256_init(&s);
    sha256_update(&s, data, n);
    sha256_final(&s, out);
    hex(out, sizeof out, h);
    CHECK_EQ_STR(h, want);
}

static void check_hmac(const void *key, size_t klen, const void *data, size_t n, const char *want)
{
    struct hmac_sha256 m;
    uint8_t out[SHA256_LEN];
    char h[65];
    hmac_sha256_init(&m, key, klen);
    hmac_sha256_update(&m, data, n);
    hmac_sha256_final(&m, out);
    hex(out, sizeof out, h);
    CHECK_EQ_STR(h, want);
}

static void test_vectors(void)
{
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    check_sha(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    uint8_t k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k6, 0xaa, sizeof k6);
    check_hmac(k1, sizeof k1, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    check_hmac(k6, sizeof k6, t6, strlen(t6), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    CHECK(sha256_equal("abcd", "abcd", 4));
    CHECK(!sha256_equal("abcd", "abce", 4));
    CHECK(!sha256_equal("xbcd", "abcd", 4));
}

static size_t encode(const struct hs_msg *m, uint8_t *buf)
{
    size_t len = 0;
    struct error err;
    CHECK_MSG(hs_encode(m, buf, HS_FRAME_MAX, &len, &err) == 0, "encode %s: %s", hs_type_name(m->type), err.msg);
    return len;
}

static void test_roundtrip(void)
{
    static struct hs_msg in[5], out;
    static uint8_t buf[HS_FRAME_MAX];
    struct error err;
    in[0] = (struct hs_msg){.type = HS_HELLO};
    in[1] = (struct hs_msg){.type = HS_CHALLENGE};
    in[2] = (struct hs_msg){.type = HS_AUTH, .token = 0x1122334455667788ull, .addr_len = 300};
    in[3] = (struct hs_msg){.type = HS_WELCOME, .token = 42, .addr_len = HS_ADDR_MAX};
    in[4] = (struct hs_msg){.type = HS_REFUSE};
    snprintf(in[4].reason, sizeof in[4].reason, "wrong key");
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < HS_NONCE_LEN; j++)
            in[i].nonce[j] = in[i].mac[j] = (uint8_t)(i * 31 + j);
        for (uint32_t j = 0; j < in[i].addr_len; j++)
            in[i].addr[j] = (uint8_t)(j * 7);
        size_t len = encode(&in[i], buf);
        memset(&out, 0, sizeof out);
        CHECK_MSG(hs_decode(buf, len, &out, &err) == 0, "%s: %s", hs_type_name(in[i].type), err.msg);
        CHECK_EQ_INT(out.type, in[i].type);
        CHECK(!memcmp(out.nonce, in[i].nonce, HS_NONCE_LEN) || in[i].type > HS_CHALLENGE);
        CHECK_EQ_INT(out.addr_len, in[i].addr_len);
        CHECK(!memcmp(out.addr, in[i].addr, in[i].addr_len));
        CHECK(out.token == in[i].token);
        CHECK_EQ_STR(out.reason, in[i].reason);
        for (size_t cut = 0; cut < len; cut += 1 + cut / 8) /* every truncation is refused */
            CHECK_MSG(hs_decode(buf, cut, &out, &err) < 0, "%s cut to %zu accepted", hs_type_name(in[i].type), cut);
    }
}

static void test_rejects(void)
{
    static struct hs_msg m = {.type = HS_AUTH, .addr_len = 10}, out;
    static uint8_t buf[HS_FRAME_MAX];
    struct error err;
    size_t len = encode(&m, buf), size;
    CHECK(hs_frame_size(buf, &size, &err) == 0 && size == len);
    buf[0] ^= 1; /* magic */
    CHECK(hs_frame_size(buf, &size, &err) < 0);
    buf[0] ^= 1;
    buf[4] = 2; /* version */
    CHECK(hs_frame_size(buf, &size, &err) < 0);
    buf[4] = 1;
    buf[6] = 9; /* type */
    CHECK(hs_frame_size(buf, &size, &err) < 0);
    buf[6] = HS_AUTH;
    buf[11] = 0x40; /* a 1 GiB payload */
    CHECK(hs_frame_size(buf, &size, &err) < 0);
    buf[11] = 0;
    buf[12 + HS_MAC_LEN + 8] = 11; /* the address count lies */
    CHECK(hs_decode(buf, len, &out, &err) < 0);
    buf[12 + HS_MAC_LEN + 8] = 10;
    CHECK(hs_decode(buf, len, &out, &err) == 0);
    struct hs_msg r = {.type = HS_REFUSE};
    snprintf(r.reason, sizeof r.reason, "abc");
    len = encode(&r, buf);
    buf[len - 2] = 0; /* a NUL inside the reason */
    CHECK(hs_decode(buf, len, &out, &err) < 0);
    struct hs_msg empty = {.type = HS_AUTH}; /* no address: nothing to connect to */
    CHECK(hs_encode(&empty, buf, sizeof buf, &len, &err) < 0);
}

static void test_mac(void)
{
    uint8_t nc[HS_NONCE_LEN] = {1}, ns[HS_NONCE_LEN] = {2}, a[HS_MAC_LEN], b[HS_MAC_LEN];
    const uint8_t addr[4] = {9, 9, 9, 9};
    hs_mac((const uint8_t *)"key-one-0123456789", 18, 0, nc, ns, 5, addr, 4, a);
    hs_mac((const uint8_t *)"key-one-0123456789", 18, 0, nc, ns, 5, addr, 4, b);
    CHECK(sha256_equal(a, b, HS_MAC_LEN));
    hs_mac((const uint8_t *)"key-one-0123456789", 18, 1, nc, ns, 5, addr, 4, b); /* the other side's label */
    CHECK(!sha256_equal(a, b, HS_MAC_LEN));
    ns[0] = 3; /* a new server nonce: a replayed AUTH does not match */
    hs_mac((const uint8_t *)"key-one-0123456789", 18, 0, nc, ns, 5, addr, 4, b);
    CHECK(!sha256_equal(a, b, HS_MAC_LEN));
}

int main(void)
{
    test_vectors();
    test_roundtrip();
    test_rejects();
    test_mac();
    return check_report();
}
