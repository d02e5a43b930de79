/* decode.c — the decode worker's loop thread: one `struct dreq` per request it knows, from
 * KV_RESERVE (or, colocated, GENERATE) to the last TOKENS.
 *
 *   KV_RESERVE ─▶ blocks free? KV_GRANT : KV_WAIT (FCFS; granted as blocks come back)
 *   KV_DONE    ─▶ the sequence (prompt + first token + sampler state) joins the running batch; KV_ACK
 *   tokens from the engine ─▶ TOKENS to the frontend, several per message when they piled up
 *   ABORT      ─▶ whatever the request holds is freed at once
 *
 * What a request needs to end (its abort mail to the engine) is allocated when it starts, so that
 * ending a request never depends on an allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "decode.h"

enum dreq_state {
    DR_WAITING, /* reserved for, no blocks yet: in the wait queue */
    DR_GRANTED, /* blocks granted: its prefill worker writes into them until its KV_DONE or ABORT */
    DR_RUNNING, /* the engine has the sequence and its blocks */
};

struct dreq {
    uint64_t id;
    enum dreq_state state; /* DR_WAITING until granted (a new request is not queued yet) */
    struct ucx_peer *prefill; /* NULL when colocated, or once its prefill worker is gone */
    uint32_t n_tokens;        /* reserved for */
    uint32_t n_cached;        /* leading blocks of kv our prefix cache held: the prefill does not send them */
    struct kv_seq kv;         /* granted blocks until the engine takes them */
    bool logprobs;
    uint8_t n_top;            /* alternatives reported with each token's logprob */
    bool aborted;             /* ended by the frontend; its blocks wait for the prefill to stop writing */
    struct dc_abort *abort;   /* posted to the engine if the request ends while running */
    uint64_t waiting_since;   /* uv_now() when it joined the wait queue */
    struct dreq *next_waiting;
};

static struct dc_state *state_of(struct worker *w)
{
    return w->state;
}

static void send_simple(struct ucx_peer *p, uint16_t type, uint64_t id)
{
    struct wire_msg m = {.type = type, .req_id = id};
    struct error err;
    if (p && ucx_send(p, &m, NULL, NULL, &err) < 0)
        log_warn("request %llu: sending %s: %s", (unsigned long long)id, wire_type_name(type), err.msg);
}

/* Tells a prefill worker why its request cannot go on here; it passes the reason to the frontend. */
static void refuse(struct ucx_peer *p, uint64_t id, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(struct ucx_peer *p, uint64_t id, uint32_t code, const char *fmt, ...)
{
    struct wire_msg m = {.type = WIRE_ERROR, .req_id = id};
    m.u.error.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.u.error.message, sizeof m.u.error.message, fmt, ap);
    va_end(ap);
    log_warn("request %llu from %s refused: %s", (unsigned long long)id, ucx_peer_name(p), m.u.error.message);
    struct error err;
    if (ucx_send(p, &m, NULL, NULL, &err) < 0)
        log_warn("request %llu: sending ERROR: %s", (unsigned long long)id, err.msg);
}

/* A new request, known by id from now on; NULL when memory ran out. */
static struct dreq *new_request(struct dc_state *d, uint64_t id, struct ucx_peer *prefill, uint32_t n_tokens)
{
    struct dreq *r = calloc(1, sizeof *r);
    struct dc_abort *a = calloc(1, sizeof *a);
    if (!r || !a || idmap_put(&d->reqs, id, r) < 0) {
        free(r), free(a);
        return NULL;
    }
    *r = (struct dreq){.id = id, .prefill = prefill, .n_tokens = n_tokens, .abort = a};
    a->mail.type = DC_ABORT;
    a->req_id = id;
    return r;
}

static void unlink_waiting(struct dc_state *d, struct dreq *r)
{
    struct dreq **pp = &d->wait_head, *prev = NULL;
    for (; *pp && *pp != r; pp = &(*pp)->next_waiting)
        prev = *pp;
    if (!*pp)
        return;
    *pp = r->next_waiting;
    if (d->wait_tail == r)
        d->wait_tail = prev;
    d->n_waiting--;
}

