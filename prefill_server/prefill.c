/* prefill.c — the prefill worker's loop thread: one `struct preq` per request, from GENERATE to the
 * decode worker's KV_ACK.
 *
 *   GENERATE ─▶ KV_RESERVE to the decode worker, prompt to the engine
 *   KV_GRANT + decode pool known + layer computed ─▶ put that layer's blocks (one put per run)
 *   first token + decode worker's answer (KV_GRANT or KV_WAIT) ─▶ TOKENS to the frontend
 *   all layers put + first token ─▶ flush ─▶ KV_DONE ─▶ (KV_ACK) ─▶ blocks freed
 *
 * A request that ends early (abort, failure, a one-token answer) waits for its puts to complete and
 * flushes before telling the decode worker to drop its grant, so a late put can never land in blocks
 * the decode worker has given to someone else. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/log.h"
#include "prefill.h"

/* A decode worker we push to. Nothing but our REGISTER goes to it until its answer (its pool) has
 * come back: messages sent on a connection still being set up can be lost without an error (seen
 * with UCX 1.13 over tcp), so the answer is what proves the connection, and until it comes our
 * REGISTER is repeated every second while KV_RESERVEs wait in `waiting`. */
struct dpeer {
    uint32_t id;
    char addr[WIRE_ADDR_MAX];
    struct ucx_peer *peer;
    bool attached; /* its pool (REGISTER) is known */
    uint64_t prefix_salt; /* its prefix cache's, from that REGISTER: ours too, and it is sent prompts */
    uint64_t *waiting; /* requests whose KV_RESERVE waits for that */
    int n_waiting, cap_waiting;
};

enum preq_state {
    PR_RESERVING, /* KV_RESERVE sent, or held until the decode worker's pool is known: no grant yet */
    PR_PUSHING,   /* granted: each layer is put as soon as it is computed */
    PR_FINISHING, /* every layer put and the first token sampled: flushing, then KV_DONE */
    PR_HANDED,    /* KV_DONE sent: our copy goes when the decode worker's KV_ACK comes */
    PR_ENDING,    /* ended early: waits for its puts, flushes, tells the decode worker, goes */
};

