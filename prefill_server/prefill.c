/* prefill.c — the prefill worker's loop thread: one `struct preq` per request, from GENERATE to the
 * decode worker's KV_ACK.
 *
 *   GENERATE ─▶ KV_RESERVE to the decode worker, prompt to the engine
 *   KV_GRANT + decode pool known + layer computed ─▶ put that layer's blocks (one put per run)
 *   first token ─▶ TOKENS to the frontend at once
 *   all layers put + first token ─▶ flush ─▶ KV_DONE ─▶ (KV_ACK) ─▶ blocks freed
 *
 * A request that ends early (abort, failure, a one-token answer) waits for its puts to complete and
 * flushes before telling the decode worker to drop its grant, so a late put can never land in blocks
 * the decode worker has given to someone else. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/idmap.h"
#include "proto/kv_xfer.h"
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
    uint64_t *waiting; /* requests whose KV_RESERVE waits for that */
    int n_waiting, cap_waiting;
};

static uv_timer_t hello_timer;

struct preq {
    uint64_t id;
    struct dpeer *dp;
    struct wire_kv_done done; /* prompt, params, flags; first token and rng once sampled */
    uint32_t *dst, n_dst;     /* granted decode blocks */
    uint32_t *src, n_src;     /* our blocks, once the final step started */
    bool granted, first_done, flushing, ending;
    uint32_t layers_done, layers_pushed;
    int inflight; /* puts and flushes whose callbacks have not run */
    double forward_end_ms; /* when the first token arrived, i.e. the forward pass ended (for a log) */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct idmap reqs, dpeers;
static struct kvx_pool *local_pool;

static void send_to(struct ucx_peer *p, uint16_t type, uint64_t req_id)
{
    struct wire_msg m = {.type = type, .req_id = req_id};
    struct error err;
    if (p && ucx_send(p, &m, NULL, NULL, &err) < 0)
        log_warn("sending %s: %s", wire_type_name(type), err.msg);
}

static void post_free(struct worker *w, uint64_t id)
{
    struct pf_id *m = calloc(1, sizeof *m);
    m->mail.type = PF_FREE;
    m->req_id = id;
    mailbox_post(&w->to_engine, &m->mail);
}

static void destroy(struct preq *r)
{
    idmap_del(&reqs, r->id);
    free(r->done.prompt);
    free(r->dst);
    free(r->src);
    free(r);
}

static void on_end_flushed(void *arg, int status, const char *reason);

/* Continues ending r once nothing is in flight: the decode worker drops its grant, r goes. */
static void maybe_destroy(struct worker *w, struct preq *r)
{
    if (r->inflight > 0)
        return;
    if (r->dp && r->dp->peer && r->layers_pushed > 0 && !r->flushing) {
        struct error err;
        r->flushing = true;
        r->inflight++;
        if (ucx_flush(r->dp->peer, on_end_flushed, r, &err) == 0)
            return;
        r->inflight--;
    }
    if (r->dp && r->dp->peer)
        send_to(r->dp->peer, WIRE_ABORT, r->id);
    destroy(r);
}

static struct worker *the_worker;

static void on_end_flushed(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    r->inflight--;
    r->layers_pushed = 0; /* flushed: nothing of ours is left in flight */
    maybe_destroy(the_worker, r);
}

/* Ends r: the engine drops its sequence, the decode worker its grant (after our puts drained). */
static void end_request(struct worker *w, struct preq *r)
{
    if (r->ending)
        return;
    r->ending = true;
    post_free(w, r->id);
    maybe_destroy(w, r);
}

static void fail_request(struct worker *w, struct preq *r, uint32_t code, const char *why)
{
    worker_send_error(w, r->id, code, "%s", why);
    end_request(w, r);
}

/* A put or flush of r completed. Returns true when r needs nothing more from this completion: it
 * is ending (and may now be destroyed), or the transfer failed (and r with it). */
static bool transfer_settled(struct worker *w, struct preq *r, int status)
{
    bool settled = r->ending || status < 0; /* r may be freed below */
    r->inflight--;
    if (r->ending)
        maybe_destroy(w, r);
    else if (status < 0)
        fail_request(w, r, WIRE_ERR_PEER_LOST, "KV transfer to the decode worker failed");
    return settled;
}

static void on_kv_done_flushed(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    struct worker *w = the_worker;
    r->flushing = false;
    if (transfer_settled(w, r, status))
        return;
    struct wire_msg m = {.type = WIRE_KV_DONE, .req_id = r->id, .u.done = r->done};
    struct error err;
    if (ucx_send(r->dp->peer, &m, NULL, NULL, &err) < 0) {
        fail_request(w, r, WIRE_ERR_PEER_LOST, err.msg);
        return;
    }
    log_debug("request %llu: KV_DONE sent %.3f ms after its forward pass ended", (unsigned long long)r->id,
              now_ms() - r->forward_end_ms);
}

static void try_finish(struct worker *w, struct preq *r)
{
    if (r->ending || !r->first_done || r->flushing || r->inflight > 0 ||
        r->layers_pushed < (uint32_t)w->model->cfg.n_layers)
        return;
    struct error err;
    r->flushing = true;
    r->inflight++;
    if (ucx_flush(r->dp->peer, on_kv_done_flushed, r, &err) < 0) {
        r->inflight--;
        r->flushing = false;
        fail_request(w, r, WIRE_ERR_PEER_LOST, err.msg);
    }
}

static void on_put_done(void *arg, int status, const char *reason)
{
    struct preq *r = arg;
    if (!transfer_settled(the_worker, r, status))
        try_finish(the_worker, r);
}

/* Pushes every layer that is computed and not yet sent, once the grant and the pool are known. */
static void try_push(struct worker *w, struct preq *r)
{
    if (r->ending || !r->granted || !r->src || !r->dp->attached)
        return;
    if (r->n_dst < r->n_src) {
        fail_request(w, r, WIRE_ERR_PROTOCOL, "the decode worker granted too few KV blocks");
        return;
    }
    while (r->layers_pushed < r->layers_done) {
        struct error err;
        r->inflight++;
        if (kvx_put_layer(r->dp->peer, local_pool, r->layers_pushed, r->src, r->dst, r->n_src, on_put_done,
                          r, &err) < 0) {
            r->inflight--;
            fail_request(w, r, WIRE_ERR_PEER_LOST, err.msg);
            return;
        }
        r->layers_pushed++;
    }
    try_finish(w, r);
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

static void send_reserve(struct worker *w, struct preq *r)
{
    struct wire_msg m = {.type = WIRE_KV_RESERVE, .req_id = r->id};
    struct error err;
    m.u.reserve = (struct wire_kv_reserve){r->done.n_prompt, w->opts.id};
    if (ucx_send(r->dp->peer, &m, NULL, NULL, &err) < 0)
        fail_request(w, r, WIRE_ERR_PEER_LOST, err.msg);
}

/* KV_RESERVE now, or once the decode worker has answered our REGISTER. */
static void reserve(struct worker *w, struct preq *r)
{
    struct dpeer *dp = r->dp;
    if (dp->attached) {
        send_reserve(w, r);
        return;
    }
    if (dp->n_waiting == dp->cap_waiting) {
        int cap = dp->cap_waiting ? 2 * dp->cap_waiting : 16;
        uint64_t *q = realloc(dp->waiting, (size_t)cap * sizeof *q);
        if (!q) {
            fail_request(w, r, WIRE_ERR_INTERNAL, "out of memory");
            return;
        }
        dp->waiting = q;
        dp->cap_waiting = cap;
    }
    dp->waiting[dp->n_waiting++] = r->id;
}

static void on_hello_timer(uv_timer_t *t)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&dpeers, &i, &id, &v);)
        if (!((struct dpeer *)v)->attached)
            send_hello(t->data, v);
}

