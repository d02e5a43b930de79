/* cluster.c — worker registry, placement and failure detection over the UCX transport (see
 * cluster.h). */
#include "frontend/cluster.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/engine/kvcache.h"
#include "common/util/log.h"

struct cluster {
    uv_loop_t *loop;
    struct ucx *ucx;
    struct cluster_handlers h;
    void *user;
    struct cl_worker *workers;
    uv_timer_t stale_timer;
    int stale_ms;
    /* The largest KV pool, in tokens, of a worker that can prefill and of one that can decode (0:
     * none registered); kept by the loop, read by the thread pool's prompt checks. */
    _Atomic int max_prompt, max_seq;
    struct slo_route slo;
};

static uint64_t now_ms(struct cluster *c) { return uv_now(c->loop); }


/* Unlinks and frees w after telling the request layer; closes the peer if asked (not when UCX already
 * reported it lost). */
static int pool_tokens(const struct cl_worker *w)
{
    uint64_t t = (uint64_t)w->reg.total_blocks * w->reg.block_size;
    return t > (uint64_t)INT32_MAX ? INT32_MAX : (int)t;
}

/* After the registry changed: the largest pools. */
static void update_limits(struct cluster *c)
{
    int prompt = 0, seq = 0;
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        int t = pool_tokens(w);
        if ((w->role == WIRE_ROLE_PREFILL || w->role == WIRE_ROLE_COLOCATED) && t > prompt)
            prompt = t;
        if ((w->role == WIRE_ROLE_DECODE || w->role == WIRE_ROLE_COLOCATED) && t > seq)
            seq = t;
    }
    atomic_store(&c->max_prompt, prompt);
    atomic_store(&c->max_seq, seq);
}

void cluster_limits(struct cluster *c, int *max_prompt, int *max_seq)
{
    *max_prompt = c ? atomic_load(&c->max_prompt) : 0;
    *max_seq = c ? atomic_load(&c->max_seq) : 0;
}

