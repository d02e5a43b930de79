/* decode.c — the decode worker's loop thread: one `struct dreq` per request it knows, from
 * KV_RESERVE (or, colocated, GENERATE) to the last TOKENS.
 *
 *   KV_RESERVE ─▶ blocks free? KV_GRANT : KV_WAIT (FCFS; granted as blocks come back)
 *   KV_DONE    ─▶ the sequence (prompt + first token + sampler state) joins the running batch; KV_ACK
 *   tokens from the engine ─▶ TOKENS to the frontend, several per message when they piled up
 *   ABORT      ─▶ whatever the request holds is freed at once */
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "common/util/idmap.h"
#include "proto/kv_xfer.h"
#include "common/util/log.h"

enum dreq_state { DR_WAITING, DR_GRANTED, DR_RUNNING };

struct dreq {
    uint64_t id;
    enum dreq_state state;
    struct ucx_peer *prefill; /* NULL when colocated */
    uint32_t n_tokens;        /* reserved for */
    struct kv_seq kv;         /* granted blocks until the engine takes them */
    bool logprobs;
    bool aborted;             /* ended by the frontend; its blocks wait for the prefill to stop writing */
    struct dreq *next_waiting;
};

static struct idmap reqs;
static struct dreq *wait_head, *wait_tail;
static struct kvx_pool *pool;

static void send_simple(struct ucx_peer *p, uint16_t type, uint64_t id)
{
    struct wire_msg m = {.type = type, .req_id = id};
    struct error err;
    if (p && ucx_send(p, &m, NULL, NULL, &err) < 0)
        log_warn("sending %s: %s", wire_type_name(type), err.msg);
}

static void unlink_waiting(struct dreq *r)
{
    struct dreq **pp = &wait_head, *prev = NULL;
    for (; *pp && *pp != r; pp = &(*pp)->next_waiting)
        prev = *pp;
    if (!*pp)
        return;
    *pp = r->next_waiting;
    if (wait_tail == r)
        wait_tail = prev;
}

/* Forgets r, giving back whatever it holds. */
static void drop(struct worker *w, struct dreq *r)
{
    if (r->state == DR_WAITING)
        unlink_waiting(r);
    else if (r->state == DR_RUNNING) {
        struct dc_abort *m = calloc(1, sizeof *m);
        m->mail.type = DC_ABORT;
        m->req_id = r->id;
        mailbox_post(&w->to_engine, &m->mail);
    }
    kv_seq_release(&w->engine.kv, &r->kv);
    idmap_del(&reqs, r->id);
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
    drop(w, r);
}

/* Blocks are granted only while a margin stays free for the running sequences to grow into. */
static bool try_grant(struct worker *w, struct dreq *r)
{
    struct kv_pool *kv = &w->engine.kv;
    int margin = kv->n_blocks / 100 + 1, need = kv_blocks_for(kv, (int)r->n_tokens);
    if (kv->n_blocks - kv_used(kv) - need < margin && kv_used(kv) > 0)
        return false;
    if (kv_seq_reserve(kv, &r->kv, (int)r->n_tokens) < 0)
        return false;
    struct wire_msg m = {.type = WIRE_KV_GRANT, .req_id = r->id};
    uint32_t *ids = malloc((size_t)r->kv.n_blocks * sizeof *ids);
    for (int i = 0; i < r->kv.n_blocks; i++)
        ids[i] = (uint32_t)r->kv.blocks[i];
    m.u.grant = (struct wire_kv_grant){(uint32_t)r->kv.n_blocks, ids};
    struct error err;
    if (ucx_send(r->prefill, &m, NULL, NULL, &err) < 0)
        log_warn("request %llu: KV_GRANT: %s", (unsigned long long)r->id, err.msg);
    free(ids);
    r->state = DR_GRANTED;
    return true;
}

static void grant_waiting(struct worker *w)
{
    while (wait_head && try_grant(w, wait_head)) {
        struct dreq *r = wait_head;
        wait_head = r->next_waiting;
        if (!wait_head)
            wait_tail = NULL;
    }
}

