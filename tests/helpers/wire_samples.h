/* wire_samples.h — test helpers shared by the wire unit test, the multi-process peer and the fuzz
 * harness: a deterministic example of every message type (arrays malloc'd, so wire_msg_release
 * frees them) and a field-by-field comparison. Header-only so each test program stays one file. */
#ifndef PD_WIRE_SAMPLES_H
#define PD_WIRE_SAMPLES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

static uint64_t ws_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void ws_params(struct sample_params *p, uint64_t *s)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.7f;
    p->top_p = 0.9f;
    p->top_k = (int32_t)(ws_mix(s) % 100);
    p->min_p = 0.05f;
    p->repetition_penalty = 1.1f;
    p->presence_penalty = -0.5f;
    p->frequency_penalty = 0.25f;
    p->seed = ws_mix(s);
    p->max_tokens = 1 + (int32_t)(ws_mix(s) % 4096);
    p->ignore_eos = ws_mix(s) & 1;
    p->logprobs_mode = (uint8_t)(ws_mix(s) % SAMPLE_LOGPROBS_MODES);
    p->n_stop_ids = (int32_t)(ws_mix(s) % (SAMPLE_MAX_STOP_IDS + 1));
    for (int i = 0; i < p->n_stop_ids; i++)
        p->stop_ids[i] = (int32_t)(ws_mix(s) % 150000);
    p->top_logprobs = (uint8_t)(ws_mix(s) % (SAMPLE_MAX_TOP_LOGPROBS + 1));
    p->n_logit_bias = (int32_t)(ws_mix(s) % 5);
    for (int i = 0; i < p->n_logit_bias; i++) {
        p->bias_ids[i] = (int32_t)(ws_mix(s) % 150000);
        p->bias_values[i] = (float)(ws_mix(s) % 201) - 100.0f;
    }
    p->prompt_logprobs = ws_mix(s) & 1;
}

