/* bpe.c — learns byte-level BPE merges the classic way (Sennrich et al.; GPT-2): split the text into
 * pre-tokens with the same regex the tokenizer will use, start every word as its bytes, then again and
 * again merge the most frequent adjacent pair (ties broken by the smaller pair of ids, so the result
 * is deterministic) into a new token. Merges are learned only inside pre-tokens, exactly as the
 * Hugging Face BPE model applies them. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel.h"

struct word {
    const char *text;
    int len;
    long count;
    int *sym;   /* current token ids */
    int n;
};

struct words {
    struct word *w;
    int n, cap;
};

static int by_text(const void *a, const void *b)
{
    const struct word *x = a, *y = b;
    int n = x->len < y->len ? x->len : y->len, c = memcmp(x->text, y->text, (size_t)n);
    return c ? c : x->len - y->len;
}

/* Splits text with the pre-tokenizer regex and counts each distinct pre-token. */
static int split_words(const char *text, const char *pattern, struct words *ws, struct error *err)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &ec, &eo, NULL);
    if (!re)
        return error_set(err, "pre-tokenizer regex does not compile (error %d at %zu)", ec, (size_t)eo);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    size_t len = strlen(text), at = 0;
    while (at < len && pcre2_match(re, (PCRE2_SPTR)text, len, at, 0, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { /* the pattern cannot match empty, but never loop if it did */
            at++;
            continue;
        }
        if (ws->n == ws->cap) {
            ws->cap = ws->cap ? ws->cap * 2 : 1024;
            ws->w = realloc(ws->w, (size_t)ws->cap * sizeof *ws->w);
        }
        ws->w[ws->n++] = (struct word){text + ov[0], (int)(ov[1] - ov[0]), 1, NULL, 0};
        at = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    qsort(ws->w, (size_t)ws->n, sizeof *ws->w, by_text);
    int u = 0;
    for (int i = 0; i < ws->n; i++) {
        if (u > 0 && by_text(&ws->w[u - 1], &ws->w[i]) == 0) {
            ws->w[u - 1].count++;
            continue;
        }
        ws->w[u] = ws->w[i];
        ws->w[u].sym = malloc((size_t)ws->w[u].len * sizeof(int));
        for (int k = 0; k < ws->w[u].len; k++)
            ws->w[u].sym[k] = (unsigned char)ws->w[u].text[k];
        ws->w[u].n = ws->w[u].len;
        u++;
    }
    ws->n = u;
    return 0;
}

/* Open-addressing table of pair counts, rebuilt every round. */
struct pairs {
    uint64_t *key;
    long *count;
    size_t cap;
};

static void pair_add(struct pairs *p, uint64_t key, long n)
{
    size_t h = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (p->cap - 1);
    while (p->count[h] && p->key[h] != key)
        h = (h + 1) & (p->cap - 1);
    p->key[h] = key;
    p->count[h] += n;
}

/* The most frequent pair (smallest ids on a tie); 0 when no word has two tokens left. */
static long best_pair(const struct words *ws, struct pairs *p, int *a, int *b)
{
    memset(p->count, 0, p->cap * sizeof *p->count);
    for (int i = 0; i < ws->n; i++)
        for (int k = 0; k + 1 < ws->w[i].n; k++)
            pair_add(p, (uint64_t)ws->w[i].sym[k] << 32 | (uint32_t)ws->w[i].sym[k + 1],
                     ws->w[i].count);
    long best = 0;
    uint64_t best_key = 0;
    for (size_t h = 0; h < p->cap; h++)
        if (p->count[h] > best || (p->count[h] == best && best > 0 && p->key[h] < best_key)) {
            best = p->count[h];
            best_key = p->key[h];
        }
    *a = (int)(best_key >> 32);
    *b = (int)(best_key & 0xffffffffu);
    return best;
}

static void apply_merge(struct words *ws, int a, int b, int id)
{
    for (int i = 0; i < ws->n; i++) {
        struct word *w = &ws->w[i];
        int out = 0;
        for (int k = 0; k < w->n; k++) {
            if (k + 1 < w->n && w->sym[k] == a && w->sym[k + 1] == b) {
                w->sym[out++] = id;
                k++;
            } else {
                w->sym[out++] = w->sym[k];
            }
        }
        w->n = out;
    }
}

/* Appends the concatenation of tokens a and b, or finds it if two merge paths built the same bytes. */
static int token_for(struct mk_bpe *o, int a, int b)
{
    int len = o->vocab_len[a] + o->vocab_len[b];
    char *s = malloc((size_t)len + 1);
    memcpy(s, o->vocab[a], (size_t)o->vocab_len[a]);
    memcpy(s + o->vocab_len[a], o->vocab[b], (size_t)o->vocab_len[b]);
    s[len] = 0;
    for (int i = 256; i < o->n_vocab; i++)
        if (o->vocab_len[i] == len && memcmp(o->vocab[i], s, (size_t)len) == 0) {
            free(s);
            return i;
        }
    o->vocab[o->n_vocab] = s;
    o->vocab_len[o->n_vocab] = len;
    return o->n_vocab++;
}

int mk_bpe_learn(const char *text, const char *pattern, int target, struct mk_bpe *o,
                 struct error *err)
{
    struct words ws = {0};
    memset(o, 0, sizeof *o);
    if (target < 256)
        return error_set(err, "a byte-level BPE vocabulary needs at least 256 tokens, not %d", target);
    if (split_words(text, pattern, &ws, err) < 0)
        return -1;
    /* Distinct pairs are fewer than the text's bytes; twice that keeps the table at most half full. */
    struct pairs p = {.cap = 1024};
    while (p.cap < 2 * strlen(text))
        p.cap *= 2;
    p.key = malloc(p.cap * sizeof *p.key);
    p.count = malloc(p.cap * sizeof *p.count);
    o->vocab = malloc((size_t)target * sizeof *o->vocab);
    o->vocab_len = malloc((size_t)target * sizeof *o->vocab_len);
    o->merges = malloc((size_t)target * 4 * sizeof *o->merges);
    for (int i = 0; i < 256; i++) {
        o->vocab[i] = malloc(2);
        o->vocab[i][0] = (char)i;
        o->vocab[i][1] = 0;
        o->vocab_len[i] = 1;
    }
    o->n_vocab = 256;
    int a, b;
    /* Each merge shortens some word, so the merge count is bounded by the text's length. */
    while (o->n_vocab < target && o->n_merges < target * 4 && best_pair(&ws, &p, &a, &b) > 0) {
        int id = token_for(o, a, b);
        o->merges[o->n_merges][0] = a;
        o->merges[o->n_merges][1] = b;
        o->n_merges++;
        apply_merge(&ws, a, b, id);
    }
    for (int i = 0; i < ws.n; i++)
        free(ws.w[i].sym);
    free(ws.w);
    free(p.key);
    free(p.count);
    return 0;
}

void mk_bpe_free(struct mk_bpe *o)
{
    for (int i = 0; i < o->n_vocab; i++)
        free(o->vocab[i]);
    free(o->vocab);
    free(o->vocab_len);
    free(o->merges);
    memset(o, 0, sizeof *o);
}
