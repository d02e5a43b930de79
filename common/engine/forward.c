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
 * nothing and leave the Llama path as it was.
 *
 * Rows are tokens. Every step is one parallel loop over the engine's threads (threadpool.h): matrix
 * products split by output rows (weights read once for all rows of a short batch, or widened panel by
 * panel into sgemm for a long one), attention split by (sequence, KV head, query tile), elementwise
 * work by rows. The kernels behind the products are in kernels.h. */
#include "common/engine/forward.h"

#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/engine/kernels.h"
#include "common/engine/threadpool.h"

/* Up to this many rows a product reads each weight once for all rows (kn_ops()->matmul); beyond it,
 * panels of weights widened to float32 go through sgemm, whose packing pays off. Measured at one
 * thread on the bench model's F16 matrices (a busy machine, so absolute numbers are low): small-M vs
 * widened-panel sgemm, GFLOP/s — 5632 × 1024 at 16 rows 45 vs 26, 32 rows 45 vs 38, 48 rows 50 vs 46;
 * 1024 × 2816 at 16 rows 51 vs 35, 32 rows 49 vs 56, 48 rows 56 vs 69. */
#define SMALL_M_MAX 32
/* Weight rows per sgemm panel: big enough that OpenBLAS packs efficiently (its N blocking), small
 * enough that a 1024-row matrix gives every one of 2 threads 2 panels; 256 × 2816 floats is 2.8 MiB
 * of widened weights per thread. */
#define PANEL_ROWS 256
/* Tasks per thread of a small-M product: each task a contiguous run of weight rows, so every thread
 * streams long sequential runs (the prefetcher ramps up once per run), with a second task each to even
 * out a thread that started late. At least 64 rows (128 KiB of a 1024-column F16 matrix) a task, enough
 * to hide a hand-off (~1 µs). Measured, batch-1 decode at 2 threads: 64-row tasks taken in turn 97
 * tok/s; 2 runs a thread: see docs/engine.md. */
#define SMALL_M_TASKS_PER_THREAD 2
#define SMALL_M_MIN_TASK_ROWS 64
/* Attention tiles: query rows (tokens × heads of a KV group) and keys per sgemm. 256 × 128 scores
 * are 128 KiB, in L2 with their K and V tiles; each K/V tile is widened once per query tile. */
#define ATT_Q_ROWS 256
#define ATT_K_TILE 128
/* The feed-forward block runs over at most this many tokens at a time, so its activations (gate|up
 * and silu·up: 3 × intermediate floats a token, 66 KiB for the bench model) stay bounded for long
 * prompts: a 2,048-token step needed 132 MiB for them, now 8.3 MiB (a worker's RSS counts them).
 * sgemm at 128 rows is within noise of 256 on the bench model's prefill. */
#define FFN_ROWS 128
/* Rows of elementwise work per task; below 2 tasks' worth it runs on the calling thread. */
#define ELEM_TASK_ROWS 8

struct att_task {
    int i0, nq; /* batch tokens [i0, i0 + nq): one sequence, consecutive positions */
    int kv_head;
};

struct thread_scratch {
    float *panel; /* PANEL_ROWS × widest input, widened weights (once a batch is long enough) */
    float *att;   /* attention tiles, or one head's scores over the context */
};

struct run_state {
    int cap;                /* tokens the buffers hold */
    /* Buffers a layer no longer needs are reused (a worker's RSS counts them): the normed input is
     * consumed by the q/k/v product before attention writes att_out, and q/k/v by attention before
     * the feed-forward block writes gate|up. */
    float *x;               /* [cap][dim] residual stream */
    float *xb;              /* [cap][max(dim, heads*hd)] normed copy of x ... */
    float *att_out;         /* ... = xb: [cap][heads*hd] attention output */
    float *qkv;             /* [cap][heads*hd + 2*kv_heads*hd] the stacked projection: q | k | v ... */
    float *hb;              /* ... = qkv: [FFN_ROWS][2*hidden] gate | up ... */
    float *sub;             /* ... = qkv: [cap][dim] a sublayer's output before its post-norm (Gemma) */
    float *hb2;             /* [FFN_ROWS][hidden] act(gate)·up, contiguous for the down projection */
    float *rope;            /* [cap][hd/2][2] cos, sin of each token's angles */
    float *rope_local;      /* the same at the windowed layers' own base (Gemma3), or NULL */
    int8_t *xq;             /* [cap][widest input rounded up to 32] activations for q8 products */
    float *xd;              /* their group scales (both NULL unless the weights are q8) */
    struct att_task *tasks; /* attention work of this batch, longest first */
    int n_tasks, tasks_cap;
    size_t att_floats;      /* per-thread attention scratch */
    int threads;
    struct tp_pool *pool;
    struct thread_scratch *ts; /* [threads] */
};

