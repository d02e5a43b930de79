/* wire.h — the pdserve wire protocol: every control message between pdserve processes, one encoder
 * and one bounds-checked decoder per message type. Nothing else in the project reads or writes
 * these bytes.
 *
 * A message is a fixed 24-byte header followed by a payload, all little-endian, packed field by
 * field (never a memcpy of a C struct, so the layout does not depend on the compiler):
 *
 *   offset 0  u32 magic    WIRE_MAGIC ("PDSW")
 *          4  u16 version  WIRE_VERSION; a receiver rejects any other version
 *          6  u16 type     enum wire_type
 *          8  u32 length   payload bytes after the header; must equal the received size - 24
 *         12  u32 reserved 0 (a sender writes 0; a receiver ignores it)
 *         16  u64 req_id   request the message is about (0 for REGISTER, LOAD and ROLE)
 *
 * Payload layouts are documented at each struct below and in docs/transport.md. Arrays travel as a
 * u32 count then the elements; strings as a u32 byte count then the bytes (no NUL). A decoder
 * rejects a message whose counts do not add up to exactly the payload length, whose counts exceed
 * the limits below, or whose enums or floats are out of range; it never reads outside the buffer.
 *
 * Decoded messages own their arrays (heap); release them with wire_msg_release(). */
#ifndef PD_WIRE_H
#define PD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"
#include "common/engine/finish.h"
#include "common/engine/sample.h"

#define WIRE_MAGIC 0x57534450u /* "PDSW" read as little-endian bytes */
#define WIRE_VERSION 9 /* 2: LOAD carries the draining flag; 3: sampling params carry the logprobs mode;
                          4: prefix caching (REGISTER's salt, LOAD's cache events and counters,
                          KV_RESERVE's prompt, KV_GRANT's cached blocks, TOKENS' cached tokens);
                          5: REGISTER carries the KV dtype and weights;
                          6: sampling params carry top_logprobs and logit_bias, TOKENS the
                          alternatives; KV_STATS; PROMPT_LOGPROBS; GENERATE and KV_DONE
                          carry a structured-output schema;
                          7: ROLE; REGISTER says whether the role is pinned;
                          8: GENERATE and KV_DONE carry the TPOT SLO, LOAD the steps it shortened;
                          9: GENERATE carries the TTFT SLO) */
#define WIRE_HDR_SIZE 24

/* Limits a decoder enforces before it allocates anything. */
#define WIRE_MAX_PAYLOAD (64u << 20) /* whole payload */
#define WIRE_MAX_TOKENS (1u << 22)   /* prompt or token arrays */
#define WIRE_MAX_BLOCKS (1u << 22)   /* KV block id arrays */
#define WIRE_MAX_RKEY 4096           /* packed UCX rkey bytes */
#define WIRE_ADDR_MAX 128            /* "host:port", incl. NUL */
#define WIRE_NAME_MAX 128            /* model name, incl. NUL */
#define WIRE_ERRMSG_MAX 1024         /* ERROR text, incl. NUL */
#define WIRE_MAX_CONSTRAINT (256u << 10) /* a structured-output schema's JSON text */
#define WIRE_MAX_PREFIX_KEYS 16384   /* prefix-cache keys added or evicted in one LOAD */

enum wire_type {
    WIRE_REGISTER = 1,
    WIRE_LOAD = 2,
    WIRE_GENERATE = 3,
    WIRE_KV_RESERVE = 4,
    WIRE_KV_GRANT = 5,
    WIRE_KV_WAIT = 6,
    WIRE_KV_DONE = 7,
    WIRE_KV_ACK = 8,
    WIRE_TOKENS = 9,
    WIRE_ABORT = 10,
    WIRE_ERROR = 11,
    WIRE_KV_STATS = 12,
    WIRE_PROMPT_LOGPROBS = 13,
    WIRE_ROLE = 14,
    WIRE_TYPE_MAX = 14,
};

enum wire_role { WIRE_ROLE_FRONTEND = 1, WIRE_ROLE_PREFILL = 2, WIRE_ROLE_DECODE = 3, WIRE_ROLE_COLOCATED = 4 };


struct wire_hdr {
    uint16_t version;
    uint16_t type;
    uint32_t length;
    uint64_t req_id;
};

