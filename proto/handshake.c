/* handshake.c — encoder, decoder and MAC of the cluster handshake frames (handshake.h). */
#include "proto/handshake.h"

#include <string.h>

#include "common/util/sha256.h"

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

const char *hs_type_name(uint16_t type)
{
    switch (type) {
    case HS_HELLO: return "HELLO";
    case HS_CHALLENGE: return "CHALLENGE";
    case HS_AUTH: return "AUTH";
    case HS_WELCOME: return "WELCOME";
    case HS_REFUSE: return "REFUSE";
    default: return "unknown";
    }
}

/* The payload lengths a type may have: [min, max]. */
static int payload_range(uint16_t type, uint32_t *min, uint32_t *max)
{
    switch (type) {
    case HS_HELLO:
    case HS_CHALLENGE: *min = *max = HS_NONCE_LEN; return 0;
    case HS_AUTH:
    case HS_WELCOME: *min = HS_MAC_LEN + 8 + 4 + 1, *max = HS_MAC_LEN + 8 + 4 + HS_ADDR_MAX; return 0;
    case HS_REFUSE: *min = 4 + 1, *max = 4 + HS_REASON_MAX - 1; return 0;
    default: return -1;
    }
}

int hs_frame_size(const uint8_t *hdr, size_t *size, struct error *err)
{
    uint32_t magic = (uint32_t)get_le(hdr, 4), len = (uint32_t)get_le(hdr + 8, 4), min, max;
    uint16_t version = (uint16_t)get_le(hdr + 4, 2), type = (uint16_t)get_le(hdr + 6, 2);
    if (magic != HS_MAGIC)
        return error_set(err, "not a pdserve handshake (magic %08x)", magic);
    if (version != HS_VERSION)
        return error_set(err, "handshake version %u, this build speaks %u (upgrade every daemon together)",
                         version, HS_VERSION);
    if (payload_range(type, &min, &max))
        return error_set(err, "unknown handshake message type %u", type);
    if (len < min || len > max)
        return error_set(err, "%s with a %u-byte payload (expected %u..%u)", hs_type_name(type), len, min, max);
    *size = HS_HDR_SIZE + (size_t)len;
    return 0;
}

static size_t payload_len(const struct hs_msg *m)
{
    switch (m->type) {
    case HS_HELLO:
    case HS_CHALLENGE: return HS_NONCE_LEN;
    case HS_AUTH:
    case HS_WELCOME: return HS_MAC_LEN + 8 + 4 + m->addr_len;
    default: return 4 + strnlen(m->reason, HS_REASON_MAX - 1);
    }
}

int hs_encode(const struct hs_msg *m, uint8_t *out, size_t cap, size_t *len, struct error *err)
{
    uint32_t min, max;
    if (payload_range(m->type, &min, &max))
        return error_set(err, "handshake: cannot encode type %u", m->type);
    size_t n = payload_len(m);
    if (n < min || n > max || HS_HDR_SIZE + n > cap)
        return error_set(err, "handshake: %s of %zu bytes does not fit", hs_type_name(m->type), n);
    put_le(out, HS_MAGIC, 4);
    put_le(out + 4, HS_VERSION, 2);
    put_le(out + 6, m->type, 2);
    put_le(out + 8, n, 4);
    uint8_t *p = out + HS_HDR_SIZE;
    if (m->type == HS_HELLO || m->type == HS_CHALLENGE) {
        memcpy(p, m->nonce, HS_NONCE_LEN);
    } else if (m->type == HS_REFUSE) {
        put_le(p, n - 4, 4);
        memcpy(p + 4, m->reason, n - 4);
    } else {
        memcpy(p, m->mac, HS_MAC_LEN);
        put_le(p + HS_MAC_LEN, m->token, 8);
        put_le(p + HS_MAC_LEN + 8, m->addr_len, 4);
        memcpy(p + HS_MAC_LEN + 12, m->addr, m->addr_len);
    }
    *len = HS_HDR_SIZE + n;
    return 0;
}

static int decode_payload(const uint8_t *p, size_t n, struct hs_msg *m, struct error *err)
{
    if (m->type == HS_HELLO || m->type == HS_CHALLENGE) {
        memcpy(m->nonce, p, HS_NONCE_LEN);
        return 0;
    }
    if (m->type == HS_REFUSE) {
        uint32_t k = (uint32_t)get_le(p, 4);
        if (k != n - 4 || memchr(p + 4, 0, k))
            return error_set(err, "REFUSE: reason of %u bytes in a %zu-byte payload, or with a NUL", k, n);
        memcpy(m->reason, p + 4, k);
        m->reason[k] = '\0';
        return 0;
    }
    memcpy(m->mac, p, HS_MAC_LEN);
    m->token = get_le(p + HS_MAC_LEN, 8);
    m->addr_len = (uint32_t)get_le(p + HS_MAC_LEN + 8, 4);
    if (m->addr_len != n - HS_MAC_LEN - 12)
        return error_set(err, "%s: address of %u bytes in a %zu-byte payload", hs_type_name(m->type), m->addr_len, n);
    memcpy(m->addr, p + HS_MAC_LEN + 12, m->addr_len);
    return 0;
}

int hs_decode(const uint8_t *buf, size_t len, struct hs_msg *m, struct error *err)
{
    size_t size;
    if (len < HS_HDR_SIZE)
        return error_set(err, "handshake frame of %zu bytes is shorter than its header", len);
    if (hs_frame_size(buf, &size, err))
        return -1;
    if (size != len)
        return error_set(err, "handshake frame of %zu bytes, its header says %zu", len, size);
    m->type = (uint16_t)get_le(buf + 6, 2);
    return decode_payload(buf + HS_HDR_SIZE, len - HS_HDR_SIZE, m, err);
}

void hs_mac(const uint8_t *key, size_t key_len, int server, const uint8_t *nonce_c, const uint8_t *nonce_s,
            uint64_t token, const uint8_t *addr, uint32_t addr_len, uint8_t out[HS_MAC_LEN])
{
    static const char client_label[] = "pdserve-hs1 client", server_label[] = "pdserve-hs1 server";
    uint8_t tok[8];
    put_le(tok, token, 8);
    struct hmac_sha256 h;
    hmac_sha256_init(&h, key, key_len);
    hmac_sha256_update(&h, server ? server_label : client_label, sizeof client_label - 1);
    hmac_sha256_update(&h, nonce_c, HS_NONCE_LEN);
    hmac_sha256_update(&h, nonce_s, HS_NONCE_LEN);
    hmac_sha256_update(&h, tok, sizeof tok);
    hmac_sha256_update(&h, addr, addr_len);
    hmac_sha256_final(&h, out);
}
