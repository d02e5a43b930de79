/* test_engine_kvcache.c — the block allocator, reference counts and block tables. */
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
    return check_report();
}
