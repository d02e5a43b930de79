/* test_wire_peer.c — one side of the transport's multi-process tests and benchmark (scripts in tests/proto/,
 * tests/bench/transport.sh start several of these). Not a unit test on its own: run with a mode.
 *
 *   serve  --listen H:P [--layers L --blocks N --block-bytes B] [--ucx-alloc]
 *          A decode-worker stand-in: maps a KV pool, sends REGISTER (with rkey) to every client, then
 *          echoes every message of a client that registered as FRONTEND, and runs the KV protocol
 *          (KV_RESERVE → KV_GRANT/KV_WAIT, KV_DONE → byte-for-byte check → KV_ACK or ERROR) for a
 *          client that registered as PREFILL. Prints "peer lost: ..." lines; on SIGTERM prints a
 *          "stats:" line and exits 0, or 1 if any KV check failed.
 *   echo   --connect H:P          every message type (and a 4 MiB one) must come back identical
 *   kv     --connect H:P --requests N [--inflight K] [--max-blocks M] [--reconnect] [--pace-ms T]
 *          random-data KV transfers; exit 0 when all were verified, 3 if the server was lost
 *   malformed --connect H:P       sends broken messages, then checks the server still answers
 *   bench  --connect H:P --size S --iters N    RMA put bandwidth (server: --layers 1)
 *   lat    --connect H:P --iters N             small-message round trip
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proto/kv_xfer.h"
#include "common/util/log.h"
#include "tests/helpers/wire_samples.h"
#include "proto/ucx.h"

struct opts {
    const char *mode, *listen, *connect;
    uint32_t layers, blocks, requests, inflight, max_blocks, iters, pace_ms;
    uint64_t block_bytes, size;
    int reconnect;
    int ucx_alloc;
};

/* Everything a run holds; passed as the transport's user pointer. */
struct app {
    struct opts o;
    uv_loop_t *loop;
    struct ucx *u;
    struct ucx_peer *peer; /* clients: the server */
    uv_signal_t sigterm, sigint;
    uv_timer_t timer;
    uv_timer_t pace; /* kv --pace-ms: a pause before each new request */
    int rc;
    /* server */
    uint8_t *pool;               /* ours, unless --ucx-alloc */
    uint8_t *pool_view;          /* where the pool is, either way */
    struct kvx_pool *kvp;
    uint8_t *used;               /* per block */
    struct sreq *reqs;           /* granted or waiting KV reservations */
    uint64_t kv_ok, kv_bad, waits;
    /* clients */
    struct wire_register server;
    int registered;
    struct client *c;
};

static void fail(struct app *a, int rc, const char *fmt, const char *arg)
{
    fprintf(stdout, fmt, arg);
    fputc('\n', stdout);
    fflush(stdout);
    if (!a->rc)
        a->rc = rc;
    uv_stop(a->loop);
}

/* ---- the KV test pattern: word w of logical block i of layer l of request r ---- */

static uint64_t pattern_word(uint64_t req, uint32_t layer, uint32_t i, uint64_t w)
{
    uint64_t s = req * 0x100000001b3ull ^ ((uint64_t)layer << 40) ^ ((uint64_t)i << 20) ^ w;
    return ws_mix(&s);
}

static void pattern_fill(uint8_t *dst, uint64_t bytes, uint64_t req, uint32_t layer, uint32_t i)
{
    for (uint64_t w = 0; w < bytes / 8; w++) {
        uint64_t v = pattern_word(req, layer, i, w);
        memcpy(dst + w * 8, &v, 8);
    }
}

static int pattern_check(const uint8_t *src, uint64_t bytes, uint64_t req, uint32_t layer, uint32_t i)
{
    for (uint64_t w = 0; w < bytes / 8; w++) {
        uint64_t v = pattern_word(req, layer, i, w);
        if (memcmp(src + w * 8, &v, 8))
            return -1;
    }
    return 0;
}

static int send_or_fail(struct app *a, struct ucx_peer *p, const struct wire_msg *m)
{
    (void)a;
    struct error err;
    if (ucx_send(p, m, NULL, NULL, &err) == 0)
        return 0;
    fprintf(stdout, "send %s: %s\n", wire_type_name(m->type), err.msg);
    return -1;
}

/* ---- server ---- */

enum peer_mode { MODE_NEW = 0, MODE_ECHO, MODE_KV };

struct sreq {
    struct sreq *next;
    uint64_t id;
    struct ucx_peer *peer;
    uint32_t n_blocks;
    uint32_t *blocks; /* NULL while waiting */
};

static uint32_t free_blocks(struct app *a)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < a->o.blocks; b++)
        n += !a->used[b];
    return n;
}