struct preq {
    uint64_t id;
    enum preq_state state;
    struct worker *w;         /* completion callbacks get the request alone */
    struct dpeer *dp;         /* NULL once the decode worker is lost */
    struct wire_kv_done done; /* prompt, params, flags; first token and rng once sampled */
    uint32_t *dst, n_dst;     /* granted decode blocks */
    uint32_t n_dst_cached;    /* leading granted blocks the decode worker's cache holds already */
    struct pf_final *final;   /* our blocks (final->blocks), once the step that completes the prompt started */
    bool first_done;          /* the first token is sampled: done.first_token, first_logprob, rng are set */
    bool accepted;            /* the decode worker answered KV_RESERVE with KV_GRANT or KV_WAIT */
    bool announced;           /* the first token went to the frontend */
    uint32_t cached_tokens;   /* prompt tokens our prefix cache held, for the first TOKENS */
    struct sample_top first_top; /* the first token's alternatives, for the first TOKENS */
    uint32_t layers_done, layers_pushed;
    int inflight; /* puts and flushes whose callbacks have not run */
    double forward_end_ms; /* when the first token arrived, i.e. the forward pass ended */
    double first_put_ms;   /* when the first layer's put was posted; 0 before */
    struct wire_kv_stats stats; /* what the transfer cost, for the frontend's metrics */
    struct pf_id *free_mail; /* PF_FREE for the engine, allocated with the request */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct pf_state *state_of(struct worker *w)
{
    return w->state;
}

static void send_to(struct ucx_peer *p, uint16_t type, uint64_t req_id)
{
    struct wire_msg m = {.type = type, .req_id = req_id};
    struct error err;
    if (p && ucx_send(p, &m, NULL, NULL, &err) < 0)
        log_warn("request %llu: sending %s: %s", (unsigned long long)req_id, wire_type_name(type), err.msg);
}

/* The engine drops the sequence (queued or held) and its blocks. */
static void post_free(struct preq *r)
{
    mailbox_post(&r->w->to_engine, &r->free_mail->mail);
    r->free_mail = NULL;
}

static void destroy(struct preq *r)
{
    idmap_del(&state_of(r->w)->reqs, r->id);
    free(r->done.prompt);
    free(r->done.constraint);
    free(r->dst);
    free(r->final);
    free(r->free_mail);
    free(r);
}

static void on_end_flushed(void *arg, int status, const char *reason);

/* Continues ending r once nothing is in flight: the decode worker drops its grant, r goes. */
static void maybe_destroy(struct preq *r)
{
    if (r->inflight > 0)
        return;
    if (r->dp && r->dp->peer && r->layers_pushed > 0) {
        struct error err;
        r->inflight++;
        if (ucx_flush(r->dp->peer, on_end_flushed, r, &err) == 0)
            return;
        r->inflight--;
    }
    if (r->dp && r->dp->peer)
        send_to(r->dp->peer, WIRE_ABORT, r->id);
    destroy(r);
}

static void on_end_flushed(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    (void)status, (void)reason; /* flushed or failed, nothing of ours is in flight any more */
    r->inflight--;
    r->layers_pushed = 0;
    maybe_destroy(r);
}

/* Ends r: the engine drops its sequence, the decode worker its grant (after our puts drained). */
static void end_request(struct preq *r)
{
    if (r->state == PR_ENDING)
        return;
    r->state = PR_ENDING;
    pf_cancel_add(&state_of(r->w)->cancel, r->id);
    post_free(r);
    maybe_destroy(r);
}

static void fail_request(struct preq *r, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_request(struct preq *r, uint32_t code, const char *fmt, ...)
{
    char why[WIRE_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    worker_send_error(r->w, r->id, code, "%s", why);
    end_request(r);
}

/* A put or flush of r completed. Returns true when r needs nothing more from this completion: it
 * is ending (and may now be destroyed), or the transfer failed (and r with it). */
static bool transfer_settled(struct preq *r, int status, const char *reason)
{
    bool settled = r->state == PR_ENDING || status < 0; /* r may be freed below */
    r->inflight--;
    if (r->state == PR_ENDING)
        maybe_destroy(r);
    else if (status < 0)
        fail_request(r, WIRE_ERR_PEER_LOST, "KV transfer to the decode worker failed: %s",
                     reason ? reason : "unknown error");
    return settled;
}

static void on_kv_done_flushed(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    if (transfer_settled(r, status, reason))
        return;
    struct wire_msg m = {.type = WIRE_KV_DONE, .req_id = r->id, .u.done = r->done};
    struct error err;
    if (ucx_send(r->dp->peer, &m, NULL, NULL, &err) < 0) {
        fail_request(r, WIRE_ERR_PEER_LOST, "sending KV_DONE: %s", err.msg);
        return;
    }
    r->state = PR_HANDED;
    double now = now_ms();
    r->stats.seconds = r->first_put_ms ? (float)((now - r->first_put_ms) / 1e3) : 0.0f;
    r->stats.exposed_seconds = (float)((now - r->forward_end_ms) / 1e3);
    struct wire_msg stats = {.type = WIRE_KV_STATS, .req_id = r->id, .u.stats = r->stats};
    worker_send_frontend(r->w, &stats);
    log_debug("request %llu: KV_DONE sent %.3f ms after its forward pass ended", (unsigned long long)r->id,
              now - r->forward_end_ms);
}

static void try_finish(struct preq *r)
{
    if (r->state != PR_PUSHING || !r->first_done || r->inflight > 0 ||
        r->layers_pushed < (uint32_t)r->w->model->cfg.n_layers)
        return;
    struct error err;
    r->state = PR_FINISHING;
    r->inflight++;
    if (ucx_flush(r->dp->peer, on_kv_done_flushed, r, &err) < 0) {
        r->inflight--;
        fail_request(r, WIRE_ERR_PEER_LOST, "flushing the KV transfer: %s", err.msg);
    }
}

static void on_put_done(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    if (!transfer_settled(r, status, reason))
        try_finish(r);
}

/* Pushes every layer that is computed and not yet sent, once the grant and the pool are known: all
 * of the prompt's blocks but those the decode worker's prefix cache holds. */
static void try_push(struct preq *r)
{
    if (r->state != PR_PUSHING || !r->final || !r->dp->attached)
        return;
    struct pf_state *ps = state_of(r->w);
    uint32_t n = r->final->n_blocks, skip = r->n_dst_cached < n ? r->n_dst_cached : n;
    if (r->n_dst < n) {
        fail_request(r, WIRE_ERR_PROTOCOL, "the decode worker granted %u KV blocks; the prompt needs %u",
                     r->n_dst, n);
        return;
    }
    uint64_t block_bytes = r->w->engine.kv.block_bytes;
    while (r->layers_pushed < r->layers_done) {
        struct error err;
        r->inflight++;
        if (kvx_put_layer(r->dp->peer, ps->pool, r->layers_pushed, r->final->blocks + skip, r->dst + skip,
                          n - skip, on_put_done, r, &err) < 0) {
            r->inflight--;
            fail_request(r, WIRE_ERR_PEER_LOST, "%s", err.msg);
            return;
        }
        r->layers_pushed++;
        r->first_put_ms = r->first_put_ms ? r->first_put_ms : now_ms();
        r->stats.bytes += (n - skip) * block_bytes;
        r->stats.blocks += n - skip;
        ps->kv_bytes_sent += (n - skip) * block_bytes;
        ps->kv_bytes_saved += skip * block_bytes;
    }
    try_finish(r);
}

/* ---- decode workers ---- */

/* Our REGISTER to a decode worker; it answers with its own, pool and rkey included. */
static void send_hello(struct worker *w, struct dpeer *dp)
{
    struct wire_msg hello = {.type = WIRE_REGISTER};
    struct error err;
    worker_describe(w, &hello.u.reg);
    if (ucx_send(dp->peer, &hello, NULL, NULL, &err) < 0)
        log_warn("introducing ourselves to decode worker %s: %s", dp->addr, err.msg);
}

static void send_reserve(struct preq *r)
{
    struct wire_msg m = {.type = WIRE_KV_RESERVE, .req_id = r->id};
    struct error err;
    m.u.reserve = (struct wire_kv_reserve){.n_tokens = r->done.n_prompt, .prefill_worker_id = r->w->opts.id};
    uint64_t salt = kv_prefix_salt(&r->w->engine.kv);
    if (salt && salt == r->dp->prefix_salt) { /* it can find the prompt's blocks in its cache */
        m.u.reserve.n_prompt = r->done.n_prompt;
        m.u.reserve.prompt = r->done.prompt;
    }
    if (ucx_send(r->dp->peer, &m, NULL, NULL, &err) < 0)
        fail_request(r, WIRE_ERR_PEER_LOST, "sending KV_RESERVE: %s", err.msg);
}

/* KV_RESERVE now, or once the decode worker has answered our REGISTER. */
static void reserve(struct preq *r)
{
    struct dpeer *dp = r->dp;
    if (dp->attached) {
        send_reserve(r);
        return;
    }
    if (dp->n_waiting == dp->cap_waiting) {
        int cap = dp->cap_waiting ? 2 * dp->cap_waiting : 16;
        uint64_t *q = realloc(dp->waiting, (size_t)cap * sizeof *q);
        if (!q) {
            fail_request(r, WIRE_ERR_INTERNAL, "out of memory");
            return;
        }
        dp->waiting = q;
        dp->cap_waiting = cap;
    }
    dp->waiting[dp->n_waiting++] = r->id;
}

static void on_hello_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&state_of(w)->dpeers, &i, &id, &v);)
        if (!((struct dpeer *)v)->attached)
            send_hello(w, v);
}

