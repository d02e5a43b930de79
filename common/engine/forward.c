/* forward.c — the Llama-family forward pass (see forward.h), written in the order of the equations:
 *
 *   x  = embed[token] · embed_scale                                  (scale: Gemma)
 *   for each layer:
 *     xb = rmsnorm(x) · attn_norm
 *     q, k, v = xb·[Wq;Wk;Wv]ᵀ (+b)
 *     q, k = rmsnorm(q) · q_norm, rmsnorm(k) · k_norm per head        (Qwen3, Gemma3)
 *     rope(q, k) at each token's position
 *     cache[pos] = k, v
 *     a = attention(q, cache, window, scale, softcap) · Woᵀ (+bo)
 *     x += a                  or  x += rmsnorm(a) · post_attn_norm    (Gemma)
 *     xb = rmsnorm(x) · ffn_norm
 *     f = (act(xb·Wgateᵀ) ⊙ xb·Wupᵀ) · Wdownᵀ                         (act: silu, or gelu-tanh for Gemma)
 *     x += f                  or  x += rmsnorm(f) · post_ffn_norm     (Gemma)
 *   logits = (rmsnorm(x) · norm) · lm_headᵀ, soft-capped when final_softcap is set (Gemma2)
 *
 * The per-architecture features are flags and optional weights (arch.c, model.c): absent ones cost
 * nothing and leave the Llama path as it was. Rows are tokens: every matrix product is one sgemm over
 * the whole batch. */
#include "common/engine/forward.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct run_state {
    int cap;                /* tokens the buffers hold */
    float *x, *xb;          /* [cap][dim] residual stream and its normed copy */
    float *qkv;             /* [cap][heads*hd + 2*kv_heads*hd] the stacked projection */
    float *q, *k, *v;       /* [cap][heads*hd], [cap][kv_heads*hd] ×2: its parts */
    float *att_out;         /* [cap][heads*hd] */
    float *hb;              /* [cap][2*hidden] gate | up, then silu(gate)·up in the first half */
    float *hb2;             /* [cap][hidden] silu(gate)·up, contiguous for the down projection */
    float *att;             /* [att_cap] scores of one head over its context */
    int att_cap;
};

struct run_state *run_state_new(const struct model *m)
{
    (void)m;
    return calloc(1, sizeof(struct run_state));
}