/* Takes n blocks from a random starting point, so grants mix contiguous and wrapped runs. */
static uint32_t *take_blocks(struct app *a, uint32_t n)
{
    if (free_blocks(a) < n)
        return NULL;
    uint32_t *v = malloc((n ? n : 1) * sizeof *v);
    uint32_t b = (uint32_t)rand() % a->o.blocks;
    for (uint32_t k = 0; k < n; b = (b + 1 + (rand() % 4 == 0)) % a->o.blocks) {
        if (!a->used[b]) {
            a->used[b] = 1;
            v[k++] = b;
        }
    }
    return v;
}

static void send_grant(struct app *a, struct sreq *r)
{
    struct wire_msg m = {.type = WIRE_KV_GRANT, .req_id = r->id};
    m.u.grant = (struct wire_kv_grant){.n_blocks = r->n_blocks, .blocks = r->blocks};
    send_or_fail(a, r->peer, &m);
}

static void grant_waiting(struct app *a)
{
    for (struct sreq *r = a->reqs; r; r = r->next) {
        if (r->blocks)
            continue;
        if (!(r->blocks = take_blocks(a, r->n_blocks)))
            return; /* FIFO: nobody overtakes the oldest waiter */
        send_grant(a, r);
    }
}

static void drop_req(struct app *a, struct sreq *r)
{
    struct sreq **pp = &a->reqs;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    for (uint32_t i = 0; r->blocks && i < r->n_blocks; i++)
        a->used[r->blocks[i]] = 0;
    free(r->blocks);
    free(r);
}

static void on_reserve(struct app *a, struct ucx_peer *p, const struct wire_msg *m)
{
    struct sreq *r = calloc(1, sizeof *r), **pp = &a->reqs;
    r->id = m->req_id;
    r->peer = p;
    r->n_blocks = (m->u.reserve.n_tokens + 15) / 16;
    uint32_t pos = 0;
    for (; *pp; pp = &(*pp)->next)
        pos += !(*pp)->blocks;
    *pp = r; /* append: FIFO */
    if (pos == 0 && (r->blocks = take_blocks(a, r->n_blocks))) {
        send_grant(a, r);
        return;
    }
    a->waits++;
    struct wire_msg w = {.type = WIRE_KV_WAIT, .req_id = r->id, .u.wait.queue_position = pos};
    send_or_fail(a, p, &w);
}

static void on_kv_done(struct app *a, struct ucx_peer *p, const struct wire_msg *m)
{
    struct sreq *r = a->reqs;
    while (r && !(r->id == m->req_id && r->peer == p && r->blocks))
        r = r->next;
    struct wire_msg reply = {.type = WIRE_KV_ACK, .req_id = m->req_id};
    int bad = !r || m->u.done.n_prompt != r->n_blocks * 16;
    for (uint32_t l = 0; !bad && l < a->o.layers; l++)
        for (uint32_t i = 0; !bad && i < r->n_blocks; i++)
            bad = pattern_check(a->pool_view + kvx_block_offset(l, r->blocks[i], a->o.blocks, a->o.block_bytes),
                                a->o.block_bytes, r->id, l, i) != 0;
    if (bad) {
        a->kv_bad++;
        reply.type = WIRE_ERROR;
        reply.u.error.code = WIRE_ERR_INTERNAL;
        snprintf(reply.u.error.message, sizeof reply.u.error.message, "KV data of request %llu differs",
                 (unsigned long long)m->req_id);
        fprintf(stdout, "KV CHECK FAILED for request %llu\n", (unsigned long long)m->req_id);
    } else {
        a->kv_ok++;
    }
    send_or_fail(a, p, &reply);
    if (r)
        drop_req(a, r);
    grant_waiting(a);
}

static void server_message(struct app *a, struct ucx_peer *p, struct wire_msg *m)
{
    enum peer_mode mode = (enum peer_mode)(uintptr_t)ucx_peer_user(p);
    if (mode == MODE_NEW) {
        if (m->type == WIRE_REGISTER)
            mode = m->u.reg.role == WIRE_ROLE_FRONTEND ? MODE_ECHO : MODE_KV;
        ucx_peer_set_user(p, (void *)(uintptr_t)mode);
        return;
    }
    if (mode == MODE_ECHO)
        send_or_fail(a, p, m);
    else if (m->type == WIRE_KV_RESERVE)
        on_reserve(a, p, m);
    else if (m->type == WIRE_KV_DONE)
        on_kv_done(a, p, m);
}

static void server_accept(struct app *a, struct ucx_peer *p)
{
    struct wire_msg m = {.type = WIRE_REGISTER};
    struct error err;
    m.u.reg = (struct wire_register){.role = WIRE_ROLE_DECODE, .worker_id = 1, .block_size = 16,
                                     .total_blocks = a->o.blocks, .max_batch = 8};
    snprintf(m.u.reg.model, sizeof m.u.reg.model, "test");
    if (kvx_pool_describe(a->kvp, &m.u.reg.pool, &err)) {
        fail(a, 1, "%s", err.msg);
        return;
    }
    send_or_fail(a, p, &m);
    free(m.u.reg.pool.rkey);
}