static void free_dpeer(struct dpeer *dp)
{
    free(dp->waiting);
    free(dp);
}

static struct dpeer *decode_peer(struct worker *w, uint32_t id, const char *addr, struct error *err)
{
    struct pf_state *ps = state_of(w);
    struct dpeer *dp = idmap_get(&ps->dpeers, id);
    if (dp && strcmp(dp->addr, addr) == 0)
        return dp;
    if (dp) { /* the decode worker came back elsewhere: the old endpoint is stale */
        ucx_peer_close(dp->peer);
        idmap_del(&ps->dpeers, id);
        free_dpeer(dp);
    }
    dp = calloc(1, sizeof *dp);
    if (!dp || idmap_put(&ps->dpeers, id, dp) < 0) {
        free(dp);
        error_set(err, "out of memory");
        return NULL;
    }
    dp->id = id;
    snprintf(dp->addr, sizeof dp->addr, "%s", addr);
    if (ucx_connect(w->ucx, addr, &dp->peer, err) < 0) {
        idmap_del(&ps->dpeers, id);
        free(dp);
        return NULL;
    }
    ucx_peer_set_user(dp->peer, dp);
    send_hello(w, dp);
    return dp;
}

static void on_decode_register(struct worker *w, struct dpeer *dp, struct wire_register *reg)
{
    struct pf_state *ps = state_of(w);
    struct error err;
    log_debug("decode worker %u at %s: pool of %u blocks known", dp->id, dp->addr, reg->pool.n_blocks);
    if (worker_check_pair(w, reg, &err) < 0) {
        log_error("decode worker %s refused: %s", dp->addr, err.msg);
        for (int i = 0; i < dp->n_waiting; i++) {
            struct preq *r = idmap_get(&ps->reqs, dp->waiting[i]);
            if (r && r->state != PR_ENDING && r->dp == dp)
                fail_request(r, WIRE_ERR_INTERNAL, "%s", err.msg);
        }
        dp->n_waiting = 0;
        return;
    }
    if (kvx_peer_attach(dp->peer, &reg->pool, &err) < 0) {
        log_error("decode worker %s: %s", dp->addr, err.msg);
        return;
    }
    dp->attached = true;
    dp->prefix_salt = reg->prefix_salt;
    for (int i = 0; i < dp->n_waiting; i++) {
        struct preq *r = idmap_get(&ps->reqs, dp->waiting[i]);
        if (r && r->state == PR_RESERVING && r->dp == dp)
            send_reserve(r);
    }
    dp->n_waiting = 0;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&ps->reqs, &i, &id, &v);)
        if (((struct preq *)v)->dp == dp)
            try_push(v);
}