/* A decode worker's KV pool as the prefill side needs it to write into it (see kv_xfer.h). */
struct wire_pool {
    uint64_t base;        /* remote virtual address of layer 0, block 0 */
    uint32_t n_layers;
    uint32_t n_blocks;    /* per layer */
    uint64_t block_bytes; /* one block of one layer, K then V */
    uint32_t rkey_len;    /* 0: no remote key (no pool, or the owner does no RMA: send blocks as messages) */
    uint8_t *rkey;        /* rkey_len bytes from ucp_rkey_pack; owned by the message */
};

/* REGISTER: u8 role, u32 worker_id, u32 max_batch, u32 block_size, u32 total_blocks,
 * str listen_addr, str model, u64 pool.base, u32 n_layers, u32 n_blocks, u64 block_bytes,
 * u32 rkey_len, rkey bytes, u64 prefix_salt, u8 kv_dtype, u8 weights, u8 pinned. Sent by a worker to the
 * frontend, and by a decode worker to each prefill worker that connects to it, which refuses a decode
 * worker whose KV dtype or weights differ from its own (the KV bytes it sends would be misread, or the
 * tokens would differ from a colocated run). */
struct wire_register {
    uint8_t role; /* enum wire_role */
    uint32_t worker_id;
    uint32_t max_batch;    /* sequences it runs at once */
    uint32_t block_size;   /* tokens per KV block */
    uint32_t total_blocks; /* KV blocks in its pool */
    char listen_addr[WIRE_ADDR_MAX]; /* where peers connect to it, "host:port"; "" if it does not listen */
    char model[WIRE_NAME_MAX];
    struct wire_pool pool;
    uint64_t prefix_salt; /* the key its prefix cache chains from (kvcache.h); 0: no prefix cache */
    uint8_t kv_dtype; /* enum kn_dtype of the KV cache: 0 f32, 1 f16, 2 bf16 */
    uint8_t weights;  /* enum model_weights: 0 as stored, 1 q8 */
    uint8_t pinned;   /* 1: its role is the operator's (--pin-role); the frontend never switches it */
};

/* LOAD: six u32 in this order, u8 draining, then the prefix cache: u8 keys_reset, u32 n_added,
 * u64 added[n_added], u32 n_evicted, u64 evicted[n_evicted], u64 query_tokens, u64 hit_tokens,
 * u64 kv_bytes_sent, u64 kv_bytes_saved, u64 preemptions, u64 slo_steps, u64 step
 * buckets[WIRE_STEP_BUCKETS], u64 steps, f64 step seconds. A worker's periodic report to the frontend. */
/* A worker's engine steps since it started: how many took at most each of wire_step_bounds seconds
 * (per bucket, not cumulative; the rest took longer), all of them, and their total time. */
#define WIRE_STEP_BUCKETS 12
extern const double wire_step_bounds[WIRE_STEP_BUCKETS];
struct wire_steps {
    uint64_t bucket[WIRE_STEP_BUCKETS];
    uint64_t count;
    double sum_s;
};

struct wire_load {
    uint32_t worker_id;
    uint32_t queued_requests;
    uint32_t queued_tokens; /* prompt tokens waiting for prefill */
    uint32_t running;       /* sequences in the running batch */
    uint32_t free_blocks;
    uint32_t total_blocks;
    uint8_t draining; /* 1 after SIGTERM: route nothing new here (what was routed is still served) */
    /* Prefix-cache keys cached and evicted since the last LOAD (owned by the message); keys_reset:
     * forget every key known for this worker first (it lost track, or restarted). */
    uint8_t keys_reset;
    uint32_t n_added, n_evicted;
    uint64_t *added, *evicted;
    uint64_t query_tokens, hit_tokens;   /* prompt tokens looked up in its cache, and found */
    uint64_t kv_bytes_sent, kv_bytes_saved; /* KV pushed to decode workers, and not pushed: they had it */
    uint64_t preemptions; /* sequences that gave their KV blocks up, to be computed again later */
    uint64_t slo_steps;   /* steps that computed fewer prompt tokens so decoding sequences kept their TPOT SLO */
    struct wire_steps steps;
};

