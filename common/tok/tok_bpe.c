/* tok_bpe.c — the BPE model on one pre-tokenized piece. Start from one symbol per byte (byte-level
 * models) or per character (SentencePiece-style: a character missing from the vocabulary becomes its
 * <0xNN> byte tokens with byte_fallback, else unk), then repeatedly apply the lowest-ranked merge,
 * leftmost first on ties. A min-heap of candidate merges over a linked list of symbols makes this
 * O(n log n), which matters for SentencePiece models that have no pre-tokenizer: there a whole section
 * of text is one piece. The order of merges is the Rust tokenizers' order, so the ids are its ids. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

struct sym {
    int32_t id, prev, next;
    uint32_t len;   /* bytes covered; 0 once merged into its left neighbour */
    bool unk;
};

struct cand {
    int32_t rank, pos, id;
};

struct tok_bpe_scratch {
    struct sym *sym;
    int nsym, capsym;
    struct cand *heap;
    int nheap, capheap;
};

struct tok_bpe_scratch *tok_bpe_scratch_new(void)
{
    return calloc(1, sizeof(struct tok_bpe_scratch));
}

void tok_bpe_scratch_free(struct tok_bpe_scratch *w)
{
    if (!w)
        return;
    free(w->sym);
    free(w->heap);
    free(w);
}

int tok_ids_push(struct tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        int cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

static bool cand_less(struct cand a, struct cand b)
{
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static int heap_push(struct tok_bpe_scratch *w, struct cand c)
{
    if (w->nheap == w->capheap) {
        int cap = w->capheap ? w->capheap * 2 : 64;
        struct cand *h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (!h)
            return -1;
        w->heap = h;
        w->capheap = cap;
    }
    int i = w->nheap++;
    while (i > 0 && cand_less(c, w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return 0;
}

static struct cand heap_pop(struct tok_bpe_scratch *w)
{
    struct cand top = w->heap[0], last = w->heap[--w->nheap];
    int i = 0, n = w->nheap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_less(w->heap[c + 1], w->heap[c]))
            c++;
        if (!cand_less(w->heap[c], last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

static int sym_push(struct tok_bpe_scratch *w, int32_t id, uint32_t len, bool unk)
{
    if (w->nsym == w->capsym) {
        int cap = w->capsym ? w->capsym * 2 : 64;
        struct sym *s = realloc(w->sym, (size_t)cap * sizeof *s);
        if (!s)
            return -1;
        w->sym = s;
        w->capsym = cap;
    }
    w->sym[w->nsym] = (struct sym){id, w->nsym - 1, -1, len, unk};
    if (w->nsym > 0)
        w->sym[w->nsym - 1].next = w->nsym;
    w->nsym++;
    return 0;
}

/* A character (or byte) not in the vocabulary: unk, fused with a preceding unk when fuse_unk; dropped
 * when the model has no unk token, as tokenizers.js does. */
static int push_unk(const struct tokenizer *t, struct tok_bpe_scratch *w, uint32_t len)
{
    if (t->unk_id < 0)
        return 0;
    if (t->fuse_unk && w->nsym > 0 && w->sym[w->nsym - 1].unk) {
        w->sym[w->nsym - 1].len += len;
        return 0;
    }
    return sym_push(w, t->unk_id, len, true);
}

static int initial_symbols(const struct tokenizer *t, struct tok_bpe_scratch *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    w->nsym = 0;
    for (size_t i = 0; i < n;) {
        int l = 1;
        if (t->byte_level) {
            int32_t id = t->byte_ids[u[i]];
            if (id >= 0 ? sym_push(w, id, 1, false) : push_unk(t, w, 1))
                return -1;
            i++;
            continue;
        }
        tok_utf8_decode(u + i, &l);
        int32_t id = tok_vocab_find(t, s + i, (size_t)l);
        bool bytes_ok = t->byte_fallback;
        for (int k = 0; k < l && bytes_ok && id < 0; k++)
            bytes_ok = t->byte_ids[u[i + k]] >= 0;
        if (id >= 0) {
            if (sym_push(w, id, (uint32_t)l, false))
                return -1;
        } else if (bytes_ok) {
            for (int k = 0; k < l; k++)
                if (sym_push(w, t->byte_ids[u[i + k]], 1, false))
                    return -1;
        } else if (push_unk(t, w, (uint32_t)l)) {
            return -1;
        }
        i += (size_t)l;
    }
    return 0;
}

static int push_pair(const struct tokenizer *t, struct tok_bpe_scratch *w, int32_t pos)
{
    int32_t next = w->sym[pos].next;
    if (next < 0)
        return 0;
    const struct tok_merge_slot *m = tok_merges_find(t, w->sym[pos].id, w->sym[next].id);
    return m ? heap_push(w, (struct cand){m->rank, pos, m->id}) : 0;
}

static int merge_all(const struct tokenizer *t, struct tok_bpe_scratch *w)
{
    w->nheap = 0;
    for (int32_t i = 0; i + 1 < w->nsym; i++)
        if (push_pair(t, w, i))
            return -1;
    while (w->nheap > 0) {
        struct cand c = heap_pop(w);
        struct sym *cur = &w->sym[c.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        struct sym *right = &w->sym[cur->next];
        const struct tok_merge_slot *m = tok_merges_find(t, cur->id, right->id);
        if (!m || m->id != c.id)
            continue;   /* stale: one side has changed since this candidate was queued */
        cur->id = c.id;
        cur->len += right->len;
        cur->unk = false;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0)
            w->sym[cur->next].prev = c.pos;
        if ((cur->prev >= 0 && push_pair(t, w, cur->prev)) || push_pair(t, w, c.pos))
            return -1;
    }
    return 0;
}

int tok_bpe_word(const struct tokenizer *t, struct tok_bpe_scratch *w, const char *s, size_t n,
                 struct tok_ids *out)
{
    if (n == 0)
        return 0;
    if (t->ignore_merges) {
        int32_t id = tok_vocab_find(t, s, n);
        if (id >= 0)
            return tok_ids_push(out, id);
    }
    if (initial_symbols(t, w, s, n) || merge_all(t, w))
        return -1;
    for (int32_t i = w->nsym ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (tok_ids_push(out, w->sym[i].id))
            return -1;
    return 0;
}