static void on_decode_lost(struct worker *w, struct ucx_peer *peer)
{
    struct pf_state *ps = state_of(w);
    struct dpeer *dp = ucx_peer_user(peer);
    if (!dp)
        return;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&ps->reqs, &i, &id, &v);) {
        struct preq *r = v;
        if (r->dp != dp)
            continue;
        r->dp = NULL; /* nothing more goes to it; its callbacks still arrive (with errors) */
        if (r->state != PR_ENDING)
            fail_request(r, WIRE_ERR_PEER_LOST, "the decode worker serving this request was lost");
    }
    idmap_del(&ps->dpeers, dp->id);
    free_dpeer(dp);
}

/* ---- requests ---- */

static void free_prompt(struct worker *w, struct pf_new *m);

/* The prompt as the engine will hold it, with its failure mail and its structured-output matcher;
 * NULL with err set. */
static struct pf_new *new_prompt(struct worker *w, uint64_t id, const struct wire_generate *g, struct error *err)
{
    struct pf_new *m = calloc(1, sizeof *m);
    struct pf_seq *ps = calloc(1, sizeof *ps);
    struct pf_failed *f = calloc(1, sizeof *f);
    if (!m || !ps || !f) {
        free(m), free(ps), free(f);
        error_set(err, "out of memory");
        return NULL;
    }
    if (engine_seq_init(&ps->seq, id, g->prompt, (int)g->n_prompt, &g->params, err) < 0) {
        free(m), free(ps), free(f);
        return NULL;
    }
    f->mail.type = PF_FAILED;
    f->req_id = id;
    ps->failed = f;
    m->mail.type = PF_NEW;
    m->ps = ps;
    if (g->constraint && engine_seq_constrain(&w->engine, &ps->seq, g->constraint, err) < 0) {
        free_prompt(w, m);
        return NULL;
    }
    return m;
}