static void forget(struct cluster *c, struct cl_worker *w, const char *reason, bool close_peer)
{
    for (struct cl_worker **pp = &c->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    log_warn("cluster: %s worker %u (%s) removed: %s; its in-flight requests are failed or re-routed",
             wire_role_name(w->role), w->id, w->peer ? ucx_peer_name(w->peer) : "?", reason);
    c->h.on_worker_lost(c->user, w, reason);
    if (close_peer && w->peer) {
        ucx_peer_set_user(w->peer, NULL);
        ucx_peer_close(w->peer);
    }
    idmap_free(&w->keys);
    free(w);
    update_limits(c);
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
    idmap_free(&w->keys); /* a worker registering again starts its index over (its LOADs resend it) */
    if (w->switch_to)
        log_info("cluster: worker %u registered as %s (asked to become %s)", w->id, wire_role_name(r->role),
                 wire_role_name(w->switch_to));
    w->switch_to = 0;
    w->reg = *r;
    w->id = r->worker_id;
    w->role = r->role;
    w->load = (struct wire_load){.free_blocks = r->total_blocks, .total_blocks = r->total_blocks};
    w->pend_tokens = w->pend_blocks = w->pend_seqs = 0;
    w->last_seen_ms = now_ms(c);
    update_limits(c);
    log_info("cluster: %s worker %u registered from %s (model %s, %u KV blocks of %u tokens, batch %u, peers at %s)",
             wire_role_name(w->role), w->id, ucx_peer_name(peer), r->model, r->total_blocks, r->block_size,
             r->max_batch, r->listen_addr[0] ? r->listen_addr : "-");
}

/* A worker's load report: its queue and pool, and what its prefix cache added and evicted. */
static void on_load(struct cl_worker *w, struct wire_load *l)
{
    if (l->keys_reset)
        idmap_free(&w->keys);
    for (uint32_t i = 0; i < l->n_evicted; i++)
        idmap_del(&w->keys, l->evicted[i]);
    for (uint32_t i = 0; i < l->n_added; i++)
        if (idmap_put(&w->keys, l->added[i], w) < 0)
            break; /* out of memory: routing just knows less */
    w->query_tokens = l->query_tokens;
    w->hit_tokens = l->hit_tokens;
    w->kv_bytes_sent = l->kv_bytes_sent;
    w->kv_bytes_saved = l->kv_bytes_saved;
    w->load = *l;
    w->load.added = w->load.evicted = NULL; /* the message's, released after this */
    w->load.n_added = w->load.n_evicted = 0;
    w->loaded = true;
    w->pend_tokens = w->pend_blocks = w->pend_seqs = 0;
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
        on_load(w, &msg->u.load);
    } else if (msg->type == WIRE_TOKENS || msg->type == WIRE_ERROR || msg->type == WIRE_KV_STATS ||
               msg->type == WIRE_PROMPT_LOGPROBS) {
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
        idmap_free(&w->keys);
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

/* Not picked: the worker to skip, and any worker draining after SIGTERM or for a role switch (it
 * still serves what it has). */
static bool skipped(const struct cl_worker *w, struct skip s)
{
    return (w->role == s.role && w->id == s.id) || w->load.draining || w->switch_to;
}

static uint32_t block_size(const struct cl_worker *w) { return w->reg.block_size ? w->reg.block_size : 16; }

/* KV blocks a sequence of n_tokens positions takes on w. */
static long blocks_needed(const struct cl_worker *w, uint32_t n_tokens)
{
    return (long)(((uint64_t)n_tokens + block_size(w) - 1) / block_size(w));
}

/* The prompt's prefix-cache keys as w's cache names them, computed once per salt and block size. */
struct prompt_keys {
    uint64_t salt;
    uint32_t block_size, n;
    uint64_t *key;
};

/* How many leading full blocks of the prompt w's cache holds, as far as its LOADs said (a hint: the
 * worker itself confirms by the tokens). */
static uint32_t cached_blocks(const struct cl_worker *w, const struct cl_seq *s, struct prompt_keys *k)
{
    if (!w->reg.prefix_salt || !w->keys.count || !s->prompt)
        return 0;
    uint32_t bs = block_size(w), full = s->n_prompt / bs;
    if (k->salt != w->reg.prefix_salt || k->block_size != bs) {
        free(k->key);
        *k = (struct prompt_keys){w->reg.prefix_salt, bs, 0, malloc((size_t)(full ? full : 1) * sizeof *k->key)};
        uint64_t chain = k->salt;
        for (uint32_t i = 0; k->key && i < full; i++)
            k->key[k->n++] = chain = kv_block_key(chain, s->prompt + (size_t)i * bs, (int)bs);
    }
    uint32_t n = 0;
    while (n < k->n && idmap_get(&w->keys, k->key[n]))
        n++;
    return n;
}

/* How well w suits the sequence: 2 with batch room and blocks for all of it (free, or holding its
 * prompt), 1 with batch room, 0 otherwise. */
static int decode_fit(const struct cl_worker *w, const struct cl_seq *s, uint32_t cached)
{
    if (!has_room(w))
        return 0;
    return free_blocks(w) + (long)cached >= blocks_needed(w, s->n_positions) ? 2 : 1;
}

/* The prompt work w does before this prompt's first token: what it has queued, what we sent it
 * since, and this prompt but the `have` blocks its cache holds (its last token is always computed). */
static uint64_t queue_ahead(const struct cl_worker *w, const struct cl_seq *s, uint32_t *have)
{
    uint32_t max = s->n_prompt ? (s->n_prompt - 1) / block_size(w) : 0;
    *have = *have < max ? *have : max;
    return (uint64_t)w->load.queued_tokens + w->pend_tokens + s->n_prompt - (uint64_t)*have * block_size(w);
}

/* How well w suits a sequence as its decode worker, best first: decode_fit; then the least work
 * ahead, in tokens: what w's sequences still have to generate (the new one shares a step with each
 * of theirs, and the batch it decodes in sets its TPOT), the prompt tokens queued there (a colocated
 * worker's: passes the new one waits through), less the prompt tokens w's cache holds for it (not
 * computed or sent again); a token of forward pass either way. Then the most blocks free or holding
 * the prompt. Work before blocks: blocks free favour a worker whose sequences are young, the very
 * ones that will share the most steps. */
struct decode_rank {
    int fit;
    uint64_t work;
    long room;
};

static struct decode_rank decode_rank(const struct cl_worker *w, const struct cl_seq *s, uint32_t cached)
{
    uint32_t have = cached; /* queue_ahead counts this prompt too, alike on every worker */
    return (struct decode_rank){decode_fit(w, s, cached), w->decode_left + queue_ahead(w, s, &have),
                                free_blocks(w) + (long)cached};
}

static bool better_rank(struct decode_rank a, struct decode_rank b)
{
    if (a.fit != b.fit)
        return a.fit > b.fit;
    return a.work != b.work ? a.work < b.work : a.room > b.room;
}

/* The decode (or colocated) worker that suits the sequence best (decode_rank); NULL when there is
 * none. */
static struct cl_worker *pick_decode(struct cluster *c, uint8_t role, struct cl_seq *s, struct prompt_keys *k,
                                     struct skip sk, uint32_t *cached)
{
    struct cl_worker *best = NULL;
    struct decode_rank best_rank = {0};
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        if (w->role != role || skipped(w, sk))
            continue;
        uint32_t have = cached_blocks(w, s, k);
        struct decode_rank r = decode_rank(w, s, have);
        if (!best || better_rank(r, best_rank)) {
            best = w;
            best_rank = r;
            *cached = have;
        }
    }
    return best;
}

/* The prefill worker with the least prompt work to do before this prompt is done (queue_ahead). */
static struct cl_worker *pick_prefill(struct cluster *c, struct cl_seq *s, struct prompt_keys *k, struct skip sk,
                                      uint32_t *cached)
{
    struct cl_worker *best = NULL;
    uint64_t best_q = 0;
    for (struct cl_worker *w = c->workers; w; w = w->next) {
        if (w->role != WIRE_ROLE_PREFILL || skipped(w, sk))
            continue;
        uint32_t have = cached_blocks(w, s, k);
        uint64_t q = queue_ahead(w, s, &have);
        if (!best || q < best_q) {
            best = w;
            best_q = q;
            *cached = have;
        }
    }
    return best;
}

/* The workers a sequence could go to: the best prefill worker, decode worker and colocated worker
 * (NULL where there is none) and the prompt blocks each one's cache holds. */
struct candidates {
    struct cl_worker *pf, *dc, *co;
    uint32_t pf_cached, dc_cached, co_cached;
};

/* The queue ahead of this prompt on w, the prompt's own tokens w computes (its cache holding `have`
 * blocks), and w's cache for it. */
static void place_prompt(struct cl_seq *s, const struct cl_worker *w, uint32_t have)
{
    s->queue_ahead = (uint32_t)queue_ahead(w, s, &have);
    s->to_compute = s->n_prompt - have * block_size(w);
}

static int take_split(struct cl_seq *s, const struct candidates *cd, struct cl_worker **p, struct cl_worker **d)
{
    place_prompt(s, cd->pf, cd->pf_cached);
    *p = cd->pf;
    *d = cd->dc;
    s->prefill_cached = cd->pf_cached;
    s->decode_cached = cd->dc_cached;
    return 0;
}

static int take_local(struct cl_seq *s, const struct candidates *cd, struct cl_worker **p, struct cl_worker **d)
{
    if (!cd->co)
        return -1;
    place_prompt(s, cd->co, cd->co_cached);
    *p = *d = cd->co;
    s->prefill_cached = s->decode_cached = cd->co_cached;
    return 0;
}

/* Colocated: it does both phases, so the decode-side rule (batch room, memory) decides. It is chosen
 * when there is no prefill/decode pair, or when it has room the pair's decode worker lacks. */
static int choose(const struct candidates *cd, struct cl_seq *s, struct cl_worker **p, struct cl_worker **d)
{
    if (cd->pf && cd->dc && (!cd->co || decode_fit(cd->dc, s, cd->dc_cached) >= decode_fit(cd->co, s, cd->co_cached)))
        return take_split(s, cd, p, d);
    return take_local(s, cd, p, d);
}

/* ms per prompt token assumed for a worker not measured yet: the mean of those measured, or 1. */
static double fallback_ms_per_token(const struct cluster *c)
{
    double sum = 0;
    int n = 0;
    for (const struct cl_worker *w = c->workers; w; w = w->next)
        if (w->slo.prefill_ms_per_token > 0)
            sum += w->slo.prefill_ms_per_token, n++;
    return n ? sum / n : 1.0;
}

/* SLO-aware (route_slo.h): the disaggregated path unless its TTFT breaks the SLO and local is better. */
static int choose_slo(struct cluster *c, const struct slo_route *slo, const struct candidates *cd, struct cl_seq *s,
                      struct cl_worker **p, struct cl_worker **d)
{
    if (!cd->pf || !cd->dc)
        return take_local(s, cd, p, d);
    double fb = fallback_ms_per_token(c);
    uint32_t pf_have = cd->pf_cached, co_have = cd->co_cached;
    struct slo_paths paths = {.split_ms = slo_predict_ttft(&cd->pf->slo, (double)queue_ahead(cd->pf, s, &pf_have), fb)};
    if (cd->co && decode_fit(cd->co, s, cd->co_cached) > 0) {
        paths.local_ms = slo_predict_ttft(&cd->co->slo, (double)queue_ahead(cd->co, s, &co_have), fb);
        paths.out_tokens = s->n_positions - s->n_prompt;
        if (slo_go_local(slo, &paths, &cd->co->slo)) {
            c->slo.n_local++;
            return take_local(s, cd, p, d);
        }
    }
    c->slo.n_split++;
    return take_split(s, cd, p, d);
}

/* With SLOs, a colocated worker also decodes for pairs: the decode target is the better of the two. */
static void slo_decode_target(struct candidates *cd, const struct cl_seq *s)
{
    if (cd->co &&
        (!cd->dc || better_rank(decode_rank(cd->co, s, cd->co_cached), decode_rank(cd->dc, s, cd->dc_cached)))) {
        cd->dc = cd->co;
        cd->dc_cached = cd->co_cached;
    }
}

/* The SLOs s is held to: its own, where it gives them, else the frontend's. */
static struct slo_route seq_slos(const struct cluster *c, const struct cl_seq *s)
{
    struct slo_route slo = c->slo;
    slo.ttft_ms = s->slo_ttft_ms > 0 ? s->slo_ttft_ms : slo.ttft_ms;
    slo.tpot_ms = s->slo_tpot_ms > 0 ? s->slo_tpot_ms : slo.tpot_ms;
    return slo;
}

static int pick(struct cluster *c, struct cl_seq *s, struct skip sk, struct cl_worker **p, struct cl_worker **d)
{
    struct prompt_keys k = {0};
    struct candidates cd = {0};
    cd.pf = pick_prefill(c, s, &k, sk, &cd.pf_cached);
    cd.dc = pick_decode(c, WIRE_ROLE_DECODE, s, &k, sk, &cd.dc_cached);
    cd.co = pick_decode(c, WIRE_ROLE_COLOCATED, s, &k, sk, &cd.co_cached);
    free(k.key);
    struct slo_route slo = seq_slos(c, s);
    s->tpot_slo_ms = slo.tpot_ms > 0 ? (uint32_t)ceil(slo.tpot_ms) : 0;
    s->ttft_slo_ms = slo.ttft_ms > 0 ? (uint32_t)floor(slo.ttft_ms) : 0;
    if (slo.ttft_ms <= 0)
        return choose(&cd, s, p, d);
    slo_decode_target(&cd, s);
    return choose_slo(c, &slo, &cd, s, p, d);
}

void cluster_set_slo(struct cluster *c, double ttft_ms, double tpot_ms)
{
    c->slo.ttft_ms = ttft_ms;
    c->slo.tpot_ms = tpot_ms;
}

const struct slo_route *cluster_slo(const struct cluster *c) { return &c->slo; }

int cluster_pick(struct cluster *c, struct cl_seq *s, struct cl_worker **p, struct cl_worker **d)
{
    return pick(c, s, (struct skip){0, 0}, p, d);
}

int cluster_pick_except(struct cluster *c, struct cl_seq *s, uint8_t role, uint32_t id, struct cl_worker **p,
                        struct cl_worker **d)
{
    return pick(c, s, (struct skip){role, id}, p, d) == 0 ? 0 : cluster_pick(c, s, p, d);
}

int cluster_generate(struct cl_worker *p, struct cl_worker *d, uint64_t id, const struct sample_params *sp,
                     bool logprobs, const char *constraint, const struct cl_seq *s, struct error *err)
{
    uint32_t n = s->n_prompt;
    struct wire_msg m = {.type = WIRE_GENERATE, .req_id = id};
    m.u.gen.params = *sp;
    m.u.gen.constraint = (char *)constraint; /* only read by the encoder */
    m.u.gen.flags = logprobs ? WIRE_GEN_LOGPROBS : 0;
    m.u.gen.tpot_slo_ms = s->tpot_slo_ms;
    m.u.gen.ttft_slo_ms = s->ttft_slo_ms;
    m.u.gen.n_prompt = n;
    m.u.gen.prompt = (int32_t *)s->prompt; /* only read by the encoder */
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
    d->decode_left += (uint32_t)sp->max_tokens;
    p->inflight++;
    if (d != p)
        d->inflight++;
    return 0;
}

void cluster_decoded(struct cl_worker *d, uint32_t n)
{
    if (d)
        d->decode_left -= n < d->decode_left ? n : d->decode_left;
}

static void release_one(struct cl_worker *w)
{
    if (w && w->inflight > 0)
        w->inflight--;
}

void cluster_release(struct cl_worker *p, struct cl_worker *d, uint32_t undecoded)
{
    release_one(p);
    if (d != p)
        release_one(d);
    cluster_decoded(d, undecoded);
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
