/* test_frontend_route.c — the cluster's placement rules on hand-built registries (no network):
 * prefill = fewest queued prompt tokens (last LOAD plus what was sent since), decode = least work
 * ahead, then most free KV blocks, among workers with batch room (any worker when none has room),
 * colocated only without a prefill+decode pair or when only it has free blocks for the whole sequence, a worker that refused a sequence skipped on its retry unless it is the only one,
 * a worker whose LOAD says it is draining never picked, and /health readiness; and SLO-aware routing
 * (route_slo.h) under scripted loads and measured costs; and the rebalancer's policy (rebalance_policy.h)
 * on hand-counted prompt work, with a worker being switched never picked. */
#include "frontend/cluster.c"
#include "frontend/rebalance.c"
#include "frontend/rebalance_policy.c"
#include "frontend/route_slo.c"

#include "tests/helpers/check.h"

static struct cl_worker W[8];

#define NEED(n) (&(struct cl_seq){.n_positions = (n)})

static struct cl_worker *add(struct cluster *c, int i, uint8_t role, uint32_t queued_tokens, uint32_t free_blocks,
                             uint32_t running, uint32_t max_batch)
{
    struct cl_worker *w = &W[i];
    memset(w, 0, sizeof *w);
    w->id = (uint32_t)(100 + i);
    w->role = role;
    w->reg.max_batch = max_batch;
    w->reg.block_size = 16;
    w->load.queued_tokens = queued_tokens;
    w->load.free_blocks = free_blocks;
    w->load.total_blocks = 1000;
    w->load.running = running;
    w->next = c->workers;
    c->workers = w;
    return w;
}

static void test_ready(void)
{
    struct cluster c = {0};
    CHECK(!cluster_ready(&c));
    add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8);
    CHECK(!cluster_ready(&c));
    add(&c, 1, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    CHECK(cluster_ready(&c));
    struct cluster c2 = {0};
    add(&c2, 2, WIRE_ROLE_COLOCATED, 0, 100, 0, 8);
    CHECK(cluster_ready(&c2));
    struct cluster c3 = {0};
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c3, NEED(10), &p, &d), -1);
}

static void test_prefill_least_queued(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_PREFILL, 500, 0, 0, 8);
    struct cl_worker *p1 = add(&c, 1, WIRE_ROLE_PREFILL, 100, 0, 0, 8);
    add(&c, 2, WIRE_ROLE_PREFILL, 300, 0, 0, 8);
    add(&c, 3, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == p1);
    /* what we sent since its last report counts too */
    p1->pend_tokens = 250;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK_EQ_INT(p->id, 102);
}

static void test_decode_most_free_with_room(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8);
    add(&c, 1, WIRE_ROLE_DECODE, 0, 900, 8, 8); /* most free blocks but its batch is full */
    struct cl_worker *d2 = add(&c, 2, WIRE_ROLE_DECODE, 0, 400, 3, 8);
    add(&c, 3, WIRE_ROLE_DECODE, 0, 300, 0, 8);
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(d == d2);
    d2->pend_blocks = 150; /* blocks our recent requests will take */
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK_EQ_INT(d->id, 103);
    /* nobody has batch room: the most free blocks anyway (it queues, never drops) */
    W[2].load.running = 8;
    W[3].load.running = 8;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK_EQ_INT(d->id, 101);
}

/* Among workers that fit, the least work ahead (tokens their sequences still have to generate and
 * prompt tokens queued, less the prompt tokens their caches hold for this one) before the most free
 * blocks; the frontend's count follows GENERATE, the tokens that arrive and the sequence's end. */