/* What every parallel loop of one layer reads. */
struct step {
    const struct model *m;
    struct kv_pool *kv;
    struct run_state *s;
    const struct fwd_batch *b;
    int layer;
    /* the product being computed */
    float *y;
    const float *x;
    const struct kn_mat *w;
    int n;
    float beta;
    const float *norm; /* a post-norm's weight (post_norm_row) */
};

struct run_state *run_state_new(const struct model *m, int threads)
{
    (void)m;
    struct run_state *s = calloc(1, sizeof *s);
    struct error err;
    if (!s)
        return NULL;
    s->threads = threads < 1 ? 1 : threads;
    s->ts = calloc((size_t)s->threads, sizeof *s->ts);
    if (!s->ts || (s->threads > 1 && !(s->pool = tp_new(s->threads, &err)))) {
        free(s->ts);
        free(s);
        return NULL;
    }
    return s;
}

int run_state_threads(const struct run_state *s)
{
    return s->threads;
}

static void free_buffers(struct run_state *s)
{
    void *bufs[] = {s->x, s->xb, s->qkv, s->hb2, s->rope, s->rope_local, s->xq, s->xd}; /* att_out, hb, sub: aliases */
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
}

void run_state_free(struct run_state *s)
{
    if (!s)
        return;
    tp_free(s->pool);
    free_buffers(s);
    for (int t = 0; t < s->threads; t++) {
        free(s->ts[t].panel);
        free(s->ts[t].att);
    }
    free(s->ts);
    free(s->tasks);
    free(s);
}

static int widest_input(const struct model_config *c)
{
    int q = c->n_heads * c->head_dim, w = c->dim > q ? c->dim : q;
    return c->hidden_dim > w ? c->hidden_dim : w;
}

static int group_of(const struct model_config *c)
{
    return c->n_heads / c->n_kv_heads;
}

static int att_q_tokens(const struct model_config *c)
{
    int t = ATT_Q_ROWS / group_of(c);
    return t < 1 ? 1 : t;
}

/* Per-thread attention floats: the tiles of attend_tile, or one head's scores over max_ctx. */
static size_t att_scratch_floats(const struct model_config *c, int max_ctx)
{
    size_t rows = (size_t)att_q_tokens(c) * group_of(c), hd = (size_t)c->head_dim;
    size_t tiles = 2 * rows * hd + 2 * (size_t)ATT_K_TILE * hd + rows * ATT_K_TILE + 2 * rows;
    return tiles > (size_t)max_ctx ? tiles : (size_t)max_ctx;
}

