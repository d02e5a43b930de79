/* tok_pretok.c — the pre-tokenizer: splits a normalized section into the pieces BPE runs on, one regex
 * step after another (Split with behavior Isolated keeps matches and the gaps between them as pieces,
 * Removed keeps only the gaps; ByteLevel with use_regex splits by GPT-2's pattern). Each step sees each
 * piece of the previous step as a separate string, as tokenizers' PreTokenizedString does, so lookaheads
 * never look past a piece. Pieces are (start, length) spans into the section. */
#include <stdlib.h>

#include "tok_impl.h"

static int span_push(struct tok_spans *sp, size_t start, size_t len)
{
    if (len == 0)
        return 0;
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 256;
        size_t *v = realloc(sp->v, cap * 2 * sizeof *v);
        if (!v)
            return -1;
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[2 * sp->n] = start;
    sp->v[2 * sp->n + 1] = len;
    sp->n++;
    return 0;
}

/* Splits s[start..start+len) by re, appending the pieces to out. */
static int split_span(const struct tok_pre_step *st, const char *s, size_t start, size_t len,
                      pcre2_match_data *md, struct tok_spans *out, struct error *err)
{
    PCRE2_SPTR sub = (PCRE2_SPTR)(s + start);
    size_t pos = 0, gap = 0;   /* gap: start of the text not yet emitted */
    while (pos <= len) {
        int rc = pcre2_match(st->re, sub, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[200];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return error_set(err, "tokenizer: pre-tokenizer regex failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {   /* an empty match splits nothing: step over one character */
            pos = ov[0] + 1;
            while (pos < len && ((unsigned char)s[start + pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (span_push(out, start + gap, ov[0] - gap) ||
            (!st->removed && span_push(out, start + ov[0], ov[1] - ov[0])))
            return error_set(err, "tokenizer: out of memory");
        gap = pos = ov[1];
    }
    if (span_push(out, start + gap, len - gap))
        return error_set(err, "tokenizer: out of memory");
    return 0;
}

int tok_pretokenize(const struct tokenizer *t, const char *s, size_t n, pcre2_match_data *md,
                    struct tok_spans *spans, struct error *err)
{
    spans->n = 0;
    if (span_push(spans, 0, n))
        return error_set(err, "tokenizer: out of memory");
    struct tok_spans next = {0};
    for (int i = 0; i < t->n_pre; i++) {
        if (!t->pre[i].re)
            continue;
        next.n = 0;
        for (size_t k = 0; k < spans->n; k++)
            if (split_span(&t->pre[i], s, spans->v[2 * k], spans->v[2 * k + 1], md, &next, err)) {
                free(next.v);
                return -1;
            }
        struct tok_spans swap = *spans;
        *spans = next;
        next = swap;
    }
    free(next.v);
    return 0;
}
