/* model.c — finding, checking and preparing the weights of a model folder or GGUF file (see
 * model.h): matrices in place or stacked in their stored dtype, or quantized to q8; the norm weights
 * as the layer multiplies by them; the RoPE frequencies its config asks for. */
#include "common/engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Matrices are copied into memory of their own, 2 MiB-aligned and marked for transparent huge
 * pages, rather than used in place from the file mapping: a decode step streams every matrix, and
 * with 4 KiB pages the TLB misses halved the rate the small-M kernel read at (measured on this VM,
 * an F16 1024-column matrix at batch 1: 4.1-4.5 GB/s from the file mapping or 4 KiB anonymous
 * pages, 7.6-9.4 GB/s from huge pages, same load). The file's pages are then dropped, so the process
 * still holds one copy. */
#define HUGE_PAGE (2u << 20)

static void *owned_buffer(struct model *m, size_t bytes, struct error *err)
{
    void *buf = NULL;
    void **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (owned)
        m->owned = owned;
    size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
    if (!owned || posix_memalign(&buf, align, bytes ? bytes : 64) != 0) {
        error_set(err, "out of memory for %zu MiB of weights", bytes >> 20);
        return NULL;
    }
    if (align == HUGE_PAGE)
        madvise(buf, bytes, MADV_HUGEPAGE);
    m->owned[m->n_owned++] = buf;
    m->resident_bytes += bytes;
    return buf;
}

/* Drops the file pages wholly inside a tensor the model copied: they are not read again, and would
 * otherwise count in the process's resident memory next to the copy. Only pages of a file mapping: a
 * GGUF tensor the reader widened or un-permuted is heap memory, which MADV_DONTNEED would zero. */
static void release_pages(const struct model *m, const struct st_tensor *t)
{
    if (m->gguf && !gguf_in_mapping(m->gguf, t->data))
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data, e = a + (size_t)t->n_elems * st_dtype_size(t->dtype);
    uintptr_t lo = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1), hi = e & ~((uintptr_t)page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* A tensor read a row at a time in no order (the embedding): no readahead, and its pages leave the
 * process until a row is read. */
static void random_access(const struct model *m, const struct st_tensor *t)
{
    if (m->gguf && !gguf_in_mapping(m->gguf, t->data))
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~((uintptr_t)page - 1),
              e = (uintptr_t)t->data + (size_t)t->n_elems * st_dtype_size(t->dtype);
    madvise((void *)a, e - a, MADV_RANDOM);
    release_pages(m, t);
}

/* A float32 vector (norm weights, biases): in place for aligned F32, else converted once. */
static const float *vector(struct model *m, const char *name, int64_t rows, struct error *err)
{
    const struct st_tensor *t = find_tensor(m, name, rows, 0, err);
    if (!t)
        return NULL;
    if (t->dtype == ST_F32 && ((uintptr_t)t->data & 3) == 0) {
        m->resident_bytes += (size_t)t->n_elems * 4;
        return t->data;
    }
    float *buf = owned_buffer(m, (size_t)t->n_elems * sizeof(float), err);
    if (buf)
        st_to_f32(buf, t->data, t->dtype, t->n_elems);
    return buf;
}

/* An RMSNorm weight as the layer multiplies by it: Gemma's checkpoints store w for (1 + w). */
static const float *norm_weight(struct model *m, const char *name, int64_t n, struct error *err)
{
    if (m->cfg.norm_offset == 0.0f)
        return vector(m, name, n, err);
    const struct st_tensor *t = find_tensor(m, name, n, 0, err);
    float *buf = t ? owned_buffer(m, (size_t)n * sizeof(float), err) : NULL;
    if (!buf)
        return NULL;
    st_to_f32(buf, t->data, t->dtype, n);
    for (int64_t i = 0; i < n; i++)
        buf[i] += m->cfg.norm_offset;
    return buf;
}

/* Quantizes rows [row0, row0 + t's rows) of a q8 matrix from a tensor in any stored dtype. */
static int quantize_into(struct kn_mat *q, int row0, const struct st_tensor *t, struct error *err)
{
    const struct kn_ops *k = kn_ops();
    int cols = q->cols, groups = q->kcols / KN_Q8_GROUP;
    float *row = malloc((size_t)cols * sizeof *row);
    if (!row)
        return error_set(err, "out of memory");
    size_t es = st_dtype_size(t->dtype);
    for (int64_t r = 0; r < t->shape[0]; r++) {
        k->widen(row, (const char *)t->data + (size_t)r * cols * es, (enum kn_dtype)t->dtype, (size_t)cols);
        size_t rr = (size_t)row0 + (size_t)r;
        k->quantize_q8((int8_t *)q->q + rr * q->kcols, (float *)q->d + rr * groups, row, cols, q->kcols);
    }
    free(row);
    return 0;
}

/* One matrix from the rows of n tensors (same column count), held as m->weights says: a copy,
 * stacked, in the stored dtype (float32 if the tensors' dtypes differ), or int8 groups; in place in
 * the mapping if asked and possible (one tensor, aligned). */
static int matrix(struct model *m, struct kn_mat *w, const struct st_tensor *const *t, int n, int64_t cols,
                  bool in_place, struct error *err)
{
    int64_t rows = 0;
    bool same = true;
    for (int i = 0; i < n; i++) {
        rows += t[i]->shape[0];
        same = same && t[i]->dtype == t[0]->dtype;
    }
    memset(w, 0, sizeof *w);
    w->rows = (int)rows;
    w->cols = (int)cols;
    if (m->weights == MODEL_WEIGHTS_Q8) {
        w->dtype = KN_Q8;
        w->kcols = (int)((cols + KN_Q8_GROUP - 1) / KN_Q8_GROUP * KN_Q8_GROUP);
        size_t nq = (size_t)rows * w->kcols, nd = (size_t)rows * (w->kcols / KN_Q8_GROUP);
        char *buf = owned_buffer(m, nq + nd * sizeof(float), err);
        if (!buf)
            return -1;
        w->q = (int8_t *)(buf + nd * sizeof(float));
        w->d = (float *)buf;
        for (int i = 0, r0 = 0; i < n; r0 += (int)t[i]->shape[0], i++) {
            if (quantize_into(w, r0, t[i], err) < 0)
                return -1;
            release_pages(m, t[i]);
        }
        return 0;
    }
    w->dtype = same ? (enum kn_dtype)t[0]->dtype : KN_F32;
    size_t es = kn_dtype_size(w->dtype);
    if (in_place && ((uintptr_t)t[0]->data & (es - 1)) == 0) {
        w->data = t[0]->data;
        m->resident_bytes += (size_t)rows * cols * es;
        random_access(m, t[0]);
        return 0;
    }
    char *buf = owned_buffer(m, (size_t)rows * cols * es, err);
    if (!buf)
        return -1;
    w->data = buf;
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i]->n_elems * es;
        if (same)
            memcpy(buf, t[i]->data, bytes);
        else
            st_to_f32((float *)buf, t[i]->data, t[i]->dtype, t[i]->n_elems);
        buf += bytes;
        release_pages(m, t[i]);
    }
    return 0;
}