static void test_decode_least_work(void)
{
    struct cluster c = {0};
    struct cl_worker *c0 = add(&c, 0, WIRE_ROLE_COLOCATED, 0, 900, 1, 8);
    struct cl_worker *c1 = add(&c, 1, WIRE_ROLE_COLOCATED, 0, 300, 3, 8);
    c0->decode_left = 500; /* one young sequence: most blocks free, most steps still to share */
    c1->decode_left = 120; /* three nearly done */
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == c1 && d == c1);
    c1->pend_tokens = 400; /* prompt tokens sent to it since its LOAD: passes the new one waits through */
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(d == c0);
    c1->pend_tokens = 0;
    CHECK_EQ_INT(cluster_pick(&c, NEED(5000), &p, &d), 0); /* fit first: only c0 holds 5,000 positions */
    CHECK(d == c0);
    c0->decode_left = 120; /* equal work: the most blocks free */
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(d == c0);
    /* the count: + max_tokens at dispatch (cluster_generate), - tokens as they arrive, the rest at
     * the end; never below 0 */
    c1->decode_left = 0;
    c1->decode_left += 256;
    cluster_decoded(c1, 6);
    CHECK_EQ_INT((int)c1->decode_left, 250);
    cluster_release(c1, c1, 200);
    CHECK_EQ_INT((int)c1->decode_left, 50);
    cluster_decoded(c1, 80);
    CHECK_EQ_INT((int)c1->decode_left, 0);
    cluster_release(NULL, NULL, 10); /* a worker already gone */
}

static void test_colocated(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_COLOCATED, 0, 200, 0, 8);
    struct cl_worker *c1 = add(&c, 1, WIRE_ROLE_COLOCATED, 0, 600, 0, 8);
    add(&c, 2, WIRE_ROLE_PREFILL, 0, 0, 0, 8); /* a prefill alone is no pair */
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == c1 && d == c1);
    struct cl_worker *dd = add(&c, 3, WIRE_ROLE_DECODE, 0, 50, 0, 8);
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == &W[2] && d == dd);
    /* 50 free blocks of 16 tokens hold 800 positions: a 1,000-position sequence goes where it fits */
    CHECK_EQ_INT(cluster_pick(&c, NEED(1000), &p, &d), 0);
    CHECK(p == c1 && d == c1);
    CHECK_EQ_INT(cluster_pick(&c, NEED(800), &p, &d), 0);
    CHECK(p == &W[2] && d == dd);
}

static void test_except_refusing_worker(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8); /* least queued: a draining worker takes nothing */
    add(&c, 1, WIRE_ROLE_PREFILL, 300, 0, 0, 8);
    add(&c, 2, WIRE_ROLE_DECODE, 0, 900, 0, 8);
    add(&c, 3, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick_except(&c, NEED(10), WIRE_ROLE_PREFILL, 100, &p, &d), 0);
    CHECK(p->id == 101 && d->id == 102);
    CHECK_EQ_INT(cluster_pick_except(&c, NEED(10), WIRE_ROLE_DECODE, 102, &p, &d), 0);
    CHECK(p->id == 100 && d->id == 103);
    /* the same id in another role is another worker */
    CHECK_EQ_INT(cluster_pick_except(&c, NEED(10), WIRE_ROLE_DECODE, 100, &p, &d), 0);
    CHECK(p->id == 100 && d->id == 102);
    /* the only worker of its role is still used */
    struct cluster c2 = {0};
    add(&c2, 4, WIRE_ROLE_PREFILL, 0, 0, 0, 8);
    add(&c2, 5, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    CHECK_EQ_INT(cluster_pick_except(&c2, NEED(10), WIRE_ROLE_DECODE, 105, &p, &d), 0);
    CHECK(p->id == 104 && d->id == 105);
}

