/* test_frontend_route.c — the cluster's placement rules on hand-built registries (no network):
 * prefill = fewest queued prompt tokens (last LOAD plus what was sent since), decode = most free KV
 * blocks among workers with batch room (any worker when none has room), colocated only without a
 * prefill+decode pair or when only it has free blocks for the whole sequence, a worker that refused a sequence skipped on its retry unless it is the only one,
 * a worker whose LOAD says it is draining never picked, and /health readiness. */
#include "frontend/cluster.c"

#include "tests/helpers/check.h"

static struct cl_worker W[8];

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
    CHECK_EQ_INT(cluster_pick(&c3, 10, &p, &d), -1);
}

static void test_prefill_least_queued(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_PREFILL, 500, 0, 0, 8);
    struct cl_worker *p1 = add(&c, 1, WIRE_ROLE_PREFILL, 100, 0, 0, 8);
    add(&c, 2, WIRE_ROLE_PREFILL, 300, 0, 0, 8);
    add(&c, 3, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK(p == p1);
    /* what we sent since its last report counts too */
    p1->pend_tokens = 250;
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
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
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK(d == d2);
    d2->pend_blocks = 150; /* blocks our recent requests will take */
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK_EQ_INT(d->id, 103);
    /* nobody has batch room: the most free blocks anyway (it queues, never drops) */
    W[2].load.running = 8;
    W[3].load.running = 8;
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK_EQ_INT(d->id, 101);
}

static void test_colocated(void)
{
    struct cluster c = {0};
    add(&c, 0, WIRE_ROLE_COLOCATED, 0, 200, 0, 8);
    struct cl_worker *c1 = add(&c, 1, WIRE_ROLE_COLOCATED, 0, 600, 0, 8);
    add(&c, 2, WIRE_ROLE_PREFILL, 0, 0, 0, 8); /* a prefill alone is no pair */
    struct cl_worker *p, *d;
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK(p == c1 && d == c1);
    struct cl_worker *dd = add(&c, 3, WIRE_ROLE_DECODE, 0, 50, 0, 8);
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK(p == &W[2] && d == dd);
    /* 50 free blocks of 16 tokens hold 800 positions: a 1,000-position sequence goes where it fits */
    CHECK_EQ_INT(cluster_pick(&c, 1000, &p, &d), 0);
    CHECK(p == c1 && d == c1);
    CHECK_EQ_INT(cluster_pick(&c, 800, &p, &d), 0);
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
    CHECK_EQ_INT(cluster_pick_except(&c, 10, WIRE_ROLE_PREFILL, 100, &p, &d), 0);
    CHECK(p->id == 101 && d->id == 102);
    CHECK_EQ_INT(cluster_pick_except(&c, 10, WIRE_ROLE_DECODE, 102, &p, &d), 0);
    CHECK(p->id == 100 && d->id == 103);
    /* the same id in another role is another worker */
    CHECK_EQ_INT(cluster_pick_except(&c, 10, WIRE_ROLE_DECODE, 100, &p, &d), 0);
    CHECK(p->id == 100 && d->id == 102);
    /* the only worker of its role is still used */
    struct cluster c2 = {0};
    add(&c2, 4, WIRE_ROLE_PREFILL, 0, 0, 0, 8);
    add(&c2, 5, WIRE_ROLE_DECODE, 0, 100, 0, 8);
    CHECK_EQ_INT(cluster_pick_except(&c2, 10, WIRE_ROLE_DECODE, 105, &p, &d), 0);
    CHECK(p->id == 104 && d->id == 105);
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
    CHECK_EQ_INT(cluster_pick(&c, 10, &p, &d), 0);
    CHECK(p->id == 101 && d->id == 103);
    CHECK_EQ_INT(cluster_pick_except(&c, 10, WIRE_ROLE_PREFILL, 101, &p, &d), 0); /* only it is left */
    CHECK(p->id == 101 && d->id == 103);
    struct cluster c2 = {0};
    add(&c2, 4, WIRE_ROLE_COLOCATED, 0, 100, 0, 8)->load.draining = 1;
    CHECK_EQ_INT(cluster_pick(&c2, 10, &p, &d), -1); /* 503: nothing to route to */
}

int main(void)
{
    RUN(test_ready);
    RUN(test_prefill_least_queued);
    RUN(test_decode_most_free_with_room);
    RUN(test_colocated);
    RUN(test_except_refusing_worker);
    RUN(test_draining_never_picked);
    return check_report();
}