static void on_reserve(struct worker *w, struct ucx_peer *from, uint64_t id, struct wire_kv_reserve *res)
{
    log_debug("request %llu: KV_RESERVE for %u tokens from %s", (unsigned long long)id, res->n_tokens,
              ucx_peer_name(from));
    if (idmap_get(&reqs, id) || res->n_tokens == 0 || res->n_tokens >= (uint32_t)w->model->cfg.max_pos) {
        struct wire_msg m = {.type = WIRE_ERROR, .req_id = id};
        m.u.error.code = WIRE_ERR_PROTOCOL;
        snprintf(m.u.error.message, sizeof m.u.error.message, "KV_RESERVE for %u tokens refused",
                 res->n_tokens);
        struct error err;
        ucx_send(from, &m, NULL, NULL, &err);
        return;
    }
    struct dreq *r = calloc(1, sizeof *r);
    r->id = id;
    r->prefill = from;
    r->n_tokens = res->n_tokens;
    idmap_put(&reqs, id, r);
    if (!wait_head && try_grant(w, r))
        return;
    r->state = DR_WAITING;
    uint32_t position = 0;
    for (struct dreq *q = wait_head; q; q = q->next_waiting)
        position++;
    if (wait_tail)
        wait_tail->next_waiting = r;
    else
        wait_head = r;
    wait_tail = r;
    struct wire_msg m = {.type = WIRE_KV_WAIT, .req_id = id, .u.wait.queue_position = position};
    struct error err;
    ucx_send(from, &m, NULL, NULL, &err);
}

static void admit(struct worker *w, struct dreq *r, struct seq *s)
{
    struct dc_admit *m = calloc(1, sizeof *m);
    m->mail.type = DC_ADMIT;
    m->seq = s;
    r->state = DR_RUNNING;
    log_debug("request %llu admitted: %d prompt tokens", (unsigned long long)r->id, s->n_prompt);
    mailbox_post(&w->to_engine, &m->mail);
}

static void on_kv_done(struct worker *w, struct dreq *r, struct wire_kv_done *d)
{
    struct error err;
    struct seq *s = calloc(1, sizeof *s);
    if (r->state != DR_GRANTED || d->n_prompt != r->n_tokens || !s ||
        seq_init(s, r->id, d->prompt, (int)d->n_prompt, &d->params, &err) < 0 ||
        seq_append(s, d->first_token) < 0) {
        free(s ? s->tokens : NULL), free(s);
        worker_send_error(w, r->id, WIRE_ERR_PROTOCOL, "KV_DONE does not match the reservation");
        send_simple(r->prefill, WIRE_ABORT, r->id);
        drop(w, r);
        return;
    }
    s->rng = d->rng; /* continue the prefill's random stream exactly */
    s->last_logprob = d->first_logprob;
    s->n_cached = s->n_prompt;
    s->kv = r->kv; /* the blocks the prefill wrote go with the sequence */
    memset(&r->kv, 0, sizeof r->kv);
    r->logprobs = d->flags & WIRE_GEN_LOGPROBS;
    admit(w, r, s);
    send_simple(r->prefill, WIRE_KV_ACK, r->id);
}

static void on_generate(struct worker *w, uint64_t id, struct wire_generate *g)
{
    struct error err;
    if (!w->opts.colocated) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "GENERATE sent to a decode-only worker");
        return;
    }
    if (w->draining) {
        worker_send_error(w, id, WIRE_ERR_OVERLOADED, "this worker is shutting down");
        return;
    }
    if (g->n_prompt + 1 > (uint32_t)w->model->cfg.max_pos || idmap_get(&reqs, id)) {
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) does not fit the "
                                 "model's context of %d", g->n_prompt, w->model->cfg.max_pos);
        return;
    }
    struct dreq *r = calloc(1, sizeof *r);
    struct seq *s = calloc(1, sizeof *s);
    if (!r || !s || seq_init(s, id, g->prompt, (int)g->n_prompt, &g->params, &err) < 0) {
        free(r), free(s);
        worker_send_error(w, id, WIRE_ERR_INTERNAL, "%s", err.msg);
        return;
    }
    r->id = id;
    r->n_tokens = g->n_prompt;
    r->logprobs = g->flags & WIRE_GEN_LOGPROBS;
    idmap_put(&reqs, id, r);
    admit(w, r, s);
}

static void send_pool(struct worker *w, struct ucx_peer *peer);

