/* cluster.c — worker registry, placement and failure detection over the UCX transport (see
 * cluster.h). */
#include "frontend/cluster.h"

#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

struct cluster {
    uv_loop_t *loop;
    struct ucx *ucx;
    struct cluster_handlers h;
    void *user;
    struct cl_worker *workers;
    uv_timer_t stale_timer;
    int stale_ms;
};

static uint64_t now_ms(struct cluster *c) { return uv_now(c->loop); }

const char *cluster_role_name(uint8_t role)
{
    switch (role) {
    case WIRE_ROLE_PREFILL: return "prefill";
    case WIRE_ROLE_DECODE: return "decode";
    case WIRE_ROLE_COLOCATED: return "colocated";
    default: return "unknown";
    }
}

/* Unlinks and frees w after telling the request layer; closes the peer if asked (not when UCX already
 * reported it lost). */
static void forget(struct cluster *c, struct cl_worker *w, const char *reason, bool close_peer)
{
    for (struct cl_worker **pp = &c->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    log_warn("cluster: %s worker %u (%s) removed: %s; its in-flight requests are failed or re-routed",
             cluster_role_name(w->role), w->id, w->peer ? ucx_peer_name(w->peer) : "?", reason);
    c->h.on_worker_lost(c->user, w, reason);
    if (close_peer && w->peer) {
        ucx_peer_set_user(w->peer, NULL);
        ucx_peer_close(w->peer);
    }
    free(w);
}

static void on_register(struct cluster *c, struct ucx_peer *peer, struct wire_register *r)
{
    struct cl_worker *w = ucx_peer_user(peer);
    /* The same worker back after a restart, before we noticed the old connection die. */
    for (struct cl_worker *o = c->workers; o && !w; o = o->next)
        if (o->id == r->worker_id && o->role == r->role && o->peer != peer) {
            forget(c, o, "registered again from a new connection", true);
            break;
        }
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) {
            log_error("cluster: out of memory registering a worker");
            return;
        }
        w->next = c->workers;
        c->workers = w;
        w->peer = peer;
        ucx_peer_set_user(peer, w);
    }
    free(r->pool.rkey);
    r->pool.rkey = NULL;
    w->reg = *r;
    w->id = r->worker_id;
    w->role = r->role;
    w->load.free_blocks = w->load.total_blocks = r->total_blocks;
    w->last_seen_ms = now_ms(c);
    log_info("cluster: %s worker %u registered from %s (model %s, %u KV blocks of %u tokens, batch %u, peers at %s)",
             cluster_role_name(w->role), w->id, ucx_peer_name(peer), r->model, r->total_blocks, r->block_size,
             r->max_batch, r->listen_addr[0] ? r->listen_addr : "-");
}

static void on_message(struct ucx *u, struct ucx_peer *peer, struct wire_msg *msg, void *user)
{
    (void)u;
    struct cluster *c = user;
    struct cl_worker *w = ucx_peer_user(peer);
    if (msg->type == WIRE_REGISTER) {
        on_register(c, peer, &msg->u.reg);
        return;
    }
    if (!w) {
        log_debug("cluster: %s from unregistered peer %s ignored", wire_type_name(msg->type), ucx_peer_name(peer));
        return;
    }
    w->last_seen_ms = now_ms(c);
    if (msg->type == WIRE_LOAD) {
        w->load = msg->u.load;
        w->loaded = true;
        w->pend_tokens = w->pend_blocks = w->pend_seqs = 0;
    } else if (msg->type == WIRE_TOKENS || msg->type == WIRE_ERROR) {
        c->h.on_message(c->user, w, msg);
    }
}

static void on_peer_lost(struct ucx *u, struct ucx_peer *peer, const char *reason, void *user)
{
    (void)u;
    struct cl_worker *w = ucx_peer_user(peer);
    if (w)
        forget(user, w, reason, false);
}