static int grow(struct run_state *s, const struct model *m, int n_tokens, int max_ctx)
{
    const struct model_config *c = &m->cfg;
    if (n_tokens > s->cap) {
        free_buffers(s);
        size_t n = (size_t)n_tokens, q = (size_t)c->n_heads * c->head_dim,
               kv = (size_t)c->n_kv_heads * c->head_dim,
               kcols = ((size_t)widest_input(c) + KN_Q8_GROUP - 1) / KN_Q8_GROUP * KN_Q8_GROUP;
        s->x = malloc(n * c->dim * sizeof(float));
        size_t ffn = n < FFN_ROWS ? n : FFN_ROWS, xb = n * (q > (size_t)c->dim ? q : (size_t)c->dim),
               qkv = n * (q + 2 * kv), hb = ffn * 2 * c->hidden_dim, sub = c->sandwich_norm ? n * c->dim : 0;
        size_t shared = qkv > hb ? qkv : hb;
        s->xb = malloc(xb * sizeof(float));
        s->qkv = malloc((shared > sub ? shared : sub) * sizeof(float));
        s->att_out = s->xb;
        s->hb = s->sub = s->qkv;
        s->hb2 = malloc(ffn * c->hidden_dim * sizeof(float));
        s->rope = malloc(n * (c->head_dim / 2) * 2 * sizeof(float) + 1);
        s->rope_local = m->inv_freq_local ? malloc(n * (c->head_dim / 2) * 2 * sizeof(float) + 1) : NULL;
        bool q8 = m->layers[0].wqkv.dtype == KN_Q8;
        s->xq = q8 ? malloc(n * kcols) : NULL;
        s->xd = q8 ? malloc(n * kcols / KN_Q8_GROUP * sizeof(float)) : NULL;
        s->cap = n_tokens;
        if (!s->x || !s->xb || !s->qkv || !s->hb2 || !s->rope || (m->inv_freq_local && !s->rope_local) ||
            (q8 && (!s->xq || !s->xd))) {
            s->cap = 0;
            return -1;
        }
        malloc_trim(0); /* the smaller buffers just freed go back to the system, not stay in RSS */
    }
    size_t att = att_scratch_floats(c, max_ctx);
    for (int t = 0; t < s->threads; t++) {
        if (n_tokens > SMALL_M_MAX && !s->ts[t].panel && posix_memalign((void **)&s->ts[t].panel, 64,
                                              (size_t)PANEL_ROWS * widest_input(c) * sizeof(float)) != 0) {
            s->ts[t].panel = NULL;
            return -1;
        }
        if (att > s->att_floats || !s->ts[t].att) {
            free(s->ts[t].att);
            if (posix_memalign((void **)&s->ts[t].att, 64, att * sizeof(float)) != 0) {
                s->ts[t].att = NULL;
                s->att_floats = 0;
                return -1;
            }
        }
    }
    if (att > s->att_floats)
        s->att_floats = att;
    return 0;
}

/* ---- parallel loops ---- */

struct rows_ctx {
    const struct step *st;
    int n;
    void (*row)(const struct step *st, int i, int thread);
};

static void rows_task(void *ctx, int task, int thread)
{
    const struct rows_ctx *r = ctx;
    int i1 = (task + 1) * ELEM_TASK_ROWS < r->n ? (task + 1) * ELEM_TASK_ROWS : r->n;
    for (int i = task * ELEM_TASK_ROWS; i < i1; i++)
        r->row(r->st, i, thread);
}

/* row(st, i) for every i < n, over the threads. */
static void for_rows(const struct step *st, int n, void (*row)(const struct step *st, int i, int thread))
{
    struct rows_ctx r = {st, n, row};
    tp_run(st->s->pool, (n + ELEM_TASK_ROWS - 1) / ELEM_TASK_ROWS, rows_task, &r);
}

/* ---- matrix products ---- */

static void quantize_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct kn_mat *w = st->w;
    kn_ops()->quantize_q8(st->s->xq + (size_t)i * w->kcols, st->s->xd + (size_t)i * (w->kcols / KN_Q8_GROUP),
                          st->x + (size_t)i * w->cols, w->cols, w->kcols);
}

static int small_m_task_rows(const struct step *st)
{
    int threads = st->s->threads, rows = st->w->rows;
    int per = (rows + threads * SMALL_M_TASKS_PER_THREAD - 1) / (threads * SMALL_M_TASKS_PER_THREAD);
    per = (per + 3) / 4 * 4; /* whole 4-row tiles */
    return per < SMALL_M_MIN_TASK_ROWS ? SMALL_M_MIN_TASK_ROWS : per;
}

static void small_m_task(void *ctx, int task, int thread)
{
    (void)thread;
    const struct step *st = ctx;
    const struct kn_mat *w = st->w;
    int per = small_m_task_rows(st);
    int r0 = task * per, r1 = r0 + per < w->rows ? r0 + per : w->rows;
    if (w->dtype == KN_Q8) {
        struct kn_q8_rows xq = {st->s->xq, st->s->xd};
        kn_ops()->matmul_q8(st->y, w->rows, &xq, st->n, w, r0, r1, st->beta);
    } else {
        kn_ops()->matmul(st->y, w->rows, st->x, st->n, w, r0, r1, st->beta);
    }
}

