/* tok_norm.c — runs the normalizer steps (Prepend, Replace, NFC) over one section of text, in order,
 * as tokenizers' normalizer Sequence does. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

static int replace_all(const struct tok_norm_step *st, const char *s, size_t n, struct tok_str *out)
{
    size_t i = 0;
    while (i < n) {
        const char *hit = memmem(s + i, n - i, st->from, st->from_len);
        size_t end = hit ? (size_t)(hit - s) : n;
        if (tok_str_put(out, s + i, end - i))
            return -1;
        if (!hit)
            break;
        if (tok_str_put(out, st->to, st->to_len))
            return -1;
        i = end + st->from_len;
    }
    return 0;
}

static int apply(const struct tok_norm_step *st, const char *s, size_t n, struct tok_str *out)
{
    out->len = 0;
    if (tok_str_put(out, "", 0))
        return -1;
    switch (st->kind) {
    case TOK_NORM_PREPEND:
        /* Rust's Prepend leaves an empty string empty. */
        if (n && tok_str_put(out, st->to, st->to_len))
            return -1;
        return tok_str_put(out, s, n);
    case TOK_NORM_REPLACE:
        return replace_all(st, s, n, out);
    case TOK_NORM_NFC:
        return tok_nfc(s, n, out);
    }
    return -1;
}

int tok_normalize(const struct tokenizer *t, const char *s, size_t n, struct tok_str *out)
{
    out->len = 0;
    if (tok_str_put(out, s, n))
        return -1;
    struct tok_str tmp = {0};
    int rc = 0;
    for (int i = 0; i < t->n_norm && rc == 0; i++) {
        rc = apply(&t->norm[i], out->s, out->len, &tmp);
        struct tok_str swap = *out;
        *out = tmp;
        tmp = swap;
    }
    free(tmp.s);
    return rc;
}