static void free_dpeer(struct dpeer *dp)
{
    free(dp->waiting);
    free(dp);
}

static struct dpeer *decode_peer(struct worker *w, uint32_t id, const char *addr, struct error *err)
{
    struct dpeer *dp = idmap_get(&dpeers, id);
    if (dp && strcmp(dp->addr, addr) == 0)
        return dp;
    if (dp) { /* the decode worker came back elsewhere: the old endpoint is stale */
        ucx_peer_close(dp->peer);
        idmap_del(&dpeers, id);
        free_dpeer(dp);
    }
    dp = calloc(1, sizeof *dp);
    if (!dp) {
        error_set(err, "out of memory");
        return NULL;
    }
    dp->id = id;
    snprintf(dp->addr, sizeof dp->addr, "%s", addr);
    if (ucx_connect(w->ucx, addr, &dp->peer, err) < 0) {
        free(dp);
        return NULL;
    }
    ucx_peer_set_user(dp->peer, dp);
    idmap_put(&dpeers, id, dp);
    send_hello(w, dp);
    return dp;
}

static void on_decode_register(struct worker *w, struct dpeer *dp, struct wire_register *reg)
{
    struct error err;
    log_debug("decode worker %u at %s: pool of %u blocks known", dp->id, dp->addr, reg->pool.n_blocks);
    if (worker_check_pair(w, reg, &err) < 0) {
        log_error("decode worker %s refused: %s", dp->addr, err.msg);
        for (int i = 0; i < dp->n_waiting; i++) {
            struct preq *r = idmap_get(&reqs, dp->waiting[i]);
            if (r && !r->ending && r->dp == dp)
                fail_request(w, r, WIRE_ERR_INTERNAL, err.msg);
        }
        dp->n_waiting = 0;
        return;
    }
    if (kvx_peer_attach(dp->peer, &reg->pool, &err) < 0) {
        log_error("decode worker %s: %s", dp->addr, err.msg);
        return;
    }
    dp->attached = true;
    for (int i = 0; i < dp->n_waiting; i++) {
        struct preq *r = idmap_get(&reqs, dp->waiting[i]);
        if (r && !r->ending && r->dp == dp)
            send_reserve(w, r);
    }
    dp->n_waiting = 0;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);)
        if (((struct preq *)v)->dp == dp)
            try_push(w, v);
}

