/* tokcopy.c — --tokenizer FILE: copies a downloaded tokenizer.json byte for byte (and the
 * tokenizer_config.json next to it, if there is one), and finds the special tokens that config.json
 * and generation_config.json must name: from that tokenizer_config.json when present, otherwise by
 * the names the Llama, Qwen, Mistral and Gemma families use. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util/log.h"
#include "mkmodel.h"

static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<bos>", NULL};
static const char *const eos_names[] = {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", NULL};
static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", NULL};

static int token_id(json_t *tok, const char *content)
{
    size_t i;
    json_t *t;
    if (!content)
        return -1;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, t) {
        const char *s = json_string_value(json_object_get(t, "content"));
        if (s && strcmp(s, content) == 0)
            return (int)json_integer_value(json_object_get(t, "id"));
    }
    json_t *v = json_object_get(json_object_get(json_object_get(tok, "model"), "vocab"), content);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* The first of `names` the tokenizer has, or NULL. */
static const char *first_known(json_t *tok, const char *const *names)
{
    for (; *names; names++)
        if (token_id(tok, *names) >= 0)
            return *names;
    return NULL;
}

static int token_count(json_t *tok)
{
    json_t *vocab = json_object_get(json_object_get(tok, "model"), "vocab"), *v, *t;
    const char *key;
    size_t i;
    long long n = json_is_array(vocab) ? (long long)json_array_size(vocab) : 0; /* Unigram */
    json_object_foreach(vocab, key, v)
        if (json_integer_value(v) + 1 > n)
            n = json_integer_value(v) + 1;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, t)
        if (json_integer_value(json_object_get(t, "id")) + 1 > n)
            n = json_integer_value(json_object_get(t, "id")) + 1;
    return n > 0x7fffffff ? -1 : (int)n;
}

static json_t *load(const char *path, struct error *err)
{
    json_error_t je;
    if (access(path, R_OK) != 0) {
        error_set(err, "--tokenizer %s: cannot read it: %s", path, strerror(errno));
        return NULL;
    }
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        error_set(err, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(json_object_get(o, "model"))) {
        error_set(err, "%s: no \"model\" object: not a Hugging Face tokenizer.json", path);
        json_decref(o);
        return NULL;
    }
    return o;
}

int mk_tokenizer_size(const char *path, int *n_tokens, struct error *err)
{
    json_t *tok = load(path, err);
    if (!tok)
        return -1;
    *n_tokens = token_count(tok);
    json_decref(tok);
    return *n_tokens > 0 ? 0 : error_set(err, "%s: the tokenizer has no tokens", path);
}

static int copy_file(const char *from, const char *to, struct error *err)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    int saved = errno;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : error_set(err, "copying %s to %s failed: %s", from, to, strerror(saved));
}

/* A special token as tokenizer_config.json gives it: a string or {"content": ...}. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "content"));
}

static json_t *added_tokens_decoder(json_t *tok)
{
    json_t *dec = json_object(), *t;
    size_t i;
    json_array_foreach(json_object_get(tok, "added_tokens"), i, t) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(t, "id")));
        json_t *copy = json_deep_copy(t);
        json_object_del(copy, "id");
        json_object_set_new(dec, key, copy);
    }
    return dec;
}

/* Copies the sibling tokenizer_config.json and takes the special tokens it names. */
static int use_sibling_config(const char *cfg_path, const char *dir, json_t *tok,
                              struct mk_specials *sp, struct error *err)
{
    char to[4096];
    json_error_t je;
    /* Real configs hold model_max_length 1e30 as an integer, too big for jansson unless read as real. */
    json_t *cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg)
        return error_set(err, "%s: not valid JSON (line %d: %s)", cfg_path, je.line, je.text);
    snprintf(to, sizeof to, "%s/tokenizer_config.json", dir);
    int rc = copy_file(cfg_path, to, err);
    int eos = token_id(tok, config_token(cfg, "eos_token"));
    sp->bos = token_id(tok, config_token(cfg, "bos_token"));
    sp->eos = token_id(tok, first_known(tok, eos_names));
    sp->eot = eos != sp->eos ? eos : token_id(tok, first_known(tok, eot_names));
    if (sp->eos < 0)
        sp->eos = eos;
    json_decref(cfg);
    return rc;
}

int mk_copy_tokenizer(const char *dir, const char *src, const struct mk_config *c,
                      struct mk_specials *sp, struct error *err)
{
    json_t *tok = load(src, err);
    if (!tok)
        return -1;
    char to[4096], sibling[4096];
    snprintf(to, sizeof to, "%s/tokenizer.json", dir);
    const char *slash = strrchr(src, '/');
    snprintf(sibling, sizeof sibling, "%.*stokenizer_config.json", slash ? (int)(slash - src + 1) : 0,
             src);
    sp->n_tokens = token_count(tok);
    int rc = copy_file(src, to, err);
    if (rc == 0 && access(sibling, R_OK) == 0) {
        rc = use_sibling_config(sibling, dir, tok, sp, err);
    } else if (rc == 0) {
        const char *bos = first_known(tok, bos_names), *eos = first_known(tok, eos_names);
        const char *eot = first_known(tok, eot_names);
        sp->bos = token_id(tok, bos);
        sp->eos = token_id(tok, eos);
        sp->eot = token_id(tok, eot);
        rc = mk_write_tok_config(dir, c, bos, eot ? eot : eos, eos, added_tokens_decoder(tok), err);
    }
    if (rc == 0 && sp->bos < 0)
        sp->bos = sp->eos; /* as Qwen2 does: its config names <|endoftext|> as bos_token_id */
    log_info("tokenizer: copied %s (%d tokens; bos %d, eos %d, end of turn %d)", src, sp->n_tokens,
             sp->bos, sp->eos, sp->eot);
    json_decref(tok);
    return rc;
}