/* A matrix from one tensor; counts it in the bytes a decode step reads. */
static int weight(struct model *m, struct kn_mat *w, const char *name, int64_t rows, int64_t cols,
                  struct error *err)
{
    const struct st_tensor *t = find_tensor(m, name, rows, cols, err);
    if (!t || matrix(m, w, &t, 1, cols, false, err) < 0)
        return -1;
    m->weight_bytes += kn_mat_bytes(w);
    return 0;
}

/* Stacks the rows of several tensors of layer l into one matrix (cols > 0), so that what the forward
 * pass multiplies by the same input is one product. */
static int stacked(struct model *m, struct kn_mat *w, int l, const char *const *suffixes,
                   const int64_t *rows, int n, int64_t cols, struct error *err)
{
    const struct st_tensor *t[4];
    char name[160];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffixes[i]);
        if (!(t[i] = find_tensor(m, name, rows[i], cols, err)))
            return -1;
    }
    if (matrix(m, w, t, n, cols, false, err) < 0)
        return -1;
    m->weight_bytes += kn_mat_bytes(w);
    return 0;
}

/* Stacked vectors (q/k/v biases) as one float32 vector. */
static const float *stacked_vector(struct model *m, int l, const char *const *suffixes, const int64_t *rows,
                                   int n, struct error *err)
{
    const struct st_tensor *t[4];
    char name[160];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffixes[i]);
        if (!(t[i] = find_tensor(m, name, rows[i], 0, err)))
            return NULL;
        total += (size_t)t[i]->n_elems;
    }
    float *buf = owned_buffer(m, total * sizeof(float), err);
    if (!buf)
        return NULL;
    for (int i = 0, off = 0; i < n; off += (int)t[i]->n_elems, i++)
        st_to_f32(buf + off, t[i]->data, t[i]->dtype, t[i]->n_elems);
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
        if (weight(m, &w->wqkv, name, q + 2 * kv, c->dim, err) < 0)
            return -1;
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_up_proj.weight", l);
        return weight(m, &w->w_gate_up, name, 2 * (int64_t)c->hidden_dim, c->dim, err);
    }
    if (stacked(m, &w->wqkv, l, qkv, qkv_rows, 3, c->dim, err) < 0 ||
        (c->qkv_bias && !(w->bqkv = stacked_vector(m, l, qkv_bias, qkv_rows, 3, err))) ||
        stacked(m, &w->w_gate_up, l, gate_up, ffn_rows, 2, c->dim, err) < 0)
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
        weight(m, &w->wo, LAYER("self_attn.o_proj.weight"), c->dim, q, err) < 0 ||
        (c->o_bias && !(w->bo = vector(m, LAYER("self_attn.o_proj.bias"), c->dim, err))) ||
        (gemma && !(w->post_attn_norm = norm_weight(m, LAYER("post_attention_layernorm.weight"), c->dim, err))) ||
        !(w->ffn_norm = norm_weight(m, LAYER(gemma ? "pre_feedforward_layernorm.weight"
                                                   : "post_attention_layernorm.weight"), c->dim, err)) ||
        (gemma && !(w->post_ffn_norm = norm_weight(m, LAYER("post_feedforward_layernorm.weight"), c->dim, err))) ||
        weight(m, &w->w_down, LAYER("mlp.down_proj.weight"), c->dim, c->hidden_dim, err) < 0)
        return -1;
