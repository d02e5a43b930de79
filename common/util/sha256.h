/* sha256.h — SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained so the cluster
 * handshake (proto/handshake.h) needs no crypto library; a constant-time compare for MACs.
 * Tested against the FIPS 180-4 and RFC 4231 vectors (tests/unit/test_sha256.c). */
#ifndef PD_SHA256_H
#define PD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256 {
    uint32_t h[8];
    uint64_t total;           /* bytes hashed so far */
    uint8_t buf[SHA256_BLOCK];
    size_t used;              /* bytes waiting in buf */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);

/* HMAC over several pieces: the message is their concatenation. */
struct hmac_sha256 {
    struct sha256 inner;
    uint8_t okey[SHA256_BLOCK]; /* key ^ opad, for the outer hash */
};
void hmac_sha256_init(struct hmac_sha256 *h, const void *key, size_t key_len);
void hmac_sha256_update(struct hmac_sha256 *h, const void *data, size_t len);
void hmac_sha256_final(struct hmac_sha256 *h, uint8_t out[SHA256_LEN]);

/* 1 when a[n] == b[n]; the time taken does not depend on where they differ. */
int sha256_equal(const void *a, const void *b, size_t n);

#endif