static void panel_task(void *ctx, int task, int thread)
{
    const struct step *st = ctx;
    const struct kn_mat *w = st->w;
    int r0 = task * PANEL_ROWS, rows = w->rows - r0 < PANEL_ROWS ? w->rows - r0 : PANEL_ROWS;
    const float *panel = st->s->ts[thread].panel;
    if (w->dtype == KN_F32)
        panel = (const float *)w->data + (size_t)r0 * w->cols;
    else if (w->dtype == KN_Q8)
        kn_ops()->dequant_q8(st->s->ts[thread].panel, w, r0, r0 + rows);
    else
        kn_ops()->widen(st->s->ts[thread].panel, (const char *)w->data + (size_t)r0 * w->cols * kn_dtype_size(w->dtype),
                        w->dtype, (size_t)rows * w->cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, st->n, rows, w->cols, 1.0f, st->x, w->cols, panel,
                w->cols, st->beta, st->y + r0, w->rows);
}

/* y[n][out] = x[n][in] · wᵀ + beta·y. */
static void matmul(const struct step *layer, float *y, const float *x, const struct kn_mat *w, int n, float beta)
{
    struct step st = *layer;
    st.y = y, st.x = x, st.w = w, st.n = n, st.beta = beta;
    if (n > SMALL_M_MAX) {
        tp_run(st.s->pool, (w->rows + PANEL_ROWS - 1) / PANEL_ROWS, panel_task, &st);
        return;
    }
    if (w->dtype == KN_Q8)
        for_rows(&st, n, quantize_row);
    int per = small_m_task_rows(&st);
    tp_run(st.s->pool, (w->rows + per - 1) / per, small_m_task, &st);
}

/* ---- elementwise ---- */

static void rmsnorm(float *out, const float *x, const float *w, int dim, float eps)
{
    float ss = 0.0f;
    for (int j = 0; j < dim; j++)
        ss += x[j] * x[j];
    float scale = 1.0f / sqrtf(ss / dim + eps);
    for (int j = 0; j < dim; j++)
        out[j] = x[j] * scale * w[j];
}

/* Hugging Face's RoPE: element i pairs with i + hd/2 (rotate_half), not with its neighbour. */
static void rope(float *vec, int n_heads, int hd, const float *cs)
{
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = vec + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1], a = p[i], b = p[i + half];
            p[i] = a * c - b * s;
            p[i + half] = b * c + a * s;
        }
    }
}

/* x = cap · tanh(x / cap): Gemma2's soft-capping of attention scores and logits. */
static void softcap(float *x, size_t n, float cap)
{
    for (size_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
}

static void softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float inv = 1.0f / kn_ops()->exp_sum(x, n, max);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* cs[hd/2][2] = cos, sin of pos · inv_freq. */
static void rope_angles(float *cs, int pos, const double *inv_freq, int hd)
{
    for (int j = 0; j < hd / 2; j++) {
        double angle = pos * inv_freq[j];
        cs[2 * j] = (float)cos(angle);
        cs[2 * j + 1] = (float)sin(angle);
    }
}

static void embed_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct model_config *c = &st->m->cfg;
    float *x = st->s->x + (size_t)i * c->dim;
    model_embed_row(st->m, st->b->tokens[i], x);
    if (c->embed_scale != 1.0f)
        for (int j = 0; j < c->dim; j++)
            x[j] *= c->embed_scale;
    rope_angles(st->s->rope + (size_t)i * c->head_dim, st->b->pos[i], st->m->inv_freq, c->head_dim);
    if (st->s->rope_local)
        rope_angles(st->s->rope_local + (size_t)i * c->head_dim, st->b->pos[i], st->m->inv_freq_local,
                    c->head_dim);
}

static void attn_norm_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct model_config *c = &st->m->cfg;
    rmsnorm(st->s->xb + (size_t)i * c->dim, st->s->x + (size_t)i * c->dim, st->m->layers[st->layer].attn_norm,
            c->dim, c->norm_eps);
}

static void ffn_norm_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct model_config *c = &st->m->cfg;
    rmsnorm(st->s->xb + (size_t)i * c->dim, st->s->x + (size_t)i * c->dim, st->m->layers[st->layer].ffn_norm,
            c->dim, c->norm_eps);
}

/* Each head of vec[n_heads][hd] = rmsnorm(head) · w (Qwen3's and Gemma3's q/k norms). */
static void head_norm(float *vec, int n_heads, int hd, const float *w, float eps)
{
    for (int h = 0; h < n_heads; h++)
        rmsnorm(vec + (size_t)h * hd, vec + (size_t)h * hd, w, hd, eps);
}

