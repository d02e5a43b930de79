/* hfconfig.c — config.json and generation_config.json, with the fields and spellings of the
 * published Llama / Mistral / Qwen2 checkpoints, so any loader that reads those reads these. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "mkmodel.h"

static json_t *id_or_null(int id)
{
    return id >= 0 ? json_integer(id) : json_null();
}

static const char *class_name(const char *arch)
{
    static const char *const names[][2] = {{"qwen2", "Qwen2ForCausalLM"},   {"qwen3", "Qwen3ForCausalLM"},
                                           {"mistral", "MistralForCausalLM"}, {"gemma2", "Gemma2ForCausalLM"},
                                           {"gemma3", "Gemma3ForCausalLM"},   {"phi3", "Phi3ForCausalLM"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(arch, names[i][0]) == 0)
            return names[i][1];
    return "LlamaForCausalLM";
}

static const char *torch_dtype(enum mk_dtype d)
{
    return d == MK_F32 ? "float32" : d == MK_F16 ? "float16" : "bfloat16";
}

/* Phi-3's longrope factors: deterministic, distinct per frequency (1 + i/half, long twice that). */
static json_t *longrope(const struct mk_config *c)
{
    json_t *s = json_array(), *l = json_array();
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        json_array_append_new(s, json_real(1.0 + (double)i / half));
        json_array_append_new(l, json_real(2.0 * (1.0 + (double)i / half)));
    }
    return json_pack("{s:o,s:o,s:s}", "long_factor", l, "short_factor", s, "type", "longrope");
}

static json_t *rope_scaling(const struct mk_config *c)
{
    if (c->longrope_orig)
        return longrope(c);
    if (!c->rope_llama3)
        return json_null();
    return json_pack("{s:f,s:f,s:f,s:I,s:s}", "factor", c->rope_factor, "high_freq_factor", c->rope_high,
                     "low_freq_factor", c->rope_low, "original_max_position_embeddings",
                     (json_int_t)c->rope_orig_max, "rope_type", "llama3");
}

/* The keys only some architectures have. */
static void arch_fields(json_t *o, const struct mk_config *c)
{
    json_t *sw = c->sliding_window ? json_integer(c->sliding_window) : json_null();
    if (mk_is_gemma(c)) {
        json_object_set_new(o, "attn_logit_softcapping", strcmp(c->arch, "gemma2") ? json_null() : json_real(50.0));
        json_object_set_new(o, "final_logit_softcapping", strcmp(c->arch, "gemma2") ? json_null() : json_real(30.0));
        json_object_set_new(o, "hidden_activation", json_string("gelu_pytorch_tanh"));
        json_object_set_new(o, "query_pre_attn_scalar", json_integer(c->head_dim));
        json_object_set_new(o, "sliding_window", sw);
        json_object_set_new(o, "attention_bias", json_false());
        if (strcmp(c->arch, "gemma3") == 0) {
            json_object_set_new(o, "rope_local_base_freq", json_real(10000.0));
            json_object_set_new(o, "sliding_window_pattern", json_integer(6));
        }
    } else if (strcmp(c->arch, "phi3") == 0) {
        json_object_set_new(o, "original_max_position_embeddings",
                            json_integer(c->longrope_orig ? c->longrope_orig : c->max_pos));
        json_object_set_new(o, "sliding_window", sw);
    } else if (strcmp(c->arch, "qwen3") == 0) {
        json_object_set_new(o, "attention_bias", json_false());
        json_object_set_new(o, "sliding_window", json_null());
        json_object_set_new(o, "use_sliding_window", json_false());
    } else if (strcmp(c->arch, "qwen2") == 0) {
        json_object_set_new(o, "max_window_layers", json_integer(c->layers));
        json_object_set_new(o, "sliding_window", json_integer(c->max_pos));
        json_object_set_new(o, "use_sliding_window", json_false());
    } else if (strcmp(c->arch, "mistral") == 0) {
        json_object_set_new(o, "sliding_window", sw);
    } else {
        json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
        json_object_set_new(o, "mlp_bias", json_false());
        json_object_set_new(o, "pretraining_tp", json_integer(1));
    }
}

static int dump(json_t *o, const char *dir, const char *file, struct error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    return rc == 0 ? 0 : error_set(err, "%s: cannot write: %s", path, strerror(errno));
}

int mk_write_hf_config(const char *dir, const struct mk_config *c, const struct mk_specials *sp,
                       struct error *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", class_name(c->arch)));
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "bos_token_id", id_or_null(sp->bos));
    json_object_set_new(o, "eos_token_id", id_or_null(sp->eos));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "hidden_act", json_string(mk_is_gemma(c) ? "gelu_pytorch_tanh" : "silu"));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_pos));
    json_object_set_new(o, "model_type", json_string(c->arch));
    json_object_set_new(o, "num_attention_heads", json_integer(c->heads));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->layers));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->kv_heads));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_eps));
    json_object_set_new(o, "rope_scaling", rope_scaling(c));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    arch_fields(o, c);
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie));
    json_object_set_new(o, "torch_dtype", json_string(torch_dtype(c->dtype)));
    json_object_set_new(o, "transformers_version", json_string("4.45.0"));
    json_object_set_new(o, "use_cache", json_true());
    json_object_set_new(o, "vocab_size", json_integer(c->vocab));
    if (dump(o, dir, "config.json", err) < 0)
        return -1;

    json_t *g = json_object();
    json_object_set_new(g, "bos_token_id", id_or_null(sp->bos));
    if (sp->eot >= 0 && sp->eot != sp->eos && sp->eos >= 0)
        json_object_set_new(g, "eos_token_id", json_pack("[i,i]", sp->eot, sp->eos));
    else
        json_object_set_new(g, "eos_token_id", id_or_null(sp->eot >= 0 ? sp->eot : sp->eos));
    json_object_set_new(g, "transformers_version", json_string("4.45.0"));
    return dump(g, dir, "generation_config.json", err);
}