static void on_stale_timer(uv_timer_t *t)
{
    struct cluster *c = t->data;
    uint64_t now = now_ms(c);
    struct cl_worker *w = c->workers;
    while (w) {
        struct cl_worker *next = w->next;
        if (now - w->last_seen_ms > (uint64_t)c->stale_ms)
            forget(c, w, "stopped reporting its load", true);
        w = next;
    }
}

struct cluster *cluster_new(uv_loop_t *loop, const char *host, int port, int stale_ms, const struct ckey *key,
                            const struct cluster_handlers *h, void *user, struct error *err)
{
    struct cluster *c = calloc(1, sizeof *c);
    if (!c) {
        error_set(err, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->h = *h;
    c->user = user;
    c->stale_ms = stale_ms;
    struct ucx_handlers uh = {.on_message = on_message, .on_peer_lost = on_peer_lost};
    if (ucx_loopback_only_default(&host, 1))
        log_info("--ucx-host %s is a loopback address: UCX uses the lo interface only (set UCX_NET_DEVICES to "
                 "change that)", host);
    if (ucx_create(loop, &uh, c, &c->ucx, err)) {
        free(c);
        return NULL;
    }
    if (ucx_set_cluster_key(c->ucx, key->bytes, key->len, err) || ucx_listen(c->ucx, host, (uint16_t)port, err)) {
        error_wrap(err, "--ucx-port %d", port);
        ucx_destroy(c->ucx);
        free(c);
        return NULL;
    }
    if (key->len)
        log_info("cluster: peers must prove the cluster key from %s", key->source);
    else
        log_info("cluster: no cluster key (loopback only); set --cluster-key-file to authenticate workers");
    uv_timer_init(loop, &c->stale_timer);
    c->stale_timer.data = c;
    uv_timer_start(&c->stale_timer, on_stale_timer, 500, 500);
    return c;
}

static void free_after_close(uv_handle_t *h) { free(h->data); }

void cluster_free(struct cluster *c)
{
    if (!c)
        return;
    while (c->workers) {
        struct cl_worker *w = c->workers;
        c->workers = w->next;
        free(w);
    }
    ucx_destroy(c->ucx);
    uv_close((uv_handle_t *)&c->stale_timer, free_after_close);
}

int cluster_port(const struct cluster *c) { return ucx_listen_port(c->ucx); }

const struct ucx_stats *cluster_ucx_stats(const struct cluster *c) { return ucx_stats(c->ucx); }

bool cluster_ready(const struct cluster *c)
{
    bool p = false, d = false;
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        if (w->role == WIRE_ROLE_COLOCATED)
            return true;
        p |= w->role == WIRE_ROLE_PREFILL;
        d |= w->role == WIRE_ROLE_DECODE;
    }
    return p && d;
}

static bool has_room(const struct cl_worker *w)
{
    return w->reg.max_batch == 0 || w->load.running + w->pend_seqs < w->reg.max_batch;
}

static long free_blocks(const struct cl_worker *w) { return (long)w->load.free_blocks - (long)w->pend_blocks; }

/* A worker not to pick (role 0: none). */
struct skip {
    uint8_t role;
    uint32_t id;
};

/* Not picked: the worker to skip, and any worker draining after SIGTERM (it still serves what it has). */
static bool skipped(const struct cl_worker *w, struct skip s)
{
    return (w->role == s.role && w->id == s.id) || w->load.draining;
}

/* KV blocks a sequence of n_tokens positions takes on w. */
static long blocks_needed(const struct cl_worker *w, uint32_t n_tokens)
{
    uint32_t bs = w->reg.block_size ? w->reg.block_size : 16;
    return (long)(((uint64_t)n_tokens + bs - 1) / bs);
}

/* How well w suits a sequence of n_tokens positions: 2 with batch room and free blocks for all of
 * it, 1 with batch room, 0 otherwise. */
static int decode_fit(const struct cl_worker *w, uint32_t n_tokens)
{
    if (!has_room(w))
        return 0;
    return free_blocks(w) >= blocks_needed(w, n_tokens) ? 2 : 1;
}

/* The decode (or colocated) worker that suits the sequence best (decode_fit), the one with the most
 * free blocks among equals; NULL when there is none. */
static struct cl_worker *pick_decode(struct cluster *c, uint8_t role, uint32_t n_tokens, struct skip s)
{
    struct cl_worker *best = NULL;
    int best_fit = -1;
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        if (w->role != role || skipped(w, s))
            continue;
        int fit = decode_fit(w, n_tokens);
        if (fit > best_fit || (fit == best_fit && free_blocks(w) > free_blocks(best))) {
            best = w;
            best_fit = fit;
        }
    }
    return best;
}

