/* model_config.c — config.json of a Hugging Face Llama-family model into struct model_config,
 * with the defaults transformers applies and a refusal naming the field for anything we do not run. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "common/engine/arch.h"
#include "common/engine/model.h"
#include "common/util/modelfile.h"

static int get_int(json_t *root, const char *key, int dflt, int *out, struct error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0)
            return error_set(err, "config.json: \"%s\" is missing", key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 30))
        return error_set(err, "config.json: \"%s\" must be a positive integer", key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_num(json_t *root, const char *key, double dflt, double *out, struct error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return error_set(err, "config.json: \"%s\" must be a positive number", key);
    *out = json_number_value(v);
    return 0;
}

static bool get_bool(json_t *root, const char *key, bool dflt)
{
    json_t *v = json_object_get(root, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int parse_arch(json_t *root, struct model_config *c, struct error *err)
{
    json_t *a = json_array_get(json_object_get(root, "architectures"), 0);
    if (!json_is_string(a))
        return error_set(err, "config.json: \"architectures\" must list the model class");
    snprintf(c->arch, sizeof c->arch, "%s", json_string_value(a));
    return arch_lookup(c->arch, &c->family, err);
}

static int parse_rope_scaling(json_t *root, struct model_config *c, struct error *err)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_kind = ROPE_DEFAULT;
    if (!rs || json_is_null(rs))
        return 0;
    json_t *type = json_object_get(rs, "rope_type");
    if (!json_is_string(type))
        type = json_object_get(rs, "type");
    const char *t = json_string_value(type);
    if (!t)
        return error_set(err, "config.json: rope_scaling has no \"rope_type\"");
    if (strcmp(t, "default") == 0)
        return 0;
    if (strcmp(t, "longrope") == 0 || strcmp(t, "su") == 0) {
        if (c->family != ARCH_PHI3)
            return error_set(err, "config.json: rope_scaling type \"%s\" is supported only for Phi3", t);
        return arch_parse_longrope(root, rs, c, err);
    }
    if (get_num(rs, "factor", -1, &c->rope_factor, err) < 0 || c->rope_factor < 0)
        return error_set(err, "config.json: rope_scaling.factor must be a positive number");
    if (strcmp(t, "linear") == 0) {
        c->rope_kind = ROPE_LINEAR;
        return 0;
    }
    if (strcmp(t, "llama3") != 0)
        return error_set(err, "config.json: rope_scaling type \"%s\" is not supported (default, linear, "
                              "llama3 and, for Phi3, longrope are)", t);
    c->rope_kind = ROPE_LLAMA3;
    if (get_num(rs, "low_freq_factor", 1, &c->rope_low_freq_factor, err) < 0 ||
        get_num(rs, "high_freq_factor", 4, &c->rope_high_freq_factor, err) < 0 ||
        get_num(rs, "original_max_position_embeddings", 8192, &c->rope_orig_max_pos, err) < 0)
        return error_wrap(err, "rope_scaling");
    if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
        return error_set(err, "config.json: rope_scaling needs high_freq_factor > low_freq_factor");
    return 0;
}

/* Features of the family we do not implement are refused, not silently ignored. */
static int check_unsupported(json_t *root, struct model_config *c, struct error *err)
{
    (void)c;
    if (get_bool(root, "mlp_bias", false))
        return error_set(err, "config.json: mlp_bias=true is not supported");
    return 0;
}

static int parse_shape(json_t *root, struct model_config *c, struct error *err)
{
    if (get_int(root, "hidden_size", -1, &c->dim, err) < 0 ||
        get_int(root, "num_hidden_layers", -1, &c->n_layers, err) < 0 ||
        get_int(root, "num_attention_heads", -1, &c->n_heads, err) < 0 ||
        get_int(root, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err) < 0 ||
        get_int(root, "head_dim", c->dim / c->n_heads, &c->head_dim, err) < 0 ||
        get_int(root, "intermediate_size", -1, &c->hidden_dim, err) < 0 ||
        get_int(root, "vocab_size", -1, &c->vocab_size, err) < 0 ||
        get_int(root, "max_position_embeddings", 2048, &c->max_pos, err) < 0)
        return -1;
    if (c->n_heads % c->n_kv_heads != 0)
        return error_set(err, "config.json: num_attention_heads (%d) is not a multiple of "
                              "num_key_value_heads (%d)", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 != 0 || c->head_dim < 2)
        return error_set(err, "config.json: head_dim %d must be even for RoPE", c->head_dim);
    return 0;
}