static void free_prompt(struct worker *w, struct pf_new *m)
{
    engine_seq_release(&m->ps->seq, &w->engine.kv); /* it holds no blocks yet */
    free(m->ps->failed);
    free(m->ps);
    free(m);
}

/* A new request, known by id from now on; NULL when memory ran out. */
static struct preq *new_request(struct worker *w, uint64_t id)
{
    struct preq *r = calloc(1, sizeof *r);
    struct pf_id *fm = calloc(1, sizeof *fm);
    if (!r || !fm || idmap_put(&state_of(w)->reqs, id, r) < 0) {
        free(r), free(fm);
        return NULL;
    }
    fm->mail.type = PF_FREE;
    fm->req_id = id;
    *r = (struct preq){.id = id, .state = PR_RESERVING, .w = w, .free_mail = fm};
    return r;
}

static void on_generate(struct worker *w, uint64_t id, struct wire_generate *g)
{
    struct error err;
    if (w->draining) {
        worker_send_error(w, id, WIRE_ERR_OVERLOADED, "this prefill worker is shutting down");
        return;
    }
    if (g->n_prompt + 1 > (uint32_t)w->model->cfg.max_pos) {
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) leaves no room in "
                          "the model's context of %d", g->n_prompt, w->model->cfg.max_pos);
        return;
    }
    const struct kv_pool *kv = &w->engine.kv;
    if (((uint64_t)g->n_prompt + (uint64_t)kv->block_size - 1) / (uint64_t)kv->block_size > (uint64_t)kv->n_blocks) {
        worker_send_error(w, id, WIRE_ERR_BAD_REQUEST, "the prompt (%u tokens) needs more KV cache than this "
                          "prefill worker's whole pool holds (%d tokens)", g->n_prompt, kv->n_blocks * kv->block_size);
        return;
    }
    if (!g->decode_addr[0]) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "GENERATE names no decode worker");
        return;
    }
    if (idmap_get(&state_of(w)->reqs, id)) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "request id %llu is already in use on this prefill worker",
                          (unsigned long long)id);
        return;
    }
    struct pf_new *m = new_prompt(w, id, g, &err);
    struct preq *r = NULL;
    if (m && !(r = new_request(w, id)))
        error_set(&err, "out of memory");
    if (r && !(r->dp = decode_peer(w, g->decode_worker_id, g->decode_addr, &err))) {
        destroy(r);
        r = NULL;
    }
    if (!r) {
        if (m)
            free_prompt(w, m);
        worker_send_error(w, id, WIRE_ERR_INTERNAL, "%s", err.msg);
        return;
    }
    r->done.params = g->params;
    r->done.flags = g->flags;
    r->done.tpot_slo_ms = g->tpot_slo_ms;
    r->done.n_prompt = g->n_prompt;
    r->done.prompt = g->prompt; /* taken from the message */
    r->done.constraint = g->constraint;
    g->prompt = NULL;
    g->constraint = NULL;
    mailbox_post(&w->to_engine, &m->mail); /* before anything can end r: PF_FREE must follow PF_NEW */
    reserve(r);
}

/* TOKENS with the first token, its logprob and alternatives if the request wants them. */
static void send_first(struct worker *w, struct preq *r, enum finish finish, int32_t token, float logprob,
                       const struct sample_top *top, uint32_t cached_tokens)
{
    bool logprobs = r->done.flags & WIRE_GEN_LOGPROBS;
    int k = logprobs ? r->done.params.top_logprobs : 0;
    int32_t top_ids[SAMPLE_MAX_TOP_LOGPROBS];
    float top_lps[SAMPLE_MAX_TOP_LOGPROBS];
    wire_tokens_fill_top(top_ids, top_lps, k, top);
    struct wire_msg m = {.type = WIRE_TOKENS, .req_id = r->id};
    m.u.tokens = (struct wire_tokens){(uint8_t)finish, logprobs, 1, &token, logprobs ? &logprob : NULL,
                                      cached_tokens, (uint8_t)k, top_ids, top_lps};
    worker_send_frontend(w, &m);
}

