/* arch.c — what each supported architecture adds to the Llama layer, read from config.json as
 * Hugging Face transformers writes and reads it (defaults included):
 *
 *   Llama, Mistral  the base layer; Mistral's sliding_window masks every layer
 *   Qwen2           q/k/v biases
 *   Qwen3           per-head RMSNorm of q and k before RoPE, no biases
 *   Gemma2          embeddings × √hidden, RMSNorm by (1 + w), GeGLU (gelu tanh), norms before and after
 *                   each sub-layer, q·k scaled by query_pre_attn_scalar^-½, attention and final logit
 *                   soft-capping, sliding-window attention on every other layer
 *   Gemma3 (text)   Gemma2's layer plus Gemma q/k norms, 5 windowed layers per global one, and its own
 *                   RoPE base on windowed layers (rope_local_base_freq)
 *   Phi3            q/k/v and gate/up stored fused, sliding_window on every layer, longrope (short factor)
 *
 * Everything here fills struct model_config; model.c and forward.c act on the flags, never on names. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/engine/arch.h"
#include "common/util/log.h"

static const struct {
    const char *name;
    enum model_arch family;
} arch_table[] = {
    {"LlamaForCausalLM", ARCH_LLAMA},   {"MistralForCausalLM", ARCH_LLAMA},
    {"Qwen2ForCausalLM", ARCH_QWEN2},   {"Qwen3ForCausalLM", ARCH_QWEN3},
    {"Gemma2ForCausalLM", ARCH_GEMMA2}, {"Gemma3ForCausalLM", ARCH_GEMMA3},
    {"Phi3ForCausalLM", ARCH_PHI3},
};

const char *arch_supported_list(void)
{
    return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, "
           "Gemma3ForCausalLM, Phi3ForCausalLM";
}

int arch_lookup(const char *name, enum model_arch *family, struct error *err)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof *arch_table; i++)
        if (strcmp(name, arch_table[i].name) == 0) {
            *family = arch_table[i].family;
            return 0;
        }
    return error_set(err, "config.json: architecture %s is not supported (supported: %s)", name,
                     arch_supported_list());
}

static bool is_gemma(const struct model_config *c)
{
    return c->family == ARCH_GEMMA2 || c->family == ARCH_GEMMA3;
}

/* A positive number, a missing/null key (dflt; 0 = "off"), else an error naming the key. */
static int number(json_t *root, const char *key, double dflt, double *out, struct error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return error_set(err, "config.json: \"%s\" must be a positive number or null", key);
    *out = json_number_value(v);
    return 0;
}

/* The value as the checkpoint's dtype stores it: transformers multiplies by a tensor of that dtype. */
static float round_to_dtype(double x, const char *dtype)
{
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    if (dtype && strcmp(dtype, "bfloat16") == 0)
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    else if (dtype && strcmp(dtype, "float16") == 0)
        u = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u; /* normal range only: √hidden is */
    memcpy(&f, &u, 4);
    return f;
}

static int parse_activation(json_t *root, struct model_config *c, struct error *err)
{
    const char *key = is_gemma(c) && json_object_get(root, "hidden_activation") ? "hidden_activation" : "hidden_act";
    const char *act = json_string_value(json_object_get(root, key));
    const char *want = is_gemma(c) ? "gelu_pytorch_tanh" : "silu";
    if (!act)
        act = want;
    if (strcmp(act, want) != 0)
        return error_set(err, "config.json: %s \"%s\" is not supported for %s (%s is)", key, act, c->arch, want);
    c->act = is_gemma(c) ? ACT_GELU_TANH : ACT_SILU;
    return 0;
}

/* layer_types (newer transformers) or the family's pattern: Gemma2 windows even layers, Gemma3 all
 * but every sliding_window_pattern-th, Mistral and Phi3 every layer. */
