/* weights.c — the values of every weight pdserve-mkmodel writes, and their rounding to f16/bf16.
 *
 * Values come from a counter-based generator (splitmix64 of seed, tensor name and element index), so
 * a tensor is the same whether it is written whole, in chunks, sharded, or in another dtype (before
 * rounding). Distributions are uniform with the standard deviations below, chosen so that:
 *  - every sub-layer writes ~RESID_GAIN RMS into the residual stream, several times the token
 *    embedding, so the context (through attention) decides the next token, not the current token
 *    alone: with tied embeddings a small residual contribution would leave the current token's own
 *    embedding dominant and the model would just repeat its input. A cache or position bug therefore
 *    shows up in the tokens;
 *  - attention scores have a standard deviation of ~2, so attention is selective, not a plain average;
 *  - logits have a standard deviation of ~LOGIT_STD, so next-token distributions are peaked;
 *  - rows of ids the tokenizer does not have are scaled down by UNUSED_ROW_SCALE: their logits are
 *    ~0 +- 0.4, far below the top logit (~3 * LOGIT_STD), so greedy decoding never emits an id that
 *    cannot be detokenized and sampling almost never does. Not zero: with tied embeddings the same
 *    row is the input embedding, and an all-zero input would make every logit 0 (a tie everywhere).
 * RMSNorm weights are 1 ± 0.1. */
#include <math.h>
#include <string.h>

#include "mkmodel.h"

#define LOGIT_STD 8.0
#define QK_GAIN 1.5
#define RESID_GAIN 8.0
#define BIAS_STD 0.5
#define V_BIAS_STD 0.05
#define NORM_SPREAD 0.1
#define UNUSED_ROW_SCALE 0.05

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t name_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return mix64(h ^ mix64(seed + 0x9e3779b97f4a7c15ULL));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Standard deviation of tensor t's entries; *centre is the mean (RMSNorm weights: 1, or for Gemma,
 * whose norms multiply by 1 + w, 0 — and RESID_GAIN - 1 on the post-norms, which alone decide how much
 * a sub-layer writes into the residual stream). */
static double tensor_std(const struct mk_config *c, const struct mk_tensor *t, double *centre)
{
    double fan_in = t->cols > 0 ? (double)t->cols : 1.0;
    *centre = 0.0;
    if (ends_with(t->name, "norm.weight")) {
        bool post = ends_with(t->name, "post_attention_layernorm.weight") ||
                    ends_with(t->name, "post_feedforward_layernorm.weight");
        *centre = !mk_is_gemma(c) ? 1.0 : post ? RESID_GAIN - 1.0 : 0.0;
        return NORM_SPREAD / sqrt(3.0);
    }
    if (strcmp(t->name, "lm_head.weight") == 0)
        return LOGIT_STD / sqrt(fan_in);
    if (strcmp(t->name, "model.embed_tokens.weight") == 0)
        return c->tie ? LOGIT_STD / sqrt(fan_in) : 1.0;
    /* A v bias passes through attention unchanged (the weights sum to 1), so every layer would add
     * the same vector to every position and push all positions toward the same few tokens. */
    if (ends_with(t->name, "v_proj.bias"))
        return V_BIAS_STD;
    if (ends_with(t->name, ".bias"))
        return BIAS_STD;
    if (ends_with(t->name, "q_proj.weight") || ends_with(t->name, "k_proj.weight"))
        return QK_GAIN / sqrt(fan_in);
    if (ends_with(t->name, "qkv_proj.weight")) /* q/k rows want QK_GAIN, v rows 1: in between */
        return QK_GAIN / sqrt(fan_in);
    if (ends_with(t->name, "o_proj.weight") || ends_with(t->name, "down_proj.weight"))
        return RESID_GAIN / sqrt(fan_in);
    return 1.0 / sqrt(fan_in);
}

void mk_tensor_fill(const struct mk_config *c, const struct mk_specials *sp, uint64_t seed,
                    const struct mk_tensor *t, int64_t first, float *out, size_t n)
{
    double centre;
    double amp = tensor_std(c, t, &centre) * sqrt(3.0); /* uniform on [-amp, amp] */
    uint64_t key = name_key(seed, t->name);
    int vocab_rows = strcmp(t->name, "lm_head.weight") == 0 ||
                     strcmp(t->name, "model.embed_tokens.weight") == 0;
    int64_t unused_from = vocab_rows ? (int64_t)sp->n_live_rows * t->cols : INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t idx = first + (int64_t)i;
        double a = idx >= unused_from ? amp * UNUSED_ROW_SCALE : amp;
        uint64_t r = mix64(key + (uint64_t)(idx + 1) * 0x9e3779b97f4a7c15ULL);
        double u = ((double)(r >> 40) + 0.5) * (1.0 / 16777216.0); /* (0,1), symmetric */
        out[i] = (float)(centre + (2.0 * u - 1.0) * a);
    }
}

uint16_t mk_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

uint16_t mk_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00;
    if (ax >= 0x477ff000u) /* >= 65520 rounds past the largest half, 65504 */
        return sign | 0x7c00;
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal half, in units of 2^-24 (exact scaling) */
        float a;
        memcpy(&a, &ax, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f); /* lrintf rounds to nearest even */
    }
    uint32_t r = ax - 0x38000000u; /* rebias the exponent from 127 to 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
}