/* KV-aware: among equally loaded workers, the ones whose prefix caches hold the prompt. */
static void test_prefix_cache_aware(void)
{
    struct cluster c = {0};
    struct cl_worker *p1 = add(&c, 0, WIRE_ROLE_PREFILL, 100, 0, 0, 8), *p2 = add(&c, 1, WIRE_ROLE_PREFILL, 100, 0, 0, 8);
    struct cl_worker *d1 = add(&c, 2, WIRE_ROLE_DECODE, 0, 500, 0, 8), *d2 = add(&c, 3, WIRE_ROLE_DECODE, 0, 500, 0, 8);
    int32_t prompt[100];
    for (int i = 0; i < 100; i++)
        prompt[i] = 7 * i + 1;
    uint64_t salt = 12345, chain = salt, keys[6];
    for (int i = 0; i < 6; i++)
        keys[i] = chain = kv_block_key(chain, prompt + i * 16, 16);
    for (int i = 0; i < 4; i++)
        W[i].reg.prefix_salt = salt;
    for (int i = 0; i < 6; i++)
        idmap_put(&p2->keys, keys[i], p2), idmap_put(&d1->keys, keys[i], d1);
    idmap_put(&p1->keys, keys[1], p1); /* a block in the middle without the start is no prefix */
    struct cl_seq s = {.prompt = prompt, .n_prompt = 100, .n_positions = 120};
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, &s, &p, &d), 0);
    CHECK(p == p2 && d == d1);
    CHECK_EQ_INT(s.prefill_cached, 6); /* (100 - 1) / 16: all it holds, the last token still computed */
    CHECK_EQ_INT(s.decode_cached, 6);
    CHECK_EQ_INT(s.to_compute, 4); /* 100 - 6 x 16 */
    p2->load.queued_tokens = 200; /* 96 cached tokens do not outweigh 100 more queued */
    CHECK_EQ_INT(cluster_pick(&c, &s, &p, &d), 0);
    CHECK(p == p1);
    p2->reg.prefix_salt = 999; /* its keys chain from another salt: the prompt matches nothing there */
    d2->load.free_blocks = 501;
    idmap_put(&d2->keys, keys[0], d2);
    p2->load.queued_tokens = 150;
    CHECK_EQ_INT(cluster_pick(&c, &s, &p, &d), 0);
    CHECK(p == p1 && s.prefill_cached == 0); /* p1's lone middle block is no prefix */
    CHECK(d == d1); /* 500 free + 6 cached beats 501 + 1 */
    for (int i = 0; i < 4; i++)
        idmap_free(&W[i].keys);
}

static void test_draining_never_picked(void)
{
    struct cluster c = {0};
    struct cl_worker *p0 = add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8); /* least queued */
    add(&c, 1, WIRE_ROLE_PREFILL, 300, 0, 0, 8);
    struct cl_worker *d2 = add(&c, 2, WIRE_ROLE_DECODE, 0, 900, 0, 8); /* most free */
    add(&c, 3, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    p0->load.draining = d2->load.draining = 1;
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p->id == 101 && d->id == 103);
    CHECK_EQ_INT(cluster_pick_except(&c, NEED(10), WIRE_ROLE_PREFILL, 101, &p, &d), 0); /* only it is left */
    CHECK(p->id == 101 && d->id == 103);
    struct cluster c2 = {0};
    add(&c2, 4, WIRE_ROLE_COLOCATED, 0, 100, 0, 8)->load.draining = 1;
    CHECK_EQ_INT(cluster_pick(&c2, NEED(10), &p, &d), -1); /* 503: nothing to route to */
}

/* A sequence of n_prompt prompt tokens and out generated ones (the prompt's ids are not needed). */
#define SEQ(np, out) (&(struct cl_seq){.n_prompt = (np), .n_positions = (np) + (out)})

/* 1 prefill + 1 colocated worker, both measured at 1 ms per prompt token; SLOs 500 ms / 50 ms. */
static void slo_cluster(struct cluster *c, uint32_t pf_queue, uint32_t co_queue, double co_tpot)
{
    memset(c, 0, sizeof *c);
    cluster_set_slo(c, 500, 50);
    add(c, 0, WIRE_ROLE_PREFILL, pf_queue, 0, 0, 8)->slo.prefill_ms_per_token = 1.0;
    struct cl_worker *co = add(c, 1, WIRE_ROLE_COLOCATED, co_queue, 600, 2, 8);
    co->slo.prefill_ms_per_token = 1.0;
    co->slo.tpot_ms = co_tpot;
}