/* Forgets r, giving back whatever it holds. A running sequence is taken from the engine too, unless
 * the engine itself ended it (`engine_done`). */
static void forget(struct worker *w, struct dreq *r, bool engine_done)
{
    struct dc_state *d = state_of(w);
    if (r->state == DR_WAITING)
        unlink_waiting(d, r);
    if (r->state == DR_RUNNING && !engine_done) {
        mailbox_post(&w->to_engine, &r->abort->mail);
        r->abort = NULL;
    }
    kv_seq_release(&w->engine.kv, &r->kv);
    idmap_del(&d->reqs, r->id);
    free(r->abort);
    free(r);
}

/* Ends r for the frontend (its ABORT, or the frontend lost). Blocks granted to a transfer stay
 * reserved until the prefill worker says it has stopped writing into them — its ABORT, which it
 * sends after flushing, or its KV_DONE — or is lost: freed at once, they could be granted to another
 * request and then overwritten by a put that was already on its way. */
static void abort_request(struct worker *w, struct dreq *r)
{
    if (r->state == DR_GRANTED && r->prefill) {
        r->aborted = true;
        return;
    }
    forget(w, r, false);
}

/* Whether a sequence of n_tokens positions fits the whole pool. */
static bool fits_pool(struct worker *w, uint32_t n_tokens)
{
    const struct kv_pool *kv = &w->engine.kv;
    return ((uint64_t)n_tokens + (uint64_t)kv->block_size - 1) / (uint64_t)kv->block_size <= (uint64_t)kv->n_blocks;
}

enum grant_result { GRANT_DONE, GRANT_LATER, GRANT_FAILED };

/* Blocks are granted only while a margin stays free for the running sequences to grow into. On
 * GRANT_DONE the caller marks r granted. */
static enum grant_result try_grant(struct worker *w, struct dreq *r)
{
    struct kv_pool *kv = &w->engine.kv;
    int margin = kv->n_blocks / 100 + 1, need = kv_blocks_for(kv, (int)r->n_tokens) - r->kv.n_blocks;
    int used = kv_used(kv);
    if (kv->n_blocks - used - need < margin && used > r->kv.n_blocks)
        return GRANT_LATER;
    if (kv_seq_reserve(kv, &r->kv, (int)r->n_tokens) < 0)
        return GRANT_LATER;
    uint32_t *ids = malloc((size_t)r->kv.n_blocks * sizeof *ids);
    if (!ids) {
        kv_seq_release(kv, &r->kv);
        return GRANT_FAILED;
    }
    for (int i = 0; i < r->kv.n_blocks; i++)
        ids[i] = (uint32_t)r->kv.blocks[i];
    struct wire_msg m = {.type = WIRE_KV_GRANT, .req_id = r->id};
    m.u.grant = (struct wire_kv_grant){(uint32_t)r->kv.n_blocks, ids, r->n_cached};
    struct error err;
    if (ucx_send(r->prefill, &m, NULL, NULL, &err) < 0) /* its peer-lost handling gives the blocks back */
        log_warn("request %llu: KV_GRANT: %s", (unsigned long long)r->id, err.msg);
    free(ids);
    return GRANT_DONE;
}

/* A reservation that could not be granted for want of memory ends with an error, not a stall. */
static void grant_failed(struct worker *w, struct dreq *r)
{
    refuse(r->prefill, r->id, WIRE_ERR_INTERNAL, "the decode worker ran out of memory granting KV blocks");
    forget(w, r, false);
}

static void grant_waiting(struct worker *w)
{
    struct dc_state *d = state_of(w);
    for (struct dreq *r; (r = d->wait_head);) {
        enum grant_result g = try_grant(w, r);
        if (g == GRANT_LATER)
            return;
        if (g == GRANT_FAILED) {
            grant_failed(w, r); /* unlinks it */
            continue;
        }
        unlink_waiting(d, r);
        r->state = DR_GRANTED;
    }
}