static int32_t *ws_ids(uint32_t n, uint64_t *s)
{
    int32_t *v = malloc((n ? n : 1) * sizeof *v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = (int32_t)(ws_mix(s) % 200000) - 10; /* a few negatives: the wire must not care */
    return v;
}

static uint64_t *ws_keys(uint32_t n, uint64_t *s)
{
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = ws_mix(s);
    return v;
}

static void ws_register(struct wire_register *r, uint64_t *s)
{
    r->role = WIRE_ROLE_DECODE;
    r->worker_id = (uint32_t)ws_mix(s);
    r->max_batch = 64;
    r->block_size = 16;
    r->total_blocks = 4096;
    snprintf(r->listen_addr, sizeof r->listen_addr, "10.0.0.%u:%u", (unsigned)(ws_mix(s) % 250),
             (unsigned)(ws_mix(s) % 60000 + 1));
    snprintf(r->model, sizeof r->model, "Qwen/Qwen2.5-0.5B");
    r->pool.base = ws_mix(s);
    r->pool.n_layers = 24;
    r->pool.n_blocks = 4096;
    r->pool.block_bytes = 2 * 16 * 2 * 64 * 4;
    r->pool.rkey_len = 1 + (uint32_t)(ws_mix(s) % 200);
    r->pool.rkey = malloc(r->pool.rkey_len);
    for (uint32_t i = 0; i < r->pool.rkey_len; i++)
        r->pool.rkey[i] = (uint8_t)ws_mix(s);
    r->prefix_salt = ws_mix(s);
    r->kv_dtype = (uint8_t)(ws_mix(s) % 3);
    r->weights = (uint8_t)(ws_mix(s) % 2);
    r->pinned = (uint8_t)(ws_mix(s) % 2);
}

/* Fills m with an example of `type`, varied by seed. */
static void ws_sample(uint16_t type, uint64_t seed, struct wire_msg *m)
{
    uint64_t s = seed * 7919 + type;
    memset(m, 0, sizeof *m);
    m->type = type;
    m->req_id = (type == WIRE_REGISTER || type == WIRE_LOAD || type == WIRE_ROLE) ? 0 : ws_mix(&s);
    switch (type) {
    case WIRE_REGISTER: ws_register(&m->u.reg, &s); break;
    case WIRE_LOAD:
        m->u.load = (struct wire_load){.worker_id = (uint32_t)ws_mix(&s), .queued_requests = 3,
                                       .queued_tokens = 1234, .running = 17, .free_blocks = 900,
                                       .total_blocks = 4096, .draining = (uint8_t)(ws_mix(&s) & 1),
                                       .keys_reset = (uint8_t)(ws_mix(&s) & 1), .query_tokens = ws_mix(&s),
                                       .hit_tokens = 77, .kv_bytes_sent = ws_mix(&s), .kv_bytes_saved = 5,
                                       .preemptions = ws_mix(&s) % 100,
                                       .slo_steps = ws_mix(&s) % 1000,
                                       .steps = {.bucket = {1, 2, 3}, .count = 9, .sum_s = 0.5}};
        m->u.load.n_added = (uint32_t)(ws_mix(&s) % 40);
        m->u.load.added = ws_keys(m->u.load.n_added, &s);
        m->u.load.n_evicted = (uint32_t)(ws_mix(&s) % 7);
        m->u.load.evicted = ws_keys(m->u.load.n_evicted, &s);
        break;
    case WIRE_GENERATE:
        m->u.gen.decode_worker_id = 5;
        snprintf(m->u.gen.decode_addr, sizeof m->u.gen.decode_addr, "127.0.0.1:%u", 1000 + (unsigned)(seed % 999));
        m->u.gen.flags = WIRE_GEN_LOGPROBS;
        m->u.gen.tpot_slo_ms = (uint32_t)(ws_mix(&s) % 200);
        m->u.gen.ttft_slo_ms = (uint32_t)(ws_mix(&s) % 5000);
        ws_params(&m->u.gen.params, &s);
        m->u.gen.n_prompt = (uint32_t)(ws_mix(&s) % 3000);
        m->u.gen.prompt = ws_ids(m->u.gen.n_prompt, &s);
        m->u.gen.constraint = ws_mix(&s) & 1 ? strdup("{\"type\":\"object\"}") : NULL;
        break;
    case WIRE_KV_RESERVE:
        m->u.reserve = (struct wire_kv_reserve){.n_tokens = (uint32_t)(ws_mix(&s) % 9000), .prefill_worker_id = 2};
        m->u.reserve.n_prompt = seed & 1 ? (uint32_t)(ws_mix(&s) % 300) + 1 : 0;
        m->u.reserve.prompt = m->u.reserve.n_prompt ? ws_ids(m->u.reserve.n_prompt, &s) : NULL;
        break;
    case WIRE_KV_GRANT:
        m->u.grant.n_blocks = (uint32_t)(ws_mix(&s) % 600);
        m->u.grant.blocks = (uint32_t *)ws_ids(m->u.grant.n_blocks, &s);
        m->u.grant.n_cached = m->u.grant.n_blocks / 3;
        break;
    case WIRE_KV_WAIT: m->u.wait.queue_position = (uint32_t)(ws_mix(&s) % 50); break;
    case WIRE_KV_DONE:
        m->u.done.first_token = 42;
        m->u.done.first_logprob = -1.25f;
        for (int i = 0; i < 4; i++)
            m->u.done.rng.s[i] = ws_mix(&s);
        m->u.done.flags = 0;
        m->u.done.tpot_slo_ms = (uint32_t)(ws_mix(&s) % 200);
        ws_params(&m->u.done.params, &s);
        m->u.done.n_prompt = (uint32_t)(ws_mix(&s) % 3000);
        m->u.done.prompt = ws_ids(m->u.done.n_prompt, &s);
        m->u.done.constraint = ws_mix(&s) & 1 ? strdup("{\"enum\":[1,2]}") : NULL;
        break;
    case WIRE_TOKENS:
        m->u.tokens.finish = (uint8_t)(ws_mix(&s) % 5);
        m->u.tokens.has_logprobs = ws_mix(&s) & 1;
        m->u.tokens.n = (uint32_t)(ws_mix(&s) % 9);
        m->u.tokens.tokens = ws_ids(m->u.tokens.n, &s);
        if (m->u.tokens.has_logprobs) {
            m->u.tokens.logprobs = malloc((m->u.tokens.n + 1) * sizeof(float));
            for (uint32_t i = 0; i < m->u.tokens.n; i++)
                m->u.tokens.logprobs[i] = -(float)(ws_mix(&s) % 1000) / 100.0f;
        }
        m->u.tokens.cached_tokens = (uint32_t)(ws_mix(&s) % 4000);
        m->u.tokens.n_top = m->u.tokens.has_logprobs ? (uint8_t)(ws_mix(&s) % 4) : 0;
        if (m->u.tokens.n_top) {
            uint32_t k = m->u.tokens.n * m->u.tokens.n_top;
            m->u.tokens.top_ids = ws_ids(k, &s);
            m->u.tokens.top_logprobs = malloc((k + 1) * sizeof(float));
            for (uint32_t i = 0; i < k; i++)
                m->u.tokens.top_logprobs[i] = -(float)(ws_mix(&s) % 1000) / 100.0f;
        }
        break;
    case WIRE_ERROR:
        m->u.error.code = WIRE_ERR_OVERLOADED;
        snprintf(m->u.error.message, sizeof m->u.error.message, "decode worker %u has no free KV blocks",
                 (unsigned)(seed % 10));
        break;
    case WIRE_PROMPT_LOGPROBS: {
        struct wire_prompt_logprobs *pl = &m->u.prompt_lp;
        pl->n = (uint32_t)(ws_mix(&s) % 9);
        pl->n_top = (uint8_t)(ws_mix(&s) % 3);
        pl->logprobs = malloc((pl->n + 1) * sizeof(float));
        for (uint32_t i = 0; i < pl->n; i++)
            pl->logprobs[i] = -(float)(ws_mix(&s) % 1000) / 100.0f;
        if (pl->n_top) {
            pl->top_ids = ws_ids(pl->n * pl->n_top, &s);
            pl->top_logprobs = malloc((pl->n * pl->n_top + 1) * sizeof(float));
            for (uint32_t i = 0; i < pl->n * pl->n_top; i++)
                pl->top_logprobs[i] = -(float)(ws_mix(&s) % 1000) / 100.0f;
        }
        break;
    }
    case WIRE_KV_STATS:
        m->u.stats = (struct wire_kv_stats){ws_mix(&s), (uint32_t)ws_mix(&s), (float)(ws_mix(&s) % 1000) / 1e3f,
                                            (float)(ws_mix(&s) % 100) / 1e3f};
        break;
    case WIRE_ROLE:
        m->u.role.role = (uint8_t)(WIRE_ROLE_PREFILL + ws_mix(&s) % 3);
        snprintf(m->u.role.why, sizeof m->u.role.why, "prompt work %.2f workers", (double)(ws_mix(&s) % 100) / 100);
        break;
    }
}

static int ws_params_eq(const struct sample_params *a, const struct sample_params *b)
{
    return a->temperature == b->temperature && a->top_p == b->top_p && a->top_k == b->top_k &&
           a->min_p == b->min_p && a->repetition_penalty == b->repetition_penalty &&
           a->presence_penalty == b->presence_penalty && a->frequency_penalty == b->frequency_penalty &&
           a->seed == b->seed && a->max_tokens == b->max_tokens && a->ignore_eos == b->ignore_eos &&
           a->logprobs_mode == b->logprobs_mode && a->n_stop_ids == b->n_stop_ids &&
           !memcmp(a->stop_ids, b->stop_ids, (size_t)a->n_stop_ids * sizeof a->stop_ids[0]) &&
           a->top_logprobs == b->top_logprobs && a->n_logit_bias == b->n_logit_bias &&
           !memcmp(a->bias_ids, b->bias_ids, (size_t)a->n_logit_bias * sizeof a->bias_ids[0]) &&
           !memcmp(a->bias_values, b->bias_values, (size_t)a->n_logit_bias * sizeof a->bias_values[0]) &&
           a->prompt_logprobs == b->prompt_logprobs;
}

static int ws_str_eq(const char *a, const char *b) /* NULL and "" are one: no constraint */
{
    return !strcmp(a ? a : "", b ? b : "");
}

#define WS_ARR_EQ(a, b, n) ((n) == 0 || !memcmp((a), (b), (size_t)(n) * sizeof *(a)))

/* 1 if the two messages carry the same fields. */
static int ws_equal(const struct wire_msg *a, const struct wire_msg *b)
{
    if (a->type != b->type || a->req_id != b->req_id)
        return 0;
    const struct wire_register *ra = &a->u.reg, *rb = &b->u.reg;
    const struct wire_tokens *ta = &a->u.tokens, *tb = &b->u.tokens;
    switch (a->type) {
    case WIRE_REGISTER:
        return ra->role == rb->role && ra->worker_id == rb->worker_id && ra->max_batch == rb->max_batch &&
               ra->block_size == rb->block_size && ra->total_blocks == rb->total_blocks &&
               !strcmp(ra->listen_addr, rb->listen_addr) && !strcmp(ra->model, rb->model) &&
               ra->pool.base == rb->pool.base && ra->pool.n_layers == rb->pool.n_layers &&
               ra->pool.n_blocks == rb->pool.n_blocks && ra->pool.block_bytes == rb->pool.block_bytes &&
               ra->pool.rkey_len == rb->pool.rkey_len && WS_ARR_EQ(ra->pool.rkey, rb->pool.rkey, ra->pool.rkey_len) &&
               ra->prefix_salt == rb->prefix_salt && ra->kv_dtype == rb->kv_dtype && ra->weights == rb->weights &&
               ra->pinned == rb->pinned;
    case WIRE_LOAD: {
        const struct wire_load *la = &a->u.load, *lb = &b->u.load;
        return la->worker_id == lb->worker_id && la->queued_requests == lb->queued_requests &&
               la->queued_tokens == lb->queued_tokens && la->running == lb->running &&
               la->free_blocks == lb->free_blocks && la->total_blocks == lb->total_blocks &&
               la->draining == lb->draining && la->keys_reset == lb->keys_reset && la->n_added == lb->n_added &&
               WS_ARR_EQ(la->added, lb->added, la->n_added) && la->n_evicted == lb->n_evicted &&
               WS_ARR_EQ(la->evicted, lb->evicted, la->n_evicted) && la->query_tokens == lb->query_tokens &&
               la->hit_tokens == lb->hit_tokens && la->kv_bytes_sent == lb->kv_bytes_sent &&
               la->kv_bytes_saved == lb->kv_bytes_saved && la->preemptions == lb->preemptions &&
               la->slo_steps == lb->slo_steps &&
               !memcmp(la->steps.bucket, lb->steps.bucket, sizeof la->steps.bucket) &&
               la->steps.count == lb->steps.count && la->steps.sum_s == lb->steps.sum_s;
    }
    case WIRE_GENERATE:
        return a->u.gen.decode_worker_id == b->u.gen.decode_worker_id &&
               !strcmp(a->u.gen.decode_addr, b->u.gen.decode_addr) && a->u.gen.flags == b->u.gen.flags &&
               a->u.gen.tpot_slo_ms == b->u.gen.tpot_slo_ms && a->u.gen.ttft_slo_ms == b->u.gen.ttft_slo_ms &&
               ws_params_eq(&a->u.gen.params, &b->u.gen.params) && a->u.gen.n_prompt == b->u.gen.n_prompt &&
               WS_ARR_EQ(a->u.gen.prompt, b->u.gen.prompt, a->u.gen.n_prompt) &&
               ws_str_eq(a->u.gen.constraint, b->u.gen.constraint);
    case WIRE_KV_RESERVE:
        return a->u.reserve.n_tokens == b->u.reserve.n_tokens &&
               a->u.reserve.prefill_worker_id == b->u.reserve.prefill_worker_id &&
               a->u.reserve.n_prompt == b->u.reserve.n_prompt &&
               WS_ARR_EQ(a->u.reserve.prompt, b->u.reserve.prompt, a->u.reserve.n_prompt);
    case WIRE_KV_GRANT:
        return a->u.grant.n_blocks == b->u.grant.n_blocks && a->u.grant.n_cached == b->u.grant.n_cached &&
               WS_ARR_EQ(a->u.grant.blocks, b->u.grant.blocks, a->u.grant.n_blocks);
    case WIRE_KV_WAIT: return a->u.wait.queue_position == b->u.wait.queue_position;
    case WIRE_KV_DONE:
        return a->u.done.first_token == b->u.done.first_token &&
               a->u.done.first_logprob == b->u.done.first_logprob &&
               !memcmp(a->u.done.rng.s, b->u.done.rng.s, sizeof a->u.done.rng.s) &&
               a->u.done.flags == b->u.done.flags &&
               a->u.done.tpot_slo_ms == b->u.done.tpot_slo_ms && ws_params_eq(&a->u.done.params, &b->u.done.params) &&
               a->u.done.n_prompt == b->u.done.n_prompt &&
               WS_ARR_EQ(a->u.done.prompt, b->u.done.prompt, a->u.done.n_prompt) &&
               ws_str_eq(a->u.done.constraint, b->u.done.constraint);
    case WIRE_TOKENS:
        return ta->finish == tb->finish && ta->has_logprobs == tb->has_logprobs && ta->n == tb->n &&
               WS_ARR_EQ(ta->tokens, tb->tokens, ta->n) &&
               (!ta->has_logprobs || WS_ARR_EQ(ta->logprobs, tb->logprobs, ta->n)) &&
               ta->cached_tokens == tb->cached_tokens && ta->n_top == tb->n_top &&
               WS_ARR_EQ(ta->top_ids, tb->top_ids, ta->n * ta->n_top) &&
               WS_ARR_EQ(ta->top_logprobs, tb->top_logprobs, ta->n * ta->n_top);
    case WIRE_ERROR:
        return a->u.error.code == b->u.error.code && !strcmp(a->u.error.message, b->u.error.message);
    case WIRE_PROMPT_LOGPROBS:
        return a->u.prompt_lp.n == b->u.prompt_lp.n && a->u.prompt_lp.n_top == b->u.prompt_lp.n_top &&
               WS_ARR_EQ(a->u.prompt_lp.logprobs, b->u.prompt_lp.logprobs, a->u.prompt_lp.n) &&
               WS_ARR_EQ(a->u.prompt_lp.top_ids, b->u.prompt_lp.top_ids, a->u.prompt_lp.n * a->u.prompt_lp.n_top) &&
               WS_ARR_EQ(a->u.prompt_lp.top_logprobs, b->u.prompt_lp.top_logprobs,
                         a->u.prompt_lp.n * a->u.prompt_lp.n_top);
    case WIRE_KV_STATS:
        return a->u.stats.bytes == b->u.stats.bytes && a->u.stats.blocks == b->u.stats.blocks &&
               a->u.stats.seconds == b->u.stats.seconds && a->u.stats.exposed_seconds == b->u.stats.exposed_seconds;
    case WIRE_ROLE: return a->u.role.role == b->u.role.role && !strcmp(a->u.role.why, b->u.role.why);
    case WIRE_KV_ACK:
    case WIRE_ABORT: return 1;
    }
    return 0;
}

#endif