static void test_slo_routing(void)
{
    struct cluster c;
    struct cl_worker *p, *d;
    struct cl_seq s1 = {.n_prompt = 50, .n_positions = 150}, s2 = {.n_prompt = 400, .n_positions = 500};
    /* the prefill queue (2,000 tokens = 2 s) would break the 500 ms TTFT SLO: a short prompt goes local */
    slo_cluster(&c, 2000, 0, 20);
    CHECK_EQ_INT(cluster_pick(&c, &s1, &p, &d), 0);
    CHECK(p == &W[1] && d == &W[1]);
    CHECK_EQ_INT((int)s1.queue_ahead, 50);
    CHECK(c.slo.n_local == 1 && c.slo.n_split == 0);
    /* an idle prefill worker meets the SLO: disaggregated, the colocated worker decoding it */
    slo_cluster(&c, 0, 3000, 20);
    CHECK_EQ_INT(cluster_pick(&c, &s2, &p, &d), 0);
    CHECK(p == &W[0] && d == &W[1]);
    CHECK_EQ_INT((int)s2.queue_ahead, 400);
    /* the workers keep the frontend's TPOT SLO for it, or the request's own (rounded up to a ms) */
    CHECK_EQ_INT((int)s2.tpot_slo_ms, 50);
    struct cl_seq tight = {.n_prompt = 50, .n_positions = 150, .slo_tpot_ms = 12.5};
    CHECK_EQ_INT(cluster_pick(&c, &tight, &p, &d), 0);
    CHECK_EQ_INT((int)tight.tpot_slo_ms, 13);
    /* a prefill queue that meets the 500 ms SLO but not 80% of it (350 + 50 ms fits, 400 + 50 does
     * not) leaves the split to a wrong prediction: the idle colocated worker is sooner */
    slo_cluster(&c, 350, 0, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(50, 100), &p, &d), 0);
    CHECK(p == &W[0] && d == &W[1]);
    slo_cluster(&c, 400, 0, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(50, 100), &p, &d), 0);
    CHECK(p == &W[1] && d == &W[1]);
    /* both paths miss the SLO, and the colocated worker is busier: disaggregated */
    slo_cluster(&c, 1000, 3000, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(400, 100), &p, &d), 0);
    CHECK(p == &W[0] && c.slo.n_split == 1);
    /* local would be sooner, but 500 ms of prompt over 10 tokens adds 55 ms to a 20 ms TPOT */
    slo_cluster(&c, 2000, 0, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(500, 10), &p, &d), 0);
    CHECK(p == &W[0] && d == &W[1]);
    /* ... over 100 tokens it adds 5 ms: local */
    CHECK_EQ_INT(cluster_pick(&c, SEQ(500, 100), &p, &d), 0);
    CHECK(p == &W[1]);
    /* ... but not behind 2,500 tokens already sent there: those 3 s of prompt passes, this one's
     * included, add 30 ms to the 20 ms TPOT of the sequences decoding there (the prefill worker's
     * 5.5 s are worse, but only for this request) */
    slo_cluster(&c, 5000, 2500, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(500, 100), &p, &d), 0);
    CHECK(p == &W[0] && d == &W[1]);
    /* behind 2,000 they add 25 ms: local */
    slo_cluster(&c, 5000, 2000, 20);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(500, 100), &p, &d), 0);
    CHECK(p == &W[1]);
    /* off: the colocated worker is no pair's decode worker, and it takes everything */
    slo_cluster(&c, 0, 0, 20);
    cluster_set_slo(&c, 0, 0);
    CHECK_EQ_INT(cluster_pick(&c, SEQ(50, 100), &p, &d), 0);
    CHECK(p == &W[1] && d == &W[1]);
    /* a request's own SLOs: a 3 s TTFT is met by the 2 s prefill queue, so it stays disaggregated... */
    slo_cluster(&c, 2000, 0, 20);
    struct cl_seq own = {.n_prompt = 50, .n_positions = 150, .slo_ttft_ms = 3000};
    CHECK_EQ_INT(cluster_pick(&c, &own, &p, &d), 0);
    CHECK(p == &W[0] && d == &W[1]);
    /* ... and with the frontend's SLOs off, a request that gives one is routed by it */
    cluster_set_slo(&c, 0, 0);
    own.slo_ttft_ms = 500;
    CHECK_EQ_INT(cluster_pick(&c, &own, &p, &d), 0);
    CHECK(p == &W[1] && d == &W[1]);
}

