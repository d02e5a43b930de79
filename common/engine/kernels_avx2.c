/* kernels_avx2.c — the kernel table for x86-64 with AVX2, FMA and F16C (Haswell, Zen 1 and later),
 * compiled with target attributes so the rest of the binary needs no -march (see kernels.h).
 *
 * matmul: tiles of 4 weight rows × up to 4 activation rows, one 8-lane accumulator per pair; each
 * weight tile is read once for every activation row (the small-M kernel: 1..32 rows at the cost of
 * one pass over the weights). The q8 product uses the sign trick (|x| as unsigned × w with x's sign)
 * so one maddubs + madd gives 8 int32 partial dot products per 32 bytes. */
#include "common/engine/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PD_FUZZ_BUILD)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* The tiles' loops over rows must be unrolled for the accumulators to live in registers (GCC at
 * -O2 does not do it by itself: the kernel ran at a fifth of the speed). */
#define UNROLL _Pragma("GCC unroll 4")
/* Weight rows are read 4 at a time only when there are this many activation rows to share them: with
 * fewer, one row after another. Four interleaved row streams (2 KiB apart) defeat this VM's
 * hardware prefetcher: a batch-1 F16 product read 10 GB/s that way and 26-28 GB/s one row at a time
 * (a plain sequential read: 17-21 GB/s); at 4 rows, 36 vs 49 GFLOP/s; from 8 rows the 4-row tile
 * wins (47 vs 45, at 16 rows 59 vs 41). A pair's result is the same either way (one accumulator per
 * pair, the same k order), so this choice never changes a token. */
#define TILE_ROWS_MIN_N 8

T2 INLINE __m256 ld8_f32(const void *p, size_t k)
{
    return _mm256_loadu_ps((const float *)p + k);
}
T2 INLINE __m256 ld8_f16(const void *p, size_t k)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
}
T2 INLINE __m256 ld8_bf16(const void *p, size_t k)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
T2 INLINE float ld1(const void *p, size_t k, enum kn_dtype t)
{
    if (t == KN_F32)
        return ((const float *)p)[k];
    uint16_t h = ((const uint16_t *)p)[k];
    return t == KN_F16 ? _cvtsh_ss(h) : kn_bf16_to_f32(h);
}

T2 INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y[b][a] (+)= x[b]·w[a] for NR weight rows (wstride bytes apart) × NI activation rows. The k loop
 * and the reduction are the same for every NR, NI: a pair's result never depends on the tile. */
#define DEFINE_TILE(T, LD)                                                                                  \
    T2 INLINE void tile_##T(float *y, int ldy, const float *x, int K, const char *w, size_t wstride,       \
                            int NR, int NI, float beta)                                                   \
    {                                                                                                      \
        __m256 acc[4][4];                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                acc[a][b] = _mm256_setzero_ps();                                                           \
        int k = 0;                                                                                         \
        for (; k + 8 <= K; k += 8) {                                                                       \
            __m256 xv[4];                                                                                  \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                xv[b] = _mm256_loadu_ps(x + (size_t)b * K + k);                                            \
            UNROLL for (int a = 0; a < NR; a++) {                                                                 \
                __m256 wv = LD(w + a * wstride, k);                                                        \
                UNROLL for (int b = 0; b < NI; b++)                                                               \
                    acc[a][b] = _mm256_fmadd_ps(wv, xv[b], acc[a][b]);                                     \
            }                                                                                              \
        }                                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++) {                                                                 \
                float s = hsum8(acc[a][b]);                                                                \
                for (int kk = k; kk < K; kk++)                                                             \
                    s = fmaf(x[(size_t)b * K + kk], ld1(w + a * wstride, kk, KN_##T), s);                  \
                float *o = y + (size_t)b * ldy + a;                                                        \
                *o = beta == 0.0f ? s : beta * *o + s;                                                     \
            }                                                                                              \
    }                                                                                                      \
    /* rows [r0, r1) of w (wstride bytes apart, K columns) against n activation rows */                    \
    T2 static void rows_##T(float *y, int ldy, const float *x, int n, const char *w, size_t wstride, int K, \
                            int r0, int r1, float beta)                                                   \
    {                                                                                                      \
        int r = r0;                                                                                        \
        for (; n >= TILE_ROWS_MIN_N && r + 4 <= r1; r += 4)                                                \
            for (int i = 0; i < n; i += 4) {                                                               \
                const float *xi = x + (size_t)i * K;                                                       \
                float *yi = y + (size_t)i * ldy + r;                                                       \
                const char *wr = w + (size_t)r * wstride;                                                  \
                switch (n - i >= 4 ? 4 : n - i) {                                                          \
                case 4: tile_##T(yi, ldy, xi, K, wr, wstride, 4, 4, beta); break;                          \
                case 3: tile_##T(yi, ldy, xi, K, wr, wstride, 4, 3, beta); break;                          \
                case 2: tile_##T(yi, ldy, xi, K, wr, wstride, 4, 2, beta); break;                          \
                default: tile_##T(yi, ldy, xi, K, wr, wstride, 4, 1, beta); break;                         \
                }                                                                                          \
            }                                                                                              \
        for (; r < r1; r++)                                                                                \
            for (int i = 0; i < n; i += 4) {                                                               \
                const float *xi = x + (size_t)i * K;                                                       \
                float *yi = y + (size_t)i * ldy + r;                                                       \
                const char *wr = w + (size_t)r * wstride;                                                  \
                switch (n - i >= 4 ? 4 : n - i) {                                                          \
                case 4: tile_##T(yi, ldy, xi, K, wr, wstride, 1, 4, beta); break;                          \
                case 3: tile_##T(yi, ldy, xi, K, wr, wstride, 1, 3, beta); break;                          \
                case 2: tile_##T(yi, ldy, xi, K, wr, wstride, 1, 2, beta); break;                          \
                default: tile_##T(yi, ldy, xi, K, wr, wstride, 1, 1, beta); break;                         \
                }                                                                                          \
            }                                                                                              \
    }