/* A lost client's reservations are reclaimed, so the others keep being served. */
static void server_lost(struct app *a, struct ucx_peer *p, const char *reason)
{
    fprintf(stdout, "peer lost: %s: %s\n", ucx_peer_name(p), reason);
    fflush(stdout);
    struct sreq *r = a->reqs, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->peer == p)
            drop_req(a, r);
    }
    grant_waiting(a);
}

/* The pool is ours (kvx_pool_map), or UCX's (--ucx-alloc: kvx_pool_alloc, shared memory). */
static int server_pool(struct app *a, struct error *err)
{
    size_t bytes = (size_t)a->o.layers * a->o.blocks * a->o.block_bytes;
    a->used = calloc(a->o.blocks, 1);
    if (!a->used)
        return error_set(err, "out of memory");
    if (a->o.ucx_alloc) {
        if (kvx_pool_alloc(a->u, a->o.layers, a->o.blocks, a->o.block_bytes, &a->kvp, err))
            return -1;
        a->pool_view = kvx_pool_base(a->kvp);
        return 0;
    }
    a->pool = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    if (!a->pool)
        return error_set(err, "out of memory for a %zu-byte pool", bytes);
    memset(a->pool, 0, bytes);
    a->pool_view = a->pool;
    return kvx_pool_map(a->u, a->pool, a->o.layers, a->o.blocks, a->o.block_bytes, &a->kvp, err);
}

static int server_start(struct app *a, struct error *err)
{
    char host[WIRE_ADDR_MAX];
    uint16_t port;
    if (server_pool(a, err) || ucx_parse_addr(a->o.listen, host, sizeof host, &port, err) ||
        ucx_listen(a->u, host, port, err))
        return -1;
    fprintf(stdout, "listening on port %u\n", ucx_listen_port(a->u));
    fflush(stdout);
    return 0;
}

/* Bytes of the pool that are not zero: nothing but KV transfers may have written it. */
static size_t pool_nonzero(const struct app *a)
{
    size_t n = 0, bytes = (size_t)a->o.layers * a->o.blocks * a->o.block_bytes;
    for (size_t i = 0; a->pool_view && i < bytes; i++)
        n += a->pool_view[i] != 0;
    return n;
}

static void server_stop(struct app *a)
{
    const struct ucx_stats *s = ucx_stats(a->u);
    fprintf(stdout, "pool: pool_nonzero=%zu\n", pool_nonzero(a));
    fprintf(stdout, "stats: msgs_rx=%llu rejected=%llu peers_lost=%llu kv_ok=%llu kv_bad=%llu waits=%llu "
                    "kv_rx=%llu kv_rejected=%llu\n",
            (unsigned long long)s->msgs_rx, (unsigned long long)s->rejected, (unsigned long long)s->peers_lost,
            (unsigned long long)a->kv_ok, (unsigned long long)a->kv_bad, (unsigned long long)a->waits,
            (unsigned long long)s->kv_rx, (unsigned long long)s->kv_rejected);
    if (a->kv_bad && !a->rc)
        a->rc = 1;
    while (a->reqs)
        drop_req(a, a->reqs);
}

/* ---- clients: common ---- */

struct creq {
    uint64_t id;
    int active, failed, layers_left;
    uint32_t n;
    uint32_t *src, *dst;
};

struct client {
    uint8_t *pool;
    struct kvx_pool *kvp;
    uint32_t nblocks;
    uint8_t *used;
    struct creq *slots;
    uint32_t started, done;
    uint64_t epoch, next_id;
    struct wire_msg *sent; /* echo */
    int n_sent, n_matched;
    uint64_t t0, count; /* bench, lat */
    uint64_t t_sent, *rtt; /* lat */
};

/* Identifies one operation of one request in one connection epoch, so completions that arrive after a
 * reconnect are recognised as stale. */
struct ticket {
    struct app *a;
    struct creq *r;
    uint64_t epoch;
};

static struct ticket *ticket(struct app *a, struct creq *r)
{
    struct ticket *t = malloc(sizeof *t);
    *t = (struct ticket){a, r, a->c->epoch};
    return t;
}

static int client_map_pool(struct app *a, uint32_t layers, uint32_t blocks, uint64_t block_bytes)
{
    struct client *c = a->c;
    struct error err;
    if (c->pool)
        return 0;
    size_t bytes = (size_t)layers * blocks * block_bytes;
    c->pool = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    c->used = calloc(blocks, 1);
    c->nblocks = blocks;
    if (!c->pool || kvx_pool_map(a->u, c->pool, layers, blocks, block_bytes, &c->kvp, &err)) {
        fail(a, 1, "client pool: %s", c->pool ? err.msg : "out of memory");
        return -1;
    }
    memset(c->pool, 0, bytes);
    return 0;
}