static void test_slo_estimates(void)
{
    struct slo_costs w = {0};
    CHECK(slo_predict_ttft(&w, 100, 2.0) == 200); /* not measured: the fallback */
    slo_observe_prefill(&w, 100, 50);
    CHECK(w.prefill_ms_per_token == 0.5);
    slo_observe_prefill(&w, 300, 300); /* (0.8 × 50 + 300) / (0.8 × 100 + 300) ms a token */
    CHECK(fabs(w.prefill_ms_per_token - 340.0 / 380) < 1e-12);
    slo_observe_prefill(&w, 0, 100); /* nothing was ahead: no measure */
    CHECK(fabs(w.prefill_ms_per_token - 340.0 / 380) < 1e-12);
    /* A cold worker's first request, a 4-token probe at 12.8 ms a token, then ten prompts of 131
     * tokens at 0.58: the estimate is theirs within 2% (an EWMA seeded by the probe read 1.8). */
    struct slo_costs cold = {0};
    slo_observe_prefill(&cold, 4, 51.1);
    for (int i = 0; i < 10; i++)
        slo_observe_prefill(&cold, 131, 76.0);
    CHECK(fabs(cold.prefill_ms_per_token / (76.0 / 131) - 1) < 0.02);
    slo_observe_tpot(&w, 10);
    CHECK(w.tpot_ms == 10);
    /* an unmeasured worker is assumed as fast as the mean of the measured ones */
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8)->slo.prefill_ms_per_token = 0.5;
    add(&c, 1, WIRE_ROLE_COLOCATED, 0, 600, 0, 8)->slo.prefill_ms_per_token = 1.5;
    add(&c, 2, WIRE_ROLE_DECODE, 0, 600, 0, 8);
    CHECK(fallback_ms_per_token(&c) == 1.0);
}

/* tokens_per_s prompt tokens each second from `from` s to `to` s (the ring counts seconds). */
static void feed(struct rb_state *s, const struct rb_config *c, int from, int to, uint32_t tokens_per_s)
{
    for (int t = from; t < to; t++)
        rb_note_prompt(s, c, (uint64_t)t * 1000 + 500, tokens_per_s);
}

/* Seconds from `from` to `to`: tokens_per_s prompt tokens in each, and a decision at its half; the
 * first second a decision was made (in *d), or -1. */
static int run_policy(struct rb_state *s, const struct rb_config *c, int from, int to, uint32_t tokens_per_s,
                      const struct rb_worker *w, int n, struct rb_decision *d)
{
    for (int t = from; t < to; t++) {
        rb_note_prompt(s, c, (uint64_t)t * 1000 + 500, tokens_per_s);
        if (rb_decide(s, c, (uint64_t)t * 1000 + 500, w, n, d))
            return t;
    }
    return -1;
}

static const struct rb_config rb_plain = {.low = 0.3, .high = 0.6, .window_s = 10};

/* The prompt work in workers: tokens a second over the window, at the fastest prefill worker's cost;
 * too little of it for long enough turns the prefill worker colocated. */
static void test_rebalance_low_load(void)
{
    const struct rb_config c = rb_plain;
    struct rb_state s;
    struct rb_decision d;
    rb_init(&s, &c, 0);
    /* a prefill worker at 0.5 ms a token, a colocated one slower (its passes also decode) */
    struct rb_worker w[3] = {{1, WIRE_ROLE_PREFILL, false, 0.5, 0, 0, 0}, {2, WIRE_ROLE_COLOCATED, false, 0.9, 3, 0, 0}};
    feed(&s, &c, 0, 10, 1000);
    CHECK(!rb_decide(&s, &c, 9999, w, 2, &d)); /* the first window only measures */
    /* 1000 tokens/s x 0.5 ms (the fastest) = 0.5 of a worker: inside [0.3, 1.2) for one prefill worker */
    CHECK(!rb_decide(&s, &c, 10000, w, 2, &d));
    CHECK_NEAR(s.load, 0.5, 1e-9);
    /* 400 tokens/s: 0.2 < 0.3 from the start, and once that has lasted 3 windows (at 30.5 s) the
     * prefill worker turns colocated */
    rb_init(&s, &c, 0);
    CHECK(run_policy(&s, &c, 0, 60, 400, w, 2, &d) == 30 && d.index == 0 && d.to == WIRE_ROLE_COLOCATED);
    CHECK_NEAR(s.load, 0.2, 1e-9);
    /* not while it is pinned, nor while a pure decode worker needs it */
    w[0].pinned = true;
    CHECK(!rb_decide(&s, &c, 31500, w, 2, &d));
    w[0].pinned = false;
    w[2] = (struct rb_worker){3, WIRE_ROLE_DECODE, false, 0, 0, 0, 0};
    CHECK(!rb_decide(&s, &c, 31500, w, 3, &d));
    /* nor when a colocated worker already has its id (ids are unique per role) */
    struct rb_worker same_id[2] = {{1, WIRE_ROLE_PREFILL, false, 0.5, 0, 0, 0}, {1, WIRE_ROLE_COLOCATED, false, 0.9, 0, 0, 0}};
    CHECK(!rb_decide(&s, &c, 31500, same_id, 2, &d));
    /* a dip is not a lower load: 1000 tokens/s (0.5), 20 s at 400 (under 0.3 from 27.5 to 43.5 s),
     * then 1000 again: no switch; at 400 for good, under 0.3 from 68.5 s, a switch at 98.5 s */
    rb_init(&s, &c, 0);
    CHECK(run_policy(&s, &c, 0, 20, 1000, w, 2, &d) < 0);
    CHECK(run_policy(&s, &c, 20, 40, 400, w, 2, &d) < 0);
    CHECK(run_policy(&s, &c, 40, 61, 1000, w, 2, &d) < 0);
    CHECK(run_policy(&s, &c, 61, 120, 400, w, 2, &d) == 98 && d.index == 0 && d.to == WIRE_ROLE_COLOCATED);
}

