/* gguf_hf.c — a GGUF file's metadata as the Hugging Face files it was converted from: config.json
 * (for model_config_parse, so a GGUF model passes the same checks and defaults as a folder), and
 * tokenizer.json / tokenizer_config.json (for the tokenizer and the chat template; gguf_tok.c).
 *
 * llama.cpp's keys are "<arch>.<name>" with arch = general.architecture. What llama.cpp does not
 * store, it hard-codes per architecture; so do we, the same way: Gemma's query scale is head_dim^-½
 * (hidden/heads for the 27B shapes), Gemma3's local RoPE base is 10000 and its pattern 5:1. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/engine/gguf.h"
#include "common/engine/gguf_hf.h"
#include "common/util/log.h"

static const struct {
    const char *gguf, *hf;
} arch_names[] = {
    {"llama", "LlamaForCausalLM"},   {"qwen2", "Qwen2ForCausalLM"},   {"qwen3", "Qwen3ForCausalLM"},
    {"gemma2", "Gemma2ForCausalLM"}, {"gemma3", "Gemma3ForCausalLM"}, {"phi3", "Phi3ForCausalLM"},
};

static const char *hf_class(const char *arch)
{
    for (size_t i = 0; i < sizeof arch_names / sizeof *arch_names; i++)
        if (strcmp(arch, arch_names[i].gguf) == 0)
            return arch_names[i].hf;
    return NULL;
}

/* config[hf_key] = metadata "<arch>.<suffix>" when present. */
static void copy_num(const struct gguf_file *g, json_t *cfg, const char *suffix, const char *hf_key, bool integer)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", gguf_arch(g), suffix);
    int64_t i;
    double d;
    if (integer && gguf_get_int(g, key, &i))
        json_object_set_new(cfg, hf_key, json_integer(i));
    else if (!integer && gguf_get_num(g, key, &d))
        json_object_set_new(cfg, hf_key, json_real(d));
}

static const char *dtype_name(enum st_dtype t)
{
    return t == ST_BF16 ? "bfloat16" : t == ST_F16 ? "float16" : "float32";
}

static void rope_scaling(const struct gguf_file *g, json_t *cfg)
{
    char key[128];
    size_t len;
    snprintf(key, sizeof key, "%s.rope.scaling.type", gguf_arch(g));
    const char *type = gguf_get_str(g, key, &len);
    if (!type || (len == 4 && !memcmp(type, "none", 4)))
        return;
    double factor = 1;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", gguf_arch(g));
    gguf_get_num(g, key, &factor);
    json_object_set_new(cfg, "rope_scaling", json_pack("{s:s%,s:f}", "rope_type", type, len, "factor", factor));
}

/* Gemma's keys llama.cpp leaves implicit: q scaled by key_length^-½ except the 27B shapes (hidden /
 * heads), a 4096-token window, Gemma 2's softcaps (null when not written: off). */
static void gemma_config(json_t *cfg, const char *arch)
{
    json_int_t hd = json_integer_value(json_object_get(cfg, "head_dim"));
    json_int_t layers = json_integer_value(json_object_get(cfg, "num_hidden_layers"));
    json_int_t heads = json_integer_value(json_object_get(cfg, "num_attention_heads"));
    json_int_t hidden = json_integer_value(json_object_get(cfg, "hidden_size"));
    if (layers == (strcmp(arch, "gemma2") ? 62 : 46) && heads > 0)
        hd = hidden / heads;
    if (hd > 0)
        json_object_set_new(cfg, "query_pre_attn_scalar", json_integer(hd));
    if (!json_object_get(cfg, "sliding_window"))
        json_object_set_new(cfg, "sliding_window", json_integer(4096));
    if (!strcmp(arch, "gemma2") && !json_object_get(cfg, "attn_logit_softcapping"))
        json_object_set_new(cfg, "attn_logit_softcapping", json_null());
    if (!strcmp(arch, "gemma2") && !json_object_get(cfg, "final_logit_softcapping"))
        json_object_set_new(cfg, "final_logit_softcapping", json_null());
}

/* RoPE over part of each head (Phi-2, Phi-4-mini): the config parser refuses it by name. */
static void partial_rotary(const struct gguf_file *g, json_t *cfg, const char *arch)
{
    int64_t rope_dims;
    json_int_t hd = json_integer_value(json_object_get(cfg, "head_dim"));
    char key[128];
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if (gguf_get_int(g, key, &rope_dims) && hd > 0 && rope_dims != hd)
        json_object_set_new(cfg, "partial_rotary_factor", json_real((double)rope_dims / (double)hd));
}

