/* tokens.c — exact token counts with the model's own tokenizer (--tokenizer DIR, pdserve's
 * tokenizer, which gives Hugging Face's ids): text prompts of exactly N tokens for chat, and exact
 * lengths of ShareGPT turns. Counts exclude special tokens the tokenizer would add (BOS) and the
 * chat template's tokens, as vLLM's benchmark counts them; the server's usage block reports the
 * total it saw. */
#include "bench.h"
#include "common/tok/tok.h"

#include <stdlib.h>
#include <string.h>

int bench_tok_count(const struct tokenizer *t, const char *text, int *n, struct error *err)
{
    int32_t *ids = NULL;
    if (tok_encode(t, text, strlen(text), false, false, &ids, n, err) < 0)
        return error_wrap(err, "counting tokens");
    free(ids);
    return 0;
}

/* The first k words of w joined by spaces, into buf (large enough: 16 bytes a word). */
static void join_words(const char *const *w, int k, char *buf)
{
    size_t len = 0;
    for (int i = 0; i < k; i++) {
        size_t n = strlen(w[i]);
        if (i)
            buf[len++] = ' ';
        memcpy(buf + len, w[i], n);
        len += n;
    }
    buf[len] = '\0';
}

/* Smallest k in [1, cap] whose first k words count >= want tokens (cap if none). */
static int search_words(const struct tokenizer *t, const char *const *w, int cap, int want, char *buf,
                        int *count, struct error *err)
{
    int lo = 1, hi = cap, n = 0;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        join_words(w, mid, buf);
        if (bench_tok_count(t, buf, &n, err) < 0)
            return -1;
        if (n >= want)
            hi = mid;
        else
            lo = mid + 1;
    }
    join_words(w, lo, buf);
    if (bench_tok_count(t, buf, count, err) < 0)
        return -1;
    return lo;
}

/* The last word made the count overshoot: try each vocabulary word in its place. */
static int replace_last(const struct tokenizer *t, const char **w, int k, const char *const *vocab,
                        int n_vocab, int want, char *buf, int *count, struct error *err)
{
    for (int v = 0; v < n_vocab && *count != want; v++) {
        w[k - 1] = vocab[v];
        join_words(w, k, buf);
        if (bench_tok_count(t, buf, count, err) < 0)
            return -1;
    }
    return 0;
}

int bench_tok_fit_text(const struct tokenizer *t, struct rng *rng, const char *const *vocab,
                       int n_vocab, int want, char **out, int *got, struct error *err)
{
    int cap = 2 * want + 8, count = 0, rc = -1;
    const char **w = malloc(sizeof(char *) * (size_t)cap);
    char *buf = malloc((size_t)cap * 16 + 1);
    if (!w || !buf) {
        error_set(err, "out of memory building a %d-token prompt", want);
        goto done;
    }
    for (int i = 0; i < cap; i++)
        w[i] = vocab[bench_rng_int(rng, 0, n_vocab - 1)];
    int k = search_words(t, w, cap, want, buf, &count, err);
    if (k < 0 || (count > want && replace_last(t, w, k, vocab, n_vocab, want, buf, &count, err) < 0))
        goto done;
    *got = count;
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    free(w);
    free(buf);
    return rc;
}
