/* kvcache.h — the paged KV cache: one pool of fixed-size blocks per process, reference-counted so a
 * block can be shared, and per-sequence block tables.
 *
 * Layout (the wire protocol relies on it; see docs/transport.md): one contiguous page-aligned buffer;
 * block b of layer l starts at byte offset (l * n_blocks + b) * block_bytes, and holds K for
 * block_size positions ([pos][kv_head][head_dim]) followed by V in the same shape, each element of
 * the pool's dtype (f32, f16 or bf16: K and V are rounded to it when stored). So a run of
 * consecutive block ids within one layer is one contiguous byte range — one RMA put.
 *
 * Allocation, references and block tables are thread-safe (one lock per pool, held only for the
 * bookkeeping): a worker's network thread grants blocks while its engine thread computes. */
#ifndef PD_KVCACHE_H
#define PD_KVCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"
#include "common/engine/kernels.h"
#include "common/engine/model.h"

struct kv_prefix;

struct kv_pool {
    void *data;
    size_t bytes;
    int n_layers, n_blocks, block_size, n_kv_heads, head_dim;
    enum kn_dtype dtype;  /* KN_F32, KN_F16 or KN_BF16 */
    size_t block_elems;   /* 2 * block_size * n_kv_heads * head_dim */
    size_t block_bytes;   /* block_elems * the dtype's size */
    int32_t *refs;       /* [n_blocks]; 0 = free */
    int32_t *free_ids;   /* stack of free block ids; pops in ascending order from a fresh pool */
    int n_free;
    struct kv_prefix *prefix; /* NULL unless kv_prefix_enable: cached blocks (kvprefix.c) */
    pthread_mutex_t lock; /* guards refs, free_ids, n_free and the prefix cache */
};

int kv_pool_init(struct kv_pool *p, const struct model_config *c, int n_blocks, int block_size,
                 enum kn_dtype dtype, struct error *err);
void kv_pool_destroy(struct kv_pool *p);
/* Blocks that fit in `bytes` of memory for this model, block size and dtype (for --kv-gib). */
int kv_blocks_in_bytes(const struct model_config *c, int block_size, enum kn_dtype dtype, size_t bytes);

int32_t kv_alloc(struct kv_pool *p); /* -1 when the pool is full; the new block has refcount 1 */
void kv_ref(struct kv_pool *p, int32_t block);
void kv_unref(struct kv_pool *p, int32_t block); /* frees at refcount 0 */
int kv_used(struct kv_pool *p); /* blocks someone holds; cached blocks nobody holds count as free */

static inline void *kv_k(const struct kv_pool *p, int layer, int32_t block)
{
    return (char *)p->data + ((size_t)layer * p->n_blocks + (size_t)block) * p->block_bytes;
}
static inline void *kv_v(const struct kv_pool *p, int layer, int32_t block)
{
    return (char *)kv_k(p, layer, block) + p->block_bytes / 2;
}

/* A sequence's block table: blocks[i] holds positions [i*block_size, (i+1)*block_size). */
struct kv_seq {
    int32_t *blocks;
    int n_blocks, cap;
};

static inline int kv_blocks_for(const struct kv_pool *p, int n_tokens)
{
    return (n_tokens + p->block_size - 1) / p->block_size;
}
/* Makes room for n_tokens positions in total; all or nothing: -1 (nothing allocated) if the pool
 * cannot supply the missing blocks. */
int kv_seq_reserve(struct kv_pool *p, struct kv_seq *s, int n_tokens);
/* Appends an already-allocated block (whose reference the table takes over). */
int kv_seq_push(struct kv_seq *s, int32_t block);
/* Drops every block reference and empties the table. */
void kv_seq_release(struct kv_pool *p, struct kv_seq *s);

/* ---- prefix caching (kvprefix.c) ----
 * Full blocks are known by a chained key of their tokens (and the pool's salt: model and layout), and
 * stay cached after their last user leaves, until allocation needs them (least recently used first).
 * A match is confirmed by the tokens stored with the block, never by the key alone. Cached blocks
 * are shared read-only: a caller matches only blocks its sequence will not write. */
#define KV_PREFIX_EVENTS 8192 /* keys added or evicted, kept for the worker's load reports */

struct kv_event {
    uint64_t key;
    bool added; /* else evicted */
};

struct kv_prefix {
    uint64_t *key;      /* [n_blocks] key as indexed (0: not cached) */
    uint64_t *full_key; /* [n_blocks] the whole key (what load reports publish) */
    int32_t *tokens;    /* [n_blocks][block_size] the tokens a cached block holds */
    int32_t *prev, *next; /* LRU links of cached blocks nobody holds */
    int32_t lru_head, lru_tail;
    int n_lru;
    int32_t *table;     /* [table_cap] block ids by key; -1 empty */
    size_t table_cap;
    uint64_t salt, key_mask;
    struct kv_event events[KV_PREFIX_EVENTS];
    int n_events;
    bool events_lost;   /* more happened than events holds: the reader should start over */
    uint64_t query_tokens, hit_tokens;
};

/* Turns prefix caching on; salt names the model (a different model's blocks never match). */
int kv_prefix_enable(struct kv_pool *p, uint64_t salt, struct error *err);
void kv_prefix_free(struct kv_pool *p);
/* The key before block 0: what kv_block_key chains from, for this pool. 0 when caching is off. */
uint64_t kv_prefix_salt(const struct kv_pool *p);
uint64_t kv_block_key(uint64_t prev, const int32_t *tokens, int n);
/* Starts an empty block table s with the cached blocks holding tokens, at most max_blocks of them
 * (each takes a reference); returns how many. *chain gets the key of the last one matched. */
int kv_prefix_match(struct kv_pool *p, const int32_t *tokens, int max_blocks, struct kv_seq *s, uint64_t *chain);
/* Caches blocks [*n_published, n_full) of s, whose tokens are now all in the cache; *chain is the key
 * of block *n_published - 1 (kept by the caller between calls), and both advance. */
void kv_prefix_publish(struct kv_pool *p, const int32_t *tokens, const struct kv_seq *s, int *n_published,
                       int n_full, uint64_t *chain);
/* Takes up to max keys added or evicted since the last call, oldest first; *lost when some were
 * dropped for want of room (the reader's index of this pool should be rebuilt). */
int kv_prefix_events(struct kv_pool *p, struct kv_event *out, int max, bool *lost);
void kv_prefix_stats(struct kv_pool *p, uint64_t *query_tokens, uint64_t *hit_tokens);
/* Every cached key (up to max), and the events so far dropped: a snapshot to restart an index from. */
int kv_prefix_keys(struct kv_pool *p, uint64_t *out, int max);
/* Tests only: index keys by their low `bits` bits, so that different blocks collide. */
void kv_prefix_test_key_bits(struct kv_pool *p, int bits);

/* For kvcache.c, under the lock. */
bool kv_prefix_cached_locked(const struct kv_pool *p, int32_t b);
void kv_prefix_park_locked(struct kv_pool *p, int32_t b);
int32_t kv_prefix_evict_locked(struct kv_pool *p);

#endif
