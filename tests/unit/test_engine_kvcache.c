/* test_engine_kvcache.c — the block allocator, reference counts and block tables, and the prefix
 * cache: content-addressed full blocks, matched by tokens, kept until allocation evicts them least
 * recently used first (a prefix from its tail), never evicted while held, collisions caught by the
 * token comparison, and the add/evict events load reports carry. */
#include "tests/helpers/check.h"
#include "common/engine/kvcache.h"

static struct model_config cfg(void)
{
    struct model_config c = {.n_layers = 3, .n_kv_heads = 2, .head_dim = 8};
    return c;
}

static void alloc_in_order_and_exhaust(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 5, 4, KN_F32, NULL) == 0);
    CHECK_EQ_INT(p.block_elems, 2 * 4 * 2 * 8);
    CHECK_EQ_INT(p.block_bytes, 2 * 4 * 2 * 8 * 4);
    CHECK(((uintptr_t)p.data & 4095) == 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(kv_alloc(&p), i);
    CHECK_EQ_INT(kv_alloc(&p), -1);
    CHECK_EQ_INT(kv_used(&p), 5);
    kv_unref(&p, 3);
    CHECK_EQ_INT(kv_used(&p), 4);
    CHECK_EQ_INT(kv_alloc(&p), 3);
    kv_pool_destroy(&p);
}

static void refcounts_share_blocks(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 2, 4, KN_F32, NULL) == 0);
    int32_t b = kv_alloc(&p);
    kv_ref(&p, b);
    kv_unref(&p, b);
    CHECK_EQ_INT(kv_used(&p), 1); /* still referenced once */
    kv_unref(&p, b);
    CHECK_EQ_INT(kv_used(&p), 0);
    kv_pool_destroy(&p);
}

static void layout_is_layer_major(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    for (int t = KN_F32; t <= KN_BF16; t++) {
        CHECK(kv_pool_init(&p, &c, 4, 4, (enum kn_dtype)t, NULL) == 0);
        CHECK_EQ_INT(p.block_bytes, p.block_elems * (t == KN_F32 ? 4 : 2));
        char *k01 = kv_k(&p, 0, 1), *k00 = kv_k(&p, 0, 0), *k10 = kv_k(&p, 1, 0), *k23 = kv_k(&p, 2, 3),
             *v23 = kv_v(&p, 2, 3);
        CHECK(k01 - k00 == (long)p.block_bytes);
        CHECK(k10 - k00 == (long)(4 * p.block_bytes));
        CHECK(v23 - k23 == (long)(p.block_bytes / 2));
        CHECK(k23 + p.block_bytes == (char *)p.data + p.bytes);
        kv_pool_destroy(&p);
    }
}

static void reserve_is_all_or_nothing(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 4, 4, KN_F32, NULL) == 0);
    struct kv_seq a = {0}, b = {0};
    CHECK(kv_seq_reserve(&p, &a, 1) == 0);
    CHECK_EQ_INT(a.n_blocks, 1);
    CHECK(kv_seq_reserve(&p, &a, 4) == 0); /* still fits in one block */
    CHECK_EQ_INT(a.n_blocks, 1);
    CHECK(kv_seq_reserve(&p, &a, 5) == 0);
    CHECK_EQ_INT(a.n_blocks, 2);
    CHECK(kv_seq_reserve(&p, &b, 13) == -1); /* needs 4, 2 free */
    CHECK_EQ_INT(b.n_blocks, 0);
    CHECK_EQ_INT(kv_used(&p), 2);
    CHECK(kv_seq_reserve(&p, &b, 8) == 0);
    CHECK_EQ_INT(kv_used(&p), 4);
    kv_seq_release(&p, &a);
    kv_seq_release(&p, &b);
    CHECK_EQ_INT(kv_used(&p), 0);
    kv_pool_destroy(&p);
}

/* tokens [0, n) of a sequence whose first `shared` tokens are 100 + i, then 1000 * tag + i */
static void fill(int32_t *t, int n, int shared, int tag)
{
    for (int i = 0; i < n; i++)
        t[i] = i < shared ? 100 + i : 1000 * tag + i;
}

/* A sequence of n tokens computed and cached; returns its table (the caller releases it). */
static struct kv_seq computed(struct kv_pool *p, const int32_t *t, int n)
{
    struct kv_seq s = {0};
    int published = 0;
    uint64_t chain = 0;
    CHECK(kv_seq_reserve(p, &s, n) == 0);
    kv_prefix_publish(p, t, &s, &published, n / p->block_size, &chain);
    CHECK_EQ_INT(published, n / p->block_size);
    return s;
}