/* One token's q|k|v row: + bias, the q/k norms, RoPE on q and k (at the layer's base), then k and v
 * into its cache slot (rounded to the cache's dtype). */
static void qkv_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct model_config *c = &st->m->cfg;
    const struct kv_pool *kv = st->kv;
    const struct layer_weights *w = &st->m->layers[st->layer];
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim, row = q_dim + 2 * kv_dim;
    float *q = st->s->qkv + (size_t)i * row, *k = q + q_dim, *v = k + kv_dim;
    if (w->bqkv)
        for (int j = 0; j < row; j++)
            q[j] += w->bqkv[j];
    if (w->q_norm) {
        head_norm(q, c->n_heads, c->head_dim, w->q_norm, c->norm_eps);
        head_norm(k, c->n_kv_heads, c->head_dim, w->k_norm, c->norm_eps);
    }
    bool local = st->s->rope_local && w->inv_freq == st->m->inv_freq_local;
    const float *cs = (local ? st->s->rope_local : st->s->rope) + (size_t)i * c->head_dim;
    rope(q, c->n_heads, c->head_dim, cs);
    rope(k, c->n_kv_heads, c->head_dim, cs);
    const struct kv_seq *sq = st->b->seqs[st->b->seq[i]];
    int pos = st->b->pos[i];
    int32_t block = sq->blocks[pos / kv->block_size];
    size_t off = (size_t)(pos % kv->block_size) * kv_dim * kn_dtype_size(kv->dtype);
    kn_ops()->narrow((char *)kv_k(kv, st->layer, block) + off, k, kv->dtype, (size_t)kv_dim);
    kn_ops()->narrow((char *)kv_v(kv, st->layer, block) + off, v, kv->dtype, (size_t)kv_dim);
}

static void swiglu_row(const struct step *st, int i, int thread)
{
    (void)thread;
    int hidden = st->m->cfg.hidden_dim;
    const float *g = st->s->hb + (size_t)i * 2 * hidden, *u = g + hidden;
    float *o = st->s->hb2 + (size_t)i * hidden;
    for (int j = 0; j < hidden; j++)
        o[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
}

/* gelu_tanh(gate) · up: Gemma's GeGLU with gelu_pytorch_tanh. */
static void geglu_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const float k = 0.7978845608028654f; /* √(2/π) */
    int hidden = st->m->cfg.hidden_dim;
    const float *g = st->s->hb + (size_t)i * 2 * hidden, *u = g + hidden;
    float *o = st->s->hb2 + (size_t)i * hidden;
    for (int j = 0; j < hidden; j++)
        o[j] = 0.5f * g[j] * (1.0f + tanhf(k * (g[j] + 0.044715f * g[j] * g[j] * g[j]))) * u[j];
}

/* y[i] += rmsnorm(sub[i]) · norm: a sublayer's output into the residual stream through its post-norm
 * (Gemma); sub[i] is scratch. */
static void post_norm_row(const struct step *st, int i, int thread)
{
    (void)thread;
    const struct model_config *c = &st->m->cfg;
    float *out = st->s->sub + (size_t)i * c->dim, *y = st->y + (size_t)i * c->dim;
    rmsnorm(out, out, st->norm, c->dim, c->norm_eps);
    for (int j = 0; j < c->dim; j++)
        y[j] += out[j];
}

/* x[n][dim] += out·Wᵀ, or with a post-norm (Gemma) x += rmsnorm(out·Wᵀ) · post_norm. */
static void residual(const struct step *st, float *x, const float *out, const struct kn_mat *w, int n,
                     const float *post_norm)
{
    if (!post_norm) {
        matmul(st, x, out, w, n, 1.0f);
        return;
    }
    matmul(st, st->s->sub, out, w, n, 0.0f);
    struct step p = *st;
    p.y = x, p.norm = post_norm;
    for_rows(&p, n, post_norm_row);
}

static void softcap_row(const struct step *st, int i, int thread)
{
    (void)thread;
    int vocab = st->m->cfg.vocab_size;
    softcap(st->y + (size_t)i * vocab, (size_t)vocab, st->m->cfg.final_softcap);
}