/* FCFS cannot starve a request: every one queued fits the pool alone, so the head is granted once
 * the sequences before it have finished. But an overloaded worker can make it wait long: past
 * --kv-wait-timeout the prefill worker hears "overloaded", and the frontend answers 503 or tries
 * another decode worker. */
static void on_wait_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    struct dc_state *d = state_of(w);
    uint64_t limit = (uint64_t)w->opts.kv_wait_s * 1000, now = uv_now(&w->loop);
    for (struct dreq *r; (r = d->wait_head) && now - r->waiting_since >= limit;) {
        refuse(r->prefill, r->id, WIRE_ERR_OVERLOADED, "waited %d s for KV blocks on a busy decode worker "
               "(--kv-wait-timeout); retry later", w->opts.kv_wait_s);
        forget(w, r, false);
    }
}

static void on_reserve(struct worker *w, struct ucx_peer *from, uint64_t id, struct wire_kv_reserve *res)
{
    struct dc_state *d = state_of(w);
    log_debug("request %llu: KV_RESERVE for %u tokens from %s", (unsigned long long)id, res->n_tokens,
              ucx_peer_name(from));
    if (idmap_get(&d->reqs, id)) {
        refuse(from, id, WIRE_ERR_PROTOCOL, "request id %llu is already in use on this decode worker",
               (unsigned long long)id);
        return;
    }
    if (res->n_tokens == 0 || res->n_tokens >= (uint32_t)w->model->cfg.max_pos) {
        refuse(from, id, WIRE_ERR_BAD_REQUEST, "KV_RESERVE for %u tokens: the model's context is %d tokens",
               res->n_tokens, w->model->cfg.max_pos);
        return;
    }
    if (!fits_pool(w, res->n_tokens + 1)) { /* it could never be granted: refused now, never queued */
        refuse(from, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) and its first generated token need "
               "more KV cache than this decode worker's whole pool holds (%d tokens)", res->n_tokens,
               w->engine.kv.n_blocks * w->engine.kv.block_size);
        return;
    }
    struct dreq *r = new_request(d, id, from, res->n_tokens);
    if (!r) {
        refuse(from, id, WIRE_ERR_INTERNAL, "the decode worker ran out of memory taking the request");
        return;
    }
    if (res->prompt && res->n_prompt == res->n_tokens) { /* what our prefix cache holds is not sent */
        uint64_t chain;
        int full = (int)(res->n_tokens / (uint32_t)w->engine.kv.block_size);
        r->n_cached = (uint32_t)kv_prefix_match(&w->engine.kv, res->prompt, full, &r->kv, &chain);
    }
    enum grant_result g = d->wait_head ? GRANT_LATER : try_grant(w, r);
    if (g == GRANT_DONE) {
        r->state = DR_GRANTED;
        return;
    }
    if (g == GRANT_FAILED) {
        grant_failed(w, r);
        return;
    }
    r->state = DR_WAITING;
    r->waiting_since = uv_now(&w->loop);
    if (d->wait_tail)
        d->wait_tail->next_waiting = r;
    else
        d->wait_head = r;
    d->wait_tail = r;
    struct wire_msg m = {.type = WIRE_KV_WAIT, .req_id = id, .u.wait.queue_position = d->n_waiting++};
    struct error err;
    if (ucx_send(from, &m, NULL, NULL, &err) < 0)
        log_warn("request %llu: KV_WAIT: %s", (unsigned long long)id, err.msg);
}

/* A sequence for the engine, with its prompt; NULL with err set when it cannot be made. */
static struct seq *new_seq(uint64_t id, const int32_t *prompt, uint32_t n_prompt, const struct sample_params *p,
                           uint32_t tpot_slo_ms, uint32_t ttft_slo_ms, struct error *err)
{
    struct seq *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, "out of memory");
        return NULL;
    }
    if (engine_seq_init(s, id, prompt, (int)n_prompt, p, err) < 0) {
        free(s);
        return NULL;
    }
    s->tpot_slo_ms = tpot_slo_ms;
    s->ttft_slo_ms = ttft_slo_ms;
    return s;
}

