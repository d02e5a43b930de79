/* wire.c — encoders and bounds-checked decoders for every pdserve message (layouts in wire.h).
 *
 * Writing goes through put_* helpers that append little-endian fields to a wire_buf; reading goes
 * through a `struct rd` cursor whose get_* helpers fail (and stay failed) instead of reading past the
 * end, so a decoder is a straight list of fields followed by one "did it all fit, exactly" check. */
#include "proto/wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(FINISH_NONE == 0 && FINISH_STOP == 1 && FINISH_LENGTH == 2 && FINISH_ABORT == 3 &&
                   FINISH_ERROR == 4 && FINISH_COUNT == 5,
               "TOKENS carries enum finish as a u8: its values are part of the wire format");

const double wire_step_bounds[WIRE_STEP_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,   0.25,   0.5,   1.0,  2.5,   5.0};

/* ---- writing ---- */

void wire_buf_free(struct wire_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(struct wire_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* The writer remembers an allocation failure in `oom` so each encoder checks once at the end. */
struct wr {
    struct wire_buf *b;
    size_t start; /* offset of this message's header */
    int oom;
};

static void put_bytes(struct wr *w, const void *p, size_t n)
{
    if (w->oom || buf_reserve(w->b, n)) {
        w->oom = 1;
        return;
    }
    if (n)
        memcpy(w->b->data + w->b->len, p, n);
    w->b->len += n;
}

static void put_uint(struct wr *w, uint64_t v, int bytes)
{
    uint8_t le[8];
    for (int i = 0; i < bytes; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    put_bytes(w, le, (size_t)bytes);
}

static void put_u8(struct wr *w, uint8_t v) { put_uint(w, v, 1); }
static void put_u32(struct wr *w, uint32_t v) { put_uint(w, v, 4); }
static void put_u64(struct wr *w, uint64_t v) { put_uint(w, v, 8); }
static void put_i32(struct wr *w, int32_t v) { put_uint(w, (uint32_t)v, 4); }

static void put_f32(struct wr *w, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(w, bits);
}

static void put_str(struct wr *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put_bytes(w, s, n);
}

static void put_u64s(struct wr *w, const uint64_t *v, uint32_t n)
{
    put_u32(w, n);
    for (uint32_t i = 0; i < n; i++)
        put_u64(w, v[i]);
}

static void put_i32s(struct wr *w, const int32_t *v, uint32_t n)
{
    put_u32(w, n);
    for (uint32_t i = 0; i < n; i++)
        put_i32(w, v[i]);
}

static void begin(struct wr *w, struct wire_buf *b, uint16_t type, uint64_t req_id)
{
    w->b = b;
    w->start = b->len;
    w->oom = 0;
    put_u32(w, WIRE_MAGIC);
    put_uint(w, WIRE_VERSION, 2);
    put_uint(w, type, 2);
    put_u32(w, 0); /* length, patched by finish() */
    put_u32(w, 0);
    put_u64(w, req_id);
}

static int finish(struct wr *w, struct error *err)
{
    if (w->oom)
        return error_set(err, "wire: out of memory encoding a message");
    size_t payload = w->b->len - w->start - WIRE_HDR_SIZE;
    if (payload > WIRE_MAX_PAYLOAD) {
        w->b->len = w->start;
        return error_set(err, "wire: message payload of %zu bytes exceeds the %u-byte limit", payload,
                         WIRE_MAX_PAYLOAD);
    }
    uint8_t *len = w->b->data + w->start + 8;
    for (int i = 0; i < 4; i++)
        len[i] = (uint8_t)(payload >> (8 * i));
    return 0;
}

static int check_str(const char *what, const char *s, size_t max, struct error *err)
{
    if (strnlen(s, max) >= max)
        return error_set(err, "wire: %s is longer than %zu bytes", what, max - 1);
    return 0;
}

/* ---- reading ---- */

struct rd {
    const uint8_t *p;
    size_t len, pos;
    int bad;
};

static int need(struct rd *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static uint64_t get_uint(struct rd *r, int bytes)
{
    if (!need(r, (size_t)bytes))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)bytes;
    return v;
}

static uint8_t get_u8(struct rd *r) { return (uint8_t)get_uint(r, 1); }
static uint32_t get_u32(struct rd *r) { return (uint32_t)get_uint(r, 4); }
static uint64_t get_u64(struct rd *r) { return get_uint(r, 8); }
static int32_t get_i32(struct rd *r) { return (int32_t)get_u32(r); }

static float get_f32(struct rd *r)
{
    uint32_t bits = get_u32(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Copies a string field into dst[max] with a NUL; too long or holding a NUL byte → bad. */
static void get_str(struct rd *r, char *dst, size_t max)
{
    uint32_t n = get_u32(r);
    dst[0] = '\0';
    if (r->bad || n >= max || !need(r, n) || memchr(r->p + r->pos, 0, n)) {
        r->bad = 1;
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    dst[n] = '\0';
    r->pos += n;
}

/* An optional string of at most max bytes: NULL when empty, else a malloc'd copy. */
static char *get_str_alloc(struct rd *r, size_t max)
{
    uint32_t n = get_u32(r);
    if (r->bad || n > max || !need(r, n) || memchr(r->p + r->pos, 0, n)) {
        r->bad = 1;
        return NULL;
    }
    char *s = n ? malloc(n + 1) : NULL;
    if (n && !s) {
        r->bad = 1;
        return NULL;
    }
    if (s) {
        memcpy(s, r->p + r->pos, n);
        s[n] = '\0';
    }
    r->pos += n;
    return s;
}

/* Reads a count and checks that count * elem_size bytes remain before anything is allocated. */
static uint32_t get_count(struct rd *r, uint32_t max, size_t elem_size)
{
    uint32_t n = get_u32(r);
    if (r->bad || n > max || (r->len - r->pos) / elem_size < n) {
        r->bad = 1;
        return 0;
    }
    return n;
}

static uint64_t *get_u64s(struct rd *r, uint32_t *count, uint32_t max)
{
    uint32_t n = get_count(r, max, 8);
    *count = n;
    if (r->bad)
        return NULL;
    uint64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        v[i] = get_u64(r);
    return v;
}

static int32_t *get_i32s(struct rd *r, uint32_t *count, uint32_t max)
{
    uint32_t n = get_count(r, max, 4);
    *count = n;
    if (r->bad)
        return NULL;
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        v[i] = get_i32(r);
    return v;
}

/* The decoder's closing check: every field fit and nothing is left over. */
static int rd_done(struct rd *r, const char *what, struct error *err)
{
    if (r->bad)
        return error_set(err, "wire: malformed %s payload (%zu bytes): a field or count runs past the end "
                              "or is out of range", what, r->len);
    if (r->pos != r->len)
        return error_set(err, "wire: malformed %s payload: %zu trailing bytes", what, r->len - r->pos);
    return 0;
}

/* ---- what payloads own: a failed decoder's clean-up and wire_msg_release free it alike ---- */

static void release_generate(struct wire_generate *g)
{
    free(g->prompt);
    free(g->constraint);
    g->prompt = NULL;
    g->constraint = NULL;
}

static void release_kv_done(struct wire_kv_done *d)
{
    free(d->prompt);
    free(d->constraint);
    d->prompt = NULL;
    d->constraint = NULL;
}

static void release_tokens(struct wire_tokens *t)
{
    free(t->tokens);
    free(t->logprobs);
    free(t->top_ids);
    free(t->top_logprobs);
    memset(t, 0, sizeof *t);
}

static void release_prompt_lp(struct wire_prompt_logprobs *p)
{
    free(p->logprobs);
    free(p->top_ids);
    free(p->top_logprobs);
    memset(p, 0, sizeof *p);
}

/* ---- sampling parameters, shared by GENERATE and KV_DONE ----
 * f32 temperature, f32 top_p, i32 top_k, f32 min_p, f32 repetition_penalty, f32 presence_penalty,
 * f32 frequency_penalty, u64 seed, i32 max_tokens, u8 ignore_eos, u8 logprobs_mode, u32 n_stop_ids,
 * i32 stop_ids[], u8 top_logprobs, u32 n_logit_bias, then n_logit_bias × (i32 id, f32 bias),
 * u8 prompt_logprobs. */

static int put_params(struct wr *w, const struct sample_params *p, struct error *err)
{
    if (p->n_stop_ids < 0 || p->n_stop_ids > SAMPLE_MAX_STOP_IDS)
        return error_set(err, "wire: %d stop token ids (at most %d)", p->n_stop_ids, SAMPLE_MAX_STOP_IDS);
    if (p->logprobs_mode >= SAMPLE_LOGPROBS_MODES)
        return error_set(err, "wire: logprobs mode %u is not one of the %d known", p->logprobs_mode,
                         SAMPLE_LOGPROBS_MODES);
    if (p->top_logprobs > SAMPLE_MAX_TOP_LOGPROBS)
        return error_set(err, "wire: %u top logprobs (at most %d)", p->top_logprobs, SAMPLE_MAX_TOP_LOGPROBS);
    if (p->n_logit_bias < 0 || p->n_logit_bias > SAMPLE_MAX_LOGIT_BIAS)
        return error_set(err, "wire: %d logit biases (at most %d)", p->n_logit_bias, SAMPLE_MAX_LOGIT_BIAS);
    put_f32(w, p->temperature);
    put_f32(w, p->top_p);
    put_i32(w, p->top_k);
    put_f32(w, p->min_p);
    put_f32(w, p->repetition_penalty);
    put_f32(w, p->presence_penalty);
    put_f32(w, p->frequency_penalty);
    put_u64(w, p->seed);
    put_i32(w, p->max_tokens);
    put_u8(w, p->ignore_eos ? 1 : 0);
    put_u8(w, p->logprobs_mode);
    put_i32s(w, p->stop_ids, (uint32_t)p->n_stop_ids);
    put_u8(w, p->top_logprobs);
    put_u32(w, (uint32_t)p->n_logit_bias);
    for (int i = 0; i < p->n_logit_bias; i++) {
        put_i32(w, p->bias_ids[i]);
        put_f32(w, p->bias_values[i]);
    }
    put_u8(w, p->prompt_logprobs ? 1 : 0);
    return 0;
}

static void get_params(struct rd *r, struct sample_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = get_f32(r);
    p->top_p = get_f32(r);
    p->top_k = get_i32(r);
    p->min_p = get_f32(r);
    p->repetition_penalty = get_f32(r);
    p->presence_penalty = get_f32(r);
    p->frequency_penalty = get_f32(r);
    p->seed = get_u64(r);
    p->max_tokens = get_i32(r);
    uint8_t ignore_eos = get_u8(r);
    p->logprobs_mode = get_u8(r);
    uint32_t n = get_count(r, SAMPLE_MAX_STOP_IDS, 4);
    for (uint32_t i = 0; i < n; i++)
        p->stop_ids[i] = get_i32(r);
    p->n_stop_ids = (int32_t)n;
    p->top_logprobs = get_u8(r);
    n = get_count(r, SAMPLE_MAX_LOGIT_BIAS, 8);
    for (uint32_t i = 0; i < n; i++) {
        p->bias_ids[i] = get_i32(r);
        p->bias_values[i] = get_f32(r);
        if (!(p->bias_values[i] >= -100 && p->bias_values[i] <= 100)) /* NaN too */
            r->bad = 1;
    }
    p->n_logit_bias = (int32_t)n;
    uint8_t prompt_logprobs = get_u8(r);
    p->prompt_logprobs = prompt_logprobs != 0;
    p->ignore_eos = ignore_eos != 0;
    if (prompt_logprobs > 1)
        r->bad = 1;
    float f[] = {p->temperature, p->top_p, p->min_p, p->repetition_penalty, p->presence_penalty,
                 p->frequency_penalty};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!isfinite(f[i]))
            r->bad = 1;
    if (ignore_eos > 1 || p->logprobs_mode >= SAMPLE_LOGPROBS_MODES || p->top_logprobs > SAMPLE_MAX_TOP_LOGPROBS)
        r->bad = 1;
}

/* ---- REGISTER ---- */

int wire_encode_register(struct wire_buf *b, const struct wire_register *m, struct error *err)
{
    if (check_str("listen address", m->listen_addr, WIRE_ADDR_MAX, err) ||
        check_str("model name", m->model, WIRE_NAME_MAX, err))
        return -1;
    if (m->pool.rkey_len > WIRE_MAX_RKEY)
        return error_set(err, "wire: packed rkey of %u bytes exceeds %d", m->pool.rkey_len, WIRE_MAX_RKEY);
    struct wr w;
    begin(&w, b, WIRE_REGISTER, 0);
    put_u8(&w, m->role);
    put_u32(&w, m->worker_id);
    put_u32(&w, m->max_batch);
    put_u32(&w, m->block_size);
    put_u32(&w, m->total_blocks);
    put_str(&w, m->listen_addr);
    put_str(&w, m->model);
    put_u64(&w, m->pool.base);
    put_u32(&w, m->pool.n_layers);
    put_u32(&w, m->pool.n_blocks);
    put_u64(&w, m->pool.block_bytes);
    put_u32(&w, m->pool.rkey_len);
    put_bytes(&w, m->pool.rkey, m->pool.rkey_len);
    put_u64(&w, m->prefix_salt);
    put_u8(&w, m->kv_dtype);
    put_u8(&w, m->weights);
    put_u8(&w, m->pinned);
    return finish(&w, err);
}

int wire_decode_register(const uint8_t *p, size_t len, struct wire_register *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->role = get_u8(&r);
    out->worker_id = get_u32(&r);
    out->max_batch = get_u32(&r);
    out->block_size = get_u32(&r);
    out->total_blocks = get_u32(&r);
    get_str(&r, out->listen_addr, WIRE_ADDR_MAX);
    get_str(&r, out->model, WIRE_NAME_MAX);
    out->pool.base = get_u64(&r);
    out->pool.n_layers = get_u32(&r);
    out->pool.n_blocks = get_u32(&r);
    out->pool.block_bytes = get_u64(&r);
    uint32_t n = get_count(&r, WIRE_MAX_RKEY, 1);
    if (out->role < WIRE_ROLE_FRONTEND || out->role > WIRE_ROLE_COLOCATED)
        r.bad = 1;
    if (!r.bad && n) {
        out->pool.rkey = malloc(n);
        if (!out->pool.rkey)
            return error_set(err, "wire: out of memory decoding REGISTER");
        memcpy(out->pool.rkey, p + r.pos, n);
        out->pool.rkey_len = n;
        r.pos += n;
    }
    out->prefix_salt = get_u64(&r);
    out->kv_dtype = get_u8(&r);
    out->weights = get_u8(&r);
    out->pinned = get_u8(&r);
    if (out->kv_dtype > 2 || out->weights > 1 || out->pinned > 1)
        r.bad = 1;
    if (rd_done(&r, "REGISTER", err)) {
        free(out->pool.rkey);
        out->pool.rkey = NULL;
        return -1;
    }
    return 0;
}

/* ---- LOAD ---- */

int wire_encode_load(struct wire_buf *b, const struct wire_load *m, struct error *err)
{
    if (m->n_added > WIRE_MAX_PREFIX_KEYS || m->n_evicted > WIRE_MAX_PREFIX_KEYS)
        return error_set(err, "wire: LOAD with %u/%u prefix keys exceeds %u", m->n_added, m->n_evicted,
                         WIRE_MAX_PREFIX_KEYS);
    struct wr w;
    begin(&w, b, WIRE_LOAD, 0);
    put_u32(&w, m->worker_id);
    put_u32(&w, m->queued_requests);
    put_u32(&w, m->queued_tokens);
    put_u32(&w, m->running);
    put_u32(&w, m->free_blocks);
    put_u32(&w, m->total_blocks);
    put_u8(&w, m->draining);
    put_u8(&w, m->keys_reset);
    put_u64s(&w, m->added, m->n_added);
    put_u64s(&w, m->evicted, m->n_evicted);
    put_u64(&w, m->query_tokens);
    put_u64(&w, m->hit_tokens);
    put_u64(&w, m->kv_bytes_sent);
    put_u64(&w, m->kv_bytes_saved);
    put_u64(&w, m->preemptions);
    put_u64(&w, m->slo_steps);
    for (int i = 0; i < WIRE_STEP_BUCKETS; i++)
        put_u64(&w, m->steps.bucket[i]);
    put_u64(&w, m->steps.count);
    uint64_t bits;
    memcpy(&bits, &m->steps.sum_s, sizeof bits);
    put_u64(&w, bits);
    return finish(&w, err);
}

int wire_decode_load(const uint8_t *p, size_t len, struct wire_load *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->worker_id = get_u32(&r);
    out->queued_requests = get_u32(&r);
    out->queued_tokens = get_u32(&r);
    out->running = get_u32(&r);
    out->free_blocks = get_u32(&r);
    out->total_blocks = get_u32(&r);
    out->draining = get_u8(&r);
    out->keys_reset = get_u8(&r);
    if (out->draining > 1 || out->keys_reset > 1)
        return error_set(err, "wire: LOAD with draining flag %u, keys_reset %u", out->draining, out->keys_reset);
    out->added = get_u64s(&r, &out->n_added, WIRE_MAX_PREFIX_KEYS);
    out->evicted = r.bad ? NULL : get_u64s(&r, &out->n_evicted, WIRE_MAX_PREFIX_KEYS);
    out->query_tokens = get_u64(&r);
    out->hit_tokens = get_u64(&r);
    out->kv_bytes_sent = get_u64(&r);
    out->kv_bytes_saved = get_u64(&r);
    out->preemptions = get_u64(&r);
    out->slo_steps = get_u64(&r);
    for (int i = 0; i < WIRE_STEP_BUCKETS; i++)
        out->steps.bucket[i] = get_u64(&r);
    out->steps.count = get_u64(&r);
    uint64_t bits = get_u64(&r);
    memcpy(&out->steps.sum_s, &bits, sizeof bits);
    if (!(out->steps.sum_s >= 0) || out->steps.sum_s > 1e15) /* NaN too */
        r.bad = 1;
    if (rd_done(&r, "LOAD", err)) {
        free(out->added);
        free(out->evicted);
        out->added = out->evicted = NULL;
        return -1;
    }
    return 0;
}

/* ---- GENERATE ---- */

int wire_encode_generate(struct wire_buf *b, uint64_t req_id, const struct wire_generate *m, struct error *err)
{
    if (check_str("decode worker address", m->decode_addr, WIRE_ADDR_MAX, err))
        return -1;
    if (m->n_prompt > WIRE_MAX_TOKENS)
        return error_set(err, "wire: prompt of %u tokens exceeds %u", m->n_prompt, WIRE_MAX_TOKENS);
    if (m->constraint && strlen(m->constraint) > WIRE_MAX_CONSTRAINT)
        return error_set(err, "wire: a schema of more than %u bytes", WIRE_MAX_CONSTRAINT);
    struct wr w;
    begin(&w, b, WIRE_GENERATE, req_id);
    put_u32(&w, m->decode_worker_id);
    put_str(&w, m->decode_addr);
    put_u8(&w, m->flags);
    put_u32(&w, m->tpot_slo_ms);
    put_u32(&w, m->ttft_slo_ms);
    if (put_params(&w, &m->params, err)) {
        b->len = w.start;
        return -1;
    }
    put_i32s(&w, m->prompt, m->n_prompt);
    put_str(&w, m->constraint ? m->constraint : "");
    return finish(&w, err);
}

int wire_decode_generate(const uint8_t *p, size_t len, struct wire_generate *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->decode_worker_id = get_u32(&r);
    get_str(&r, out->decode_addr, WIRE_ADDR_MAX);
    out->flags = get_u8(&r);
    out->tpot_slo_ms = get_u32(&r);
    out->ttft_slo_ms = get_u32(&r);
    get_params(&r, &out->params);
    out->prompt = get_i32s(&r, &out->n_prompt, WIRE_MAX_TOKENS);
    out->constraint = get_str_alloc(&r, WIRE_MAX_CONSTRAINT);
    if (rd_done(&r, "GENERATE", err)) {
        release_generate(out);
        return -1;
    }
    return 0;
}

/* ---- KV_RESERVE, KV_GRANT, KV_WAIT ---- */

int wire_encode_kv_reserve(struct wire_buf *b, uint64_t req_id, const struct wire_kv_reserve *m, struct error *err)
{
    if (m->n_prompt > WIRE_MAX_TOKENS)
        return error_set(err, "wire: KV_RESERVE prompt of %u tokens exceeds %u", m->n_prompt, WIRE_MAX_TOKENS);
    struct wr w;
    begin(&w, b, WIRE_KV_RESERVE, req_id);
    put_u32(&w, m->n_tokens);
    put_u32(&w, m->prefill_worker_id);
    put_i32s(&w, m->prompt, m->n_prompt);
    return finish(&w, err);
}

int wire_decode_kv_reserve(const uint8_t *p, size_t len, struct wire_kv_reserve *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->n_tokens = get_u32(&r);
    out->prefill_worker_id = get_u32(&r);
    out->prompt = get_i32s(&r, &out->n_prompt, WIRE_MAX_TOKENS);
    if (rd_done(&r, "KV_RESERVE", err)) {
        free(out->prompt);
        out->prompt = NULL;
        out->n_prompt = 0;
        return -1;
    }
    if (!out->n_prompt) { /* an empty array: no prompt */
        free(out->prompt);
        out->prompt = NULL;
    }
    return 0;
}

int wire_encode_kv_grant(struct wire_buf *b, uint64_t req_id, const struct wire_kv_grant *m, struct error *err)
{
    if (m->n_blocks > WIRE_MAX_BLOCKS)
        return error_set(err, "wire: grant of %u blocks exceeds %u", m->n_blocks, WIRE_MAX_BLOCKS);
    struct wr w;
    begin(&w, b, WIRE_KV_GRANT, req_id);
    put_u32(&w, m->n_blocks);
    for (uint32_t i = 0; i < m->n_blocks; i++)
        put_u32(&w, m->blocks[i]);
    put_u32(&w, m->n_cached);
    return finish(&w, err);
}

int wire_decode_kv_grant(const uint8_t *p, size_t len, struct wire_kv_grant *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    uint32_t n;
    out->blocks = (uint32_t *)get_i32s(&r, &n, WIRE_MAX_BLOCKS);
    out->n_blocks = n;
    out->n_cached = get_u32(&r);
    if (out->n_cached > n)
        r.bad = 1;
    if (rd_done(&r, "KV_GRANT", err)) {
        free(out->blocks);
        out->blocks = NULL;
        return -1;
    }
    return 0;
}

int wire_encode_kv_wait(struct wire_buf *b, uint64_t req_id, const struct wire_kv_wait *m, struct error *err)
{
    struct wr w;
    begin(&w, b, WIRE_KV_WAIT, req_id);
    put_u32(&w, m->queue_position);
    return finish(&w, err);
}

int wire_decode_kv_wait(const uint8_t *p, size_t len, struct wire_kv_wait *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    out->queue_position = get_u32(&r);
    return rd_done(&r, "KV_WAIT", err);
}

/* ---- KV_DONE, KV_ACK ---- */

int wire_encode_kv_done(struct wire_buf *b, uint64_t req_id, const struct wire_kv_done *m, struct error *err)
{
    if (m->n_prompt > WIRE_MAX_TOKENS)
        return error_set(err, "wire: prompt of %u tokens exceeds %u", m->n_prompt, WIRE_MAX_TOKENS);
    if (m->constraint && strlen(m->constraint) > WIRE_MAX_CONSTRAINT)
        return error_set(err, "wire: a schema of more than %u bytes", WIRE_MAX_CONSTRAINT);
    struct wr w;
    begin(&w, b, WIRE_KV_DONE, req_id);
    put_i32(&w, m->first_token);
    put_f32(&w, m->first_logprob);
    for (int i = 0; i < 4; i++)
        put_u64(&w, m->rng.s[i]);
    put_u8(&w, m->flags);
    put_u32(&w, m->tpot_slo_ms);
    if (put_params(&w, &m->params, err)) {
        b->len = w.start;
        return -1;
    }
    put_i32s(&w, m->prompt, m->n_prompt);
    put_str(&w, m->constraint ? m->constraint : "");
    return finish(&w, err);
}

int wire_decode_kv_done(const uint8_t *p, size_t len, struct wire_kv_done *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->first_token = get_i32(&r);
    out->first_logprob = get_f32(&r);
    for (int i = 0; i < 4; i++)
        out->rng.s[i] = get_u64(&r);
    out->flags = get_u8(&r);
    out->tpot_slo_ms = get_u32(&r);
    get_params(&r, &out->params);
    /* A logprob is a log of a probability: NaN or positive values mean a broken sender. */
    if (isnan(out->first_logprob) || out->first_logprob > 0)
        r.bad = 1;
    out->prompt = get_i32s(&r, &out->n_prompt, WIRE_MAX_TOKENS);
    out->constraint = get_str_alloc(&r, WIRE_MAX_CONSTRAINT);
    if (rd_done(&r, "KV_DONE", err)) {
        release_kv_done(out);
        return -1;
    }
    return 0;
}

static int encode_empty(struct wire_buf *b, uint16_t type, uint64_t req_id, struct error *err)
{
    struct wr w;
    begin(&w, b, type, req_id);
    return finish(&w, err);
}

int wire_encode_kv_ack(struct wire_buf *b, uint64_t req_id, struct error *err)
{
    return encode_empty(b, WIRE_KV_ACK, req_id, err);
}

int wire_encode_abort(struct wire_buf *b, uint64_t req_id, struct error *err)
{
    return encode_empty(b, WIRE_ABORT, req_id, err);
}

int wire_decode_empty(const uint8_t *p, size_t len, struct error *err)
{
    (void)p;
    if (len)
        return error_set(err, "wire: %zu payload bytes on a message that carries none", len);
    return 0;
}

/* ---- TOKENS ---- */

/* Alternatives, as TOKENS and PROMPT_LOGPROBS carry them: u8 n_top, then n × n_top (i32 id, f32
 * logprob). */
static void put_alts(struct wr *w, uint32_t n, uint8_t n_top, const int32_t *ids, const float *logprobs)
{
    put_u8(w, n_top);
    for (size_t i = 0; i < (size_t)n * n_top; i++) {
        put_i32(w, ids[i]);
        put_f32(w, logprobs[i]);
    }
}

/* The same read back for n tokens (NULL arrays when n_top is 0). A listed alternative has a finite
 * logprob (the sender leaves out what a mask ruled out). */
static void get_alts(struct rd *r, uint32_t n, uint8_t *n_top, int32_t **ids, float **logprobs)
{
    *n_top = get_u8(r);
    size_t k = (size_t)n * *n_top;
    if (*n_top > SAMPLE_MAX_TOP_LOGPROBS)
        r->bad = 1;
    if (r->bad || k == 0 || !need(r, k * 8))
        return;
    *ids = malloc(k * sizeof **ids);
    *logprobs = malloc(k * sizeof **logprobs);
    if (!*ids || !*logprobs) {
        r->bad = 1;
        return;
    }
    for (size_t i = 0; i < k; i++) {
        (*ids)[i] = get_i32(r);
        (*logprobs)[i] = get_f32(r);
        if (!isfinite((*logprobs)[i]) || (*logprobs)[i] > 0)
            r->bad = 1;
    }
}

int wire_encode_tokens(struct wire_buf *b, uint64_t req_id, const struct wire_tokens *m, struct error *err)
{
    if (m->n > WIRE_MAX_TOKENS)
        return error_set(err, "wire: %u tokens in one TOKENS message exceeds %u", m->n, WIRE_MAX_TOKENS);
    if (m->finish >= FINISH_COUNT)
        return error_set(err, "wire: finish reason %u is not one of enum finish", m->finish);
    int lp = m->has_logprobs && m->logprobs;
    uint32_t n_top = lp && m->top_ids && m->top_logprobs ? m->n_top : 0;
    if (n_top > SAMPLE_MAX_TOP_LOGPROBS)
        return error_set(err, "wire: %u top logprobs a token (at most %d)", n_top, SAMPLE_MAX_TOP_LOGPROBS);
    struct wr w;
    begin(&w, b, WIRE_TOKENS, req_id);
    put_u8(&w, m->finish);
    put_u8(&w, lp ? 1 : 0);
    put_i32s(&w, m->tokens, m->n);
    for (uint32_t i = 0; lp && i < m->n; i++)
        put_f32(&w, m->logprobs[i]);
    put_u32(&w, m->cached_tokens);
    put_alts(&w, m->n, (uint8_t)n_top, m->top_ids, m->top_logprobs);
    return finish(&w, err);
}

static float *get_logprobs(struct rd *r, uint32_t n)
{
    if (!need(r, (size_t)n * 4))
        return NULL;
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        v[i] = get_f32(r);
        if (isnan(v[i]) || v[i] > 0)
            r->bad = 1;
    }
    return v;
}

void wire_tokens_fill_top(int32_t *ids, float *logprobs, int k, const struct sample_top *t)
{
    for (int j = 0; j < k; j++) {
        ids[j] = j < t->n ? t->ids[j] : -1;
        logprobs[j] = j < t->n ? t->logprobs[j] : 0.0f;
    }
}

int wire_decode_tokens(const uint8_t *p, size_t len, struct wire_tokens *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    out->finish = get_u8(&r);
    out->has_logprobs = get_u8(&r);
    if (out->finish >= FINISH_COUNT || out->has_logprobs > 1)
        r.bad = 1;
    out->tokens = get_i32s(&r, &out->n, WIRE_MAX_TOKENS);
    if (out->has_logprobs && !r.bad)
        out->logprobs = get_logprobs(&r, out->n);
    out->cached_tokens = get_u32(&r);
    get_alts(&r, out->n, &out->n_top, &out->top_ids, &out->top_logprobs);
    if (out->n_top && !out->has_logprobs)
        r.bad = 1;
    if (rd_done(&r, "TOKENS", err)) {
        release_tokens(out);
        return -1;
    }
    return 0;
}

/* ---- ERROR ---- */

int wire_encode_error(struct wire_buf *b, uint64_t req_id, const struct wire_error *m, struct error *err)
{
    if (check_str("error message", m->message, WIRE_ERRMSG_MAX, err))
        return -1;
    struct wr w;
    begin(&w, b, WIRE_ERROR, req_id);
    put_u32(&w, m->code);
    put_str(&w, m->message);
    return finish(&w, err);
}

int wire_decode_error(const uint8_t *p, size_t len, struct wire_error *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    out->code = get_u32(&r);
    get_str(&r, out->message, WIRE_ERRMSG_MAX);
    return rd_done(&r, "ERROR", err);
}

/* ---- ROLE ---- */

int wire_encode_role(struct wire_buf *b, const struct wire_role_switch *m, struct error *err)
{
    if (check_str("role switch reason", m->why, WIRE_ERRMSG_MAX, err))
        return -1;
    struct wr w;
    begin(&w, b, WIRE_ROLE, 0);
    put_u8(&w, m->role);
    put_str(&w, m->why);
    return finish(&w, err);
}

int wire_decode_role(const uint8_t *p, size_t len, struct wire_role_switch *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    out->role = get_u8(&r);
    get_str(&r, out->why, WIRE_ERRMSG_MAX);
    if (out->role < WIRE_ROLE_PREFILL || out->role > WIRE_ROLE_COLOCATED)
        r.bad = 1;
    return rd_done(&r, "ROLE", err);
}

/* ---- PROMPT_LOGPROBS ---- */

int wire_encode_prompt_logprobs(struct wire_buf *b, uint64_t req_id, const struct wire_prompt_logprobs *m,
                                struct error *err)
{
    if (m->n > WIRE_MAX_TOKENS || m->n_top > SAMPLE_MAX_TOP_LOGPROBS)
        return error_set(err, "wire: PROMPT_LOGPROBS for %u tokens with %u alternatives is over the limits", m->n,
                         m->n_top);
    struct wr w;
    begin(&w, b, WIRE_PROMPT_LOGPROBS, req_id);
    put_u32(&w, m->n);
    for (uint32_t i = 0; i < m->n; i++)
        put_f32(&w, m->logprobs[i]);
    put_alts(&w, m->n, m->n_top, m->top_ids, m->top_logprobs);
    return finish(&w, err);
}

int wire_decode_prompt_logprobs(const uint8_t *p, size_t len, struct wire_prompt_logprobs *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    memset(out, 0, sizeof *out);
    uint32_t n = get_count(&r, WIRE_MAX_TOKENS, 4);
    out->n = n;
    if (!r.bad)
        out->logprobs = get_logprobs(&r, n);
    get_alts(&r, n, &out->n_top, &out->top_ids, &out->top_logprobs);
    if (rd_done(&r, "PROMPT_LOGPROBS", err)) {
        release_prompt_lp(out);
        return -1;
    }
    return 0;
}

/* ---- KV_STATS ---- */

int wire_encode_kv_stats(struct wire_buf *b, uint64_t req_id, const struct wire_kv_stats *m, struct error *err)
{
    struct wr w;
    begin(&w, b, WIRE_KV_STATS, req_id);
    put_u64(&w, m->bytes);
    put_u32(&w, m->blocks);
    put_f32(&w, m->seconds);
    put_f32(&w, m->exposed_seconds);
    return finish(&w, err);
}

int wire_decode_kv_stats(const uint8_t *p, size_t len, struct wire_kv_stats *out, struct error *err)
{
    struct rd r = {p, len, 0, 0};
    out->bytes = get_u64(&r);
    out->blocks = get_u32(&r);
    out->seconds = get_f32(&r);
    out->exposed_seconds = get_f32(&r);
    if (!(out->seconds >= 0 && out->seconds < 1e9f) || !(out->exposed_seconds >= 0 && out->exposed_seconds < 1e9f))
        r.bad = 1; /* NaN and infinities too */
    return rd_done(&r, "KV_STATS", err);
}

/* ---- whole messages ---- */

int wire_encode(struct wire_buf *b, const struct wire_msg *m, struct error *err)
{
    switch (m->type) {
    case WIRE_REGISTER: return wire_encode_register(b, &m->u.reg, err);
    case WIRE_LOAD: return wire_encode_load(b, &m->u.load, err);
    case WIRE_GENERATE: return wire_encode_generate(b, m->req_id, &m->u.gen, err);
    case WIRE_KV_RESERVE: return wire_encode_kv_reserve(b, m->req_id, &m->u.reserve, err);
    case WIRE_KV_GRANT: return wire_encode_kv_grant(b, m->req_id, &m->u.grant, err);
    case WIRE_KV_WAIT: return wire_encode_kv_wait(b, m->req_id, &m->u.wait, err);
    case WIRE_KV_DONE: return wire_encode_kv_done(b, m->req_id, &m->u.done, err);
    case WIRE_KV_ACK: return wire_encode_kv_ack(b, m->req_id, err);
    case WIRE_TOKENS: return wire_encode_tokens(b, m->req_id, &m->u.tokens, err);
    case WIRE_ABORT: return wire_encode_abort(b, m->req_id, err);
    case WIRE_ERROR: return wire_encode_error(b, m->req_id, &m->u.error, err);
    case WIRE_KV_STATS: return wire_encode_kv_stats(b, m->req_id, &m->u.stats, err);
    case WIRE_PROMPT_LOGPROBS: return wire_encode_prompt_logprobs(b, m->req_id, &m->u.prompt_lp, err);
    case WIRE_ROLE: return wire_encode_role(b, &m->u.role, err);
    }
    return error_set(err, "wire: cannot encode unknown message type %u", m->type);
}

int wire_decode_hdr(const void *buf, size_t len, struct wire_hdr *out, struct error *err)
{
    struct rd r = {buf, len, 0, 0};
    if (len < WIRE_HDR_SIZE)
        return error_set(err, "wire: %zu-byte message is shorter than the %d-byte header", len, WIRE_HDR_SIZE);
    uint32_t magic = get_u32(&r);
    out->version = (uint16_t)get_uint(&r, 2);
    out->type = (uint16_t)get_uint(&r, 2);
    out->length = get_u32(&r);
    (void)get_u32(&r);
    out->req_id = get_u64(&r);
    if (magic != WIRE_MAGIC)
        return error_set(err, "wire: bad magic 0x%08x (not a pdserve peer?)", magic);
    if (out->version != WIRE_VERSION)
        return error_set(err, "wire: protocol version %u, this build speaks %d (mixed pdserve versions?)",
                         out->version, WIRE_VERSION);
    if (out->type < WIRE_REGISTER || out->type > WIRE_TYPE_MAX)
        return error_set(err, "wire: unknown message type %u", out->type);
    if ((out->type == WIRE_REGISTER || out->type == WIRE_LOAD || out->type == WIRE_ROLE) && out->req_id)
        return error_set(err, "wire: %s carries request id %llu; it belongs to no request",
                         wire_type_name(out->type), (unsigned long long)out->req_id);
    if (out->length != len - WIRE_HDR_SIZE || out->length > WIRE_MAX_PAYLOAD)
        return error_set(err, "wire: %s header says %u payload bytes, %zu arrived", wire_type_name(out->type),
                         out->length, len - WIRE_HDR_SIZE);
    return 0;
}

static int decode_payload(uint16_t type, const uint8_t *p, size_t n, struct wire_msg *m, struct error *err)
{
    switch (type) {
    case WIRE_REGISTER: return wire_decode_register(p, n, &m->u.reg, err);
    case WIRE_LOAD: return wire_decode_load(p, n, &m->u.load, err);
    case WIRE_GENERATE: return wire_decode_generate(p, n, &m->u.gen, err);
    case WIRE_KV_RESERVE: return wire_decode_kv_reserve(p, n, &m->u.reserve, err);
    case WIRE_KV_GRANT: return wire_decode_kv_grant(p, n, &m->u.grant, err);
    case WIRE_KV_WAIT: return wire_decode_kv_wait(p, n, &m->u.wait, err);
    case WIRE_KV_DONE: return wire_decode_kv_done(p, n, &m->u.done, err);
    case WIRE_TOKENS: return wire_decode_tokens(p, n, &m->u.tokens, err);
    case WIRE_ERROR: return wire_decode_error(p, n, &m->u.error, err);
    case WIRE_KV_STATS: return wire_decode_kv_stats(p, n, &m->u.stats, err);
    case WIRE_PROMPT_LOGPROBS: return wire_decode_prompt_logprobs(p, n, &m->u.prompt_lp, err);
    case WIRE_ROLE: return wire_decode_role(p, n, &m->u.role, err);
    case WIRE_KV_ACK:
    case WIRE_ABORT: return wire_decode_empty(p, n, err);
    }
    return error_set(err, "wire: unknown message type %u", type);
}

int wire_decode(const void *buf, size_t len, struct wire_msg *out, struct error *err)
{
    struct wire_hdr h;
    memset(out, 0, sizeof *out);
    if (wire_decode_hdr(buf, len, &h, err))
        return -1;
    if (decode_payload(h.type, (const uint8_t *)buf + WIRE_HDR_SIZE, h.length, out, err)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->type = h.type;
    out->req_id = h.req_id;
    return 0;
}

void wire_msg_release(struct wire_msg *m)
{
    switch (m->type) {
    case WIRE_REGISTER: free(m->u.reg.pool.rkey); break;
    case WIRE_GENERATE: release_generate(&m->u.gen); break;
    case WIRE_KV_GRANT: free(m->u.grant.blocks); break;
    case WIRE_KV_RESERVE: free(m->u.reserve.prompt); break;
    case WIRE_LOAD:
        free(m->u.load.added);
        free(m->u.load.evicted);
        break;
    case WIRE_KV_DONE: release_kv_done(&m->u.done); break;
    case WIRE_TOKENS: release_tokens(&m->u.tokens); break;
    case WIRE_PROMPT_LOGPROBS: release_prompt_lp(&m->u.prompt_lp); break;
    }
    memset(m, 0, sizeof *m);
}

/* ---- KV run headers (fixed size, no wire header of their own) ---- */

void wire_encode_kv_run(uint8_t out[WIRE_KV_RUN_SIZE], const struct wire_kv_run *r)
{
    struct wire_buf b = {out, 0, WIRE_KV_RUN_SIZE}; /* exactly the four fields fit: never grown */
    struct wr w = {&b, 0, 0};
    put_u32(&w, r->layer);
    put_u32(&w, r->dst);
    put_u32(&w, r->count);
    put_u32(&w, 0);
}

int wire_decode_kv_run(const void *buf, size_t len, struct wire_kv_run *out)
{
    struct rd r = {buf, len, 0, 0};
    *out = (struct wire_kv_run){0};
    if (len != WIRE_KV_RUN_SIZE)
        return -1;
    out->layer = get_u32(&r);
    out->dst = get_u32(&r);
    out->count = get_u32(&r);
    return 0;
}

const char *wire_role_name(unsigned role)
{
    switch (role) {
    case WIRE_ROLE_FRONTEND: return "frontend";
    case WIRE_ROLE_PREFILL: return "prefill";
    case WIRE_ROLE_DECODE: return "decode";
    case WIRE_ROLE_COLOCATED: return "colocated";
    default: return "unknown";
    }
}

const char *wire_type_name(unsigned type)
{
    static const char *names[] = {"?", "REGISTER", "LOAD", "GENERATE", "KV_RESERVE", "KV_GRANT",
                                  "KV_WAIT", "KV_DONE", "KV_ACK", "TOKENS", "ABORT", "ERROR", "KV_STATS", "PROMPT_LOGPROBS",
                                  "ROLE"};
    return type >= 1 && type <= WIRE_TYPE_MAX ? names[type] : "UNKNOWN";
}