static void on_decode_lost(struct worker *w, struct ucx_peer *peer)
{
    struct dpeer *dp = ucx_peer_user(peer);
    if (!dp)
        return;
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);) {
        struct preq *r = v;
        if (r->dp != dp)
            continue;
        r->dp = NULL; /* nothing more goes to it; its callbacks still arrive (with errors) */
        if (!r->ending)
            fail_request(w, r, WIRE_ERR_PEER_LOST, "the decode worker serving this request was lost");
    }
    idmap_del(&dpeers, dp->id);
    free_dpeer(dp);
}

/* ---- requests ---- */

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
    if (!g->decode_addr[0] || idmap_get(&reqs, id)) {
        worker_send_error(w, id, WIRE_ERR_PROTOCOL, "GENERATE without a decode worker, or a "
                                 "request id already in use");
        return;
    }
    struct preq *r = calloc(1, sizeof *r);
    struct seq *s = calloc(1, sizeof *s);
    struct pf_new *m = calloc(1, sizeof *m);
    if (!r || !s || !m || seq_init(s, id, g->prompt, (int)g->n_prompt, &g->params, &err) < 0 ||
        !(r->dp = decode_peer(w, g->decode_worker_id, g->decode_addr, &err))) {
        free(r), free(s), free(m);
        worker_send_error(w, id, WIRE_ERR_INTERNAL, "%s", err.msg);
        return;
    }
    r->id = id;
    r->done.params = g->params;
    r->done.flags = g->flags;
    r->done.n_prompt = g->n_prompt;
    r->done.prompt = g->prompt; /* taken from the message */
    g->prompt = NULL;
    idmap_put(&reqs, id, r);
    reserve(w, r);
    m->mail.type = PF_NEW;
    m->seq = s;
    mailbox_post(&w->to_engine, &m->mail);
}

static void on_grant(struct worker *w, struct ucx_peer *from, struct preq *r, uint64_t id,
                     struct wire_kv_grant *g)
{
    if (!r || r->ending || r->granted) { /* gone already: give the blocks back */
        send_to(from, WIRE_ABORT, id);
        return;
    }
    log_debug("request %llu: %u decode blocks granted", (unsigned long long)id, g->n_blocks);
    r->granted = true;
    r->dst = g->blocks; /* taken */
    r->n_dst = g->n_blocks;
    g->blocks = NULL;
    try_push(w, r);
}

static void prefill_on_message(struct worker *w, struct ucx_peer *from, struct wire_msg *msg)
{
    struct preq *r = idmap_get(&reqs, msg->req_id);
    if (r && from != w->frontend && (!r->dp || from != r->dp->peer))
        r = NULL; /* only the frontend and the request's own decode worker speak about it */
    struct dpeer *dp;
    switch (msg->type) {
    case WIRE_GENERATE: on_generate(w, msg->req_id, &msg->u.gen); break;
    case WIRE_REGISTER: /* a decode worker's answer to our REGISTER: its pool */
        if (from != w->frontend && (dp = idmap_get(&dpeers, msg->u.reg.worker_id)))
            on_decode_register(w, dp, &msg->u.reg);
        else
            log_warn("REGISTER from %s (worker %u) matches no decode worker we use", ucx_peer_name(from),
                     msg->u.reg.worker_id);
        break;
    case WIRE_KV_GRANT: on_grant(w, from, r, msg->req_id, &msg->u.grant); break;
    case WIRE_KV_WAIT: log_debug("request %llu waits for decode KV (position %u)",
                                 (unsigned long long)msg->req_id, msg->u.wait.queue_position); break;
    case WIRE_KV_ACK: /* the decode worker has the sequence: our copy can go */
        if (r && !r->ending && r->inflight == 0) {
            post_free(w, r->id);
            destroy(r);
        }
        break;
    case WIRE_ABORT: if (r) end_request(w, r); break;
    case WIRE_ERROR:
        if (r && from != w->frontend) /* the decode worker refused the request: pass its reason on */
            fail_request(w, r, msg->u.error.code, msg->u.error.message);
        break;
    default:
        log_warn("unexpected %s from %s", wire_type_name(msg->type), ucx_peer_name(from));
    }
}

