/* mask.c — which tokens the matcher accepts next. The vocabulary is a byte trie: a depth-first walk
 * feeds each edge's byte to a copy of the matcher and drops a whole subtree at the first byte it
 * refuses, so structural states (after a '{', in a number, in a key) visit a handful of nodes.
 *
 * Inside a string almost every token is fine, and walking the whole trie there would cost a pass over
 * the vocabulary a token. So the tokens that are fine from a plain string body whatever came before
 * (no quote ends the string in them; escapes and UTF-8 complete or pending) are found once, when the
 * vocabulary is built: a string body ORs that set in and walks only the small trie of tokens holding
 * a '"', whose fate depends on what the string closes into. */
#include "common/grammar/grammar_impl.h"

#include <stdlib.h>
#include <string.h>

/* A byte trie: node 0 is the root; children are a linked list (first_child, next_sibling), each
 * node's tokens a linked list (first_token, next_token by token id). */
struct trie {
    int n, cap;
    int32_t *first_child, *next_sibling, *first_token;
    uint8_t *byte;
};

struct gvocab {
    int n_vocab;
    uint8_t **bytes; /* [n_vocab], NULL for none */
    size_t *len;
    int32_t *next_token; /* [n_vocab]: the next token ending at the same trie node */
    struct trie all, quoted; /* every token; the tokens holding a '"' */
    uint32_t *in_string;     /* tokens fine from a plain string body, whatever the string is in */
    int32_t *end_ids;
    int n_end;
};

static int trie_node(struct trie *t, uint8_t byte)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 1024;
        int32_t *fc = realloc(t->first_child, (size_t)cap * sizeof *fc);
        if (fc)
            t->first_child = fc;
        int32_t *ns = realloc(t->next_sibling, (size_t)cap * sizeof *ns);
        if (ns)
            t->next_sibling = ns;
        int32_t *ft = realloc(t->first_token, (size_t)cap * sizeof *ft);
        if (ft)
            t->first_token = ft;
        uint8_t *b = realloc(t->byte, (size_t)cap);
        if (b)
            t->byte = b;
        if (!fc || !ns || !ft || !b)
            return -1;
        t->cap = cap;
    }
    t->first_child[t->n] = t->next_sibling[t->n] = t->first_token[t->n] = -1;
    t->byte[t->n] = byte;
    return t->n++;
}

static int trie_insert(struct trie *t, int32_t *next_token, int32_t id, const uint8_t *b, size_t len)
{
    if (t->n == 0 && trie_node(t, 0) < 0)
        return -1;
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        int c = t->first_child[node];
        while (c >= 0 && t->byte[c] != b[i])
            c = t->next_sibling[c];
        if (c < 0) {
            if ((c = trie_node(t, b[i])) < 0)
                return -1;
            t->next_sibling[c] = t->first_child[node];
            t->first_child[node] = c;
        }
        node = c;
    }
    next_token[id] = t->first_token[node];
    t->first_token[node] = id;
    return 0;
}

static void trie_free(struct trie *t)
{
    free(t->first_child), free(t->next_sibling), free(t->first_token), free(t->byte);
}

static void set_bit(uint32_t *set, int32_t i)
{
    set[i >> 5] |= 1u << (i & 31);
}

/* Whether token bytes b are fine from a plain string body: the string does not end in them. */
static bool string_safe(const struct grammar *any, const uint8_t *b, size_t len)
{
    struct gmatch m;
    gmatch_init_string(&m, any);
    for (size_t i = 0; i < len; i++)
        if (!gmatch_byte(&m, b[i]) || m.depth != 2)
            return false;
    return true;
}