/* GENERATE: u32 decode_worker_id, str decode_addr, u8 flags, u32 tpot_slo_ms, u32 ttft_slo_ms, sampling
 * params (see wire.c), u32 n_prompt, i32 prompt[n_prompt]. Frontend → prefill (or colocated) worker. */
#define WIRE_GEN_LOGPROBS 1u /* the client wants a logprob with each token */
struct wire_generate {
    uint32_t decode_worker_id;
    char decode_addr[WIRE_ADDR_MAX]; /* "" for a colocated worker */
    uint8_t flags;
    uint32_t tpot_slo_ms; /* the request's TPOT SLO (0: none): a decode step that runs it stays within it */
    uint32_t ttft_slo_ms; /* its TTFT SLO (0: none): a colocated worker does not hold its prompt back past it */
    struct sample_params params;
    uint32_t n_prompt;
    int32_t *prompt; /* owned by the message */
    char *constraint; /* structured output: the JSON Schema the answer follows, or NULL; owned */
};

/* KV_RESERVE: u32 n_tokens, u32 prefill_worker_id, u32 n_prompt, i32 prompt[n_prompt]. Prefill →
 * decode: room for this many tokens; the prompt (or none) lets the decode worker find what of it its
 * prefix cache holds already. */
struct wire_kv_reserve {
    uint32_t n_tokens;
    uint32_t prefill_worker_id;
    uint32_t n_prompt;
    int32_t *prompt; /* owned by the message; NULL when n_prompt is 0 */
};

/* KV_GRANT: u32 n_blocks, u32 blocks[n_blocks], u32 n_cached. Decode → prefill: write the KV here,
 * but for the first n_cached blocks, which already hold the prompt's KV (prefix cache). */
struct wire_kv_grant {
    uint32_t n_blocks;
    uint32_t *blocks; /* owned by the message */
    uint32_t n_cached;
};

/* KV_WAIT: u32 queue_position. Decode → prefill: no room yet; a KV_GRANT follows later. */
struct wire_kv_wait {
    uint32_t queue_position;
};

/* KV_DONE: i32 first_token, f32 first_logprob, u64 rng[4], u8 flags, u32 tpot_slo_ms, sampling params,
 * u32 n_prompt, i32 prompt[n_prompt]. Prefill → decode, sent only after the KV puts were flushed. */
struct wire_kv_done {
    int32_t first_token;
    float first_logprob;
    struct rng rng; /* sampler state after the first token was drawn */
    uint8_t flags;  /* WIRE_GEN_* from the GENERATE */
    uint32_t tpot_slo_ms; /* the GENERATE's */
    struct sample_params params;
    uint32_t n_prompt;
    int32_t *prompt; /* owned by the message */
    char *constraint; /* the GENERATE's; the decode worker's matcher starts after the first token */
};

/* KV_ACK: empty. Decode → prefill: the sequence is admitted; the prefill may free its blocks. */

/* TOKENS: u8 finish, u8 has_logprobs, u32 n, i32 tokens[n], then f32 logprobs[n] if has_logprobs,
 * u32 cached_tokens, u8 n_top, then n × n_top (i32 id, f32 logprob): each token's most likely
 * alternatives, best first (n_top is 0 without logprobs). Prefill → frontend (the first token) and
 * decode → frontend (the rest). */
struct wire_tokens {
    uint8_t finish; /* enum finish (finish.h fixes its values) */
    uint8_t has_logprobs;
    uint32_t n;
    int32_t *tokens;  /* owned by the message */
    float *logprobs;  /* n floats or NULL; owned by the message */
    uint32_t cached_tokens; /* in a sequence's first TOKENS: prompt tokens its prefix cache held */
    uint8_t n_top;          /* alternatives a token; a token with fewer has id -1 in the rest */
    int32_t *top_ids;       /* n × n_top or NULL; owned by the message */
    float *top_logprobs;    /* n × n_top or NULL; owned by the message */
};

/* One token's slice of a TOKENS message's alternatives. */
struct wire_alts {
    int n;
    const int32_t *ids;
    const float *logprobs;
};

/* Writes t's alternatives to k slots of ids/logprobs, padding with id -1 (logprob 0) when t has
 * fewer than k. */