/* The first token goes to the frontend once the decode worker has taken the request: one that
 * refuses it (a prompt its whole pool cannot hold) is answered with that error alone, never with a
 * token first. The answer is a round trip the forward pass almost always outlasts. */
static void announce_first(struct preq *r)
{
    if (!r->first_done || !r->accepted || r->announced)
        return;
    r->announced = true;
    send_first(r->w, r, FINISH_NONE, r->done.first_token, r->done.first_logprob, &r->first_top, r->cached_tokens);
}

static void on_grant(struct worker *w, struct ucx_peer *from, struct preq *r, uint64_t id,
                     struct wire_kv_grant *g)
{
    (void)w;
    if (!r || r->state != PR_RESERVING) { /* gone already, or granted twice: give the blocks back */
        send_to(from, WIRE_ABORT, id);
        return;
    }
    log_debug("request %llu: %u decode blocks granted", (unsigned long long)id, g->n_blocks);
    r->state = PR_PUSHING;
    r->dst = g->blocks; /* taken */
    r->n_dst = g->n_blocks;
    r->n_dst_cached = g->n_cached;
    g->blocks = NULL;
    r->accepted = true;
    announce_first(r);
    try_push(r);
}

static void prefill_on_message(struct worker *w, struct ucx_peer *from, struct wire_msg *msg)
{
    struct pf_state *ps = state_of(w);
    struct preq *r = idmap_get(&ps->reqs, msg->req_id);
    if (r && from != w->frontend && (!r->dp || from != r->dp->peer))
        r = NULL; /* only the frontend and the request's own decode worker speak about it */
    struct dpeer *dp;
    switch (msg->type) {
    case WIRE_GENERATE: on_generate(w, msg->req_id, &msg->u.gen); break;
    case WIRE_REGISTER: /* a decode worker's answer to our REGISTER: its pool */
        if (from != w->frontend && (dp = idmap_get(&ps->dpeers, msg->u.reg.worker_id)))
            on_decode_register(w, dp, &msg->u.reg);
        else
            log_warn("REGISTER from %s (worker %u) matches no decode worker we use", ucx_peer_name(from),
                     msg->u.reg.worker_id);
        break;
    case WIRE_KV_GRANT: on_grant(w, from, r, msg->req_id, &msg->u.grant); break;
    case WIRE_KV_WAIT:
        log_debug("request %llu waits for decode KV (position %u)", (unsigned long long)msg->req_id,
                  msg->u.wait.queue_position);
        if (r && r->state == PR_RESERVING) {
            r->accepted = true;
            announce_first(r);
        }
        break;
    case WIRE_KV_ACK: /* the decode worker has the sequence: our copy can go */
        if (r && r->state == PR_HANDED && r->inflight == 0) {
            post_free(r);
            destroy(r);
        }
        break;
    case WIRE_ABORT:
        log_debug("request %llu: ABORT from %s", (unsigned long long)msg->req_id, ucx_peer_name(from));
        if (r)
            end_request(r);
        break;
    case WIRE_ERROR:
        if (r && from != w->frontend) /* the decode worker refused the request: pass its reason on */
            fail_request(r, msg->u.error.code, "%s", msg->u.error.message);
        break;
    default:
        log_warn("unexpected %s from %s", wire_type_name(msg->type), ucx_peer_name(from));
    }
}

/* ---- mail from the engine thread ---- */

static void on_first(struct worker *w, struct preq *r, struct pf_first *f)
{
    if (f->prompt_lp) /* before the first token, which may wait for the decode worker */
        worker_send_prompt_logprobs(w, r->id, f->prompt_lp, r->done.params.top_logprobs);
    if (f->finish != FINISH_NONE) { /* a one-token answer: the decode worker is not needed */
        send_first(w, r, f->finish, f->token, f->logprob, &f->top, f->cached_tokens);
        end_request(r);
        return;
    }
    r->first_done = true;
    r->forward_end_ms = now_ms();
    r->done.first_token = f->token;
    r->done.first_logprob = f->logprob;
    r->done.rng = f->rng;
    r->cached_tokens = f->cached_tokens;
    r->first_top = f->top;
    announce_first(r);
    try_finish(r);
}

