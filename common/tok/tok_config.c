/* tok_config.c — what is added around the ids and which ids are BOS/EOS: tokenizer.json's
 * post_processor, tokenizer_config.json (bos/eos tokens, add_bos_token/add_eos_token where transformers
 * honours them, additional_special_tokens) and generation_config.json (eos_token_id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/modelfile.h"
#include "tok_impl.h"
#include "common/engine/gguf_hf.h"

static int ids_append(int32_t **v, int *n, int32_t id, struct error *err)
{
    int32_t *p = realloc(*v, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return error_set(err, "tokenizer: out of memory");
    *v = p;
    p[(*n)++] = id;
    return 0;
}

static int template_special(struct tokenizer *t, json_t *pp, json_t *item, bool after_a, struct error *err)
{
    const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
    json_t *ids = json_object_get(json_object_get(json_object_get(pp, "special_tokens"), name ? name : ""), "ids");
    if (!name || !json_is_array(ids))
        return error_set(err, "tokenizer.json: TemplateProcessing special token \"%s\" has no ids",
                         name ? name : "(unnamed)");
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) {
        json_int_t id = json_integer_value(x);
        if (!json_is_integer(x) || id < 0 || id >= t->n_ids)
            return error_set(err, "tokenizer.json: TemplateProcessing token \"%s\" has an id out of range", name);
        if (after_a ? ids_append(&t->suffix, &t->n_suffix, (int32_t)id, err)
                    : ids_append(&t->prefix, &t->n_prefix, (int32_t)id, err))
            return -1;
    }
    return 0;
}

static int load_post(struct tokenizer *t, json_t *pp, int depth, struct error *err)
{
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!pp || json_is_null(pp) || (type && !strcmp(type, "ByteLevel")))
        return 0;
    if (type && !strcmp(type, "Sequence") && depth < 8) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(pp, "processors"), i, x) {
            if (load_post(t, x, depth + 1, err))
                return -1;
        }
        return 0;
    }
    if (!type || strcmp(type, "TemplateProcessing") != 0)
        return error_set(err, "tokenizer.json: post_processor \"%s\" is not supported (supported: ByteLevel, "
                              "TemplateProcessing, Sequence)", type ? type : "(no type)");
    bool after_a = false;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(pp, "single"), i, item) {
        if (json_object_get(item, "Sequence"))
            after_a = true;
        else if (template_special(t, pp, item, after_a, err))
            return -1;
    }
    return 0;
}

/* A token given as "text" or {"content": "text"} in tokenizer_config.json; -1 if absent or unknown. */
static int32_t config_token(const struct tokenizer *t, json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? tok_token_id(t, json_string_value(v)) : -1;
}

static json_t *load_optional(const char *dir, const char *name, struct error *err, bool *failed)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    if (gguf_is_file(dir)) { /* the metadata stands in for the folder's files */
        bool absent;
        json_t *g = gguf_hf_file(dir, name, &absent, err);
        *failed = !g && !absent;
        return g;
    }
    /* As reals: configs hold integers beyond int64 (model_max_length 1e30) that jansson refuses otherwise. */
    json_t *j = mf_load_json(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!j && errno == ENOENT)
        return NULL;
    if (!j || !json_is_object(j)) {
        *failed = true;
        error_set(err, "%s: line %d: %s", path, je.line, j ? "not a JSON object" : je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* transformers' Llama/Gemma fast tokenizers rebuild the post-processor from add_bos_token/add_eos_token. */
static int apply_add_bos(struct tokenizer *t, json_t *cfg, struct error *err)
{
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    static const char *rebuild[] = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                                    "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"};
    bool match = false;
    for (size_t i = 0; cls && i < sizeof rebuild / sizeof *rebuild; i++)
        match |= !strcmp(cls, rebuild[i]);
    if (!match)
        return 0;
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    int32_t bos = config_token(t, json_object_get(cfg, "bos_token"));
    int32_t eos = config_token(t, json_object_get(cfg, "eos_token"));
    t->n_prefix = t->n_suffix = 0;
    if (!json_is_false(ab) && bos >= 0 && ids_append(&t->prefix, &t->n_prefix, bos, err))
        return -1;
    if (json_is_true(ae) && eos >= 0 && ids_append(&t->suffix, &t->n_suffix, eos, err))
        return -1;
    return 0;
}

/* An id from a config file (numbers are read as reals there); -1 if not a valid id. */
static int32_t config_id(const struct tokenizer *t, json_t *v)
{
    double d = json_number_value(v);
    return json_is_number(v) && d >= 0 && d < t->n_ids && d == (int32_t)d ? (int32_t)d : -1;
}

static int load_eos(struct tokenizer *t, json_t *cfg, json_t *gen, struct error *err)
{
    json_t *e = json_object_get(gen, "eos_token_id"), *x;
    size_t i;
    if (json_is_number(e)) {
        if (config_id(t, e) < 0)
            return error_set(err, "generation_config.json: eos_token_id is not a token id");
        return ids_append(&t->eos_ids, &t->n_eos, config_id(t, e), err);
    }
    if (json_is_array(e)) {
        json_array_foreach(e, i, x) {
            if (config_id(t, x) < 0)
                return error_set(err, "generation_config.json: eos_token_id[%zu] is not a token id", i);
            if (ids_append(&t->eos_ids, &t->n_eos, config_id(t, x), err))
                return -1;
        }
        return 0;
    }
    int32_t id = config_token(t, json_object_get(cfg, "eos_token"));
    return id >= 0 ? ids_append(&t->eos_ids, &t->n_eos, id, err) : 0;
}

int tok_config_load(struct tokenizer *t, json_t *root, const char *model_dir, struct error *err)
{
    if (load_post(t, json_object_get(root, "post_processor"), 0, err))
        return -1;
    bool failed = false;
    json_t *cfg = load_optional(model_dir, "tokenizer_config.json", err, &failed);
    json_t *gen = failed ? NULL : load_optional(model_dir, "generation_config.json", err, &failed);
    int rc = failed ? -1 : apply_add_bos(t, cfg, err);
    if (rc == 0)
        rc = load_eos(t, cfg, gen, err);
    if (rc == 0) {
        t->bos_id = config_token(t, json_object_get(cfg, "bos_token"));
        if (t->bos_id < 0 && !json_object_get(cfg, "bos_token") && t->n_prefix > 0)
            t->bos_id = t->prefix[0];
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(cfg, "additional_special_tokens"), i, x) {
            int32_t id = config_token(t, x);
            if (id >= 0)
                t->flags[id] |= TOK_F_SPECIAL;
        }
    }
    json_decref(cfg);
    json_decref(gen);
    return rc;
}