/* While a decoding worker's TPOT is at 80% of the TPOT SLO, the decode cores are short: a prefill
 * worker with little work goes sooner; TPOT alone never moves one. */
static void test_rebalance_tpot_pressure(void)
{
    struct rb_config tight = rb_plain;
    tight.tpot_slo_ms = 20;
    struct rb_state s;
    struct rb_decision d;
    /* at 16 ms of 20 the prefill worker goes after one window under 0.3 (at 10.5 s); at 15 ms, after 3 */
    struct rb_worker pressed[2] = {{1, WIRE_ROLE_PREFILL, false, 0.5, 0, 0, 0}, {2, WIRE_ROLE_COLOCATED, false, 0.9, 3, 16, 0}};
    rb_init(&s, &tight, 0);
    CHECK(run_policy(&s, &tight, 0, 60, 400, pressed, 2, &d) == 10 && d.index == 0 && d.to == WIRE_ROLE_COLOCATED);
    CHECK(strstr(d.why, "TPOT is 16.0 ms of the 20 ms SLO") != NULL);
    pressed[1].tpot_ms = 15;
    rb_init(&s, &tight, 0);
    CHECK(run_policy(&s, &tight, 0, 60, 400, pressed, 2, &d) == 30);
    /* and never on TPOT alone: at 1000 tokens/s (0.5 busy) nothing switches */
    pressed[1].tpot_ms = 30;
    rb_init(&s, &tight, 0);
    CHECK(run_policy(&s, &tight, 0, 60, 1000, pressed, 2, &d) < 0);
    /* a lone request is not traffic: a 4-token probe at 0.5 s, then silence, under TPOT pressure and
     * far under `low`: no switch at 10.5 s nor later; prompts from 30 s on are judged from 40 s (a
     * window of them), and the prefill worker goes then, the work having been low all along */
    rb_init(&s, &tight, 0);
    pressed[1].tpot_ms = 16;
    rb_note_prompt(&s, &tight, 500, 4);
    for (int t = 1; t < 30; t++)
        CHECK(!rb_decide(&s, &tight, (uint64_t)t * 1000 + 500, pressed, 2, &d));
    CHECK(run_policy(&s, &tight, 30, 60, 100, pressed, 2, &d) == 40 && d.to == WIRE_ROLE_COLOCATED);
}

/* Prompt work of at least `high` a prefill worker takes a colocated one, the least busy, as long
 * as another is left to decode. */