#undef LAYER
    return 0;
}

/* The embedding stays as stored whatever m->weights says, in place unless it is also the lm_head: a
 * token reads one row of it. */
static int load_embedding(struct model *m, struct error *err)
{
    const struct model_config *c = &m->cfg;
    const struct st_tensor *t = find_tensor(m, "model.embed_tokens.weight", c->vocab_size, c->dim, err);
    if (!t)
        return -1;
    enum model_weights as = m->weights;
    m->weights = MODEL_WEIGHTS_STORED;
    int rc = matrix(m, &m->embed, &t, 1, c->dim, !c->tie_embeddings, err);
    m->weights = as;
    if (rc < 0)
        return -1;
    m->weight_bytes += (size_t)c->dim * kn_dtype_size(m->embed.dtype);
    if (!c->tie_embeddings)
        return 0;
    if (m->weights == MODEL_WEIGHTS_STORED) {
        m->lm_head = m->embed;
        m->weight_bytes += kn_mat_bytes(&m->lm_head);
        return 0;
    }
    /* tied and quantized: the quantized copy is the lm_head; the embedding's pages stay */
    if (matrix(m, &m->lm_head, &t, 1, c->dim, false, err) < 0)
        return -1;
    m->weight_bytes += kn_mat_bytes(&m->lm_head);
    return 0;
}

static int load_weights(struct model *m, struct error *err)
{
    const struct model_config *c = &m->cfg;
    if (load_embedding(m, err) < 0 || !(m->norm = norm_weight(m, "model.norm.weight", c->dim, err)))
        return -1;
    for (int l = 0; l < c->n_layers; l++)
        if (load_layer(m, l, err) < 0)
            return -1;
    m->dtype = m->layers[0].wqkv.dtype;
    if (c->tie_embeddings)
        return 0;
    return weight(m, &m->lm_head, "lm_head.weight", c->vocab_size, c->dim, err);
}

const char *model_weights_name(enum model_weights w)
{
    return w == MODEL_WEIGHTS_Q8 ? "q8" : "stored";
}

void model_embed_row(const struct model *m, int32_t token, float *out)
{
    size_t es = kn_dtype_size(m->embed.dtype), row = (size_t)m->embed.cols;
    kn_ops()->widen(out, (const char *)m->embed.data + (size_t)token * row * es, m->embed.dtype, row);
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
    return model_load_as(dir, MODEL_WEIGHTS_STORED, err);
}

struct model *model_load_as(const char *dir, enum model_weights weights, struct error *err)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        error_set(err, "out of memory");
        return NULL;
    }
    m->weights = weights;
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
    rope_frequencies(m); /* before the layers, which point at theirs */
    if (load_weights(m, err) < 0) {
        error_wrap(err, "%s", dir);
        goto fail;
    }
    log_debug("model %s: %s, %d layers, dim %d, %d/%d heads, vocab %d, %s matrices, %.1f MiB resident", dir,
              m->cfg.arch, m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.vocab_size,
              kn_dtype_name(m->dtype), m->resident_bytes / 1048576.0);
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