static void free_seq(struct worker *w, struct seq *s)
{
    if (s)
        engine_seq_release(s, &w->engine.kv);
    free(s);
}

/* Hands s to the engine: r is running from here. Returns -1 (s untouched) when memory ran out. */
static int admit(struct worker *w, struct dreq *r, struct seq *s)
{
    struct dc_admit *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->mail.type = DC_ADMIT;
    m->seq = s;
    r->state = DR_RUNNING;
    log_debug("request %llu admitted: %d prompt tokens", (unsigned long long)r->id, s->n_prompt);
    mailbox_post(&w->to_engine, &m->mail);
    return 0;
}

/* The transfer is over but the sequence cannot run here: the frontend hears why, the prefill worker
 * drops its copy, the blocks go. */
static void reject_transfer(struct worker *w, struct dreq *r, uint32_t code, const char *why)
{
    worker_send_error(w, r->id, code, "%s", why);
    send_simple(r->prefill, WIRE_ABORT, r->id);
    forget(w, r, false);
}

static void on_kv_done(struct worker *w, struct dreq *r, struct wire_kv_done *dn)
{
    struct error err;
    if (r->state != DR_GRANTED || dn->n_prompt != r->n_tokens) {
        snprintf(err.msg, sizeof err.msg, "KV_DONE for %u prompt tokens does not match the reservation "
                 "(%u tokens, %s)", dn->n_prompt, r->n_tokens, r->state == DR_GRANTED ? "granted" : "not granted");
        reject_transfer(w, r, WIRE_ERR_PROTOCOL, err.msg);
        return;
    }
    dn->params.prompt_logprobs = false; /* the prefill worker scored the prompt */
    struct seq *s = new_seq(r->id, dn->prompt, dn->n_prompt, &dn->params, dn->tpot_slo_ms, 0, &err);
    bool ok = s && engine_seq_append(s, dn->first_token) == 0;
    if (s && !ok)
        error_set(&err, "out of memory");
    if (ok && dn->constraint) /* its matcher starts after the prefill's first token */
        ok = engine_seq_constrain(&w->engine, s, dn->constraint, &err) == 0;
    if (!ok) {
        free_seq(w, s);
        reject_transfer(w, r, WIRE_ERR_INTERNAL, err.msg);
        return;
    }
    s->rng = dn->rng; /* continue the prefill's random stream exactly */
    s->last_logprob = dn->first_logprob;
    s->n_cached = s->n_prompt;
    s->kv = r->kv; /* the blocks the prefill wrote go with the sequence */
    memset(&r->kv, 0, sizeof r->kv);
    if (admit(w, r, s) < 0) {
        r->kv = s->kv; /* given back with r */
        memset(&s->kv, 0, sizeof s->kv);
        free_seq(w, s);
        reject_transfer(w, r, WIRE_ERR_INTERNAL, "the decode worker ran out of memory admitting the sequence");
        return;
    }
    r->logprobs = dn->flags & WIRE_GEN_LOGPROBS;
    r->n_top = r->logprobs ? dn->params.top_logprobs : 0;
    send_simple(r->prefill, WIRE_KV_ACK, r->id);
}

static void on_generate(struct worker *w, uint64_t id, struct wire_generate *g)
{
    struct dc_state *d = state_of(w);
    struct error err;
    if (!w->opts.colocated) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "GENERATE sent to a decode-only worker");
        return;
    }
    if (w->draining) {
        worker_send_error(w, id, WIRE_ERR_OVERLOADED, "this worker is shutting down");
        return;
    }
    if (idmap_get(&d->reqs, id)) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "request id %llu is already in use on this worker",
                          (unsigned long long)id);
        return;
    }
    if (g->n_prompt + 1 > (uint32_t)w->model->cfg.max_pos) {
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) does not fit the "
                          "model's context of %d", g->n_prompt, w->model->cfg.max_pos);
        return;
    }
    if (!fits_pool(w, g->n_prompt + 1)) {
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) and its first generated token "
                          "need more KV cache than this worker's whole pool holds (%d tokens)", g->n_prompt,
                          w->engine.kv.n_blocks * w->engine.kv.block_size);
        return;
    }
    struct seq *s = new_seq(id, g->prompt, g->n_prompt, &g->params, g->tpot_slo_ms, g->ttft_slo_ms, &err);
    if (s && g->constraint && engine_seq_constrain(&w->engine, s, g->constraint, &err) < 0) {
        free_seq(w, s);
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "%s", err.msg);
        return;
    }
    struct dreq *r = s ? new_request(d, id, NULL, g->n_prompt) : NULL;
    if (!r) {
        free_seq(w, s);
        worker_send_error(w, id, WIRE_ERR_INTERNAL, "%s", s ? "out of memory" : err.msg);
        return;
    }
    r->logprobs = g->flags & WIRE_GEN_LOGPROBS;
    r->n_top = r->logprobs ? g->params.top_logprobs : 0;
    if (admit(w, r, s) < 0) {
        free_seq(w, s);
        forget(w, r, false);
        worker_send_error(w, id, WIRE_ERR_INTERNAL, "out of memory");
    }
}