static void send_register(struct app *a, uint8_t role)
{
    struct wire_msg m = {.type = WIRE_REGISTER};
    m.u.reg.role = role;
    m.u.reg.worker_id = (uint32_t)getpid();
    send_or_fail(a, a->peer, &m);
}

static int connect_server(struct app *a)
{
    struct error err;
    if (ucx_connect(a->u, a->o.connect, &a->peer, &err)) {
        fail(a, 1, "%s", err.msg);
        return -1;
    }
    int kv = !strcmp(a->o.mode, "kv") || !strcmp(a->o.mode, "bench");
    send_register(a, kv ? WIRE_ROLE_PREFILL : WIRE_ROLE_FRONTEND);
    return 0;
}

/* ---- kv client ---- */

static void start_request(struct app *a, struct creq *r)
{
    struct client *c = a->c;
    uint32_t maxb = a->o.max_blocks;
    r->active = 1;
    r->failed = 0;
    r->id = ++c->next_id + ((uint64_t)getpid() << 32);
    r->n = 1 + (uint32_t)rand() % maxb;
    c->started++;
    struct wire_msg m = {.type = WIRE_KV_RESERVE, .req_id = r->id};
    m.u.reserve = (struct wire_kv_reserve){.n_tokens = r->n * 16, .prefill_worker_id = 1};
    send_or_fail(a, a->peer, &m);
}

static void fill_slots(struct app *a)
{
    struct client *c = a->c;
    for (uint32_t i = 0; i < a->o.inflight && c->started < a->o.requests; i++)
        if (!a->c->slots[i].active)
            start_request(a, &c->slots[i]);
}

static void release_src(struct app *a, struct creq *r)
{
    for (uint32_t i = 0; r->src && i < r->n; i++)
        a->c->used[r->src[i]] = 0;
    free(r->src);
    free(r->dst);
    r->src = r->dst = NULL;
    r->active = 0;
}

static void on_flushed(void *arg, int status, const char *reason)
{
    struct ticket *t = arg;
    struct app *a = t->a;
    struct creq *r = t->r;
    int stale = t->epoch != a->c->epoch;
    free(t);
    if (stale || !a->peer) /* the loss was reported first: kv_lost dealt with this request */
        return;
    if (status) { /* the peer is going away: on_peer_lost follows and, with --reconnect, retries */
        if (!a->o.reconnect)
            fail(a, 3, "flush failed: %s", reason);
        return;
    }
    struct wire_msg m = {.type = WIRE_KV_DONE, .req_id = r->id};
    struct wire_kv_done *d = &m.u.done;
    d->first_token = 7;
    d->first_logprob = -0.5f;
    uint64_t seed = r->id;
    for (int i = 0; i < 4; i++)
        d->rng.s[i] = ws_mix(&seed);
    d->params.temperature = 1.0f;
    d->params.top_p = 1.0f;
    d->params.repetition_penalty = 1.0f;
    d->n_prompt = r->n * 16;
    d->prompt = calloc(d->n_prompt, sizeof *d->prompt);
    send_or_fail(a, a->peer, &m);
    free(d->prompt);
}

static void on_layer_put(void *arg, int status, const char *reason)
{
    struct ticket *t = arg;
    struct app *a = t->a;
    struct creq *r = t->r;
    int stale = t->epoch != a->c->epoch;
    if (stale) {
        free(t);
        return;
    }
    r->failed |= status != 0;
    if (--r->layers_left > 0) {
        free(t);
        return;
    }
    struct error err = {"peer lost"};
    if (r->failed || !a->peer || ucx_flush(a->peer, on_flushed, t, &err)) {
        free(t);
        if (!a->o.reconnect) /* with --reconnect, the loss report restarts the request */
            fail(a, 3, "KV put failed: %s", r->failed ? reason : err.msg);
    }
}

static struct creq *find_req(struct app *a, uint64_t id)
{
    for (uint32_t i = 0; i < a->o.inflight; i++)
        if (a->c->slots[i].active && a->c->slots[i].id == id)
            return &a->c->slots[i];
    return NULL;
}

