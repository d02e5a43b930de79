/* kvprefix.c — automatic prefix caching in the KV pool (kvcache.h): full blocks known by their
 * content, kept after their last user leaves, found again by the next sequence that starts with the
 * same tokens.
 *
 * A full block's key is a chained hash: key(i) = hash(key(i-1), the block's tokens), so one key names
 * the block and the whole prefix before it; the pool's salt (model and KV layout) goes into key(-1).
 * A hit is confirmed by comparing the tokens stored with the block — never the hash alone — so a
 * collision costs a miss, not a wrong answer.
 *
 * A cached block with no user (refcount 0) sits in an LRU list instead of the free list; allocation
 * takes a free block first and evicts the least recently used cached one only when there is none.
 * A block in use is never evicted, and a cached block is never written: a sequence matches only
 * blocks it will not append to (the caller bounds the match).
 *
 * Everything here runs under the pool's lock, taken by the public functions. */
#include "common/engine/kvcache.h"

#include <stdlib.h>
#include <string.h>

#define NONE (-1)

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

uint64_t kv_block_key(uint64_t prev, const int32_t *tokens, int n)
{
    uint64_t h = mix(prev ^ 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < n; i++)
        h = mix(h ^ ((uint64_t)(uint32_t)tokens[i] + 0x632be59bd9b4e019ull * (uint64_t)(i + 1)));
    return h ? h : 1; /* 0 marks "not cached" */
}

/* ---- the key → block table (open addressing, linear probing, backward-shift deletion) ---- */

static size_t slot_of(const struct kv_prefix *x, uint64_t key)
{
    return (size_t)(key & x->key_mask) & (x->table_cap - 1);
}

static int32_t table_find(const struct kv_prefix *x, uint64_t key, const int32_t *tokens, int bs)
{
    for (size_t i = slot_of(x, key);; i = (i + 1) & (x->table_cap - 1)) {
        int32_t b = x->table[i];
        if (b == NONE)
            return NONE;
        if (x->key[b] == (key & x->key_mask) && !memcmp(x->tokens + (size_t)b * bs, tokens, (size_t)bs * sizeof *tokens))
            return b;
    }
}

static void table_put(struct kv_prefix *x, int32_t b)
{
    size_t i = slot_of(x, x->key[b]);
    while (x->table[i] != NONE)
        i = (i + 1) & (x->table_cap - 1);
    x->table[i] = b;
}

static void table_del(struct kv_prefix *x, int32_t b)
{
    size_t cap = x->table_cap, i = slot_of(x, x->key[b]);
    while (x->table[i] != b)
        i = (i + 1) & (cap - 1);
    for (size_t j = i;;) { /* pull later entries of the run back over the hole */
        x->table[i] = NONE;
        for (;;) {
            j = (j + 1) & (cap - 1);
            if (x->table[j] == NONE)
                return;
            size_t home = slot_of(x, x->key[x->table[j]]);
            if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j))
                break;
        }
        x->table[i] = x->table[j];
        i = j;
    }
}

/* ---- the LRU list of cached blocks nobody uses ---- */

static void lru_unlink(struct kv_prefix *x, int32_t b)
{
    if (x->prev[b] != NONE)
        x->next[x->prev[b]] = x->next[b];
    else
        x->lru_head = x->next[b];
    if (x->next[b] != NONE)
        x->prev[x->next[b]] = x->prev[b];
    else
        x->lru_tail = x->prev[b];
    x->prev[b] = x->next[b] = NONE;
    x->n_lru--;
}

static void lru_push(struct kv_prefix *x, int32_t b)
{
    x->prev[b] = x->lru_tail;
    x->next[b] = NONE;
    if (x->lru_tail != NONE)
        x->next[x->lru_tail] = b;
    else
        x->lru_head = b;
    x->lru_tail = b;
    x->n_lru++;
}

static void note_event(struct kv_prefix *x, uint64_t key, bool added)
{
    if (x->n_events == KV_PREFIX_EVENTS) {
        x->events_lost = true;
        return;
    }
    x->events[x->n_events++] = (struct kv_event){key, added};
}

/* ---- what kvcache.c calls, under the lock ---- */

bool kv_prefix_cached_locked(const struct kv_pool *p, int32_t b)
{
    return p->prefix && p->prefix->key[b] != 0;
}

void kv_prefix_park_locked(struct kv_pool *p, int32_t b)
{
    lru_push(p->prefix, b);
}

int32_t kv_prefix_evict_locked(struct kv_pool *p)
{
    struct kv_prefix *x = p->prefix;
    if (!x || x->lru_head == NONE)
        return NONE;
    int32_t b = x->lru_head;
    lru_unlink(x, b);
    table_del(x, b);
    note_event(x, x->full_key[b], false);
    x->key[b] = x->full_key[b] = 0;
    return b;
}

/* ---- the public side (kvcache.h) ---- */