/* A prefill worker introduced itself (REGISTER on the connection it opened): tell it where our
 * pool is. The answer is what tells the prefill worker the connection works — messages sent on one
 * still being set up can be lost without an error — so it sends nothing else before it, and
 * repeats its REGISTER until it comes (docs/transport.md). */
static void send_pool(struct worker *w, struct ucx_peer *peer)
{
    struct wire_msg m = {.type = WIRE_REGISTER};
    struct error err;
    worker_describe(w, &m.u.reg);
    if (ucx_send(peer, &m, NULL, NULL, &err) < 0)
        log_error("telling prefill %s about our KV pool: %s", ucx_peer_name(peer), err.msg);
    free(m.u.reg.pool.rkey);
}

static void on_kv_done_msg(struct worker *w, struct dreq *r, struct wire_kv_done *dn)
{
    if (r->aborted) { /* the transfer is over: the blocks can go, and the prefill's copy */
        send_simple(r->prefill, WIRE_ABORT, r->id);
        forget(w, r, false);
        grant_waiting(w);
        return;
    }
    on_kv_done(w, r, dn);
}

static void decode_on_message(struct worker *w, struct ucx_peer *from, struct wire_msg *msg)
{
    struct dreq *r = idmap_get(&state_of(w)->reqs, msg->req_id);
    if (r && from != w->frontend && from != r->prefill)
        r = NULL; /* only the frontend and the request's own prefill worker speak about it */
    switch (msg->type) {
    case WIRE_GENERATE: on_generate(w, msg->req_id, &msg->u.gen); break;
    case WIRE_KV_RESERVE: on_reserve(w, from, msg->req_id, &msg->u.reserve); break;
    case WIRE_REGISTER:
        if (from != w->frontend && msg->u.reg.role == WIRE_ROLE_PREFILL)
            send_pool(w, from);
        break;
    case WIRE_KV_DONE:
        if (r)
            on_kv_done_msg(w, r, &msg->u.done);
        break;
    case WIRE_ABORT: /* from the frontend (client gone) or the prefill (request ended early) */
        if (r) {
            if (from == r->prefill)
                forget(w, r, false);
            else
                abort_request(w, r);
            grant_waiting(w);
        }
        break;
    default:
        log_warn("unexpected %s from %s", wire_type_name(msg->type), ucx_peer_name(from));
    }
}

/* A prefill worker died: reservations it had not completed are given back and the frontend hears
 * that those requests are lost (it may already have their first token, and waits on us for the
 * rest); running sequences already have their KV and carry on. */
static void decode_on_peer_lost(struct worker *w, struct ucx_peer *peer)
{
    struct dc_state *d = state_of(w);
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&d->reqs, &i, &id, &v);) {
        struct dreq *r = v;
        if (r->prefill != peer)
            continue;
        if (r->state == DR_RUNNING) {
            r->prefill = NULL;
            continue;
        }
        if (!r->aborted)
            worker_send_error(w, r->id, WIRE_ERR_PEER_LOST, "the prefill worker computing this request was "
                              "lost before its KV cache arrived");
        forget(w, r, false);
    }
    grant_waiting(w);
}