static void add_bias(float *y, const float *bias, int n, int dim)
{
    if (!bias)
        return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            y[(size_t)i * dim + j] += bias[j];
}

/* ---- attention ---- */

/* The cache row of position p of a sequence (K or V), for one KV head. */
static const void *cache_row(const struct kv_pool *kv, const struct kv_seq *sq, int layer, int kv_head, int p,
                             int want_v)
{
    int32_t block = sq->blocks[p / kv->block_size];
    size_t off = ((size_t)(p % kv->block_size) * kv->n_kv_heads + (size_t)kv_head) * kv->head_dim;
    const char *base = want_v ? kv_v(kv, layer, block) : kv_k(kv, layer, block);
    return base + off * kn_dtype_size(kv->dtype);
}

/* How a layer's attention scores are formed: q·k · scale, soft-capped when softcap > 0, over the last
 * `window` positions (0: all; the cache keeps every position, the window is a mask). */
struct attn_params {
    float scale, softcap;
    int window;
};

static struct attn_params attn_params(const struct step *st)
{
    const struct model_config *c = &st->m->cfg;
    /* longrope scales cos and sin by attention_factor: q·k by its square */
    return (struct attn_params){c->attn_scale * (float)(c->rope_attn_factor * c->rope_attn_factor),
                                c->attn_softcap, st->m->layers[st->layer].window};
}

/* The first position a query at pos attends to. */
static int window_start(const struct attn_params *p, int pos)
{
    return p->window && pos >= p->window ? pos - p->window + 1 : 0;
}

/* Positions [p0, p0 + n) of a run from p0 to last that stay in one cache block. */
static int block_run(const struct kv_pool *kv, int p0, int last)
{
    int n = kv->block_size - p0 % kv->block_size;
    return last + 1 - p0 < n ? last + 1 - p0 : n;
}

/* One token, the query heads of one KV head: scores over its window of the context a cache block at a
 * time (att[] indexed from the window's start), softmax, the weighted sum of V. */
static void attend_one(const struct step *st, const struct att_task *t, float *att)
{
    const struct model_config *c = &st->m->cfg;
    const struct kv_pool *kv = st->kv;
    const struct kn_ops *k = kn_ops();
    const struct kv_seq *sq = st->b->seqs[st->b->seq[t->i0]];
    struct attn_params ap = attn_params(st);
    int hd = c->head_dim, pos = st->b->pos[t->i0], G = group_of(c), first = window_start(&ap, pos);
    int len = pos + 1 - first;
    size_t stride = (size_t)kv->n_kv_heads * hd, qrow = (size_t)c->n_heads * hd + 2 * (size_t)c->n_kv_heads * hd;
    for (int g = 0; g < G; g++) {
        int h = t->kv_head * G + g;
        const float *q = st->s->qkv + (size_t)t->i0 * qrow + (size_t)h * hd;
        float *out = st->s->att_out + (size_t)t->i0 * c->n_heads * hd + (size_t)h * hd;
        for (int p0 = first, n; p0 <= pos; p0 += n) {
            n = block_run(kv, p0, pos);
            k->dots(att + (p0 - first), q, cache_row(kv, sq, st->layer, t->kv_head, p0, 0), stride, n, hd,
                    kv->dtype);
        }
        for (int p = 0; p < len; p++)
            att[p] *= ap.scale;
        if (ap.softcap > 0)
            softcap(att, (size_t)len, ap.softcap);
        softmax(att, len);
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int p0 = first, n; p0 <= pos; p0 += n) {
            n = block_run(kv, p0, pos);
            k->axpys(out, att + (p0 - first), cache_row(kv, sq, st->layer, t->kv_head, p0, 1), stride, n, hd,
                     kv->dtype);
        }
    }
}

/* Rows of P·V-weighted sums after one key tile, in the flash-attention way: for each query row, the
 * running max m and sum l of exp(score - m); O and l are rescaled when m grows. Masked keys (future
 * ones, and those before a sliding window's start) get weight 0. */