static void test_rebalance_high_load(void)
{
    const struct rb_config c = rb_plain;
    struct rb_state s;
    struct rb_decision d;
    /* two colocated workers at 1400 tokens/s x 0.5 ms = 0.7 >= 0.6: the one with fewer sequences
     * becomes a prefill worker, after one window; with one colocated worker left, never */
    struct rb_worker co[3] = {{4, WIRE_ROLE_COLOCATED, false, 0.6, 5, 0, 0}, {5, WIRE_ROLE_COLOCATED, false, 0.5, 2, 0, 0},
                              {6, WIRE_ROLE_COLOCATED, false, 0.5, 0, 0, 0}};
    rb_init(&s, &c, 0);
    feed(&s, &c, 0, 11, 1400);
    CHECK(rb_decide(&s, &c, 10500, co, 2, &d) && d.index == 1 && d.to == WIRE_ROLE_PREFILL);
    CHECK(!rb_decide(&s, &c, 10500, co, 1, &d));
    /* after the switch, a window of quiet; then a second prefill worker only at 1.2: not at 2000
     * tokens/s (0.97 over seconds 10..19, a second of them still at 1400), at 2500 (1.25) it is */
    rb_switched(&s, &c, 10500);
    co[1].role = WIRE_ROLE_PREFILL;
    feed(&s, &c, 11, 20, 2000);
    CHECK(!rb_decide(&s, &c, 20499, co, 3, &d));
    feed(&s, &c, 20, 21, 2000);
    CHECK(!rb_decide(&s, &c, 20500, co, 3, &d));
    CHECK_NEAR(s.load, 0.97, 1e-9);
    feed(&s, &c, 21, 31, 2500);
    CHECK(rb_decide(&s, &c, 31500, co, 3, &d) && d.index == 2 && d.to == WIRE_ROLE_PREFILL);
    CHECK_NEAR(s.load, 1.25, 1e-9);
    /* old seconds leave the window: after 20 quiet seconds there is no prompt work, but an idle
     * cluster keeps its roles; a trickle of prompts sends the prefill worker back, 3 windows after
     * the work fell under 0.3 */
    CHECK(!rb_decide(&s, &c, 50500, co, 2, &d));
    CHECK_NEAR(s.load, 0.0, 1e-12);
    CHECK(run_policy(&s, &c, 51, 90, 10, co, 2, &d) == 80 && d.index == 1 && d.to == WIRE_ROLE_COLOCATED);
    CHECK_NEAR(s.load, 0.005, 1e-12);
    /* a window that began idle understates the load: prompts from 5 s on are judged from 15 s */
    co[1].role = WIRE_ROLE_COLOCATED;
    rb_init(&s, &c, 0);
    feed(&s, &c, 5, 16, 1400);
    CHECK(!rb_decide(&s, &c, 15499, co, 2, &d));
    CHECK(rb_decide(&s, &c, 15500, co, 2, &d) && d.index == 1 && d.to == WIRE_ROLE_PREFILL);
}

/* With SLOs, the prompt work alone does not take a prefill worker: only colocation failing, a
 * prefilling worker's TTFT at 80% of its SLO (800 of 1000 ms) and a decoding one's TPOT at 80% (16
 * of 20 ms), both for a whole window, and only while prefill workers could keep up. */
static void test_rebalance_slo(void)
{
    struct rb_config slo = rb_plain;
    slo.ttft_slo_ms = 1000, slo.tpot_slo_ms = 20, slo.max_busy = 0.8;
    struct rb_state s;
    struct rb_decision d;
    struct rb_worker co[2] = {{4, WIRE_ROLE_COLOCATED, false, 0.6, 5, 0, 450},
                              {5, WIRE_ROLE_COLOCATED, false, 0.5, 2, 10, 500}}; /* colocation holds both */
    rb_init(&s, &slo, 0);
    CHECK(run_policy(&s, &slo, 0, 60, 1400, co, 2, &d) < 0);
    co[0].ttft_ms = 900; /* prompts wait, decodes keep their TPOT: a prefill worker would not help */
    rb_init(&s, &slo, 0);
    CHECK(run_policy(&s, &slo, 0, 60, 1400, co, 2, &d) < 0);
    co[1].tpot_ms = 17; /* both, from 0.5 s: at 10.5 s they have lasted a window */
    rb_init(&s, &slo, 0);
    CHECK(run_policy(&s, &slo, 0, 60, 1400, co, 2, &d) == 10 && d.index == 1 && d.to == WIRE_ROLE_PREFILL);
    CHECK(strstr(d.why, "TTFT is 900 ms of the 1000 ms SLO, a decoding worker's TPOT 17.0 ms of 20") != NULL);
    /* a peak is not failing: both for 5 s, then TPOT back to 10 ms, then both again from 15.5 s: the
     * window is counted again from there, a switch at 25.5 s */
    rb_init(&s, &slo, 0);
    CHECK(run_policy(&s, &slo, 0, 5, 1400, co, 2, &d) < 0);
    co[1].tpot_ms = 10;
    CHECK(run_policy(&s, &slo, 5, 15, 1400, co, 2, &d) < 0);
    co[1].tpot_ms = 17;
    CHECK(run_policy(&s, &slo, 15, 60, 1400, co, 2, &d) == 25 && d.index == 1);
    /* past what the prefill workers could keep up with, colocation fails because the cluster is
     * overloaded: at 2000 tokens/s (1.0 of a worker, over 0.8) no prefill worker is taken */
    rb_init(&s, &slo, 0);
    CHECK(run_policy(&s, &slo, 0, 60, 2000, co, 2, &d) < 0);
}

