/* model.c — finding, checking and preparing the weights of a model folder (see model.h), and the
 * RoPE frequencies its config asks for. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "safetensors.h"

/* Returns a float32 view of the tensor `name`, which must have exactly the given shape. */
static const float *weight(struct model *m, const char *name, int64_t rows, int64_t cols,
                           struct error *err)
{
    const struct st_tensor *t = st_find(m->st, name);
    if (!t) {
        error_set(err, "tensor %s is missing from the model's safetensors files", name);
        return NULL;
    }
    int want_dims = cols ? 2 : 1;
    if (t->n_dims != want_dims || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
        char got[96] = "";
        for (int i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        if (cols)
            error_set(err, "tensor %s (%s) has shape [%s], but config.json implies [%lld, %lld]", name,
                      t->file, got, (long long)rows, (long long)cols);
        else
            error_set(err, "tensor %s (%s) has shape [%s], but config.json implies [%lld]", name, t->file,
                      got, (long long)rows);
        return NULL;
    }
    m->weight_bytes += (size_t)t->n_elems * sizeof(float);
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0)
        return t->data;
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 64, (size_t)t->n_elems * sizeof(float)) != 0) {
        error_set(err, "out of memory converting tensor %s", name);
        return NULL;
    }
    st_to_f32(buf, t->data, t->dtype, t->n_elems);
    void **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (!owned) {
        free(buf);
        error_set(err, "out of memory");
        return NULL;
    }
    m->owned = owned;
    m->owned[m->n_owned++] = buf;
    return buf;
}

static const char *layer_name(char *buf, int l, const char *suffix)
{
    snprintf(buf, 160, "model.layers.%d.%s", l, suffix);
    return buf;
}

static int load_layer(struct model *m, int l, struct error *err)
{
    const struct model_config *c = &m->cfg;
    struct layer_weights *w = &m->layers[l];
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    char b[160];
    const struct {
        const float **dst;
        const char *suffix;
        int64_t rows, cols;
        bool want;
    } t[] = {
        {&w->attn_norm, "input_layernorm.weight", c->dim, 0, true},
        {&w->wq, "self_attn.q_proj.weight", q, c->dim, true},
        {&w->wk, "self_attn.k_proj.weight", kv, c->dim, true},
        {&w->wv, "self_attn.v_proj.weight", kv, c->dim, true},
        {&w->wo, "self_attn.o_proj.weight", c->dim, q, true},
        {&w->bq, "self_attn.q_proj.bias", q, 0, c->qkv_bias},
        {&w->bk, "self_attn.k_proj.bias", kv, 0, c->qkv_bias},
        {&w->bv, "self_attn.v_proj.bias", kv, 0, c->qkv_bias},
        {&w->bo, "self_attn.o_proj.bias", c->dim, 0, c->o_bias},
        {&w->ffn_norm, "post_attention_layernorm.weight", c->dim, 0, true},
        {&w->w_gate, "mlp.gate_proj.weight", c->hidden_dim, c->dim, true},
        {&w->w_up, "mlp.up_proj.weight", c->hidden_dim, c->dim, true},
        {&w->w_down, "mlp.down_proj.weight", c->dim, c->hidden_dim, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (!t[i].want)
            continue;
        *t[i].dst = weight(m, layer_name(b, l, t[i].suffix), t[i].rows, t[i].cols, err);
        if (!*t[i].dst)
            return -1;
    }
    return 0;
}

static int load_weights(struct model *m, struct error *err)
{
    const struct model_config *c = &m->cfg;
    if (!(m->embed = weight(m, "model.embed_tokens.weight", c->vocab_size, c->dim, err)) ||
        !(m->norm = weight(m, "model.norm.weight", c->dim, 0, err)))
        return -1;
    for (int l = 0; l < c->n_layers; l++)
        if (load_layer(m, l, err) < 0)
            return -1;
    if (c->tie_embeddings) {
        m->lm_head = m->embed;
        return 0;
    }
    /* Reading one embedding row per token is noise next to the matrices; count lm_head instead. */
    m->weight_bytes -= (size_t)c->vocab_size * c->dim * sizeof(float);
    m->lm_head = weight(m, "lm_head.weight", c->vocab_size, c->dim, err);
    return m->lm_head ? 0 : -1;
}

/* RoPE inverse frequencies as transformers computes them, including its llama3 and linear scaling. */
static void rope_frequencies(struct model *m)
{
    const struct model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_kind == ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_kind == ROPE_LLAMA3) {
            double wavelen = 2 * M_PI / f;
            double low_wavelen = c->rope_orig_max_pos / c->rope_low_freq_factor;
            double high_wavelen = c->rope_orig_max_pos / c->rope_high_freq_factor;
            if (wavelen > low_wavelen) {
                f /= c->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (c->rope_orig_max_pos / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        m->inv_freq[i] = f;
    }
}

struct model *model_load(const char *dir, struct error *err)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        error_set(err, "out of memory");
        return NULL;
    }
    if (model_config_load(dir, &m->cfg, err) < 0 || !(m->st = st_open_dir(dir, err)))
        goto fail;
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    m->inv_freq = calloc((size_t)m->cfg.head_dim / 2, sizeof *m->inv_freq);
    if (!m->layers || !m->inv_freq) {
        error_set(err, "out of memory");
        goto fail;
    }
    if (load_weights(m, err) < 0) {
        error_wrap(err, "%s", dir);
        goto fail;
    }
    rope_frequencies(m);
    log_debug("model %s: %s, %d layers, dim %d, %d/%d heads, vocab %d, %.1f MiB float32", dir, m->cfg.arch,
              m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.vocab_size,
              m->weight_bytes / 1048576.0);
    return m;
fail:
    model_free(m);
    return NULL;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    st_close(m->st);
    free(m);
}