static void online_softmax(float *S, int kt, float *O, float *M, float *L, int rows, int G, int hd,
                           int first_pos, int k0, int window)
{
    for (int r = 0; r < rows; r++) {
        float *sr = S + (size_t)r * kt;
        int pos = first_pos + r / G, end = pos - k0 + 1, lo = window ? pos - window + 1 - k0 : 0;
        end = end > kt ? kt : end;
        lo = lo < 0 ? 0 : lo;
        if (end <= lo) {
            memset(sr, 0, (size_t)kt * sizeof(float));
            continue;
        }
        float mx = M[r];
        for (int j = lo; j < end; j++)
            mx = sr[j] > mx ? sr[j] : mx;
        float corr = expf(M[r] - mx), sum = kn_ops()->exp_sum(sr + lo, end - lo, mx);
        memset(sr, 0, (size_t)lo * sizeof(float));
        for (int j = end; j < kt; j++)
            sr[j] = 0.0f;
        L[r] = L[r] * corr + sum;
        M[r] = mx;
        if (corr != 1.0f)
            for (int j = 0; j < hd; j++)
                O[(size_t)r * hd + j] *= corr;
    }
}

/* A tile of nq consecutive tokens of one sequence × the query heads of one KV head, against key
 * tiles through sgemm: S = (Q·scale)·Kᵀ, soft-capped, online softmax, O += P·V. Key tiles start at
 * the first query's window, so keys no query of the tile sees are never read. */
static void attend_tile(const struct step *st, const struct att_task *t, float *scratch)
{
    const struct model_config *c = &st->m->cfg;
    const struct kv_pool *kv = st->kv;
    const struct kn_ops *k = kn_ops();
    const struct kv_seq *sq = st->b->seqs[st->b->seq[t->i0]];
    struct attn_params ap = attn_params(st);
    int hd = c->head_dim, G = group_of(c), rows = t->nq * G;
    int first_pos = st->b->pos[t->i0], last_pos = st->b->pos[t->i0 + t->nq - 1];
    size_t qrow = (size_t)c->n_heads * hd + 2 * (size_t)c->n_kv_heads * hd, max_rows = (size_t)att_q_tokens(c) * G;
    float *Q = scratch, *O = Q + max_rows * hd, *K = O + max_rows * hd, *V = K + (size_t)ATT_K_TILE * hd,
          *S = V + (size_t)ATT_K_TILE * hd, *M = S + max_rows * ATT_K_TILE, *L = M + max_rows;
    for (int r = 0; r < rows; r++) {
        const float *q = st->s->qkv + (size_t)(t->i0 + r / G) * qrow + (size_t)(t->kv_head * G + r % G) * hd;
        for (int j = 0; j < hd; j++)
            Q[(size_t)r * hd + j] = q[j] * ap.scale; /* folded into Q, so S comes out scaled */
        M[r] = -INFINITY;
        L[r] = 0.0f;
    }
    memset(O, 0, (size_t)rows * hd * sizeof(float));
    for (int k0 = window_start(&ap, first_pos); k0 <= last_pos; k0 += ATT_K_TILE) {
        int kt = last_pos + 1 - k0 < ATT_K_TILE ? last_pos + 1 - k0 : ATT_K_TILE;
        for (int j = 0; j < kt; j++) {
            k->widen(K + (size_t)j * hd, cache_row(kv, sq, st->layer, t->kv_head, k0 + j, 0), kv->dtype, (size_t)hd);
            k->widen(V + (size_t)j * hd, cache_row(kv, sq, st->layer, t->kv_head, k0 + j, 1), kv->dtype, (size_t)hd);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kt, hd, 1.0f, Q, hd, K, hd, 0.0f, S, kt);
        if (ap.softcap > 0)
            softcap(S, (size_t)rows * kt, ap.softcap);
        online_softmax(S, kt, O, M, L, rows, G, hd, first_pos, k0, ap.window);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, kt, 1.0f, S, kt, V, hd, 1.0f, O, hd);
    }
    for (int r = 0; r < rows; r++) {
        float *out = st->s->att_out + (size_t)(t->i0 + r / G) * c->n_heads * hd + (size_t)(t->kv_head * G + r % G) * hd;
        for (int j = 0; j < hd; j++)
            out[j] = O[(size_t)r * hd + j] / L[r];
    }
}

static void attention_task(void *ctx, int task, int thread)
{
    const struct step *st = ctx;
    const struct att_task *t = &st->s->tasks[task];
    if (t->nq == 1)
        attend_one(st, t, st->s->ts[thread].att);
    else
        attend_tile(st, t, st->s->ts[thread].att);
}