static int parse_config(json_t *root, struct model_config *c, struct error *err)
{
    double eps, theta;
    if (parse_arch(root, c, err) < 0 || parse_shape(root, c, err) < 0 ||
        get_num(root, "rms_norm_eps", 1e-6, &eps, err) < 0 ||
        get_num(root, "rope_theta", 10000.0, &theta, err) < 0 || parse_rope_scaling(root, c, err) < 0 ||
        check_unsupported(root, c, err) < 0)
        return -1;
    /* stored as a float: 1e-85 would become 0 (a division by zero on an all-zero row), 1e300 infinity */
    if (eps < 1e-30 || eps > 1)
        return error_set(err, "config.json: rms_norm_eps %g is outside [1e-30, 1]", eps);
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    c->tie_embeddings = get_bool(root, "tie_word_embeddings", false);
    bool qwen2 = strcmp(c->arch, "Qwen2ForCausalLM") == 0;
    bool attention_bias = get_bool(root, "attention_bias", false);
    c->qkv_bias = qwen2 || attention_bias;
    c->o_bias = !qwen2 && attention_bias;
    return arch_parse(root, c, err);
}

/* eos_token_id may be one id or a list (Llama-3 instruct lists several). A negative id or one beyond
 * int32 names no token: skipped, not truncated into some other token's id. */
static void parse_eos(json_t *root, struct model_config *c)
{
    json_t *e = json_object_get(root, "eos_token_id"), *v;
    size_t i, n = json_is_array(e) ? json_array_size(e) : 1;
    for (i = 0; i < n; i++) {
        v = json_is_array(e) ? json_array_get(e, i) : e;
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX &&
            c->n_eos < 8)
            c->eos_ids[c->n_eos++] = (int32_t)json_integer_value(v);
    }
}

int model_config_parse(const char *json, size_t len, struct model_config *cfg, struct error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return error_set(err, "config.json: %s", root ? "not a JSON object" : jerr.text);
    }
    memset(cfg, 0, sizeof *cfg);
    int rc = parse_config(root, cfg, err);
    if (rc == 0)
        parse_eos(root, cfg);
    json_decref(root);
    return rc;
}

static char *read_text(const char *path, size_t *len, struct error *err)
{
    const char *why;
    FILE *f = mf_fopen(path, MF_MAX_JSON, &why);
    if (!f) {
        error_set(err, "%s: %s", path, why);
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        char *nb = cap - n < 4096 ? realloc(buf, cap = cap * 2 + 4096) : buf;
        if (!nb)
            break;
        buf = nb;
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    bool bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        free(buf);
        error_set(err, "%s: cannot read it", path);
        return NULL;
    }
    *len = n;
    return buf;
}

/* generation_config.json's eos_token_id, when it has one, replaces config.json's, as in transformers. */
static void load_generation_eos(const char *dir, struct model_config *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    json_error_t je;
    json_t *gen = mf_load_json(path, 0, &je);
    struct model_config g = {0};
    parse_eos(gen, &g);
    json_decref(gen);
    if (g.n_eos > 0) {
        c->n_eos = g.n_eos;
        memcpy(c->eos_ids, g.eos_ids, sizeof c->eos_ids);
    }
}

int model_config_load(const char *dir, struct model_config *cfg, struct error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = 0;
    char *json = read_text(path, &len, err);
    int rc = json ? model_config_parse(json, len, cfg, err) : -1;
    free(json);
    if (rc == 0)
        load_generation_eos(dir, cfg);
    return rc < 0 ? error_wrap(err, "%s", dir) : 0;
}