static void decode_on_frontend_lost(struct worker *w)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&state_of(w)->reqs, &i, &id, &v);)
        abort_request(w, v);
}

/* Token mail from the engine waits here until every mail queued so far has arrived (after_mail). */
static void decode_on_mail(struct worker *w, struct mail *m)
{
    struct dc_state *d = state_of(w);
    m->next = NULL;
    if (d->tokens_tail)
        d->tokens_tail->next = m;
    else
        d->tokens_head = m;
    d->tokens_tail = m;
}

enum { TOKENS_PER_MSG = 256 }; /* a longer pile-up goes out in several TOKENS */

/* A sequence the engine ended with an error: the frontend gets an ERROR saying why, never a TOKENS
 * whose finish is "error" (which it would have to pass on as a 200). */
static void send_failure(struct worker *w, struct dreq *r, enum dc_error why)
{
    switch (why) {
    case DC_ERR_KV_FULL:
        worker_send_error(w, r->id, WIRE_ERR_BAD_REQUEST, "the sequence outgrew this decode worker's whole KV "
                          "pool (%d tokens); shorten the prompt or lower max_tokens",
                          w->engine.kv.n_blocks * w->engine.kv.block_size);
        break;
    case DC_ERR_STEP:
        worker_send_error(w, r->id, WIRE_ERR_INTERNAL, "the decode worker's forward pass failed (see its log)");
        break;
    default:
        worker_send_error(w, r->id, WIRE_ERR_INTERNAL, "the decode worker ran out of memory");
    }
}

/* One TOKENS message being filled. */
struct tokens_out {
    uint32_t n, cached;
    int32_t tokens[TOKENS_PER_MSG];
    float logprobs[TOKENS_PER_MSG];
    int32_t top_ids[TOKENS_PER_MSG * SAMPLE_MAX_TOP_LOGPROBS];
    float top_logprobs[TOKENS_PER_MSG * SAMPLE_MAX_TOP_LOGPROBS];
};

static void tokens_add(struct tokens_out *o, const struct dreq *r, const struct dc_token *k)
{
    o->tokens[o->n] = k->token;
    o->logprobs[o->n] = k->logprob;
    wire_tokens_fill_top(o->top_ids + o->n * r->n_top, o->top_logprobs + o->n * r->n_top, r->n_top, &k->top);
    o->n++;
}

static void tokens_send(struct worker *w, const struct dreq *r, struct tokens_out *o, enum finish f)
{
    struct wire_msg m = {.type = WIRE_TOKENS, .req_id = r->id};
    m.u.tokens = (struct wire_tokens){(uint8_t)f, r->logprobs, o->n, o->tokens, r->logprobs ? o->logprobs : NULL,
                                      o->cached, r->n_top, o->top_ids, o->top_logprobs};
    worker_send_frontend(w, &m);
    o->n = 0;
}

/* Sends r's tokens from entry `e` of the mail list on (in order, across mails): each entry of r is
 * marked sent, up to and including its finish. Returns r's finish reason. */
static enum finish send_tokens(struct worker *w, struct dreq *r, struct dc_tokens *from, int e)
{
    static struct tokens_out o; /* the loop thread's alone; too big for its stack */
    o.n = o.cached = 0;
    enum finish f = FINISH_NONE;
    enum dc_error why = DC_ERR_NONE;
    for (struct dc_tokens *t = from; t && f == FINISH_NONE; t = (struct dc_tokens *)t->mail.next, e = 0)
        for (; e < t->n && f == FINISH_NONE; e++) {
            struct dc_token *k = &t->t[e];
            if (k->sent || k->req_id != r->id)
                continue;
            k->sent = true;
            if (k->prompt_lp) { /* echo's logprobs come before the first token */
                worker_send_prompt_logprobs(w, r->id, k->prompt_lp, r->n_top);
                prompt_logprobs_free(k->prompt_lp);
                k->prompt_lp = NULL;
            }
            if (k->has_token)
                tokens_add(&o, r, k);
            f = k->finish;
            why = k->error;
            o.cached = k->cached_tokens > o.cached ? k->cached_tokens : o.cached;
            if (o.n == TOKENS_PER_MSG && f == FINISH_NONE)
                tokens_send(w, r, &o, FINISH_NONE);
        }
    enum finish sent = f == FINISH_ERROR ? FINISH_NONE : f;
    if (o.n > 0 || sent != FINISH_NONE)
        tokens_send(w, r, &o, sent);
    if (f == FINISH_ERROR)
        send_failure(w, r, why);
    return f;
}