DEFINE_TILE(F32, ld8_f32)
DEFINE_TILE(F16, ld8_f16)
DEFINE_TILE(BF16, ld8_bf16)

T2 static void rows_any(float *y, int ldy, const float *x, int n, const void *w, size_t wstride, int K,
                        int r0, int r1, float beta, enum kn_dtype t)
{
    if (t == KN_F32)
        rows_F32(y, ldy, x, n, w, wstride, K, r0, r1, beta);
    else if (t == KN_F16)
        rows_F16(y, ldy, x, n, w, wstride, K, r0, r1, beta);
    else
        rows_BF16(y, ldy, x, n, w, wstride, K, r0, r1, beta);
}

T2 static void matmul_avx2(float *y, int ldy, const float *x, int n, const struct kn_mat *w, int r0, int r1,
                           float beta)
{
    rows_any(y, ldy, x, n, w->data, (size_t)w->cols * kn_dtype_size(w->dtype), w->cols, r0, r1, beta,
             w->dtype);
}

T2 static void dots_avx2(float *out, const float *q, const void *k, size_t stride, int n, int hd,
                         enum kn_dtype t)
{
    rows_any(out, 1, q, 1, k, stride * kn_dtype_size(t), hd, 0, n, 0.0f, t);
}

T2 static void axpys_avx2(float *out, const float *p, const void *v, size_t stride, int n, int hd,
                          enum kn_dtype t)
{
    size_t es = kn_dtype_size(t);
    int c = 0;
    for (; c + 8 <= hd; c += 8) {
        __m256 acc = _mm256_loadu_ps(out + c);
        for (int j = 0; j < n; j++) {
            const char *vr = (const char *)v + j * stride * es;
            __m256 vv = t == KN_F32 ? ld8_f32(vr, c) : t == KN_F16 ? ld8_f16(vr, c) : ld8_bf16(vr, c);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), vv, acc);
        }
        _mm256_storeu_ps(out + c, acc);
    }
    for (; c < hd; c++)
        for (int j = 0; j < n; j++)
            out[c] = fmaf(p[j], ld1((const char *)v + j * stride * es, c, t), out[c]);
}

T2 static void widen_avx2(float *dst, const void *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, t == KN_F16 ? ld8_f16(src, i) : ld8_bf16(src, i));
    for (; i < n; i++)
        dst[i] = ld1(src, i, t);
}

T2 static void narrow_avx2(void *dst, const float *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    size_t i = 0;
    if (t == KN_F16)
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        d[i] = t == KN_F16 ? kn_f32_to_f16(src[i]) : kn_f32_to_bf16(src[i]);
}

/* One row to int8 groups of 32: d = max|x|/127, q = round-to-even(x·127/max|x|), as the portable
 * code computes it (same floats, same rounding). */