static void on_grant(struct app *a, struct creq *r, const struct wire_kv_grant *g)
{
    struct client *c = a->c;
    if (g->n_blocks != r->n) {
        fail(a, 1, "%s", "grant of the wrong size");
        return;
    }
    r->dst = malloc(r->n * sizeof *r->dst);
    r->src = malloc(r->n * sizeof *r->src);
    memcpy(r->dst, g->blocks, r->n * sizeof *r->dst);
    uint32_t b = (uint32_t)rand() % c->nblocks;
    for (uint32_t k = 0; k < r->n; b = (b + 1 + (rand() % 5 == 0)) % c->nblocks)
        if (!c->used[b]) {
            c->used[b] = 1;
            r->src[k++] = b;
        }
    r->layers_left = (int)a->server.pool.n_layers;
    for (uint32_t l = 0; l < a->server.pool.n_layers; l++) {
        for (uint32_t i = 0; i < r->n; i++)
            pattern_fill(c->pool + kvx_block_offset(l, r->src[i], c->nblocks, a->server.pool.block_bytes),
                         a->server.pool.block_bytes, r->id, l, i);
        struct error err;
        struct ticket *t = ticket(a, r);
        if (kvx_put_layer(a->peer, c->kvp, l, r->src, r->dst, r->n, on_layer_put, t, &err)) {
            free(t);
            r->failed = 1;
            /* A put is refused once the peer is closing; with --reconnect, the loss report that
             * follows restarts this request like any other in flight. */
            if (!a->o.reconnect)
                fail(a, 1, "kvx_put_layer: %s", err.msg);
            return;
        }
    }
}

static void on_pace_timer(uv_timer_t *t)
{
    struct app *a = t->data;
    if (a->peer && a->registered)
        fill_slots(a);
}

static void kv_message(struct app *a, const struct wire_msg *m)
{
    struct client *c = a->c;
    struct creq *r = find_req(a, m->req_id);
    if (m->type == WIRE_ERROR) {
        fail(a, 1, "server error: %s", m->u.error.message);
    } else if (m->type == WIRE_KV_GRANT && r && !r->src) {
        on_grant(a, r, &m->u.grant);
    } else if (m->type == WIRE_KV_WAIT && r) {
        c->count++; /* waits seen */
    } else if (m->type == WIRE_KV_ACK && r && r->src) {
        release_src(a, r);
        if (++c->done == a->o.requests) {
            fprintf(stdout, "kv: %u transfers verified by the receiver, %llu waits\n", c->done,
                    (unsigned long long)c->count);
            uv_stop(a->loop);
            return;
        }
        if (a->o.pace_ms)
            uv_timer_start(&a->pace, on_pace_timer, a->o.pace_ms, 0);
        else
            fill_slots(a);
    } else {
        fail(a, 1, "unexpected %s", wire_type_name(m->type));
    }
}

static void kv_start(struct app *a)
{
    struct client *c = a->c;
    if (!c->slots)
        c->slots = calloc(a->o.inflight, sizeof *c->slots);
    if (client_map_pool(a, a->server.pool.n_layers, a->o.inflight * a->o.max_blocks + 8,
                        a->server.pool.block_bytes) == 0)
        fill_slots(a);
}

static void on_reconnect_timer(uv_timer_t *t)
{
    struct app *a = t->data;
    connect_server(a);
}

/* With --reconnect, requests in flight when the server went away are started again. */
static void kv_lost(struct app *a, const char *reason)
{
    struct client *c = a->c;
    fprintf(stdout, "server lost: %s\n", reason);
    fflush(stdout);
    a->peer = NULL;
    if (!a->o.reconnect) {
        fail(a, 3, "%s", "giving up");
        return;
    }
    c->epoch++;
    for (uint32_t i = 0; c->slots && i < a->o.inflight; i++)
        if (c->slots[i].active) {
            release_src(a, &c->slots[i]);
            c->started--;
        }
    a->registered = 0;
    uv_timer_start(&a->timer, on_reconnect_timer, 200, 0);
}

/* ---- echo client ---- */

static void echo_start(struct app *a)
{
    struct client *c = a->c;
    int n = 0;
    c->sent = calloc(3 * WIRE_TYPE_MAX + 1, sizeof *c->sent);
    for (uint16_t t = WIRE_REGISTER; t <= WIRE_TYPE_MAX; t++)
        for (uint64_t seed = 0; seed < 3; seed++)
            ws_sample(t, seed, &c->sent[n++]);
    /* 4 MiB of prompt: large enough that UCX uses its rendezvous protocol */
    struct wire_msg *big = &c->sent[n++];
    ws_sample(WIRE_GENERATE, 99, big);
    free(big->u.gen.prompt);
    big->u.gen.n_prompt = 1u << 20;
    uint64_t s = 5;
    big->u.gen.prompt = ws_ids(big->u.gen.n_prompt, &s);
    c->n_sent = n;
    for (int i = 0; i < n; i++)
        if (send_or_fail(a, a->peer, &c->sent[i]))
            fail(a, 1, "%s", "send failed");
}

static void echo_message(struct app *a, const struct wire_msg *m)
{
    struct client *c = a->c;
    for (int i = 0; i < c->n_sent; i++) {
        if (c->sent[i].type && ws_equal(&c->sent[i], m)) {
            wire_msg_release(&c->sent[i]); /* marks it matched (type 0) */
            if (++c->n_matched == c->n_sent) {
                fprintf(stdout, "echo: %d messages of %d types came back identical\n", c->n_matched,
                        WIRE_TYPE_MAX);
                uv_stop(a->loop);
            }
            return;
        }
    }
    fail(a, 1, "echo: a %s came back that was not sent", wire_type_name(m->type));
}