void wire_tokens_fill_top(int32_t *ids, float *logprobs, int k, const struct sample_top *t);

/* ABORT: empty. */

/* ERROR: u32 code, str message. */
enum wire_error_code {
    WIRE_ERR_INTERNAL = 1,
    WIRE_ERR_BAD_REQUEST = 2, /* e.g. prompt longer than the model's context */
    WIRE_ERR_OVERLOADED = 3,
    WIRE_ERR_PEER_LOST = 4,   /* a worker the request depended on went away */
    WIRE_ERR_PROTOCOL = 5,    /* a message that should not arrive in this state */
};
struct wire_error {
    uint32_t code;
    char message[WIRE_ERRMSG_MAX];
};

/* ROLE: u8 role, str why. The frontend asks a worker to take another role (prefill, decode or
 * colocated): it drains, switches and registers again; `why` is logged on both sides. */
struct wire_role_switch {
    uint8_t role; /* enum wire_role, not FRONTEND */
    char why[WIRE_ERRMSG_MAX];
};

/* KV_STATS: u64 bytes, u32 blocks, f32 seconds, f32 exposed_seconds. Prefill → frontend once a
 * request's KV is handed over (KV_DONE sent): what its transfer cost. */
struct wire_kv_stats {
    uint64_t bytes;        /* pushed to the decode worker (blocks its prefix cache held are not) */
    uint32_t blocks;
    float seconds;         /* from the first put to the flush that completed them */
    float exposed_seconds; /* from the end of the forward pass to that flush: what compute did not hide */
};

/* PROMPT_LOGPROBS: u32 n, f32 logprobs[n], u8 n_top, then n × n_top (i32 id, f32 logprob). The worker
 * that computed the prompt → frontend, before the first TOKENS, for a request whose sampling params
 * ask for prompt_logprobs (echo): each prompt token's logprob given those before it (entry 0 is not
 * scored: 0) and its alternatives, padded as TOKENS' are. */
struct wire_prompt_logprobs {
    uint32_t n;
    float *logprobs; /* owned by the message */
    uint8_t n_top;
    int32_t *top_ids;    /* n × n_top or NULL; owned */
    float *top_logprobs; /* n × n_top or NULL; owned */
};

/* A KV run: the header of a run of KV blocks sent as a message rather than put (kv_xfer.h). It is
 * the Active Message header, the blocks themselves the message data: 16 bytes, u32 layer, u32 dst
 * (the first block), u32 count, u32 reserved 0. */
#define WIRE_KV_RUN_SIZE 16
struct wire_kv_run {
    uint32_t layer, dst, count;
};

/* A message: header fields plus the payload of its type. */
struct wire_msg {
    uint16_t type;
    uint64_t req_id;
    union {
        struct wire_register reg;
        struct wire_load load;
        struct wire_generate gen;
        struct wire_kv_reserve reserve;
        struct wire_kv_grant grant;
        struct wire_kv_wait wait;
        struct wire_kv_done done;
        struct wire_kv_stats stats;
        struct wire_prompt_logprobs prompt_lp;
        struct wire_tokens tokens;
        struct wire_error error;
        struct wire_role_switch role;
    } u;
};

/* A growable byte buffer an encoder appends to; the caller owns data (free with wire_buf_free). */
struct wire_buf {
    uint8_t *data;
    size_t len, cap;
};
void wire_buf_free(struct wire_buf *b);

/* Encoders: append one whole message (header + payload) to b. Return 0, or -1 with err set when a
 * field is out of range (an array above its limit, a string too long) or memory runs out. */