T2 static void quantize_q8_avx2(int8_t *q, float *d, const float *x, int n, int kcols)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int g = 0; g < kcols / KN_Q8_GROUP; g++) {
        int k0 = g * KN_Q8_GROUP;
        if (k0 + KN_Q8_GROUP > n) { /* the padded tail group: plain C */
            float amax = 0;
            for (int k = k0; k < n; k++)
                amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
            float inv = amax > 0 ? 127.0f / amax : 0.0f;
            d[g] = amax / 127.0f;
            for (int k = k0; k < k0 + KN_Q8_GROUP; k++)
                q[k] = k < n ? (int8_t)lrintf(x[k] * inv) : 0;
            continue;
        }
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + k0 + 8 * j);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), inv = amax > 0 ? 127.0f / amax : 0.0f;
        d[g] = amax / 127.0f;
        __m256 vi = _mm256_set1_ps(inv);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], vi)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], vi)),
                i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], vi)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], vi));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        /* packs works within 128-bit lanes: restore element order */
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + k0), p);
    }
}

/* Σ over 32 int8 pairs as 8 int32 lanes. */
T2 INLINE __m256i dot32_i8(__m256i ax, __m256i x, __m256i w)
{
    __m256i p16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

T2 static void matmul_q8_avx2(float *y, int ldy, const struct kn_q8_rows *x, int n, const struct kn_mat *w,
                              int r0, int r1, float beta)
{
    int groups = w->kcols / KN_Q8_GROUP;
    for (int r = r0; r < r1; r++) {
        const int8_t *wq = w->q + (size_t)r * w->kcols;
        const float *wd = w->d + (size_t)r * groups;
        for (int i = 0; i < n; i++) {
            const int8_t *xq = x->q + (size_t)i * w->kcols;
            const float *xd = x->d + (size_t)i * groups;
            __m256 acc = _mm256_setzero_ps();
            for (int g = 0; g < groups; g++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + g * KN_Q8_GROUP));
                __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + g * KN_Q8_GROUP));
                __m256i s = dot32_i8(_mm256_sign_epi8(xv, xv), xv, wv);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(wd[g] * xd[g]), acc);
            }
            float v = hsum8(acc);
            float *o = y + (size_t)i * ldy + r;
            *o = beta == 0.0f ? v : beta * *o + v;
        }
    }
}

/* exp(x) for x <= 0 as in kernels_avx512.c, 2^n put into the exponent bits; x is clamped to -88
 * first so the exponent field cannot wrap, and what falls below 2^-126 is flushed to 0. */
T2 INLINE __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23));
    __m256 e = _mm256_castsi256_ps(bits);
    return _mm256_and_ps(e, _mm256_cmp_ps(e, _mm256_set1_ps(1.17549435e-38f), _CMP_GE_OQ));
}

T2 static float exp_sum_avx2(float *x, int n, float m)
{
    __m256 sum = _mm256_setzero_ps(), mv = _mm256_set1_ps(m);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum8(sum);
    for (; i < n; i++) {
        float tail[8] = {x[i] - m};
        _mm256_storeu_ps(tail, exp8(_mm256_loadu_ps(tail)));
        x[i] = tail[0];
        s += tail[0];
    }
    return s;
}

T2 static void dequant_q8_avx2(float *dst, const struct kn_mat *w, int r0, int r1)
{
    int groups = w->kcols / KN_Q8_GROUP;
    for (int r = r0; r < r1; r++, dst += w->cols) {
        const int8_t *q = w->q + (size_t)r * w->kcols;
        const float *d = w->d + (size_t)r * groups;
        int c = 0;
        for (; c + 8 <= w->cols; c += 8) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + c))));
            _mm256_storeu_ps(dst + c, _mm256_mul_ps(_mm256_set1_ps(d[c / KN_Q8_GROUP]), v));
        }
        for (; c < w->cols; c++)
            dst[c] = d[c / KN_Q8_GROUP] * (float)q[c];
    }
}

static const struct kn_ops avx2 = {"avx2", matmul_avx2, matmul_q8_avx2, quantize_q8_avx2, widen_avx2,
                                   narrow_avx2, dots_avx2, axpys_avx2, exp_sum_avx2, dequant_q8_avx2};

/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c". */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

const struct kn_ops *kn_ops_avx2(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        return &avx2;
    return NULL;
}

#else
const struct kn_ops *kn_ops_avx2(void)
{
    return NULL;
}
#endif
