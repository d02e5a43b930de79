/* tok_added.c — tokenizer.json's added_tokens: their ids, flags and decoder pieces, and finding them in
 * text. Hugging Face splits the text on added tokens before the normalizer and the model run, taking
 * at each position the longest token that starts there (leftmost-longest); tokens marked "normalized"
 * are matched in the normalized text instead. Special tokens are matched only when the caller asks. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

static int cmp_added(const void *pa, const void *pb)
{
    const struct tok_added *a = pa, *b = pb;
    unsigned char fa = (unsigned char)a->text[0], fb = (unsigned char)b->text[0];
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Reads one entry; the token's text to match is its content, normalized when "normalized". */
static int load_one(struct tokenizer *t, json_t *a, size_t i, struct tok_added *out, struct error *err)
{
    json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
    if (!json_is_integer(id) || !json_is_string(content) || json_string_length(content) == 0)
        return error_set(err, "tokenizer.json: added_tokens[%zu] needs an integer id and a non-empty content", i);
    if (json_is_true(json_object_get(a, "single_word")))
        return error_set(err, "tokenizer.json: added token \"%s\" has single_word: true, which is not supported",
                         json_string_value(content));
    const char *c = json_string_value(content);
    size_t len = json_string_length(content);
    *out = (struct tok_added){.id = (int32_t)json_integer_value(id),
                              .special = json_is_true(json_object_get(a, "special")),
                              .normalized = json_is_true(json_object_get(a, "normalized")) && t->n_norm > 0,
                              .lstrip = json_is_true(json_object_get(a, "lstrip")),
                              .rstrip = json_is_true(json_object_get(a, "rstrip"))};
    struct tok_str s = {0}, piece = {0};
    int rc = out->normalized ? tok_normalize(t, c, len, &s) : tok_str_put(&s, c, len);
    if (rc == 0)
        rc = t->byte_level ? tok_str_put(&piece, c, len) : tok_decoder_piece(t, c, len, &piece);
    if (rc)
        rc = error_set(err, "tokenizer: out of memory");
    else if (s.len == 0)
        rc = error_set(err, "tokenizer.json: added token \"%s\" normalizes to nothing", c);
    else
        rc = tok_vocab_set(t, out->id, c, len, piece.s, piece.len, err);
    free(piece.s);
    out->text = s.s;
    out->len = s.len;
    if (rc == 0) {
        t->flags[out->id] |= TOK_F_ADDED | (out->special ? TOK_F_SPECIAL : 0);
        t->flags[out->id] &= (uint8_t)~TOK_F_BYTE;
    }
    return rc;
}

int tok_added_load(struct tokenizer *t, json_t *root, struct error *err)
{
    json_t *list = json_object_get(root, "added_tokens");
    size_t n = json_array_size(list);
    if (n == 0)
        return 0;
    t->added = calloc(n, sizeof *t->added);
    if (!t->added)
        return error_set(err, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (load_one(t, json_array_get(list, i), i, &t->added[i], err)) {
            t->n_added = (int)i + 1;   /* so tok_free releases what was read */
            return -1;
        }
        t->any_normalized_added |= t->added[i].normalized;
    }
    t->n_added = (int)n;
    qsort(t->added, n, sizeof *t->added, cmp_added);
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < t->n_added && (unsigned char)t->added[k].text[0] < b)
            k++;
        t->added_start[b] = k;
    }
    return 0;
}

int tok_added_find(const struct tokenizer *t, const char *s, size_t n, bool normalized, bool parse_special,
                   size_t *at)
{
    if (t->n_added == 0)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        int lo = t->added_start[u[i]], hi = t->added_start[u[i] + 1];
        for (int k = lo; k < hi; k++) {
            const struct tok_added *a = &t->added[k];
            if (a->normalized != normalized || (a->special && !parse_special))
                continue;
            if (a->len <= n - i && !memcmp(s + i, a->text, a->len)) {
                *at = i;
                return k;
            }
        }
    }
    return -1;
}
