/* tok_load.c — tok_load/tok_free and the simple queries (vocabulary size, BOS/EOS, token lookup).
 * Loading order matters: the pre-tokenizer decides whether token keys are raw bytes (ByteLevel) and the
 * decoder decides each token's piece, so they are read before the vocabulary; the post-processor and
 * the config files name tokens, so they come after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "common/util/modelfile.h"
#include "tok_impl.h"
#include "common/engine/gguf_hf.h"

#define TOK_MAX_IDS (1 << 21)   /* 2M ids: far above any real vocabulary, bounds what a bad file allocates */

/* Highest id + 1 over the model vocabulary and added tokens, checking every id is a sane integer. */
static int count_ids(json_t *root, int *n_ids, struct error *err)
{
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab"), *v;
    json_int_t max = -1;
    const char *k;
    if (!json_is_object(vocab))
        return error_set(err, "tokenizer.json: model.vocab is not an object of token → id");
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_IDS)
            return error_set(err, "tokenizer.json: vocab token \"%s\" has an id that is not an integer in "
                                  "[0, %d)", k, TOK_MAX_IDS);
        if (json_integer_value(v) > max)
            max = json_integer_value(v);
    }
    json_t *added = json_object_get(root, "added_tokens");
    size_t i;
    if (added && !json_is_array(added))
        return error_set(err, "tokenizer.json: added_tokens is not an array");
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= TOK_MAX_IDS)
            return error_set(err, "tokenizer.json: added_tokens[%zu] has no integer id in [0, %d)", i, TOK_MAX_IDS);
        if (json_integer_value(id) > max)
            max = json_integer_value(id);
    }
    if (max < 0)
        return error_set(err, "tokenizer.json: the vocabulary is empty");
    *n_ids = (int)max + 1;
    return 0;
}

static int load_root(struct tokenizer *t, json_t *root, const char *dir, struct error *err)
{
    int n_ids = 0;
    if (tok_pipeline_load(t, root, err) || count_ids(root, &n_ids, err) || tok_vocab_init(t, n_ids, err) ||
        tok_model_load(t, root, err) || tok_added_load(t, root, err) || tok_config_load(t, root, dir, err))
        return -1;
    return 0;
}

struct tokenizer *tok_load(const char *model_dir, struct error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    json_error_t je;
    bool gguf = gguf_is_file(model_dir), absent;
    json_t *root = gguf ? gguf_hf_file(model_dir, "tokenizer.json", &absent, err) : mf_load_json(path, 0, &je);
    if (!root) {
        if (!gguf)
            error_set(err, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
        return NULL;
    }
    struct tokenizer *t = calloc(1, sizeof *t);
    int rc = -1;
    if (!t)
        error_set(err, "tokenizer: out of memory");
    else if (!json_is_object(root))
        error_set(err, "%s: not a JSON object", path);
    else
        rc = load_root(t, root, model_dir, err);
    json_decref(root);
    if (rc) {
        error_wrap(err, "loading the tokenizer from %s", model_dir);
        tok_free(t);
        return NULL;
    }
    log_info("tokenizer: %s: %d ids, %s BPE, %d added tokens", model_dir, t->n_ids,
             t->byte_level ? "byte-level" : "SentencePiece-style", t->n_added);
    return t;
}

void tok_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->flags);
    free(t->byte_val);
    free(t->key_off);
    free(t->key_len);
    free(t->piece_off);
    free(t->piece_len);
    free(t->arena.s);
    free(t->vocab_slots);
    free(t->merge_slots);
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].from);
        free(t->norm[i].to);
    }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++)
        pcre2_code_free(t->pre[i].re);
    free(t->pre);
    for (int i = 0; i < t->n_added; i++)
        free(t->added[i].text);
    free(t->added);
    free(t->prefix);
    free(t->suffix);
    free(t->dec_from);
    free(t->dec_to);
    free(t->eos_ids);
    free(t);
}

int tok_vocab_size(const struct tokenizer *t) { return t->n_ids; }

int32_t tok_bos_id(const struct tokenizer *t) { return t->bos_id; }

int tok_eos_ids(const struct tokenizer *t, const int32_t **ids)
{
    *ids = t->eos_ids;
    return t->n_eos;
}

bool tok_is_special(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && (t->flags[id] & TOK_F_SPECIAL);
}

const char *tok_id_bytes(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT))
        return NULL;
    if (t->dec_byte_fallback && (t->flags[id] & TOK_F_BYTE)) {
        *len = 1;
        return (const char *)&t->byte_val[id];
    }
    *len = t->piece_len[id];
    return tok_piece(t, id);
}

int32_t tok_token_id(const struct tokenizer *t, const char *token_text)
{
    size_t n = strlen(token_text);
    for (int i = 0; i < t->n_added; i++) {
        int32_t id = t->added[i].id;
        if (t->key_len[id] == n && !memcmp(tok_key(t, id), token_text, n))
            return id;
    }
    if (!t->vocab_slots)
        return -1;
    if (!t->byte_level)
        return tok_vocab_find(t, token_text, n);
    struct tok_str b = {0};
    int32_t id = tok_bytelevel_to_bytes(token_text, n, &b) ? tok_vocab_find(t, b.s ? b.s : "", b.len)
                                                            : tok_vocab_find(t, token_text, n);
    free(b.s);
    return id;
}