static int parse_layer_types(json_t *root, struct model_config *c, struct error *err)
{
    json_t *types = json_object_get(root, "layer_types");
    if (json_is_array(types)) {
        if ((int)json_array_size(types) != c->n_layers)
            return error_set(err, "config.json: layer_types has %zu entries for %d layers",
                             json_array_size(types), c->n_layers);
        for (int l = 0; l < c->n_layers; l++) {
            const char *t = json_string_value(json_array_get(types, (size_t)l));
            if (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention")))
                return error_set(err, "config.json: layer_types[%d] must be \"sliding_attention\" or "
                                      "\"full_attention\"", l);
            c->layer_sliding[l] = strcmp(t, "sliding_attention") == 0;
        }
        return 0;
    }
    double pattern = 1;
    if (c->family == ARCH_GEMMA2)
        pattern = 2;
    else if (c->family == ARCH_GEMMA3 && number(root, "sliding_window_pattern", 6, &pattern, err) < 0)
        return -1;
    if (pattern != floor(pattern) || pattern > 1 << 20) /* layer l + 1 is taken modulo it */
        return error_set(err, "config.json: \"sliding_window_pattern\" must be a positive integer (%g)", pattern);
    for (int l = 0; l < c->n_layers; l++)
        c->layer_sliding[l] = pattern == 1 || (l + 1) % (int)pattern != 0;
    return 0;
}

static int parse_window(json_t *root, struct model_config *c, struct error *err)
{
    json_t *sw = json_object_get(root, "sliding_window");
    bool windowed = c->family == ARCH_LLAMA ? strcmp(c->arch, "MistralForCausalLM") == 0 : true;
    if (c->family == ARCH_QWEN2 || c->family == ARCH_QWEN3) {
        /* Qwen's use_sliding_window windows only layers past max_window_layers; not implemented. */
        if (json_is_true(json_object_get(root, "use_sliding_window")))
            return error_set(err, "config.json: use_sliding_window=true is not supported for %s", c->arch);
        windowed = false;
    }
    if (!windowed || !sw || json_is_null(sw))
        return 0;
    if (!json_is_integer(sw) || json_integer_value(sw) <= 0 || json_integer_value(sw) > (1 << 30))
        return error_set(err, "config.json: \"sliding_window\" must be a positive integer or null");
    c->sliding_window = (int)json_integer_value(sw);
    return parse_layer_types(root, c, err);
}

static int parse_gemma(json_t *root, struct model_config *c, struct error *err)
{
    double scalar, attn_cap, final_cap, local;
    bool g2 = c->family == ARCH_GEMMA2;
    if (number(root, "query_pre_attn_scalar", 256, &scalar, err) < 0 ||
        number(root, "attn_logit_softcapping", g2 ? 50.0 : 0, &attn_cap, err) < 0 ||
        number(root, "final_logit_softcapping", g2 ? 30.0 : 0, &final_cap, err) < 0 ||
        number(root, "rope_local_base_freq", 10000.0, &local, err) < 0)
        return -1;
    json_t *dt = json_object_get(root, "torch_dtype");
    if (!json_is_string(dt))
        dt = json_object_get(root, "dtype");
    c->embed_scale = round_to_dtype(sqrt((double)c->dim), json_string_value(dt));
    c->norm_offset = 1.0f;
    c->sandwich_norm = true;
    c->attn_scale = (float)(1.0 / sqrt(scalar));
    c->attn_softcap = (float)attn_cap;
    c->final_softcap = (float)final_cap;
    c->qk_norm = !g2;
    if (!g2)
        c->rope_local_theta = local;
    return 0;
}

int arch_parse(json_t *root, struct model_config *c, struct error *err)
{
    if (c->n_layers > MODEL_MAX_LAYERS)
        return error_set(err, "config.json: num_hidden_layers %d is more than %d", c->n_layers, MODEL_MAX_LAYERS);
    c->embed_scale = 1.0f;
    c->attn_scale = (float)(1.0 / sqrt((double)c->head_dim));
    c->rope_attn_factor = c->rope_attn_factor > 0 ? c->rope_attn_factor : 1.0;
    if (parse_activation(root, c, err) < 0 || parse_window(root, c, err) < 0)
        return -1;
    switch (c->family) {
    case ARCH_QWEN3: c->qk_norm = true; break;
    case ARCH_PHI3: c->fused_qkv = true; break;
    case ARCH_GEMMA2:
    case ARCH_GEMMA3: return parse_gemma(root, c, err);
    default: break;
    }
    double prf;
    if (number(root, "partial_rotary_factor", 1.0, &prf, err) < 0)
        return -1;
    if (prf != 1.0)
        return error_set(err, "config.json: partial_rotary_factor %g is not supported (only 1.0 is)", prf);
    return 0;
}

/* Phi3's longrope ("su" in older configs): frequencies divided by short_factor, cos/sin scaled by
 * attention_factor. long_factor applies past original_max_position_embeddings: not implemented, so
 * the context is limited to that length (warned). */
int arch_parse_longrope(json_t *root, json_t *rs, struct model_config *c, struct error *err)
{
    json_t *shorts = json_object_get(rs, "short_factor"), *v;
    int half = c->head_dim / 2;
    if (!json_is_array(shorts) || (int)json_array_size(shorts) != half || half > MODEL_MAX_ROPE_FACTORS)
        return error_set(err, "config.json: rope_scaling.short_factor must list head_dim/2 = %d numbers", half);
    size_t i;
    json_array_foreach(shorts, i, v) {
        if (!json_is_number(v) || !(json_number_value(v) > 0))
            return error_set(err, "config.json: rope_scaling.short_factor[%zu] must be a positive number", i);
        c->rope_short_factor[i] = json_number_value(v);
    }
    double orig, af;
    if (number(root, "original_max_position_embeddings", c->max_pos, &orig, err) < 0 ||
        number(rs, "attention_factor", 0, &af, err) < 0)
        return -1;
    double factor = c->max_pos / orig;
    c->rope_attn_factor = af > 0 ? af : factor <= 1 ? 1.0 : sqrt(1 + log(factor) / log(orig));
    c->rope_orig_max_pos = orig;
    c->rope_kind = ROPE_LONGROPE;
    if (c->max_pos > orig)
        log_warn("config.json: longrope's long_factor (positions past %.0f) is not implemented: run this "
                 "model with a context of at most %.0f tokens (--max-model-len)", orig, orig);
    return 0;
}