/* ---- malformed client ---- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Sends a valid message of `type` with `len` bytes at `off` overwritten by `v` (len 0: untouched);
 * trunc bytes cut from the end with the header's length following. */
static int send_broken(struct app *a, uint16_t type, size_t off, uint64_t v, int len, size_t trunc)
{
    struct wire_msg m;
    struct wire_buf b = {0};
    struct error err;
    ws_sample(type, 1, &m);
    wire_encode(&b, &m, &err);
    wire_msg_release(&m);
    if (len)
        put_le(b.data + off, v, len);
    b.len -= trunc;
    if (trunc)
        put_le(b.data + 8, b.len - WIRE_HDR_SIZE, 4);
    int rc = ucx_send_raw(a->peer, b.data, b.len, &err);
    wire_buf_free(&b);
    return rc == 0;
}

static void on_malformed_flushed(void *arg, int status, const char *reason)
{
    struct app *a = arg;
    struct wire_msg ok = {.type = WIRE_ABORT, .req_id = 77};
    if (status)
        fail(a, 1, "flush: %s", reason);
    else
        send_or_fail(a, a->peer, &ok);
}

static void malformed_start(struct app *a)
{
    int n = 0;
    struct error err;
    uint8_t junk[200000];
    uint64_t s = 9;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)ws_mix(&s);
    n += ucx_send_raw(a->peer, junk, 10, &err) == 0;           /* shorter than a header */
    n += ucx_send_raw(a->peer, junk, sizeof junk, &err) == 0;  /* large garbage (rendezvous) */
    n += send_broken(a, WIRE_ABORT, 0, 0x12345678, 4, 0);      /* magic */
    n += send_broken(a, WIRE_ABORT, 4, WIRE_VERSION + 1, 2, 0); /* a version we do not speak */
    n += send_broken(a, WIRE_ABORT, 6, 0, 2, 0);               /* type 0 */
    n += send_broken(a, WIRE_ABORT, 6, 200, 2, 0);             /* type 200 */
    n += send_broken(a, WIRE_ABORT, 8, 100, 4, 0);             /* length says 100, 0 arrive */
    n += send_broken(a, WIRE_KV_GRANT, 24, 0xffffffff, 4, 0);  /* count larger than the payload */
    n += send_broken(a, WIRE_TOKENS, 24, 7, 1, 0);             /* finish reason 7 */
    n += send_broken(a, WIRE_REGISTER, 16, 5, 8, 0);           /* REGISTER with a request id */
    n += send_broken(a, WIRE_GENERATE, 0, 0, 0, 1);            /* last byte missing */
    a->c->count = (uint64_t)n;
    /* Large messages go by rendezvous and could be overtaken by the ABORT: wait for them first. */
    if (ucx_flush(a->peer, on_malformed_flushed, a, &err))
        fail(a, 1, "flush: %s", err.msg);
}

static void malformed_message(struct app *a, const struct wire_msg *m)
{
    if (m->type == WIRE_ABORT && m->req_id == 77) {
        fprintf(stdout, "malformed: sent %llu\n", (unsigned long long)a->c->count);
        uv_stop(a->loop);
    } else {
        fail(a, 1, "malformed: the server answered a %s", wire_type_name(m->type));
    }
}

/* ---- bench and lat clients ---- */

#define BENCH_WINDOW 16
#define WARMUP 100

static void bench_post(struct app *a);

static void on_bench_flushed(void *arg, int status, const char *reason)
{
    struct app *a = arg;
    double secs = (double)(uv_hrtime() - a->c->t0) / 1e9;
    double bytes = (double)a->o.size * a->o.iters;
    /* MiB/s, the unit ucx_perftest prints as "MB/s" */
    fprintf(stdout, "bench: size=%llu iters=%u seconds=%.4f MiBps=%.1f\n", (unsigned long long)a->o.size,
            a->o.iters, secs, bytes / secs / 1048576.0);
    if (status)
        fail(a, 1, "flush: %s", reason);
    uv_stop(a->loop);
}

static void on_bench_put(void *arg, int status, const char *reason)
{
    struct app *a = arg;
    struct client *c = a->c;
    struct error err;
    if (status) {
        fail(a, 1, "put: %s", reason);
        return;
    }
    c->done++;
    if (c->done == WARMUP)
        c->t0 = uv_hrtime();
    if (c->done == WARMUP + a->o.iters) {
        if (ucx_flush(a->peer, on_bench_flushed, a, &err))
            fail(a, 1, "flush: %s", err.msg);
        return;
    }
    bench_post(a);
}