static void decode_on_message(struct worker *w, struct ucx_peer *from, struct wire_msg *msg)
{
    struct dreq *r = idmap_get(&reqs, msg->req_id);
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
        if (r && r->aborted) { /* the transfer is over: the blocks can go, and the prefill's copy */
            send_simple(r->prefill, WIRE_ABORT, r->id);
            drop(w, r);
            grant_waiting(w);
        } else if (r) {
            on_kv_done(w, r, &msg->u.done);
        }
        break;
    case WIRE_ABORT: /* from the frontend (client gone) or the prefill (request ended early) */
        if (r) {
            if (from == r->prefill)
                drop(w, r);
            else
                abort_request(w, r);
            grant_waiting(w);
        }
        break;
    default:
        log_warn("unexpected %s from %s", wire_type_name(msg->type), ucx_peer_name(from));
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

/* A prefill worker died: reservations it had not completed are given back and the frontend hears
 * that those requests are lost (it may already have their first token, and waits on us for the
 * rest); running sequences already have their KV and carry on. */
static void decode_on_peer_lost(struct worker *w, struct ucx_peer *peer)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);) {
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
        drop(w, r);
    }
    grant_waiting(w);
}

static void decode_on_frontend_lost(struct worker *w)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);)
        abort_request(w, v);
}

/* Token entries from the engine not yet sent, in the order they were produced. */
static struct dc_token *pending;
static int n_pending, cap_pending;

static void send_tokens(struct worker *w, struct dreq *r, const int32_t *tokens, const float *logprobs,
                        uint32_t n, enum finish f)
{
    struct wire_msg m = {.type = WIRE_TOKENS, .req_id = r->id};
    m.u.tokens = (struct wire_tokens){(uint8_t)f, r->logprobs, n, (int32_t *)tokens,
                                      r->logprobs ? (float *)logprobs : NULL};
    worker_send_frontend(w, &m);
    if (f != FINISH_NONE) {
        r->state = DR_GRANTED; /* the engine already dropped it: nothing to abort */
        drop(w, r);
    }
}

static void decode_on_mail(struct worker *w, struct mail *m)
{
    struct dc_tokens *t = (struct dc_tokens *)m;
    if (n_pending + t->n > cap_pending) {
        int cap = 2 * (n_pending + t->n);
        struct dc_token *p = realloc(pending, (size_t)cap * sizeof *p);
        if (!p) {
            log_error("out of memory queueing %d tokens", t->n);
            free(m);
            return;
        }
        pending = p;
        cap_pending = cap;
    }
    memcpy(pending + n_pending, t->t, (size_t)t->n * sizeof *t->t);
    n_pending += t->n;
    free(m);
}

/* Everything that piled up goes out as one TOKENS message per request (coalescing when the loop
 * fell behind the engine). */
static void decode_after_mail(struct worker *w)
{
    int32_t *tokens = malloc((size_t)(n_pending + 1) * sizeof *tokens);
    float *logprobs = malloc((size_t)(n_pending + 1) * sizeof *logprobs);
    for (int i = 0; i < n_pending && tokens && logprobs; i++) {
        struct dreq *r = pending[i].token == -2 ? NULL : idmap_get(&reqs, pending[i].req_id);
        if (!r)
            continue;
        uint32_t n = 0;
        enum finish f = FINISH_NONE;
        for (int j = i; j < n_pending && f == FINISH_NONE; j++) {
            if (pending[j].req_id != r->id || pending[j].token == -2)
                continue;
            if (pending[j].token >= 0) {
                tokens[n] = pending[j].token;
                logprobs[n++] = pending[j].logprob;
            }
            f = pending[j].finish;
            pending[j].token = -2; /* consumed */
        }
        send_tokens(w, r, tokens, logprobs, n, f);
    }
    free(tokens);
    free(logprobs);
    n_pending = 0;
    grant_waiting(w);
}

static void decode_fill_load(struct worker *w, struct wire_load *l)
{
    uint32_t waiting = 0;
    for (struct dreq *q = wait_head; q; q = q->next_waiting)
        waiting++;
    l->queued_requests = waiting + atomic_load(&decode_load.waiting);
    l->running = atomic_load(&decode_load.running);
}

static void decode_fill_register(struct worker *w, struct wire_register *reg)
{
    struct error err;
    if (kvx_pool_describe(pool, &reg->pool, &err) < 0)
        log_warn("describing the KV pool: %s", err.msg);
}

static bool decode_busy(struct worker *w)
{
    return reqs.count > 0;
}

static int decode_start(struct worker *w, struct error *err)
{
    struct kv_pool *kv = &w->engine.kv;
    return kvx_pool_map(w->ucx, kv->data, (uint32_t)kv->n_layers, (uint32_t)kv->n_blocks,
                        kv->block_bytes, &pool, err);
}

static void decode_stop(struct worker *w)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);) {
        kv_seq_release(&w->engine.kv, &((struct dreq *)v)->kv);
        free(v);
    }
    idmap_free(&reqs);
    free(pending);
    kvx_pool_unmap(pool);
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