static uint64_t mail_req_id(const struct mail *m)
{
    switch (m->type) {
    case PF_FINAL: return ((const struct pf_final *)m)->req_id;
    case PF_FIRST: return ((const struct pf_first *)m)->req_id;
    case PF_FAILED: return ((const struct pf_failed *)m)->req_id;
    default: return 0;
    }
}

static void on_layer(struct worker *w, const struct pf_layer *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct preq *r = idmap_get(&state_of(w)->reqs, l->req_ids[i]);
        if (r && r->state != PR_ENDING) {
            r->layers_done = l->layer + 1;
            try_push(r);
        }
    }
}

static void prefill_on_mail(struct worker *w, struct mail *m)
{
    struct preq *r = idmap_get(&state_of(w)->reqs, mail_req_id(m));
    bool live = r && r->state != PR_ENDING;
    if (m->type == PF_LAYER) {
        on_layer(w, (struct pf_layer *)m);
    } else if (live && m->type == PF_FINAL && !r->final) {
        r->final = (struct pf_final *)m; /* kept: its block list is what the puts read */
        return;
    } else if (live && m->type == PF_FIRST) {
        on_first(w, r, (struct pf_first *)m);
    } else if (live && m->type == PF_FAILED) {
        fail_request(r, WIRE_ERR_OVERLOADED, "%s", ((struct pf_failed *)m)->message);
    }
    if (m->type == PF_FIRST) /* sent or not, the prompt's logprobs go with the mail */
        prompt_logprobs_free(((struct pf_first *)m)->prompt_lp);
    free(m);
}

/* ---- the rest of the role ---- */

static void prefill_on_frontend_lost(struct worker *w)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&state_of(w)->reqs, &i, &id, &v);)
        end_request(v);
}

static void prefill_fill_load(struct worker *w, struct wire_load *l)
{
    struct pf_state *ps = state_of(w);
    l->queued_requests = atomic_load(&ps->load.queued_requests);
    l->queued_tokens = atomic_load(&ps->load.queued_tokens);
    l->running = atomic_load(&ps->load.held);
    l->kv_bytes_sent = ps->kv_bytes_sent;
    l->kv_bytes_saved = ps->kv_bytes_saved;
}

static bool prefill_busy(struct worker *w)
{
    return state_of(w)->reqs.count > 0;
}

static int prefill_start(struct worker *w, struct error *err)
{
    struct pf_state *ps = state_of(w);
    struct kv_pool *kv = &w->engine.kv;
    *ps = (struct pf_state){0}; /* a role switch may start it again */
    pf_cancel_init(&ps->cancel);
    uv_timer_init(&w->loop, &ps->hello_timer);
    ps->hello_timer.data = w;
    uv_timer_start(&ps->hello_timer, on_hello_timer, 1000, 1000);
    return kvx_pool_map(w->ucx, kv->data, (uint32_t)kv->n_layers, (uint32_t)kv->n_blocks,
                        kv->block_bytes, &ps->pool, err);
}

static void prefill_stop(struct worker *w)
{
    struct pf_state *ps = state_of(w);
    uv_close((uv_handle_t *)&ps->hello_timer, NULL);
    kvx_pool_unmap(ps->pool);
    ps->pool = NULL;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&ps->reqs, &i, &id, &v);)
        destroy(v);
    for (size_t i = 0; idmap_next(&ps->dpeers, &i, &id, &v);)
        free_dpeer(v);
    idmap_free(&ps->reqs);
    idmap_free(&ps->dpeers);
    pf_cancel_destroy(&ps->cancel);
}

const struct worker_role prefill_role = {
    .role = WIRE_ROLE_PREFILL,
    .listens = false,
    .start = prefill_start,
    .stop = prefill_stop,
    .on_message = prefill_on_message,
    .on_peer_lost = on_decode_lost,
    .on_frontend_lost = prefill_on_frontend_lost,
    .on_mail = prefill_on_mail,
    .fill_load = prefill_fill_load,
    .busy = prefill_busy,
    .engine_main = prefill_engine_main,
};