json_t *gguf_hf_config(const struct gguf_file *g, struct error *err)
{
    const char *arch = gguf_arch(g), *cls = hf_class(arch);
    if (!cls) {
        error_set(err, "%s: GGUF architecture \"%s\" is not supported (llama, qwen2, qwen3, gemma2, gemma3 and "
                       "phi3 are)", gguf_name(g), arch);
        return NULL;
    }
    const struct st_tensor *embd = gguf_find(g, "model.embed_tokens.weight");
    if (!embd || embd->n_dims != 2) {
        error_set(err, "%s: tensor token_embd.weight is missing or not a matrix", gguf_name(g));
        return NULL;
    }
    json_t *cfg = json_pack("{s:[s],s:I,s:b,s:s}", "architectures", cls, "vocab_size", (json_int_t)embd->shape[0],
                            "tie_word_embeddings", !gguf_find(g, "lm_head.weight"), "torch_dtype",
                            dtype_name(embd->dtype));
    if (!cfg) {
        error_set(err, "%s: the metadata does not make a config (out of memory, or a string that is not UTF-8)",
                  gguf_name(g));
        return NULL;
    }
    copy_num(g, cfg, "embedding_length", "hidden_size", true);
    copy_num(g, cfg, "block_count", "num_hidden_layers", true);
    copy_num(g, cfg, "attention.head_count", "num_attention_heads", true);
    copy_num(g, cfg, "attention.head_count_kv", "num_key_value_heads", true);
    copy_num(g, cfg, "attention.key_length", "head_dim", true);
    copy_num(g, cfg, "feed_forward_length", "intermediate_size", true);
    copy_num(g, cfg, "context_length", "max_position_embeddings", true);
    copy_num(g, cfg, "attention.layer_norm_rms_epsilon", "rms_norm_eps", false);
    copy_num(g, cfg, "rope.freq_base", "rope_theta", false);
    copy_num(g, cfg, "attention.sliding_window", "sliding_window", true);
    copy_num(g, cfg, "attn_logit_softcapping", "attn_logit_softcapping", false);
    copy_num(g, cfg, "final_logit_softcapping", "final_logit_softcapping", false);
    rope_scaling(g, cfg);
    if (strcmp(arch, "llama") == 0 && gguf_find(g, "model.layers.0.self_attn.q_proj.bias"))
        json_object_set_new(cfg, "attention_bias", json_true());
    if (!strncmp(arch, "gemma", 5))
        gemma_config(cfg, arch);
    if (!strcmp(arch, "phi3"))
        copy_num(g, cfg, "rope.scaling.original_context_length", "original_max_position_embeddings", true);
    partial_rotary(g, cfg, arch);
    return cfg;
}

/* eos from tokenizer.ggml.eos_token_id (and eot_token_id, as generation_config lists both). */
static void eos_ids(const struct gguf_file *g, struct model_config *c)
{
    static const char *const keys[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eos_token_id"};
    for (size_t i = 0; i < 2; i++) {
        int64_t id;
        if (gguf_get_int(g, keys[i], &id) && id >= 0 && id <= INT32_MAX && c->n_eos < 8 &&
            (c->n_eos == 0 || c->eos_ids[0] != id))
            c->eos_ids[c->n_eos++] = (int32_t)id;
    }
}

/* llama.cpp stores Llama 3's rope scaling as a tensor of per-frequency divisors (rope_freqs) and Phi3's
 * longrope as rope_factors_short/long: the divisors go where longrope's short factor goes. */
static int rope_factor_tensor(const struct gguf_file *g, struct model_config *c, struct error *err)
{
    const char *name = c->family == ARCH_PHI3 ? "rope_factors_short.weight" : "rope_freqs.weight";
    const struct st_tensor *t = gguf_find(g, name);
    if (!t)
        return 0;
    int half = c->head_dim / 2;
    if (t->n_dims != 1 || t->shape[0] != half || t->dtype != ST_F32 || half > MODEL_MAX_ROPE_FACTORS)
        return error_set(err, "%s: tensor %s must be F32 [%d] (one RoPE divisor per frequency)", gguf_name(g),
                         name, half);
    float f[MODEL_MAX_ROPE_FACTORS];
    memcpy(f, t->data, (size_t)half * sizeof *f);
    for (int i = 0; i < half; i++) {
        if (!(f[i] > 0) || !isfinite(f[i]))
            return error_set(err, "%s: tensor %s[%d] = %g is not a positive divisor", gguf_name(g), name, i, f[i]);
        c->rope_short_factor[i] = f[i];
    }
    if (c->rope_kind != ROPE_DEFAULT)
        return error_set(err, "%s: both a rope scaling type and tensor %s: which one applies is unclear",
                         gguf_name(g), name);
    c->rope_kind = ROPE_LONGROPE;
    double af = 1.0, orig;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", gguf_arch(g));
    if (c->family == ARCH_PHI3 && !gguf_get_num(g, key, &af)) {
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", gguf_arch(g));
        orig = gguf_get_num(g, key, &orig) ? orig : c->max_pos;
        af = c->max_pos > orig ? sqrt(1 + log(c->max_pos / orig) / log(orig)) : 1.0;
    }
    if (!(af > 0) || !isfinite(af))
        return error_set(err, "%s: %s must be a positive number", gguf_name(g), key);
    c->rope_attn_factor = af;
    if (c->family == ARCH_PHI3 && gguf_find(g, "rope_factors_long.weight"))
        log_warn("%s: longrope's long factors (rope_factors_long) are not implemented: run this model with a "
                 "context of at most its original_context_length (--max-model-len)", gguf_name(g));
    return 0;
}

int gguf_model_config(const struct gguf_file *g, struct model_config *c, struct error *err)
{
    json_t *cfg = gguf_hf_config(g, err);
    if (!cfg)
        return -1;
    char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    if (!text)
        return error_set(err, "out of memory");
    int rc = model_config_parse(text, strlen(text), c, err);
    free(text);
    if (rc < 0)
        return error_wrap(err, "%s (the config its GGUF metadata describes)", gguf_name(g));
    c->n_eos = 0;
    eos_ids(g, c);
    if (rope_factor_tensor(g, c, err) < 0)
        return -1;
    /* llama.cpp's converter adds Gemma's 1 to the norm weights (its RMSNorm is plain) */
    if (c->family == ARCH_GEMMA2 || c->family == ARCH_GEMMA3)
        c->norm_offset = 0.0f;
    return 0;
}