static void bench_post(struct app *a)
{
    struct client *c = a->c;
    if (c->started >= WARMUP + a->o.iters)
        return;
    uint32_t nb = (uint32_t)(a->o.size / a->server.pool.block_bytes);
    uint32_t ids[4096];
    for (uint32_t i = 0; i < nb && i < 4096; i++)
        ids[i] = i;
    struct error err;
    c->started++;
    if (kvx_put_layer(a->peer, c->kvp, 0, ids, ids, nb, on_bench_put, a, &err))
        fail(a, 1, "put: %s", err.msg);
}

static void bench_start(struct app *a)
{
    uint64_t bb = a->server.pool.block_bytes;
    if (a->o.size % bb || a->o.size / bb > a->server.pool.n_blocks || a->o.size / bb > 4096) {
        fail(a, 1, "%s", "--size must be a multiple of the server's block size and fit its pool");
        return;
    }
    if (client_map_pool(a, 1, a->server.pool.n_blocks, bb))
        return;
    for (int i = 0; i < BENCH_WINDOW; i++)
        bench_post(a);
}

static void lat_ping(struct app *a)
{
    struct wire_msg m = {.type = WIRE_ABORT, .req_id = a->c->count};
    send_or_fail(a, a->peer, &m);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Round trips of a 24-byte message; prints the average and the median one-way time (half a round
 * trip), as ucx_perftest's latency tests do. */
static void lat_message(struct app *a, const struct wire_msg *m)
{
    (void)m;
    struct client *c = a->c;
    uint64_t now = uv_hrtime();
    if (!c->rtt)
        c->rtt = calloc(a->o.iters, sizeof *c->rtt);
    if (c->count >= WARMUP && c->count < WARMUP + a->o.iters)
        c->rtt[c->count - WARMUP] = now - c->t_sent;
    if (++c->count == WARMUP)
        c->t0 = now;
    if (c->count == WARMUP + a->o.iters) {
        double us = (double)(now - c->t0) / 1e3 / a->o.iters;
        qsort(c->rtt, a->o.iters, sizeof *c->rtt, cmp_u64);
        fprintf(stdout, "lat: iters=%u one_way_avg_us=%.2f one_way_median_us=%.2f\n", a->o.iters, us / 2,
                (double)c->rtt[a->o.iters / 2] / 2e3);
        uv_stop(a->loop);
        return;
    }
    c->t_sent = uv_hrtime();
    lat_ping(a);
}

/* ---- sizes client: every message size must come back (UCX switches protocols at sizes that
 * depend on the transport; a message near a threshold must not fail) ---- */

static void sizes_start(struct app *a)
{
    struct wire_msg m = {.type = WIRE_ERROR};
    int n = 0;
    for (size_t len = 0; len < WIRE_ERRMSG_MAX; len++, n++) { /* 32..1055 bytes, every size */
        m.req_id = (uint64_t)n + 1;
        m.u.error.code = 1;
        memset(m.u.error.message, 'e', len);
        m.u.error.message[len] = 0;
        send_or_fail(a, a->peer, &m);
    }
    struct wire_msg t = {.type = WIRE_TOKENS};
    t.u.tokens.tokens = calloc(4200, sizeof(int32_t));
    for (uint32_t k = 0; k < 4200; k++, n++) { /* 30..16830 bytes, every 4th size */
        t.req_id = (uint64_t)n + 1;
        t.u.tokens.n = k;
        send_or_fail(a, a->peer, &t);
    }
    free(t.u.tokens.tokens);
    a->c->count = (uint64_t)n;
}

static void sizes_message(struct app *a, const struct wire_msg *m)
{
    (void)m;
    if (++a->c->done == a->c->count) {
        fprintf(stdout, "sizes: %u messages of every size came back\n", a->c->done);
        uv_stop(a->loop);
    }
}

/* ---- transport callbacks ---- */

static void client_registered(struct app *a, const struct wire_register *r)
{
    struct error err;
    a->server = *r;
    a->server.pool.rkey = NULL; /* the message owns it */
    a->registered = 1;
    if (kvx_peer_attach(a->peer, &r->pool, &err)) {
        fail(a, 1, "attach: %s", err.msg);
        return;
    }
    const char *m = a->o.mode;
    fflush(stdout);
    ucx_peer_print_info(a->peer, stdout); /* scripts check which transport carries the data */
    fflush(stdout);
    if (!strcmp(m, "kv"))
        kv_start(a);
    else if (!strcmp(m, "echo"))
        echo_start(a);
    else if (!strcmp(m, "malformed"))
        malformed_start(a);
    else if (!strcmp(m, "bench"))
        bench_start(a);
    else if (!strcmp(m, "lat"))
        lat_ping(a);
    else if (!strcmp(m, "sizes"))
        sizes_start(a);
}

static void on_message(struct ucx *u, struct ucx_peer *p, struct wire_msg *m, void *user)
{
    (void)u;
    struct app *a = user;
    const char *mode = a->o.mode;
    if (!strcmp(mode, "serve"))
        server_message(a, p, m);
    else if (!a->registered && m->type == WIRE_REGISTER)
        client_registered(a, &m->u.reg);
    else if (!strcmp(mode, "kv"))
        kv_message(a, m);
    else if (!strcmp(mode, "echo"))
        echo_message(a, m);
    else if (!strcmp(mode, "malformed"))
        malformed_message(a, m);
    else if (!strcmp(mode, "lat"))
        lat_message(a, m);
    else if (!strcmp(mode, "sizes"))
        sizes_message(a, m);
}

static void on_accept(struct ucx *u, struct ucx_peer *p, void *user)
{
    (void)u;
    server_accept(user, p);
}

static void on_peer_lost(struct ucx *u, struct ucx_peer *p, const char *reason, void *user)
{
    (void)u;
    struct app *a = user;
    if (!strcmp(a->o.mode, "serve"))
        server_lost(a, p, reason);
    else if (!strcmp(a->o.mode, "kv"))
        kv_lost(a, reason);
    else
        fail(a, 3, "server lost: %s", reason);
}

/* ---- main ---- */

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.layers = 4, .blocks = 256, .block_bytes = 16384, .requests = 20, .inflight = 3,
                       .max_blocks = 24, .iters = 1000, .size = 65536};
    if (argc < 2)
        return -1;
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--reconnect") || !strcmp(k, "--ucx-alloc")) {
            *(!strcmp(k, "--reconnect") ? &o->reconnect : &o->ucx_alloc) = 1;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(k, "--listen")) o->listen = v;
        else if (!strcmp(k, "--connect")) o->connect = v;
        else if (!strcmp(k, "--layers")) o->layers = (uint32_t)atol(v);
        else if (!strcmp(k, "--blocks")) o->blocks = (uint32_t)atol(v);
        else if (!strcmp(k, "--block-bytes")) o->block_bytes = (uint64_t)atoll(v);
        else if (!strcmp(k, "--requests")) o->requests = (uint32_t)atol(v);
        else if (!strcmp(k, "--inflight")) o->inflight = (uint32_t)atol(v);
        else if (!strcmp(k, "--max-blocks")) o->max_blocks = (uint32_t)atol(v);
        else if (!strcmp(k, "--iters")) o->iters = (uint32_t)atol(v);
        else if (!strcmp(k, "--pace-ms")) o->pace_ms = (uint32_t)atol(v);
        else if (!strcmp(k, "--size")) o->size = (uint64_t)atoll(v);
        else return -1;
    }
    int serve = !strcmp(o->mode, "serve");
    if ((serve && !o->listen) || (!serve && !o->connect) || !o->layers || !o->blocks || !o->inflight ||
        !o->max_blocks || o->block_bytes % 8 || !o->block_bytes)
        return -1;
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void cleanup(struct app *a)
{
    struct client *c = a->c;
    ucx_close_all(a->u);
    if (!strcmp(a->o.mode, "serve"))
        server_stop(a);
    kvx_pool_unmap(a->kvp);
    if (c) {
        kvx_pool_unmap(c->kvp);
        for (uint32_t i = 0; c->slots && i < a->o.inflight; i++)
            release_src(a, &c->slots[i]);
        for (int i = 0; i < c->n_sent; i++)
            wire_msg_release(&c->sent[i]);
        free(c->sent);
        free(c->rtt);
        free(c->slots);
        free(c->used);
        free(c->pool);
        free(c);
    }
    ucx_destroy(a->u);
    uv_walk(a->loop, close_walk, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    free(a->pool);
    free(a->used);
}

int main(int argc, char **argv)
{
    static struct app app;
    struct app *a = &app;
    struct error err;
    if (parse(argc, argv, &a->o)) {
        fprintf(stderr, "usage: see the comment at the top of tests/drivers/test_wire_peer.c\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand((unsigned)getpid());
    log_init(a->o.mode);
    a->loop = uv_default_loop();
    struct ucx_handlers h = {on_accept, on_message, on_peer_lost};
    if (ucx_create(a->loop, &h, a, &a->u, &err)) {
        fprintf(stdout, "%s\n", err.msg);
        return 1;
    }
    uv_signal_init(a->loop, &a->sigterm);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_init(a->loop, &a->sigint);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_timer_init(a->loop, &a->timer);
    a->timer.data = a;
    uv_timer_init(a->loop, &a->pace);
    a->pace.data = a;
    if (!strcmp(a->o.mode, "serve")) {
        if (server_start(a, &err))
            fail(a, 1, "%s", err.msg);
    } else {
        a->c = calloc(1, sizeof *a->c);
        connect_server(a);
    }
    if (!a->rc)
        uv_run(a->loop, UV_RUN_DEFAULT);
    cleanup(a);
    return a->rc;
}