int wire_encode_register(struct wire_buf *b, const struct wire_register *m, struct error *err);
int wire_encode_load(struct wire_buf *b, const struct wire_load *m, struct error *err);
int wire_encode_generate(struct wire_buf *b, uint64_t req_id, const struct wire_generate *m, struct error *err);
int wire_encode_kv_reserve(struct wire_buf *b, uint64_t req_id, const struct wire_kv_reserve *m, struct error *err);
int wire_encode_kv_grant(struct wire_buf *b, uint64_t req_id, const struct wire_kv_grant *m, struct error *err);
int wire_encode_kv_wait(struct wire_buf *b, uint64_t req_id, const struct wire_kv_wait *m, struct error *err);
int wire_encode_kv_done(struct wire_buf *b, uint64_t req_id, const struct wire_kv_done *m, struct error *err);
int wire_encode_kv_ack(struct wire_buf *b, uint64_t req_id, struct error *err);
int wire_encode_tokens(struct wire_buf *b, uint64_t req_id, const struct wire_tokens *m, struct error *err);
int wire_encode_abort(struct wire_buf *b, uint64_t req_id, struct error *err);
int wire_encode_error(struct wire_buf *b, uint64_t req_id, const struct wire_error *m, struct error *err);
int wire_encode_role(struct wire_buf *b, const struct wire_role_switch *m, struct error *err);
int wire_encode_prompt_logprobs(struct wire_buf *b, uint64_t req_id, const struct wire_prompt_logprobs *m,
                                struct error *err);
int wire_encode_kv_stats(struct wire_buf *b, uint64_t req_id, const struct wire_kv_stats *m, struct error *err);
/* Dispatches on m->type to the encoder above. */
int wire_encode(struct wire_buf *b, const struct wire_msg *m, struct error *err);

/* Writes a KV run header; it never fails. */
void wire_encode_kv_run(uint8_t out[WIRE_KV_RUN_SIZE], const struct wire_kv_run *r);
/* Reads one from `len` received bytes: -1 when len is not WIRE_KV_RUN_SIZE (*out is then zeroed).
 * The reserved field is ignored; whether the run fits a pool is the receiver's check (kv_xfer.c). */
int wire_decode_kv_run(const void *buf, size_t len, struct wire_kv_run *out);

/* Parses and checks the 24-byte header of a received message of `len` bytes: magic, version, known
 * type, and length == len - 24. Returns 0 or -1 with err saying what was wrong. */
int wire_decode_hdr(const void *buf, size_t len, struct wire_hdr *out, struct error *err);

/* Payload decoders: parse `len` payload bytes into *out. On success the caller owns out's arrays
 * (wire_msg_release on the enclosing message, or free() them); on failure nothing is left allocated. */
int wire_decode_register(const uint8_t *p, size_t len, struct wire_register *out, struct error *err);
int wire_decode_load(const uint8_t *p, size_t len, struct wire_load *out, struct error *err);
int wire_decode_generate(const uint8_t *p, size_t len, struct wire_generate *out, struct error *err);
int wire_decode_kv_reserve(const uint8_t *p, size_t len, struct wire_kv_reserve *out, struct error *err);
int wire_decode_kv_grant(const uint8_t *p, size_t len, struct wire_kv_grant *out, struct error *err);
int wire_decode_kv_wait(const uint8_t *p, size_t len, struct wire_kv_wait *out, struct error *err);
int wire_decode_kv_done(const uint8_t *p, size_t len, struct wire_kv_done *out, struct error *err);
int wire_decode_empty(const uint8_t *p, size_t len, struct error *err); /* KV_ACK, ABORT */
int wire_decode_tokens(const uint8_t *p, size_t len, struct wire_tokens *out, struct error *err);
int wire_decode_error(const uint8_t *p, size_t len, struct wire_error *out, struct error *err);
int wire_decode_role(const uint8_t *p, size_t len, struct wire_role_switch *out, struct error *err);
int wire_decode_prompt_logprobs(const uint8_t *p, size_t len, struct wire_prompt_logprobs *out, struct error *err);
int wire_decode_kv_stats(const uint8_t *p, size_t len, struct wire_kv_stats *out, struct error *err);

/* Decodes a whole received message (header, then the payload decoder of its type) into *out, which
 * the caller releases with wire_msg_release. Returns 0 or -1 with err set; *out is then empty. */
int wire_decode(const void *buf, size_t len, struct wire_msg *out, struct error *err);

/* Frees the arrays a decoded message owns and zeroes it. Safe on a zeroed message. */
void wire_msg_release(struct wire_msg *m);

/* "REGISTER", "TOKENS", ... or "UNKNOWN". */
const char *wire_type_name(unsigned type);
/* "prefill", "decode", "colocated" (or "frontend"; "unknown" for anything else). */
const char *wire_role_name(unsigned role);

#endif
