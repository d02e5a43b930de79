/* handshake.h — the cluster handshake: the only bytes a pdserve daemon reads from a peer it has not
 * authenticated. It runs on pdserve's own control TCP connection (proto/ucx_ctl.c) before any UCX
 * endpoint exists; one encoder and one bounds-checked decoder, like wire.h.
 *
 * A frame is a 12-byte header and a payload, little-endian, field by field:
 *
 *   offset 0  u32 magic    HS_MAGIC ("PDSH")
 *          4  u16 version  HS_VERSION; any other is refused
 *          6  u16 type     enum hs_type
 *          8  u32 length   payload bytes; must be exactly what the type needs (hs_frame_size checks
 *                          it from the header alone, before the payload is read)
 *
 *   HELLO     (client → server)  nonce[32]
 *   CHALLENGE (server → client)  nonce[32]
 *   AUTH      (client → server)  mac[32], u64 token, u32 n, n bytes of UCX worker address (1..HS_ADDR_MAX)
 *   WELCOME   (server → client)  mac[32], u64 token, u32 n, n bytes of UCX worker address
 *   REFUSE    (server → client)  u32 n, n bytes of reason (1..HS_REASON_MAX-1, no NUL)
 *
 * mac = HMAC-SHA256(cluster key, label || client nonce || server nonce || u64 token || address), the
 * label "pdserve-hs1 client" for AUTH and "pdserve-hs1 server" for WELCOME. Fresh nonces on both
 * sides make a recorded AUTH or WELCOME useless on another connection; covering the token and the
 * address means a relay cannot swap in an endpoint of its own. The token is what the sender wants
 * in the header of every UCX message sent to it (ucx_am.c). */
#ifndef PD_HANDSHAKE_H
#define PD_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"

#define HS_MAGIC 0x48534450u /* "PDSH" read as little-endian bytes */
#define HS_VERSION 1
#define HS_HDR_SIZE 12
#define HS_NONCE_LEN 32
#define HS_MAC_LEN 32
#define HS_ADDR_MAX 8192 /* UCX worker address bytes (tcp + shm on two interfaces: ~300) */
#define HS_REASON_MAX 128
#define HS_FRAME_MAX (HS_HDR_SIZE + HS_MAC_LEN + 8 + 4 + HS_ADDR_MAX)

enum hs_type { HS_HELLO = 1, HS_CHALLENGE = 2, HS_AUTH = 3, HS_WELCOME = 4, HS_REFUSE = 5 };

struct hs_msg {
    uint16_t type;
    uint8_t nonce[HS_NONCE_LEN]; /* HELLO, CHALLENGE */
    uint8_t mac[HS_MAC_LEN];     /* AUTH, WELCOME */
    uint64_t token;              /* AUTH, WELCOME */
    uint32_t addr_len;           /* AUTH, WELCOME */
    uint8_t addr[HS_ADDR_MAX];
    char reason[HS_REASON_MAX];  /* REFUSE, NUL-terminated */
};

/* From the first HS_HDR_SIZE bytes: the whole frame's size, or -1 (bad magic, version, type, or a
 * length that type cannot have) — a reader calls it before buffering the payload. */
int hs_frame_size(const uint8_t *hdr, size_t *size, struct error *err);

/* Encodes m into out[cap] (HS_FRAME_MAX always suffices); *len is the frame size. */
int hs_encode(const struct hs_msg *m, uint8_t *out, size_t cap, size_t *len, struct error *err);

/* Decodes exactly one whole frame of len bytes into m. */
int hs_decode(const uint8_t *buf, size_t len, struct hs_msg *m, struct error *err);

/* The MAC of an AUTH (server = 0) or WELCOME (server = 1), see above. */
void hs_mac(const uint8_t *key, size_t key_len, int server, const uint8_t *nonce_c, const uint8_t *nonce_s,
            uint64_t token, const uint8_t *addr, uint32_t addr_len, uint8_t out[HS_MAC_LEN]);

const char *hs_type_name(uint16_t type);

#endif
