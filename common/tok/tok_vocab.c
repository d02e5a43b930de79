/* tok_vocab.c — the tokenizer's tables: per-id key/piece/flags, the key → id hash map and the
 * (left id, right id) → (rank, merged id) merge map, both open addressing with linear probing. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a, then a final mix so low bits spread */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t hash_pair(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t table_size(size_t n)
{
    uint32_t c = 16;
    while (c < n * 2)
        c *= 2;
    return c;
}

int tok_vocab_init(struct tokenizer *t, int n_ids, struct error *err)
{
    t->n_ids = n_ids;
    t->flags = calloc((size_t)n_ids, 1);
    t->byte_val = calloc((size_t)n_ids, 1);
    t->key_off = calloc((size_t)n_ids, sizeof(uint32_t));
    t->key_len = calloc((size_t)n_ids, sizeof(uint32_t));
    t->piece_off = calloc((size_t)n_ids, sizeof(uint32_t));
    t->piece_len = calloc((size_t)n_ids, sizeof(uint32_t));
    if (!t->flags || !t->byte_val || !t->key_off || !t->key_len || !t->piece_off || !t->piece_len ||
        tok_str_put(&t->arena, "", 0))
        return error_set(err, "tokenizer: out of memory for %d token ids", n_ids);
    return 0;
}

/* Stores the key and piece of id; an added token may overwrite a model token of the same id. */
int tok_vocab_set(struct tokenizer *t, int32_t id, const char *key, size_t key_len, const char *piece,
                  size_t piece_len, struct error *err)
{
    if (t->arena.len + key_len + piece_len + 2 > UINT32_MAX)
        return error_set(err, "tokenizer: vocabulary text larger than 4 GB");
    t->key_off[id] = (uint32_t)t->arena.len;
    t->key_len[id] = (uint32_t)key_len;
    if (tok_str_put(&t->arena, key, key_len) || tok_str_put(&t->arena, "", 1))
        return error_set(err, "tokenizer: out of memory");
    t->piece_off[id] = (uint32_t)t->arena.len;
    t->piece_len[id] = (uint32_t)piece_len;
    if (tok_str_put(&t->arena, piece, piece_len) || tok_str_put(&t->arena, "", 1))
        return error_set(err, "tokenizer: out of memory");
    t->flags[id] |= TOK_F_PRESENT;
    return 0;
}

/* Indexes the model's tokens (not the added ones: those are matched in the text, not by BPE).
 * When two ids share a key the lower id wins, so lookups are deterministic. */
int tok_vocab_index(struct tokenizer *t, struct error *err)
{
    uint32_t size = table_size((size_t)t->n_ids);
    free(t->vocab_slots);
    t->vocab_slots = calloc(size, sizeof(int32_t));
    if (!t->vocab_slots)
        return error_set(err, "tokenizer: out of memory for the vocabulary index");
    t->vocab_mask = size - 1;
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (!(t->flags[id] & TOK_F_PRESENT) || (t->flags[id] & TOK_F_ADDED))
            continue;
        uint32_t h = (uint32_t)hash_bytes(tok_key(t, id), t->key_len[id]) & t->vocab_mask;
        for (;; h = (h + 1) & t->vocab_mask) {
            int32_t o = t->vocab_slots[h] - 1;
            if (o < 0) {
                t->vocab_slots[h] = id + 1;
                break;
            }
            if (t->key_len[o] == t->key_len[id] && !memcmp(tok_key(t, o), tok_key(t, id), t->key_len[id]))
                break;
        }
    }
    return 0;
}

int32_t tok_vocab_find(const struct tokenizer *t, const char *key, size_t len)
{
    uint32_t h = (uint32_t)hash_bytes(key, len) & t->vocab_mask;
    for (;; h = (h + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slots[h] - 1;
        if (id < 0)
            return -1;
        if (t->key_len[id] == len && !memcmp(tok_key(t, id), key, len))
            return id;
    }
}

int tok_merges_init(struct tokenizer *t, size_t n, struct error *err)
{
    uint32_t size = table_size(n);
    t->merge_slots = malloc(size * sizeof *t->merge_slots);
    if (!t->merge_slots)
        return error_set(err, "tokenizer: out of memory for %zu merges", n);
    for (uint32_t i = 0; i < size; i++)
        t->merge_slots[i] = (struct tok_merge_slot){0, -1, -1};
    t->merge_mask = size - 1;
    return 0;
}

/* A pair listed twice keeps its last rank, as the Rust and JS tokenizers (map insertion) do. */
void tok_merges_put(struct tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t pair = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = (uint32_t)hash_pair(pair) & t->merge_mask;
    for (;; h = (h + 1) & t->merge_mask) {
        struct tok_merge_slot *s = &t->merge_slots[h];
        if (s->rank < 0 || s->pair == pair) {
            *s = (struct tok_merge_slot){pair, rank, id};
            return;
        }
    }
}

const struct tok_merge_slot *tok_merges_find(const struct tokenizer *t, int32_t a, int32_t b)
{
    uint64_t pair = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = (uint32_t)hash_pair(pair) & t->merge_mask;
    for (;; h = (h + 1) & t->merge_mask) {
        const struct tok_merge_slot *s = &t->merge_slots[h];
        if (s->rank < 0)
            return NULL;
        if (s->pair == pair)
            return s;
    }
}