static int fill(struct gvocab *v, const char *(*bytes_of)(void *, int32_t, size_t *), void *ctx,
                const struct grammar *any)
{
    for (int32_t id = 0; id < v->n_vocab; id++) {
        size_t len = 0;
        const char *b = bytes_of(ctx, id, &len);
        if (!b || len == 0)
            continue;
        if (!(v->bytes[id] = malloc(len)))
            return -1;
        memcpy(v->bytes[id], b, len);
        v->len[id] = len;
        if (memchr(b, '"', len) ? trie_insert(&v->quoted, v->next_token, id, v->bytes[id], len)
                                : trie_insert(&v->all, v->next_token, id, v->bytes[id], len))
            return -1;
        if (string_safe(any, v->bytes[id], len))
            set_bit(v->in_string, id);
    }
    return 0;
}

struct gvocab *gvocab_new(int n_vocab, const char *(*bytes_of)(void *ctx, int32_t id, size_t *len), void *ctx,
                          const int32_t *end_ids, int n_end, struct error *err)
{
    struct gvocab *v = calloc(1, sizeof *v);
    json_t *s = json_object();
    struct grammar *any = s ? grammar_compile(s, err) : NULL;
    json_decref(s);
    if (v) {
        v->n_vocab = n_vocab;
        v->bytes = calloc((size_t)n_vocab, sizeof *v->bytes);
        v->len = calloc((size_t)n_vocab, sizeof *v->len);
        v->next_token = malloc((size_t)n_vocab * sizeof *v->next_token);
        v->in_string = calloc((size_t)(n_vocab + 31) / 32, sizeof *v->in_string);
        v->end_ids = malloc((size_t)(n_end ? n_end : 1) * sizeof *v->end_ids);
    }
    if (!v || !any || !v->bytes || !v->len || !v->next_token || !v->in_string || !v->end_ids ||
        fill(v, bytes_of, ctx, any) < 0) {
        if (any)
            error_set(err, "out of memory indexing a vocabulary of %d tokens", n_vocab);
        grammar_free(any);
        gvocab_free(v);
        return NULL;
    }
    grammar_free(any);
    memcpy(v->end_ids, end_ids, (size_t)n_end * sizeof *end_ids);
    v->n_end = n_end;
    return v;
}

void gvocab_free(struct gvocab *v)
{
    if (!v)
        return;
    for (int i = 0; v->bytes && i < v->n_vocab; i++)
        free(v->bytes[i]);
    free(v->bytes), free(v->len), free(v->next_token), free(v->in_string), free(v->end_ids);
    trie_free(&v->all);
    trie_free(&v->quoted);
    free(v);
}

int gvocab_size(const struct gvocab *v)
{
    return v->n_vocab;
}

const uint8_t *gvocab_bytes(const struct gvocab *v, int32_t id, size_t *len)
{
    *len = id >= 0 && id < v->n_vocab ? v->len[id] : 0;
    return *len ? v->bytes[id] : NULL;
}

/* Marks every token under trie node `node` whose bytes m (the state at that node) accepts. */
static void walk(const struct gvocab *v, const struct trie *t, int node, const struct gmatch *m, uint32_t *allowed)
{
    struct gmatch next;
    for (int c = t->first_child[node]; c >= 0; c = t->next_sibling[c]) {
        gmatch_copy(&next, m);
        if (!gmatch_byte(&next, t->byte[c]))
            continue;
        for (int32_t id = t->first_token[c]; id >= 0; id = v->next_token[id])
            set_bit(allowed, id);
        walk(v, t, c, &next, allowed);
    }
}

void gmatch_mask(const struct gmatch *m, const struct gvocab *v, uint32_t *allowed)
{
    size_t words = (size_t)(v->n_vocab + 31) / 32;
    bool plain_string = gmatch_in_plain_string(m);
    if (plain_string)
        memcpy(allowed, v->in_string, words * sizeof *allowed);
    else
        memset(allowed, 0, words * sizeof *allowed);
    if (!plain_string && v->all.n)
        walk(v, &v->all, 0, m, allowed);
    if (v->quoted.n)
        walk(v, &v->quoted, 0, m, allowed);
    if (gmatch_done(m))
        for (int i = 0; i < v->n_end; i++)
            if (v->end_ids[i] >= 0 && v->end_ids[i] < v->n_vocab)
                set_bit(allowed, v->end_ids[i]);
}