int kv_prefix_enable(struct kv_pool *p, uint64_t salt, struct error *err)
{
    struct kv_prefix *x = calloc(1, sizeof *x);
    size_t n = (size_t)p->n_blocks, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (x) {
        x->key = calloc(n, sizeof *x->key);
        x->full_key = calloc(n, sizeof *x->full_key);
        x->tokens = malloc(n * (size_t)p->block_size * sizeof *x->tokens);
        x->prev = malloc(n * sizeof *x->prev);
        x->next = malloc(n * sizeof *x->next);
        x->table = malloc(cap * sizeof *x->table);
    }
    if (!x || !x->key || !x->full_key || !x->tokens || !x->prev || !x->next || !x->table) {
        if (x)
            free(x->key), free(x->full_key), free(x->tokens), free(x->prev), free(x->next), free(x->table);
        free(x);
        return error_set(err, "KV pool: out of memory for the prefix cache of %d blocks", p->n_blocks);
    }
    for (size_t i = 0; i < n; i++)
        x->prev[i] = x->next[i] = NONE;
    for (size_t i = 0; i < cap; i++)
        x->table[i] = NONE;
    x->table_cap = cap;
    x->lru_head = x->lru_tail = NONE;
    x->salt = mix(salt ^ ((uint64_t)p->block_size << 32) ^ (uint64_t)p->block_bytes ^ ((uint64_t)p->dtype << 56));
    x->key_mask = ~0ull;
    p->prefix = x;
    return 0;
}

void kv_prefix_free(struct kv_pool *p)
{
    struct kv_prefix *x = p->prefix;
    if (!x)
        return;
    free(x->key), free(x->full_key), free(x->tokens), free(x->prev), free(x->next), free(x->table);
    free(x);
    p->prefix = NULL;
}

uint64_t kv_prefix_salt(const struct kv_pool *p)
{
    return p->prefix ? p->prefix->salt : 0;
}

void kv_prefix_test_key_bits(struct kv_pool *p, int bits)
{
    if (p->prefix)
        p->prefix->key_mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1) | 1;
}

int kv_prefix_match(struct kv_pool *p, const int32_t *tokens, int max_blocks, struct kv_seq *s, uint64_t *chain)
{
    struct kv_prefix *x = p->prefix;
    if (!x || s->n_blocks != 0)
        return 0;
    int bs = p->block_size, n = 0;
    uint64_t key = x->salt;
    pthread_mutex_lock(&p->lock);
    x->query_tokens += (uint64_t)max_blocks * bs;
    for (; n < max_blocks; n++) {
        uint64_t next = kv_block_key(key, tokens + (size_t)n * bs, bs);
        int32_t b = table_find(x, next, tokens + (size_t)n * bs, bs);
        if (b == NONE || kv_seq_push(s, b) < 0)
            break;
        if (p->refs[b]++ == 0)
            lru_unlink(x, b);
        key = next;
    }
    x->hit_tokens += (uint64_t)n * bs;
    pthread_mutex_unlock(&p->lock);
    *chain = key;
    return n;
}

void kv_prefix_publish(struct kv_pool *p, const int32_t *tokens, const struct kv_seq *s, int *n_published,
                       int n_full, uint64_t *chain)
{
    struct kv_prefix *x = p->prefix;
    if (!x || *n_published >= n_full)
        return;
    int bs = p->block_size;
    if (*n_published == 0)
        *chain = x->salt;
    pthread_mutex_lock(&p->lock);
    for (int i = *n_published; i < n_full && i < s->n_blocks; i++) {
        uint64_t key = kv_block_key(*chain, tokens + (size_t)i * bs, bs);
        int32_t b = s->blocks[i];
        /* Another block may hold this content already (two sequences computed the same prefix at
         * once): the first one stays the cached one. */
        if (x->key[b] == 0 && table_find(x, key, tokens + (size_t)i * bs, bs) == NONE) {
            x->key[b] = key & x->key_mask;
            x->full_key[b] = key;
            memcpy(x->tokens + (size_t)b * bs, tokens + (size_t)i * bs, (size_t)bs * sizeof *tokens);
            table_put(x, b);
            note_event(x, key, true);
        }
        *chain = key;
    }
    *n_published = n_full > s->n_blocks ? s->n_blocks : n_full;
    pthread_mutex_unlock(&p->lock);
}

int kv_prefix_events(struct kv_pool *p, struct kv_event *out, int max, bool *lost)
{
    struct kv_prefix *x = p->prefix;
    *lost = false;
    if (!x)
        return 0;
    pthread_mutex_lock(&p->lock);
    int n = x->n_events < max ? x->n_events : max;
    memcpy(out, x->events, (size_t)n * sizeof *out);
    memmove(x->events, x->events + n, (size_t)(x->n_events - n) * sizeof *out);
    x->n_events -= n;
    *lost = x->events_lost;
    x->events_lost = false;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int kv_prefix_keys(struct kv_pool *p, uint64_t *out, int max)
{
    struct kv_prefix *x = p->prefix;
    int n = 0;
    if (!x)
        return 0;
    pthread_mutex_lock(&p->lock);
    for (int b = 0; b < p->n_blocks && n < max; b++)
        if (x->key[b])
            out[n++] = x->full_key[b];
    x->n_events = 0; /* the snapshot says it all */
    x->events_lost = false;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void kv_prefix_stats(struct kv_pool *p, uint64_t *query_tokens, uint64_t *hit_tokens)
{
    struct kv_prefix *x = p->prefix;
    pthread_mutex_lock(&p->lock);
    *query_tokens = x ? x->query_tokens : 0;
    *hit_tokens = x ? x->hit_tokens : 0;
    pthread_mutex_unlock(&p->lock);
}
