/* tok_encode.c — text to ids, in Hugging Face's order: split out added tokens (special ones only when
 * parse_special), normalize each remaining section, split out "normalized" added tokens, pre-tokenize,
 * run BPE on each piece, and finally add the post-processor's tokens (add_special). All scratch memory
 * lives in one per-call context, so a tokenizer can encode on several threads at once. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

struct enc {
    const struct tokenizer *t;
    bool parse_special;
    bool at_start;   /* the section being encoded starts the input (Metaspace prepend_scheme "first") */
    struct tok_ids out;
    struct tok_str norm, spaced;
    struct tok_spans spans;
    struct tok_bpe_scratch *bpe;
    pcre2_match_data *md;
    struct error *err;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Metaspace: spaces become the replacement character, which may also be prepended; with split, each
 * replacement character starts a piece (tokenizers' MergedWithNext). */
static int metaspace(struct enc *e, const char *s, size_t n)
{
    const struct tokenizer *t = e->t;
    struct tok_str *m = &e->spaced;
    /* "starts with the replacement" is judged after spaces were replaced */
    bool has = s[0] == ' ' || (n >= t->meta_rep_len && !memcmp(s, t->meta_rep, t->meta_rep_len));
    m->len = 0;
    if (!has && (t->meta_prepend == TOK_META_ALWAYS || (t->meta_prepend == TOK_META_FIRST && e->at_start)) &&
        tok_str_put(m, t->meta_rep, t->meta_rep_len))
        return error_set(e->err, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' ? tok_str_put(m, t->meta_rep, t->meta_rep_len) : tok_str_put(m, s + i, 1))
            return error_set(e->err, "tokenizer: out of memory");
    size_t start = 0;
    for (size_t i = 1; t->meta_split && i + t->meta_rep_len <= m->len; i++)
        if (!memcmp(m->s + i, t->meta_rep, t->meta_rep_len)) {
            if (tok_bpe_word(t, e->bpe, m->s + start, i - start, &e->out))
                return error_set(e->err, "tokenizer: out of memory");
            start = i;
        }
    if (tok_bpe_word(t, e->bpe, m->s + start, m->len - start, &e->out))
        return error_set(e->err, "tokenizer: out of memory");
    return 0;
}

/* Pre-tokenizes one section and runs BPE on each piece. */
static int model_section(struct enc *e, const char *s, size_t n)
{
    const struct tokenizer *t = e->t;
    if (n == 0)
        return 0;
    if (t->metaspace)
        return metaspace(e, s, n);
    if (t->prefix_space && s[0] != ' ') {
        e->spaced.len = 0;
        if (tok_str_put(&e->spaced, " ", 1) || tok_str_put(&e->spaced, s, n))
            return error_set(e->err, "tokenizer: out of memory");
        s = e->spaced.s;
        n = e->spaced.len;
    }
    if (tok_pretokenize(t, s, n, e->md, &e->spans, e->err))
        return -1;
    for (size_t k = 0; k < e->spans.n; k++)
        if (tok_bpe_word(t, e->bpe, s + e->spans.v[2 * k], e->spans.v[2 * k + 1], &e->out))
            return error_set(e->err, "tokenizer: out of memory");
    return 0;
}

/* Splits s by the added tokens of one pass (normalized or not); text between them goes to `section`
 * (normalize then model for the raw pass, model for the normalized pass). */
static int split_added(struct enc *e, const char *s, size_t n, bool normalized,
                       int (*section)(struct enc *, const char *, size_t))
{
    const struct tokenizer *t = e->t;
    size_t pos = 0, at;
    int k;
    bool outer_start = e->at_start;
    while ((k = tok_added_find(t, s + pos, n - pos, normalized, e->parse_special, &at)) >= 0) {
        const struct tok_added *a = &t->added[k];
        size_t end = pos + at;
        if (a->lstrip)
            while (end > pos && is_space(s[end - 1]))
                end--;
        e->at_start = outer_start && pos == 0;
        if (section(e, s + pos, end - pos))
            return -1;
        if (tok_ids_push(&e->out, a->id))
            return error_set(e->err, "tokenizer: out of memory");
        pos += at + a->len;
        if (a->rstrip)
            while (pos < n && is_space(s[pos]))
                pos++;
    }
    e->at_start = outer_start && pos == 0;
    return section(e, s + pos, n - pos);
}

static int normalized_section(struct enc *e, const char *s, size_t n)
{
    const struct tokenizer *t = e->t;
    if (n == 0)
        return 0;
    if (tok_normalize(t, s, n, &e->norm))
        return error_set(e->err, "tokenizer: out of memory");
    if (!t->any_normalized_added)
        return model_section(e, e->norm.s, e->norm.len);
    /* model_section leaves e->norm alone, so its text can be split in place. */
    return split_added(e, e->norm.s, e->norm.len, true, model_section);
}

static int add_ids(struct enc *e, const int32_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (tok_ids_push(&e->out, v[i]))
            return error_set(e->err, "tokenizer: out of memory");
    return 0;
}

/* Valid UTF-8 as is; otherwise a copy with each invalid sequence replaced by U+FFFD. */
static const char *valid_text(const char *text, size_t *len, struct tok_buf *fixed)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0;
    while (i < *len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int l = tok_utf8_valid_len(u + i, *len - i);
        if (!l)
            break;
        i += (size_t)l;
    }
    if (i == *len)
        return text;
    if (tok_utf8_lossy(fixed, u, *len, true) < 0)
        return NULL;
    *len = fixed->len;
    return fixed->data;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
               int32_t **ids, int *n_ids, struct error *err)
{
    struct enc e = {.t = t, .parse_special = parse_special, .at_start = true, .err = err};
    struct tok_buf fixed = {0};
    *ids = NULL;
    *n_ids = 0;
    const char *s = len ? valid_text(text, &len, &fixed) : "";
    e.bpe = tok_bpe_scratch_new();
    e.md = pcre2_match_data_create(1, NULL);
    int rc = -1;
    if (!s || !e.bpe || !e.md)
        error_set(err, "tokenizer: out of memory");
    else if (!(add_special && add_ids(&e, t->prefix, t->n_prefix)) &&
             !split_added(&e, s, len, false, normalized_section) &&
             !(add_special && add_ids(&e, t->suffix, t->n_suffix)))
        rc = 0;
    tok_bpe_scratch_free(e.bpe);
    pcre2_match_data_free(e.md);
    free(e.norm.s);
    free(e.spaced.s);
    free(e.spans.v);
    tok_buf_free(&fixed);
    if (rc) {
        free(e.out.v);
        return -1;
    }
    *ids = e.out.v;
    *n_ids = e.out.n;
    return 0;
}