/* Splits the batch into runs (consecutive tokens of one sequence at consecutive positions), each run
 * into query tiles, each tile into its KV heads; the longest contexts first so the threads finish
 * together. */
static int plan_attention(struct run_state *s, const struct model_config *c, const struct fwd_batch *b)
{
    int qt = att_q_tokens(c), n = 0;
    for (int i = 0; i < b->n_tokens;) {
        int j = i + 1;
        while (j < b->n_tokens && b->seq[j] == b->seq[i] && b->pos[j] == b->pos[j - 1] + 1)
            j++;
        for (int t0 = i; t0 < j; t0 += qt) {
            if (n + c->n_kv_heads > s->tasks_cap) {
                int cap = 2 * (n + c->n_kv_heads);
                struct att_task *tk = realloc(s->tasks, (size_t)cap * sizeof *tk);
                if (!tk)
                    return -1;
                s->tasks = tk;
                s->tasks_cap = cap;
            }
            for (int h = 0; h < c->n_kv_heads; h++)
                s->tasks[n++] = (struct att_task){t0, j - t0 < qt ? j - t0 : qt, h};
        }
        i = j;
    }
    s->n_tasks = n;
    /* longest context first: a stable insertion by end position would do, but batches are sorted
     * cheaply by reversing each run's tiles, which already puts the later (longer) tiles first */
    for (int a = 0, z = n - 1; a < z; a++, z--) {
        struct att_task tmp = s->tasks[a];
        s->tasks[a] = s->tasks[z];
        s->tasks[z] = tmp;
    }
    return 0;
}

/* ---- the layer ---- */

/* One layer; false when the layer hook stopped the pass. */
static bool layer_forward(struct step *st, int l)
{
    const struct model_config *c = &st->m->cfg;
    const struct layer_weights *w = &st->m->layers[l];
    struct run_state *s = st->s;
    int n = st->b->n_tokens;
    st->layer = l;

    for_rows(st, n, attn_norm_row);
    matmul(st, s->qkv, s->xb, &w->wqkv, n, 0.0f);
    for_rows(st, n, qkv_row);
    if (st->b->on_layer && !st->b->on_layer(st->b->ctx, l))
        return false;
    tp_run(s->pool, s->n_tasks, attention_task, st);
    residual(st, s->x, s->att_out, &w->wo, n, w->post_attn_norm);
    add_bias(s->x, w->bo, n, c->dim); /* only Llama's attention_bias has one, never with a post-norm */

    for_rows(st, n, ffn_norm_row);
    for (int i0 = 0; i0 < n; i0 += FFN_ROWS) {
        int m = n - i0 < FFN_ROWS ? n - i0 : FFN_ROWS;
        matmul(st, s->hb, s->xb + (size_t)i0 * c->dim, &w->w_gate_up, m, 0.0f);
        for_rows(st, m, c->act == ACT_GELU_TANH ? geglu_row : swiglu_row);
        residual(st, s->x + (size_t)i0 * c->dim, s->hb2, &w->w_down, m, w->post_ffn_norm);
    }
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

static void final_logits(struct step *st, float *logits)
{
    const struct model_config *c = &st->m->cfg;
    const struct fwd_batch *b = st->b;
    int n_out = 0;
    for (int i = 0; i < b->n_tokens; i++)
        if (b->want_logits[i])
            rmsnorm(st->s->xb + (size_t)n_out++ * c->dim, st->s->x + (size_t)i * c->dim, st->m->norm, c->dim,
                    c->norm_eps);
    if (!n_out)
        return;
    matmul(st, logits, st->s->xb, &st->m->lm_head, n_out, 0.0f);
    if (c->final_softcap > 0) {
        struct step p = *st;
        p.y = logits;
        for_rows(&p, n_out, softcap_row);
    }
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
    if (grow(s, m, b->n_tokens, max_ctx) < 0 || plan_attention(s, c, b) < 0)
        return error_set(err, "out of memory for a batch of %d tokens", b->n_tokens);
    struct step st = {.m = m, .kv = kv, .s = s, .b = b};
    for_rows(&st, b->n_tokens, embed_row);
    for (int l = 0; l < c->n_layers; l++)
        if (!layer_forward(&st, l))
            return FORWARD_STOPPED;
    final_logits(&st, logits);
    return 0;
}