/* What the policy measures prompt work by: nothing before a worker is measured; a prefill worker's
 * cost, remembered once it has turned colocated. */
static void test_rebalance_measure(void)
{
    const struct rb_config c = rb_plain;
    struct rb_state s;
    struct rb_decision d;
    /* nothing measured yet: no decision, however long the traffic */
    struct rb_worker fresh[2] = {{7, WIRE_ROLE_PREFILL, false, 0, 0, 0, 0}, {8, WIRE_ROLE_COLOCATED, false, 0, 0, 0, 0}};
    rb_init(&s, &c, 0);
    CHECK(run_policy(&s, &c, 0, 60, 10, fresh, 2, &d) < 0);
    /* a colocated worker's measure counts the decodes its prompts share steps with: once a prefill
     * worker was measured at 0.5 ms, 1000 tokens/s stay 0.5 of a worker of prompt work when it has
     * turned colocated and both measure 1.5 ms (which would make it 1.5, and a switch back) */
    struct rb_worker was[2] = {{9, WIRE_ROLE_PREFILL, false, 0.5, 0, 0, 0}, {10, WIRE_ROLE_COLOCATED, false, 1.5, 0, 0, 0}};
    rb_init(&s, &c, 100000);
    feed(&s, &c, 100, 111, 1000);
    CHECK(!rb_decide(&s, &c, 110500, was, 2, &d));
    CHECK_NEAR(s.load, 0.5, 1e-9);
    was[0].role = WIRE_ROLE_COLOCATED;
    was[0].ms_per_token = 1.5;
    CHECK(!rb_decide(&s, &c, 110500, was, 2, &d));
    CHECK_NEAR(s.load, 0.5, 1e-9);
}

/* A worker draining for a role switch is not picked; the other one takes its sequences. */
static void test_switching_not_picked(void)
{
    struct cluster c = {0};
    struct cl_worker *pre = add(&c, 0, WIRE_ROLE_PREFILL, 0, 0, 0, 8);
    struct cl_worker *co = add(&c, 1, WIRE_ROLE_COLOCATED, 0, 100, 0, 8);
    c.slo.ttft_ms = 1000;
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == pre && d == co);
    pre->switch_to = WIRE_ROLE_COLOCATED;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), 0);
    CHECK(p == co && d == co);
    pre->switch_to = 0;
    co->switch_to = WIRE_ROLE_PREFILL;
    CHECK_EQ_INT(cluster_pick(&c, NEED(10), &p, &d), -1); /* no decode worker left to pair with */
}

int main(void)
{
    RUN(test_ready);
    RUN(test_prefill_least_queued);
    RUN(test_decode_most_free_with_room);
    RUN(test_decode_least_work);
    RUN(test_colocated);
    RUN(test_except_refusing_worker);
    RUN(test_draining_never_picked);
    RUN(test_prefix_cache_aware);
    RUN(test_slo_routing);
    RUN(test_slo_estimates);
    RUN(test_rebalance_low_load);
    RUN(test_rebalance_tpot_pressure);
    RUN(test_rebalance_high_load);
    RUN(test_rebalance_slo);
    RUN(test_rebalance_measure);
    RUN(test_switching_not_picked);
    return check_report();
}
