/* model.c — finding, checking and preparing the weights of a model folder (see model.h), and the
 * RoPE frequencies its config asks for. */
#include "common/engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "common/util/modelfile.h"
#include "common/engine/gguf.h"
#include "common/engine/safetensors.h"

static const struct st_tensor *tensor_lookup(const struct model *m, const char *name)
{
    return m->gguf ? gguf_find(m->gguf, name) : st_find(m->st, name);
}

/* Finds tensor `name` and checks it has exactly the shape config.json implies ([rows] or
 * [rows, cols]). */
static const struct st_tensor *find_tensor(struct model *m, const char *name, int64_t rows, int64_t cols,
                                           struct error *err)
{
    const struct st_tensor *t = tensor_lookup(m, name);
    if (!t) {
        error_set(err, "tensor %s is missing from the model's %s", name, m->gguf ? "GGUF file" : "safetensors files");
        return NULL;
    }
    int want_dims = cols ? 2 : 1;
    if (t->n_dims == want_dims && t->shape[0] == rows && (!cols || t->shape[1] == cols))
        return t;
    char got[96] = "", want[64];
    for (int i = 0; i < t->n_dims; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (cols)
        snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
    else
        snprintf(want, sizeof want, "%lld", (long long)rows);
    error_set(err, "tensor %s (%s) has shape [%s], but %s implies [%s]", name, t->file, got,
              m->gguf ? "the GGUF metadata" : "config.json", want);
    return NULL;
}

static float *owned_buffer(struct model *m, size_t n_floats, struct error *err)
{
    float *buf = NULL;
    void **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (owned)
        m->owned = owned;
    if (!owned || posix_memalign((void **)&buf, 64, n_floats * sizeof(float)) != 0) {
        error_set(err, "out of memory for %zu MiB of weights", n_floats * 4 >> 20);
        return NULL;
    }
    m->owned[m->n_owned++] = buf;
    return buf;
}

/* Returns a float32 view of one tensor: in place for aligned F32, else converted once. */
static const float *weight(struct model *m, const char *name, int64_t rows, int64_t cols, struct error *err)
{
    const struct st_tensor *t = find_tensor(m, name, rows, cols, err);
    if (!t)
        return NULL;
    m->weight_bytes += (size_t)t->n_elems * sizeof(float);
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0)
        return t->data;
    float *buf = owned_buffer(m, (size_t)t->n_elems, err);
    if (buf)
        st_to_f32(buf, t->data, t->dtype, t->n_elems);
    return buf;
}

/* An RMSNorm weight as the forward pass multiplies by it: Gemma's checkpoints store w for (1 + w). */
static const float *norm_weight(struct model *m, const char *name, int64_t n, struct error *err)
{
    if (m->cfg.norm_offset == 0.0f)
        return weight(m, name, n, 0, err);
    const struct st_tensor *t = find_tensor(m, name, n, 0, err);
    float *buf = t ? owned_buffer(m, (size_t)n, err) : NULL;
    if (!buf)
        return NULL;
    st_to_f32(buf, t->data, t->dtype, n);
    for (int64_t i = 0; i < n; i++)
        buf[i] += m->cfg.norm_offset;
    return buf;
}

/* Stacks the rows of several tensors (same column count; cols 0 for vectors) into one float32
 * matrix, so that what the forward pass multiplies by the same input is one sgemm. */
static const float *stacked(struct model *m, int l, const char *const *suffixes, const int64_t *rows, int n,
                            int64_t cols, struct error *err)
{
    const struct st_tensor *t[4];
    char name[160];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffixes[i]);
        if (!(t[i] = find_tensor(m, name, rows[i], cols, err)))
            return NULL;
        total += (size_t)t[i]->n_elems;
    }
    float *buf = owned_buffer(m, total, err);
    if (!buf)
        return NULL;
    for (int i = 0, off = 0; i < n; off += (int)t[i]->n_elems, i++)
        st_to_f32(buf + off, t[i]->data, t[i]->dtype, t[i]->n_elems);
    if (cols)
        m->weight_bytes += total * sizeof(float);
    return buf;
}