static void prefix_match_and_share(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 16, 4, KN_F32, NULL) == 0 && kv_prefix_enable(&p, 7, NULL) == 0);
    int32_t a[40], b[40];
    fill(a, 40, 40, 1);
    struct kv_seq sa = computed(&p, a, 40);
    kv_seq_release(&p, &sa);
    CHECK_EQ_INT(kv_used(&p), 0); /* cached blocks nobody holds count as free */
    fill(b, 40, 26, 2);            /* 6 full blocks in common, the 7th differs */
    struct kv_seq sb = {0};
    uint64_t chain;
    CHECK_EQ_INT(kv_prefix_match(&p, b, 9, &sb, &chain), 6);
    CHECK_EQ_INT(kv_used(&p), 6);
    struct kv_seq sc = {0};
    CHECK_EQ_INT(kv_prefix_match(&p, a, 3, &sc, &chain), 3); /* bounded by the caller */
    CHECK(sc.blocks[0] == sb.blocks[0] && p.refs[sb.blocks[0]] == 2);
    CHECK_EQ_INT(kv_used(&p), 6);
    struct kv_seq sd = {0};
    CHECK_EQ_INT(kv_prefix_match(&p, b + 4, 9, &sd, &chain), 0); /* same blocks, other positions */
    uint64_t q, h;
    kv_prefix_stats(&p, &q, &h);
    CHECK(q == (9 + 3 + 9) * 4 && h == (6 + 3) * 4);
    kv_seq_release(&p, &sb);
    kv_seq_release(&p, &sc);
    kv_pool_destroy(&p);
}

static void prefix_eviction_order(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 8, 4, KN_F32, NULL) == 0 && kv_prefix_enable(&p, 7, NULL) == 0);
    int32_t a[32];
    fill(a, 32, 32, 1);
    struct kv_seq sa = computed(&p, a, 32); /* the whole pool, cached */
    kv_seq_release(&p, &sa);
    struct kv_seq held = {0};
    uint64_t chain;
    CHECK_EQ_INT(kv_prefix_match(&p, a, 2, &held, &chain), 2); /* blocks 0-1 held */
    struct kv_seq fresh = {0};
    CHECK(kv_seq_reserve(&p, &fresh, 12) == 0); /* evicts 3: the prefix's tail, not what is held */
    CHECK(kv_seq_reserve(&p, &fresh, 40) == -1); /* 2 held + 3 new + 3 cached: 3 more at most */
    struct kv_seq again = {0};
    kv_seq_release(&p, &held);
    CHECK_EQ_INT(kv_prefix_match(&p, a, 8, &again, &chain), 5); /* blocks 5-7 were evicted */
    struct kv_event ev[32];
    bool lost;
    int n = kv_prefix_events(&p, ev, 32, &lost), added = 0, evicted = 0;
    for (int i = 0; i < n; i++)
        added += ev[i].added, evicted += !ev[i].added;
    CHECK(n == 11 && added == 8 && evicted == 3 && !lost);
    CHECK_EQ_INT(kv_prefix_events(&p, ev, 32, &lost), 0);
    kv_seq_release(&p, &again);
    kv_seq_release(&p, &fresh);
    CHECK_EQ_INT(kv_used(&p), 0);
    kv_pool_destroy(&p);
}

static void prefix_collisions_caught(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    CHECK(kv_pool_init(&p, &c, 64, 4, KN_F32, NULL) == 0 && kv_prefix_enable(&p, 7, NULL) == 0);
    kv_prefix_test_key_bits(&p, 2); /* four keys for everything: blocks collide all the time */
    int32_t t[8][16];
    struct kv_seq s[8];
    for (int k = 0; k < 8; k++) {
        fill(t[k], 16, 0, k + 1);
        s[k] = computed(&p, t[k], 16);
    }
    for (int k = 0; k < 8; k++) {
        struct kv_seq m = {0};
        uint64_t chain;
        CHECK_EQ_INT(kv_prefix_match(&p, t[k], 4, &m, &chain), 4);
        for (int i = 0; i < 4; i++)
            CHECK(m.blocks[i] == s[k].blocks[i]); /* its own blocks, whatever the keys */
        kv_seq_release(&p, &m);
        kv_seq_release(&p, &s[k]);
    }
    int32_t other[16];
    fill(other, 16, 0, 99);
    struct kv_seq m = {0};
    uint64_t chain;
    CHECK_EQ_INT(kv_prefix_match(&p, other, 4, &m, &chain), 0);
    kv_pool_destroy(&p);
}

static void bad_sizes_refused(void)
{
    struct kv_pool p;
    struct model_config c = cfg();
    struct error err;
    CHECK(kv_pool_init(&p, &c, 0, 16, KN_F32, &err) == -1);
    CHECK(strstr(err.msg, "block") != NULL);
    CHECK(kv_pool_init(&p, &c, 4, 0, KN_F32, &err) == -1);
    CHECK(kv_blocks_in_bytes(&c, 4, KN_F32, 3 * 2 * 4 * 2 * 8 * 4 * 10) == 10);
    CHECK(kv_blocks_in_bytes(&c, 4, KN_F16, 3 * 2 * 4 * 2 * 8 * 4 * 10) == 20);
    CHECK(kv_pool_init(&p, &c, 4, 4, KN_Q8, &err) == -1 && strstr(err.msg, "q8"));
}

int main(void)
{
    RUN(alloc_in_order_and_exhaust);
    RUN(refcounts_share_blocks);
    RUN(layout_is_layer_major);
    RUN(reserve_is_all_or_nothing);
    RUN(bad_sizes_refused);
    RUN(prefix_match_and_share);
    RUN(prefix_eviction_order);
    RUN(prefix_collisions_caught);
    return check_report();
}
