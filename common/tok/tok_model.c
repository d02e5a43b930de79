/* tok_model.c — reads tokenizer.json's "model" (BPE only): the vocabulary into the id tables, the merges
 * into the merge map, and the BPE options. Byte-level models store each token's key as the raw bytes
 * it stands for, so BPE runs on the input bytes directly instead of on GPT-2's remapped characters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

/* The key BPE looks a token string up by. */
static int token_key(const struct tokenizer *t, const char *s, size_t n, struct tok_str *out)
{
    if (t->byte_level && tok_bytelevel_to_bytes(s, n, out))
        return 0;
    out->len = 0;   /* not a ByteLevel string: its own UTF-8 is the key */
    return tok_str_put(out, s, n);
}

static int byte_token_value(const char *s, size_t n)
{
    unsigned v;
    char tail;
    if (n != 6 || strncmp(s, "<0x", 3) != 0 || s[5] != '>' || sscanf(s + 3, "%2x%c", &v, &tail) != 2)
        return -1;
    return (int)v;
}

static int check_options(json_t *model, struct error *err)
{
    json_t *type = json_object_get(model, "type");
    if (type && !json_is_string(type))
        return error_set(err, "tokenizer.json: model.type is not a string");
    if (type && strcmp(json_string_value(type), "BPE") != 0)
        return error_set(err, "tokenizer.json: model type \"%s\" is not supported (only BPE is)",
                         json_string_value(type));
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0))
        return error_set(err, "tokenizer.json: BPE dropout is not supported (it makes tokenization random)");
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *a = json_object_get(model, affix[i]);
        if (a && !json_is_null(a) && !(json_is_string(a) && json_string_length(a) == 0))
            return error_set(err, "tokenizer.json: BPE %s is not supported", affix[i]);
    }
    return 0;
}

static int load_vocab(struct tokenizer *t, json_t *vocab, struct error *err)
{
    struct tok_str key = {0}, piece = {0};
    const char *s;
    json_t *v;
    int rc = 0;
    json_object_foreach(vocab, s, v) {
        json_int_t id = json_integer_value(v);
        size_t n = strlen(s);
        piece.len = 0;
        if (token_key(t, s, n, &key) ||
            (t->byte_level ? tok_str_put(&piece, key.s, key.len) : tok_decoder_piece(t, s, n, &piece))) {
            rc = error_set(err, "tokenizer: out of memory");
            break;
        }
        if ((rc = tok_vocab_set(t, (int32_t)id, key.s, key.len, piece.s, piece.len, err)) != 0)
            break;
        int b = t->byte_level ? -1 : byte_token_value(s, n);
        if (b >= 0) {
            t->flags[id] |= TOK_F_BYTE;
            t->byte_val[id] = (uint8_t)b;
        }
    }
    free(key.s);
    free(piece.s);
    return rc;
}

/* One merge, "a b" or ["a", "b"], into its two halves. */
static int merge_halves(json_t *m, size_t i, const char **a, size_t *al, const char **b, size_t *bl,
                        struct error *err)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp)
            return error_set(err, "tokenizer.json: merge %zu (\"%s\") has no space between its halves", i, s);
        *a = s;
        *al = (size_t)(sp - s);
        *b = sp + 1;
        *bl = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *al = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *bl = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return error_set(err, "tokenizer.json: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
}

static int load_merges(struct tokenizer *t, json_t *merges, struct error *err)
{
    size_t n = json_array_size(merges);
    if (tok_merges_init(t, n, err))
        return -1;
    struct tok_str ka = {0}, kb = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if ((rc = merge_halves(json_array_get(merges, i), i, &a, &al, &b, &bl, err)) != 0)
            break;
        if (token_key(t, a, al, &ka) || token_key(t, b, bl, &kb) || tok_str_put(&ka, kb.s, kb.len)) {
            rc = error_set(err, "tokenizer: out of memory");
            break;
        }
        int32_t ia = tok_vocab_find(t, ka.s, ka.len - kb.len), ib = tok_vocab_find(t, kb.s, kb.len);
        int32_t im = tok_vocab_find(t, ka.s, ka.len);
        if (ia < 0 || ib < 0 || im < 0)
            rc = error_set(err, "tokenizer.json: merge %zu (\"%.*s\" + \"%.*s\"): %s is not in the vocabulary", i,
                           (int)al, a, (int)bl, b, ia < 0 ? "the left half" : ib < 0 ? "the right half" : "the result");
        else
            tok_merges_put(t, ia, ib, (int32_t)i, im);
    }
    free(ka.s);
    free(kb.s);
    return rc;
}

static int load_flags(struct tokenizer *t, json_t *model, struct error *err)
{
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    t->unk_id = -1;
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        const char *u = json_string_value(unk);
        struct tok_str k = {0};
        if (token_key(t, u, strlen(u), &k))
            return error_set(err, "tokenizer: out of memory");
        t->unk_id = tok_vocab_find(t, k.s, k.len);
        free(k.s);
        if (t->unk_id < 0)
            return error_set(err, "tokenizer.json: unk_token \"%s\" is not in the vocabulary", u);
    }
    for (int b = 0; b < 256; b++) {
        char k[8];
        unsigned char c = (unsigned char)b;
        if (t->byte_level)
            t->byte_ids[b] = tok_vocab_find(t, (const char *)&c, 1);
        else
            t->byte_ids[b] = tok_vocab_find(t, k, (size_t)snprintf(k, sizeof k, "<0x%02X>", b));
    }
    return 0;
}

int tok_model_load(struct tokenizer *t, json_t *root, struct error *err)
{
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return error_set(err, "tokenizer.json: no \"model\" object");
    if (check_options(model, err))
        return -1;
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab))
        return error_set(err, "tokenizer.json: model.vocab is not an object of token → id");
    if (!json_is_array(merges))
        return error_set(err, "tokenizer.json: model.merges is not an array");
    if (load_vocab(t, vocab, err) || tok_vocab_index(t, err) || load_merges(t, merges, err))
        return -1;
    return load_flags(t, model, err);
}