/* q/k/v and gate/up stacked at load, or as Phi3 stores them, already fused in that order. */
static int load_projections(struct model *m, int l, struct layer_weights *w, struct error *err)
{
    const struct model_config *c = &m->cfg;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    const int64_t qkv_rows[] = {q, kv, kv}, ffn_rows[] = {c->hidden_dim, c->hidden_dim};
    static const char *const qkv[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                      "self_attn.v_proj.weight"};
    static const char *const qkv_bias[] = {"self_attn.q_proj.bias", "self_attn.k_proj.bias",
                                           "self_attn.v_proj.bias"};
    static const char *const gate_up[] = {"mlp.gate_proj.weight", "mlp.up_proj.weight"};
    char name[160];
    if (c->fused_qkv) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.qkv_proj.weight", l);
        if (!(w->wqkv = weight(m, name, q + 2 * kv, c->dim, err)))
            return -1;
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_up_proj.weight", l);
        return (w->w_gate_up = weight(m, name, 2 * (int64_t)c->hidden_dim, c->dim, err)) ? 0 : -1;
    }
    if (!(w->wqkv = stacked(m, l, qkv, qkv_rows, 3, c->dim, err)) ||
        (c->qkv_bias && !(w->bqkv = stacked(m, l, qkv_bias, qkv_rows, 3, 0, err))) ||
        !(w->w_gate_up = stacked(m, l, gate_up, ffn_rows, 2, c->dim, err)))
        return -1;
    return 0;
}

static int load_layer(struct model *m, int l, struct error *err)
{
    const struct model_config *c = &m->cfg;
    struct layer_weights *w = &m->layers[l];
    int64_t q = (int64_t)c->n_heads * c->head_dim;
    bool gemma = c->sandwich_norm;
    char name[160];
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
    w->window = c->sliding_window && c->layer_sliding[l] ? c->sliding_window : 0;
    w->inv_freq = w->window && m->inv_freq_local ? m->inv_freq_local : m->inv_freq;
    if (!(w->attn_norm = norm_weight(m, LAYER("input_layernorm.weight"), c->dim, err)) ||
        load_projections(m, l, w, err) < 0 ||
        (c->qk_norm && !(w->q_norm = norm_weight(m, LAYER("self_attn.q_norm.weight"), c->head_dim, err))) ||
        (c->qk_norm && !(w->k_norm = norm_weight(m, LAYER("self_attn.k_norm.weight"), c->head_dim, err))) ||
        !(w->wo = weight(m, LAYER("self_attn.o_proj.weight"), c->dim, q, err)) ||
        (c->o_bias && !(w->bo = weight(m, LAYER("self_attn.o_proj.bias"), c->dim, 0, err))) ||
        (gemma && !(w->post_attn_norm = norm_weight(m, LAYER("post_attention_layernorm.weight"), c->dim, err))) ||
        !(w->ffn_norm = norm_weight(m, LAYER(gemma ? "pre_feedforward_layernorm.weight"
                                                   : "post_attention_layernorm.weight"), c->dim, err)) ||
        (gemma && !(w->post_ffn_norm = norm_weight(m, LAYER("post_feedforward_layernorm.weight"), c->dim, err))) ||
        !(w->w_down = weight(m, LAYER("mlp.down_proj.weight"), c->dim, c->hidden_dim, err)))
        return -1;
#undef LAYER
    return 0;
}

static int load_weights(struct model *m, struct error *err)
{
    const struct model_config *c = &m->cfg;
    if (!(m->embed = weight(m, "model.embed_tokens.weight", c->vocab_size, c->dim, err)) ||
        !(m->norm = norm_weight(m, "model.norm.weight", c->dim, err)))
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

/* RoPE inverse frequencies as transformers computes them, including its llama3, linear and longrope
 * (short factor) scaling; windowed Gemma3 layers get their own base and no scaling. */
static void rope_frequencies(struct model *m)
{
    const struct model_config *c = &m->cfg;
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
        if (m->inv_freq_local)
            m->inv_freq_local[i] = 1.0 / pow(c->rope_local_theta, (2.0 * i) / c->head_dim);
        if (c->rope_kind == ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_kind == ROPE_LONGROPE) {
            f /= c->rope_short_factor[i];
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
    if (gguf_is_file(dir)) {
        if (!(m->gguf = gguf_open(dir, err)) || gguf_model_config(m->gguf, &m->cfg, err) < 0)
            goto fail;
    } else if (mf_check_dir(dir, "model folder", err) < 0 || model_config_load(dir, &m->cfg, err) < 0 ||
               !(m->st = st_open_dir(dir, err))) {
        goto fail;
    }
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    m->inv_freq = calloc((size_t)m->cfg.head_dim / 2, sizeof *m->inv_freq);
    if (m->cfg.rope_local_theta > 0)
        m->inv_freq_local = calloc((size_t)m->cfg.head_dim / 2, sizeof *m->inv_freq_local);
    if (!m->layers || !m->inv_freq || (m->cfg.rope_local_theta > 0 && !m->inv_freq_local)) {
        error_set(err, "out of memory");
        goto fail;
    }
    rope_frequencies(m);
    if (load_weights(m, err) < 0) {
        error_wrap(err, "%s", dir);
        goto fail;
    }
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
    free(m->inv_freq_local);
    st_close(m->st);
    gguf_close(m->gguf);
    free(m);
}