static void free_buffers(struct run_state *s)
{
    float *bufs[] = {s->x, s->xb, s->qkv, s->q, s->k, s->v, s->att_out, s->hb, s->hb2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

void run_state_free(struct run_state *s)
{
    if (!s)
        return;
    free_buffers(s);
    free(s->att);
    free(s);
}

static int grow(struct run_state *s, const struct model_config *c, int n_tokens, int max_ctx)
{
    if (n_tokens > s->cap) {
        free_buffers(s);
        size_t n = (size_t)n_tokens, q = (size_t)c->n_heads * c->head_dim,
               kv = (size_t)c->n_kv_heads * c->head_dim;
        s->x = malloc(n * c->dim * sizeof(float));
        s->xb = malloc(n * c->dim * sizeof(float));
        s->qkv = malloc(n * (q + 2 * kv) * sizeof(float));
        s->q = malloc(n * q * sizeof(float));
        s->k = malloc(n * kv * sizeof(float));
        s->v = malloc(n * kv * sizeof(float));
        s->att_out = malloc(n * q * sizeof(float));
        s->hb = malloc(n * 2 * c->hidden_dim * sizeof(float));
        s->hb2 = malloc(n * c->hidden_dim * sizeof(float));
        s->cap = n_tokens;
        if (!s->x || !s->xb || !s->qkv || !s->q || !s->k || !s->v || !s->att_out || !s->hb ||
            !s->hb2) {
            s->cap = 0;
            return -1;
        }
    }
    if (max_ctx > s->att_cap) {
        free(s->att);
        s->att = malloc((size_t)max_ctx * sizeof(float));
        s->att_cap = s->att ? max_ctx : 0;
        if (!s->att)
            return -1;
    }
    return 0;
}

/* Up to this many rows, one sgemv per row beats sgemm: sgemm packs the whole weight matrix on every
 * call, which for a few rows costs more than reading the weights once per row (measured on a quiet
 * machine, a 5632×2048 matrix: sgemv 2.3 ms a row; sgemm 8.7 ms for 2 rows, 8.9 for 4, 9.7 for 8).
 * Rows computed this way are also bitwise independent of how many rows share the batch. */
#define GEMV_MAX_ROWS 3

/* y[n][out] = x[n][in] · w[out][in]ᵀ + beta·y. */
static void matmul(float *y, const float *x, const float *w, int n, int in, int out, float beta)
{
    if (n <= GEMV_MAX_ROWS) {
        for (int i = 0; i < n; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x + (size_t)i * in, 1, beta,
                        y + (size_t)i * out, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

static void add_bias(float *y, const float *bias, int n, int dim)
{
    if (!bias)
        return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            y[(size_t)i * dim + j] += bias[j];
}

static void rmsnorm(float *out, const float *x, const float *w, int dim, float eps)
{
    float ss = 0.0f;
    for (int j = 0; j < dim; j++)
        ss += x[j] * x[j];
    float scale = 1.0f / sqrtf(ss / dim + eps);
    for (int j = 0; j < dim; j++)
        out[j] = x[j] * scale * w[j];
}

static void rmsnorm_rows(float *out, const float *x, const float *w, int n, int dim, float eps)
{
    for (int i = 0; i < n; i++)
        rmsnorm(out + (size_t)i * dim, x + (size_t)i * dim, w, dim, eps);
}

/* Hugging Face's RoPE: element i pairs with i + hd/2 (rotate_half), not with its neighbour. */
static void rope(float *vec, int n_heads, int hd, int pos, const double *inv_freq)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double angle = pos * inv_freq[i];
        float c = (float)cos(angle), s = (float)sin(angle);
        for (int h = 0; h < n_heads; h++) {
            float *p = vec + (size_t)h * hd;
            float a = p[i], b = p[i + half];
            p[i] = a * c - b * s;
            p[i + half] = b * c + a * s;
        }
    }
}

static void softmax(float *x, int n)
{
    float max = x[0], sum = 0.0f;
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

/* out[i][j] = silu(gate[i][j]) · up[i][j], where row i of gate_up is gate | up. */
static void swiglu(float *out, const float *gate_up, int n, int hidden)
{
    for (int i = 0; i < n; i++) {
        const float *g = gate_up + (size_t)i * 2 * hidden, *u = g + hidden;
        float *o = out + (size_t)i * hidden;
        for (int j = 0; j < hidden; j++)
            o[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    }
}

/* out[i][j] = gelu_tanh(gate[i][j]) · up[i][j] (Gemma's GeGLU with gelu_pytorch_tanh). */
static void geglu(float *out, const float *gate_up, int n, int hidden)
{
    const float k = 0.7978845608028654f; /* √(2/π) */
    for (int i = 0; i < n; i++) {
        const float *g = gate_up + (size_t)i * 2 * hidden, *u = g + hidden;
        float *o = out + (size_t)i * hidden;
        for (int j = 0; j < hidden; j++)
            o[j] = 0.5f * g[j] * (1.0f + tanhf(k * (g[j] + 0.044715f * g[j] * g[j] * g[j]))) * u[j];
    }
}

/* x = cap · tanh(x / cap): Gemma2's soft-capping of attention scores and logits. */
static void softcap(float *x, size_t n, float cap)
{
    for (size_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
}

static void scale(float *x, size_t n, float f)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= f;
}

/* y[n][dim] += x[n][dim] */
static void add_rows(float *y, const float *x, int n, int dim)
{
    for (size_t i = 0; i < (size_t)n * dim; i++)
        y[i] += x[i];
}

/* Splits each row of the stacked projection into q, k and v. */
static void split_qkv(struct run_state *s, int n, int q_dim, int kv_dim)
{
    size_t row = (size_t)q_dim + 2 * (size_t)kv_dim;
    for (int i = 0; i < n; i++) {
        const float *src = s->qkv + i * row;
        memcpy(s->q + (size_t)i * q_dim, src, (size_t)q_dim * sizeof(float));
        memcpy(s->k + (size_t)i * kv_dim, src + q_dim, (size_t)kv_dim * sizeof(float));
        memcpy(s->v + (size_t)i * kv_dim, src + q_dim + kv_dim, (size_t)kv_dim * sizeof(float));
    }
}

/* Copies each token's k and v rows into its slot of the paged cache. */
static void cache_store(struct kv_pool *kv, const struct fwd_batch *b, int layer, const float *k,
                        const float *v)
{
    size_t row = (size_t)kv->n_kv_heads * kv->head_dim;
    for (int i = 0; i < b->n_tokens; i++) {
        const struct kv_seq *s = b->seqs[b->seq[i]];
        int32_t block = s->blocks[b->pos[i] / kv->block_size];
        size_t off = (size_t)(b->pos[i] % kv->block_size) * row;
        memcpy(kv_k(kv, layer, block) + off, k + i * row, row * sizeof(float));
        memcpy(kv_v(kv, layer, block) + off, v + i * row, row * sizeof(float));
    }
}

/* How one layer's attention scores are formed: q·k · scale, soft-capped, over the last `window`
 * positions (0: all). */
struct attn_params {
    float scale, softcap;
    int window;
};

/* out[hd] = softmax(q·Kᵀ · scale) · V for one query head over positions first..pos of its sequence
 * (first = 0, or pos - window + 1 on a sliding-window layer: the cache keeps every position, the
 * window is a mask). */
static void attend_head(const struct kv_pool *kv, const struct kv_seq *s, int layer, int kv_head,
                        const float *q, int pos, const struct attn_params *p, float *att, float *out)
{
    int hd = kv->head_dim, bs = kv->block_size;
    size_t row = (size_t)kv->n_kv_heads * hd;
    int first = p->window && pos >= p->window ? pos - p->window + 1 : 0;
    for (int t = first; t <= pos; t++) {
        const float *k = kv_k(kv, layer, s->blocks[t / bs]) + (t % bs) * row + (size_t)kv_head * hd;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot) /* a fixed vector order: fast and still deterministic */
        for (int j = 0; j < hd; j++)
            dot += q[j] * k[j];
        att[t - first] = dot * p->scale;
    }
    if (p->softcap > 0)
        softcap(att, (size_t)(pos + 1 - first), p->softcap);
    softmax(att, pos + 1 - first);
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int t = first; t <= pos; t++) {
        const float *v = kv_v(kv, layer, s->blocks[t / bs]) + (t % bs) * row + (size_t)kv_head * hd;
        for (int j = 0; j < hd; j++)
            out[j] += att[t - first] * v[j];
    }
}

static void attention(const struct model_config *c, const struct kv_pool *kv, struct run_state *s,
                      const struct fwd_batch *b, int layer, int window)
{
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    size_t qrow = (size_t)c->n_heads * hd;
    /* longrope scales cos and sin by attention_factor: q·k by its square */
    struct attn_params p = {c->attn_scale * (float)(c->rope_attn_factor * c->rope_attn_factor),
                            c->attn_softcap, window};
    for (int i = 0; i < b->n_tokens; i++)
        for (int h = 0; h < c->n_heads; h++)
            attend_head(kv, b->seqs[b->seq[i]], layer, h / group, s->q + i * qrow + (size_t)h * hd,
                        b->pos[i], &p, s->att, s->att_out + i * qrow + (size_t)h * hd);
}

/* x += out·Wᵀ, or with a post-norm (Gemma) x += rmsnorm(out·Wᵀ) · post_norm; xb is scratch. */
static void residual_add(const struct model_config *c, struct run_state *s, const float *out, const float *w,
                         int n, int in, const float *post_norm)
{
    if (!post_norm) {
        matmul(s->x, out, w, n, in, c->dim, 1.0f);
        return;
    }
    matmul(s->xb, out, w, n, in, c->dim, 0.0f);
    rmsnorm_rows(s->xb, s->xb, post_norm, n, c->dim, c->norm_eps);
    add_rows(s->x, s->xb, n, c->dim);
}

/* One layer; false when the layer hook stopped the pass. */
static bool layer_forward(const struct model *m, struct kv_pool *kv, struct run_state *s,
                          const struct fwd_batch *b, int l)
{
    const struct model_config *c = &m->cfg;
    const struct layer_weights *w = &m->layers[l];
    int n = b->n_tokens, dim = c->dim, q_dim = c->n_heads * c->head_dim,
        kv_dim = c->n_kv_heads * c->head_dim;

    rmsnorm_rows(s->xb, s->x, w->attn_norm, n, dim, c->norm_eps);
    matmul(s->qkv, s->xb, w->wqkv, n, dim, q_dim + 2 * kv_dim, 0.0f);
    add_bias(s->qkv, w->bqkv, n, q_dim + 2 * kv_dim);
    split_qkv(s, n, q_dim, kv_dim);
    if (w->q_norm) {
        rmsnorm_rows(s->q, s->q, w->q_norm, n * c->n_heads, c->head_dim, c->norm_eps);
        rmsnorm_rows(s->k, s->k, w->k_norm, n * c->n_kv_heads, c->head_dim, c->norm_eps);
    }
    for (int i = 0; i < n; i++) {
        rope(s->q + (size_t)i * q_dim, c->n_heads, c->head_dim, b->pos[i], w->inv_freq);
        rope(s->k + (size_t)i * kv_dim, c->n_kv_heads, c->head_dim, b->pos[i], w->inv_freq);
    }
    cache_store(kv, b, l, s->k, s->v);
    if (b->on_layer && !b->on_layer(b->ctx, l))
        return false;
    attention(c, kv, s, b, l, w->window);
    residual_add(c, s, s->att_out, w->wo, n, q_dim, w->post_attn_norm);
    add_bias(s->x, w->bo, n, dim); /* only Llama's attention_bias has one, never with a post-norm */

    rmsnorm_rows(s->xb, s->x, w->ffn_norm, n, dim, c->norm_eps);
    matmul(s->hb, s->xb, w->w_gate_up, n, dim, 2 * c->hidden_dim, 0.0f);
    if (c->act == ACT_GELU_TANH)
        geglu(s->hb2, s->hb, n, c->hidden_dim);
    else
        swiglu(s->hb2, s->hb, n, c->hidden_dim);
    residual_add(c, s, s->hb2, w->w_down, n, c->hidden_dim, w->post_ffn_norm);
    return true;
}

/* Every token's position must have a block, and every token id must be in the vocabulary. */
static int check_batch(const struct model_config *c, const struct kv_pool *kv, const struct fwd_batch *b,
                       int *max_ctx, struct error *err)
{
    *max_ctx = 1;
    for (int i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= c->vocab_size)
            return error_set(err, "token id %d is outside the vocabulary (0..%d)", b->tokens[i],
                             c->vocab_size - 1);
        if (b->seq[i] < 0 || b->seq[i] >= b->n_seqs || b->pos[i] < 0 ||
            b->pos[i] / kv->block_size >= b->seqs[b->seq[i]]->n_blocks)
            return error_set(err, "batch token %d (sequence %d, position %d) has no KV block", i,
                             b->seq[i], b->pos[i]);
        if (b->pos[i] + 1 > *max_ctx)
            *max_ctx = b->pos[i] + 1;
    }
    return 0;
}

static void final_logits(const struct model *m, struct run_state *s, const struct fwd_batch *b,
                         float *logits)
{
    const struct model_config *c = &m->cfg;
    int n_out = 0;
    for (int i = 0; i < b->n_tokens; i++)
        if (b->want_logits[i])
            rmsnorm(s->xb + (size_t)n_out++ * c->dim, s->x + (size_t)i * c->dim, m->norm, c->dim,
                    c->norm_eps);
    if (n_out)
        matmul(logits, s->xb, m->lm_head, n_out, c->dim, c->vocab_size, 0.0f);
    if (n_out && c->final_softcap > 0)
        softcap(logits, (size_t)n_out * c->vocab_size, c->final_softcap);
}

int forward(const struct model *m, struct kv_pool *kv, struct run_state *s, const struct fwd_batch *b,
            float *logits, struct error *err)
{
    const struct model_config *c = &m->cfg;
    int max_ctx;
    if (b->n_tokens <= 0)
        return 0;
    if (check_batch(c, kv, b, &max_ctx, err) < 0)
        return -1;
    if (grow(s, c, b->n_tokens, max_ctx) < 0)
        return error_set(err, "out of memory for a batch of %d tokens", b->n_tokens);
    for (int i = 0; i < b->n_tokens; i++)
        memcpy(s->x + (size_t)i * c->dim, m->embed + (size_t)b->tokens[i] * c->dim,
               (size_t)c->dim * sizeof(float));
    if (c->embed_scale != 1.0f)
        scale(s->x, (size_t)b->n_tokens * c->dim, c->embed_scale);
    for (int l = 0; l < c->n_layers; l++)
        if (!layer_forward(m, kv, s, b, l))
            return FORWARD_STOPPED;
    final_logits(m, s, b, logits);
    return 0;
}