/* Empties the list of DC_TOKENS mails, freeing the echo logprobs of entries never sent (a request
 * gone meanwhile). */
static void drop_token_mails(struct dc_state *d)
{
    for (struct mail *m = d->tokens_head, *next; m; m = next) {
        next = m->next;
        struct dc_tokens *t = (struct dc_tokens *)m;
        for (int e = 0; e < t->n; e++)
            prompt_logprobs_free(t->t[e].prompt_lp);
        free(m);
    }
    d->tokens_head = d->tokens_tail = NULL;
}

/* Everything that piled up goes out as one TOKENS message per request (coalescing when the loop
 * fell behind the engine). */
static void decode_after_mail(struct worker *w)
{
    struct dc_state *d = state_of(w);
    for (struct mail *m = d->tokens_head; m; m = m->next) {
        struct dc_tokens *t = (struct dc_tokens *)m;
        for (int e = 0; e < t->n; e++) {
            struct dreq *r = t->t[e].sent ? NULL : idmap_get(&d->reqs, t->t[e].req_id);
            if (r && send_tokens(w, r, t, e) != FINISH_NONE)
                forget(w, r, true); /* the engine already dropped the sequence */
        }
    }
    drop_token_mails(d);
    grant_waiting(w);
}

static void decode_fill_load(struct worker *w, struct wire_load *l)
{
    struct dc_state *d = state_of(w);
    l->queued_requests = d->n_waiting + atomic_load(&d->load.waiting);
    l->running = atomic_load(&d->load.running);
}

static void decode_fill_register(struct worker *w, struct wire_register *reg)
{
    struct error err;
    if (kvx_pool_describe(state_of(w)->pool, &reg->pool, &err) < 0)
        log_warn("describing the KV pool: %s", err.msg);
}

static bool decode_busy(struct worker *w)
{
    return state_of(w)->reqs.count > 0;
}

static int decode_start(struct worker *w, struct error *err)
{
    struct kv_pool *kv = &w->engine.kv;
    struct dc_state *d = state_of(w);
    *d = (struct dc_state){0}; /* a role switch may start it again */
    uv_timer_init(&w->loop, &d->wait_timer);
    d->wait_timer.data = w;
    uv_timer_start(&d->wait_timer, on_wait_timer, 1000, 1000);
    return kvx_pool_map(w->ucx, kv->data, (uint32_t)kv->n_layers, (uint32_t)kv->n_blocks,
                        kv->block_bytes, &state_of(w)->pool, err);
}

static void decode_stop(struct worker *w)
{
    struct dc_state *d = state_of(w);
    uv_close((uv_handle_t *)&d->wait_timer, NULL);
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&d->reqs, &i, &id, &v);) {
        struct dreq *r = v;
        kv_seq_release(&w->engine.kv, &r->kv);
        free(r->abort);
        free(r);
    }
    idmap_free(&d->reqs);
    drop_token_mails(d);
    kvx_pool_unmap(d->pool);
    d->pool = NULL;
}

const struct worker_role decode_role = {
    .role = WIRE_ROLE_DECODE,
    .listens = true,
    .start = decode_start,
    .stop = decode_stop,
    .on_message = decode_on_message,
    .on_peer_lost = decode_on_peer_lost,
    .on_frontend_lost = decode_on_frontend_lost,
    .on_mail = decode_on_mail,
    .after_mail = decode_after_mail,
    .fill_load = decode_fill_load,
    .fill_register = decode_fill_register,
    .busy = decode_busy,
    .engine_main = decode_engine_main,
};