static struct cl_worker *pick_prefill(struct cluster *c, struct skip s)
{
    struct cl_worker *best = NULL;
    uint64_t best_q = 0;
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        uint64_t q = (uint64_t)w->load.queued_tokens + w->pend_tokens;
        if (w->role == WIRE_ROLE_PREFILL && !skipped(w, s) && (!best || q < best_q)) {
            best = w;
            best_q = q;
        }
    }
    return best;
}

static int pick(struct cluster *c, uint32_t n_tokens, struct skip s, struct cl_worker **p, struct cl_worker **d)
{
    struct cl_worker *pf = pick_prefill(c, s), *dc = pick_decode(c, WIRE_ROLE_DECODE, n_tokens, s);
    /* Colocated: it does both phases, so the decode-side rule (batch room, memory) decides. It is
     * chosen when there is no prefill/decode pair, or when it has room the pair's decode worker lacks. */
    struct cl_worker *co = pick_decode(c, WIRE_ROLE_COLOCATED, n_tokens, s);
    if (pf && dc && (!co || decode_fit(dc, n_tokens) >= decode_fit(co, n_tokens))) {
        *p = pf;
        *d = dc;
        return 0;
    }
    *p = *d = co;
    return co ? 0 : -1;
}

int cluster_pick(struct cluster *c, uint32_t n_tokens, struct cl_worker **p, struct cl_worker **d)
{
    return pick(c, n_tokens, (struct skip){0, 0}, p, d);
}

int cluster_pick_except(struct cluster *c, uint32_t n_tokens, uint8_t role, uint32_t id, struct cl_worker **p,
                        struct cl_worker **d)
{
    return pick(c, n_tokens, (struct skip){role, id}, p, d) == 0 ? 0 : cluster_pick(c, n_tokens, p, d);
}

int cluster_generate(struct cl_worker *p, struct cl_worker *d, uint64_t id,
                     const struct sample_params *sp, bool logprobs, const int32_t *prompt, uint32_t n,
                     struct error *err)
{
    struct wire_msg m = {.type = WIRE_GENERATE, .req_id = id};
    m.u.gen.params = *sp;
    m.u.gen.flags = logprobs ? WIRE_GEN_LOGPROBS : 0;
    m.u.gen.n_prompt = n;
    m.u.gen.prompt = (int32_t *)prompt; /* only read by the encoder */
    if (d != p) {
        m.u.gen.decode_worker_id = d->id;
        snprintf(m.u.gen.decode_addr, sizeof m.u.gen.decode_addr, "%s", d->reg.listen_addr);
    }
    if (ucx_send(p->peer, &m, NULL, NULL, err))
        return -1;
    uint32_t bs = d->reg.block_size ? d->reg.block_size : 16;
    p->pend_tokens += n;
    d->pend_blocks += (n + (uint32_t)sp->max_tokens + bs - 1) / bs;
    d->pend_seqs++;
    p->inflight++;
    if (d != p)
        d->inflight++;
    return 0;
}

void cluster_release(struct cl_worker *w)
{
    if (w && w->inflight > 0)
        w->inflight--;
}

void cluster_abort(struct cl_worker *w, uint64_t id)
{
    if (!w || !w->peer)
        return;
    struct wire_msg m = {.type = WIRE_ABORT, .req_id = id};
    struct error err;
    if (ucx_send(w->peer, &m, NULL, NULL, &err))
        log_debug("cluster: ABORT %llu to worker %u not sent: %s", (unsigned long long)id, w->id, err.msg);
}

struct cl_worker *cluster_workers(struct cluster *c) { return c->workers; }