/* ---- mail from the engine thread ---- */

static void on_first(struct worker *w, struct preq *r, struct pf_first *f)
{
    struct wire_msg m = {.type = WIRE_TOKENS, .req_id = r->id};
    bool logprobs = r->done.flags & WIRE_GEN_LOGPROBS;
    m.u.tokens = (struct wire_tokens){(uint8_t)f->finish, logprobs, 1, &f->token, logprobs ? &f->logprob : NULL};
    worker_send_frontend(w, &m);
    if (f->finish != FINISH_NONE) /* a one-token answer: the decode worker is not needed */ {
        end_request(w, r);
        return;
    }
    r->first_done = true;
    r->forward_end_ms = now_ms();
    r->done.first_token = f->token;
    r->done.first_logprob = f->logprob;
    r->done.rng = f->rng;
    try_finish(w, r);
}

static void prefill_on_mail(struct worker *w, struct mail *m)
{
    uint64_t id = m->type == PF_FINAL    ? ((struct pf_final *)m)->req_id
                  : m->type == PF_FIRST  ? ((struct pf_first *)m)->req_id
                  : m->type == PF_FAILED ? ((struct pf_failed *)m)->req_id
                                         : 0;
    struct preq *r = idmap_get(&reqs, id);
    if (m->type == PF_LAYER) {
        struct pf_layer *l = (struct pf_layer *)m;
        for (uint32_t i = 0; i < l->n; i++)
            if ((r = idmap_get(&reqs, l->req_ids[i])) && !r->ending) {
                r->layers_done = l->layer + 1;
                try_push(w, r);
            }
    } else if (r && !r->ending && m->type == PF_FINAL) {
        struct pf_final *f = (struct pf_final *)m;
        r->src = malloc(f->n_blocks * sizeof *r->src);
        memcpy(r->src, f->blocks, f->n_blocks * sizeof *r->src);
        r->n_src = f->n_blocks;
    } else if (r && !r->ending && m->type == PF_FIRST) {
        on_first(w, r, (struct pf_first *)m);
    } else if (r && !r->ending && m->type == PF_FAILED) {
        fail_request(w, r, WIRE_ERR_OVERLOADED, ((struct pf_failed *)m)->message);
    }
    free(m);
}

/* ---- the rest of the role ---- */

static void prefill_on_frontend_lost(struct worker *w)
{
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);)
        end_request(w, v);
}

static void prefill_fill_load(struct worker *w, struct wire_load *l)
{
    l->queued_requests = atomic_load(&prefill_load.queued_requests);
    l->queued_tokens = atomic_load(&prefill_load.queued_tokens);
    l->running = atomic_load(&prefill_load.held);
}

static bool prefill_busy(struct worker *w)
{
    return reqs.count > 0;
}

static int prefill_start(struct worker *w, struct error *err)
{
    struct kv_pool *kv = &w->engine.kv;
    the_worker = w;
    uv_timer_init(&w->loop, &hello_timer);
    hello_timer.data = w;
    uv_timer_start(&hello_timer, on_hello_timer, 1000, 1000);
    return kvx_pool_map(w->ucx, kv->data, (uint32_t)kv->n_layers, (uint32_t)kv->n_blocks,
                        kv->block_bytes, &local_pool, err);
}

static void prefill_stop(struct worker *w)
{
    uv_timer_stop(&hello_timer); /* closed with every other handle when the loop winds down */
    kvx_pool_unmap(local_pool);
    uint64_t id;
    void *v;
    for (size_t i = 0; idmap_next(&reqs, &i, &id, &v);)
        destroy(v);
    for (size_t i = 0; idmap_next(&dpeers, &i, &id, &v);)
        free_dpeer(v);
    idmap_free(&reqs);
    idmap_free(&dpeers);
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
