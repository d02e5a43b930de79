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
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"
#include "common/engine/kernels.h"
#include "common/engine/model.h"

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
    pthread_mutex_t lock; /* guards refs, free_ids, n_free */
};

int kv_pool_init(struct kv_pool *p, const struct model_config *c, int n_blocks, int block_size,
                 enum kn_dtype dtype, struct error *err);
void kv_pool_destroy(struct kv_pool *p);
/* Blocks that fit in `bytes` of memory for this model, block size and dtype (for --kv-gib). */
int kv_blocks_in_bytes(const struct model_config *c, int block_size, enum kn_dtype dtype, size_t bytes);

int32_t kv_alloc(struct kv_pool *p); /* -1 when the pool is full; the new block has refcount 1 */
void kv_ref(struct kv_pool *p, int32_t block);
void kv_unref(struct kv_pool *p, int32_t block); /* frees at refcount 0 */
int kv_used(struct kv_pool *p);

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

#endif
