/* kvcache.c — the block pool and block tables declared in kvcache.h. */
#include "common/engine/kvcache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int kv_blocks_in_bytes(const struct model_config *c, int block_size, enum kn_dtype dtype, size_t bytes)
{
    size_t per_block = 2ull * block_size * c->n_kv_heads * c->head_dim * kn_dtype_size(dtype) * c->n_layers;
    size_t n = bytes / per_block;
    return n > (1u << 30) ? (1 << 30) : (int)n;
}

int kv_pool_init(struct kv_pool *p, const struct model_config *c, int n_blocks, int block_size,
                 enum kn_dtype dtype, struct error *err)
{
    memset(p, 0, sizeof *p);
    if (dtype != KN_F32 && dtype != KN_F16 && dtype != KN_BF16)
        return error_set(err, "KV pool: dtype %s is not one of f32, f16, bf16", kn_dtype_name(dtype));
    if (n_blocks < 1 || block_size < 1 || block_size > 4096)
        return error_set(err, "KV pool: need at least one block and a block size in 1..4096 (got %d "
                              "blocks of %d)", n_blocks, block_size);
    p->n_layers = c->n_layers;
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    p->n_kv_heads = c->n_kv_heads;
    p->head_dim = c->head_dim;
    p->dtype = dtype;
    p->block_elems = 2ull * block_size * c->n_kv_heads * c->head_dim;
    p->block_bytes = p->block_elems * kn_dtype_size(dtype);
    p->bytes = (size_t)c->n_layers * n_blocks * p->block_bytes;
    /* Anonymous mmap: page-aligned (UCX registers it whole) and committed only as it is touched. */
    void *mem = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p->refs = calloc((size_t)n_blocks, sizeof *p->refs);
    p->free_ids = malloc((size_t)n_blocks * sizeof *p->free_ids);
    if (mem == MAP_FAILED || !p->refs || !p->free_ids) {
        if (mem != MAP_FAILED)
            munmap(mem, p->bytes);
        free(p->refs);
        free(p->free_ids);
        double mib = (double)p->bytes / 1048576.0;
        memset(p, 0, sizeof *p);
        return error_set(err, "KV pool: cannot allocate %d blocks (%.1f MiB); lower --kv-blocks or "
                              "--kv-gib", n_blocks, mib);
    }
    madvise(mem, p->bytes, MADV_HUGEPAGE); /* attention streams it: fewer TLB misses (see model.c) */
    p->data = mem;
    pthread_mutex_init(&p->lock, NULL);
    for (int i = 0; i < n_blocks; i++)
        p->free_ids[i] = n_blocks - 1 - i;
    p->n_free = n_blocks;
    return 0;
}

void kv_pool_destroy(struct kv_pool *p)
{
    if (p->data) {
        munmap(p->data, p->bytes);
        pthread_mutex_destroy(&p->lock);
    }
    free(p->refs);
    free(p->free_ids);
    kv_prefix_free(p);
    memset(p, 0, sizeof *p);
}

/* A free block, else the least recently used cached one nobody holds. */
static int32_t alloc_locked(struct kv_pool *p)
{
    int32_t b = p->n_free > 0 ? p->free_ids[--p->n_free] : kv_prefix_evict_locked(p);
    if (b >= 0)
        p->refs[b] = 1;
    return b;
}

static void unref_locked(struct kv_pool *p, int32_t block)
{
    if (--p->refs[block] > 0)
        return;
    if (kv_prefix_cached_locked(p, block))
        kv_prefix_park_locked(p, block);
    else
        p->free_ids[p->n_free++] = block;
}

/* Blocks an allocation can have: free ones and cached ones nobody holds. */
static int available_locked(const struct kv_pool *p)
{
    return p->n_free + (p->prefix ? p->prefix->n_lru : 0);
}

int32_t kv_alloc(struct kv_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int32_t b = alloc_locked(p);
    pthread_mutex_unlock(&p->lock);
    return b;
}

void kv_ref(struct kv_pool *p, int32_t block)
{
    pthread_mutex_lock(&p->lock);
    p->refs[block]++;
    pthread_mutex_unlock(&p->lock);
}

void kv_unref(struct kv_pool *p, int32_t block)
{
    pthread_mutex_lock(&p->lock);
    unref_locked(p, block);
    pthread_mutex_unlock(&p->lock);
}

int kv_used(struct kv_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int used = p->n_blocks - available_locked(p);
    pthread_mutex_unlock(&p->lock);
    return used;
}

int kv_seq_push(struct kv_seq *s, int32_t block)
{
    if (s->n_blocks == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b)
            return -1;
        s->blocks = b;
        s->cap = cap;
    }
    s->blocks[s->n_blocks++] = block;
    return 0;
}

static int reserve_locked(struct kv_pool *p, struct kv_seq *s, int need)
{
    if (need > available_locked(p))
        return -1;
    int have = s->n_blocks;
    for (int i = 0; i < need; i++) {
        int32_t b = alloc_locked(p);
        if (kv_seq_push(s, b) < 0) {
            unref_locked(p, b);
            while (s->n_blocks > have)
                unref_locked(p, s->blocks[--s->n_blocks]);
            return -1;
        }
    }
    return 0;
}

int kv_seq_reserve(struct kv_pool *p, struct kv_seq *s, int n_tokens)
{
    int need = kv_blocks_for(p, n_tokens) - s->n_blocks;
    if (need <= 0)
        return 0;
    pthread_mutex_lock(&p->lock);
    int rc = reserve_locked(p, s, need);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void kv_seq_release(struct kv_pool *p, struct kv_seq *s)
{
    pthread_mutex_lock(&p->lock);
    for (int i = s->n_blocks - 1; i >= 0; i--) /* last first: a cached prefix is evicted from its tail */
        unref_locked(p, s->blocks[i]);
    pthread_mutex_unlock(&p->lock);
    free(s->blocks);
    memset(s, 0, sizeof *s);
}
