/* kernels_avx512.c — the kernel table for x86-64 with AVX-512 F/BW/VL/DQ (Skylake-X, Zen 4 and
 * later), with an int8 product on VNNI where present; compiled with target attributes (see
 * kernels.h). Tiles as in kernels_avx2.c with 16 lanes, and masked loads for the last columns so odd
 * sizes need no scalar tail. */
#include "common/engine/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PD_FUZZ_BUILD)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T5 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define T5V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
/* The tiles' loops over rows must be unrolled for the accumulators to live in registers (GCC at
 * -O2 does not do it by itself: the kernel ran at a fifth of the speed). */
#define UNROLL _Pragma("GCC unroll 4")
/* Weight rows are read 4 at a time only when there are this many activation rows to share them: with
 * fewer, one row after another. Four interleaved row streams (2 KiB apart) defeat this VM's
 * hardware prefetcher (a batch-1 F16 product read 10 GB/s that way and 26-28 GB/s one row at a
 * time), so a 4-row tile prefetches its rows itself, TILE_PREFETCH elements ahead. A 1-row tile
 * loads an activation vector for every FMA and is bound by loads (~60 GFLOP/s); a 4-row one shares
 * each load by 4. Measured on the `small` preset's matrices (1408 × 512 and 512 × 1408, single
 * thread, µs a product, 1-row → 4-row): F16 at 2 rows 46 → 53 and 49 → 66, at 3 rows 69 → 57 and
 * 68 → 69, at 4 rows 90 → 58 and 94 → 71, at 5 rows 104 → 70; F32 at 2 rows 139 → 92 and 126 → 79,
 * at 4 rows 210 → 124 and 196 → 100. Without the prefetch the 4-row tile won only from 5 rows, and
 * read 10-12 GB/s there. A pair's result is the same either way (one accumulator per pair, the same
 * k order), so this choice never changes a token. */
#define TILE_ROWS_MIN_N_F32 2
#define TILE_ROWS_MIN_N_F16 3
#define TILE_ROWS_MIN_N_BF16 3
#define TILE_PREFETCH 256 /* elements: 1 KiB of an F32 row, 512 bytes of a 16-bit one */
#define ES_F32 4 /* bytes per element */
#define ES_F16 2
#define ES_BF16 2
/* q8 tiles do not prefetch: 4 rows from 5, the threshold float weights had before the prefetch. */
#define TILE_ROWS_MIN_N_Q8 5

T5 INLINE __m512 ld16_F32(const void *p, size_t k, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)p + k);
}
T5 INLINE __m512 ld16_F16(const void *p, size_t k, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
}
T5 INLINE __m512 ld16_BF16(const void *p, size_t k, __mmask16 m)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
T5 INLINE __m512 ld16(const void *p, size_t k, __mmask16 m, enum kn_dtype t)
{
    return t == KN_F32 ? ld16_F32(p, k, m) : t == KN_F16 ? ld16_F16(p, k, m) : ld16_BF16(p, k, m);
}

/* y[b][a] (+)= x[b]·w[a] for NR weight rows × NI activation rows; the same k loop and reduction for
 * every tile shape. */
#define DEFINE_TILE(T)                                                                                      \
    T5 INLINE void tile_##T(float *y, int ldy, const float *x, int K, const char *w, size_t wstride,       \
                            int NR, int NI, float beta)                                                   \
    {                                                                                                      \
        __m512 acc[4][4];                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                acc[a][b] = _mm512_setzero_ps();                                                           \
        int k = 0;                                                                                         \
        for (; k + 16 <= K; k += 16) {                                                                     \
            __m512 xv[4];                                                                                  \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                xv[b] = _mm512_loadu_ps(x + (size_t)b * K + k);                                            \
            UNROLL for (int a = 0; a < NR; a++) {                                                                 \
                if (NR > 1)                                                                                \
                    _mm_prefetch(w + a * wstride + (size_t)(k + TILE_PREFETCH) * ES_##T, _MM_HINT_T0);    \
                __m512 wv = ld16_##T(w + a * wstride, k, 0xffff);                                          \
                UNROLL for (int b = 0; b < NI; b++)                                                               \
                    acc[a][b] = _mm512_fmadd_ps(wv, xv[b], acc[a][b]);                                     \
            }                                                                                              \
        }                                                                                                  \
        if (k < K) {                                                                                       \
            __mmask16 m = (__mmask16)((1u << (K - k)) - 1);                                                \
            __m512 xv[4];                                                                                  \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                xv[b] = _mm512_maskz_loadu_ps(m, x + (size_t)b * K + k);                                   \
            UNROLL for (int a = 0; a < NR; a++) {                                                                 \
                __m512 wv = ld16_##T(w + a * wstride, k, m);                                               \
                UNROLL for (int b = 0; b < NI; b++)                                                               \
                    acc[a][b] = _mm512_fmadd_ps(wv, xv[b], acc[a][b]);                                     \
            }                                                                                              \
        }                                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++) {                                                                 \
                float s = _mm512_reduce_add_ps(acc[a][b]);                                                 \
                float *o = y + (size_t)b * ldy + a;                                                        \
                *o = beta == 0.0f ? s : beta * *o + s;                                                     \
            }                                                                                              \
    }                                                                                                      \
    T5 static void rows_##T(float *y, int ldy, const float *x, int n, const char *w, size_t wstride, int K, \
                            int r0, int r1, float beta)                                                   \
    {                                                                                                      \
        int r = r0;                                                                                        \
        for (; n >= TILE_ROWS_MIN_N_##T && r + 4 <= r1; r += 4)                                                \
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

DEFINE_TILE(F32)
DEFINE_TILE(F16)
DEFINE_TILE(BF16)

T5 static void rows_any(float *y, int ldy, const float *x, int n, const void *w, size_t wstride, int K,
                        int r0, int r1, float beta, enum kn_dtype t)
{
    if (t == KN_F32)
        rows_F32(y, ldy, x, n, w, wstride, K, r0, r1, beta);
    else if (t == KN_F16)
        rows_F16(y, ldy, x, n, w, wstride, K, r0, r1, beta);
    else
        rows_BF16(y, ldy, x, n, w, wstride, K, r0, r1, beta);
}

T5 static void matmul_avx512(float *y, int ldy, const float *x, int n, const struct kn_mat *w, int r0,
                             int r1, float beta)
{
    rows_any(y, ldy, x, n, w->data, (size_t)w->cols * kn_dtype_size(w->dtype), w->cols, r0, r1, beta,
             w->dtype);
}

T5 static void dots_avx512(float *out, const float *q, const void *k, size_t stride, int n, int hd,
                           enum kn_dtype t)
{
    rows_any(out, 1, q, 1, k, stride * kn_dtype_size(t), hd, 0, n, 0.0f, t);
}

T5 static void axpys_avx512(float *out, const float *p, const void *v, size_t stride, int n, int hd,
                            enum kn_dtype t)
{
    size_t es = kn_dtype_size(t);
    for (int c = 0; c < hd; c += 16) {
        __mmask16 m = hd - c >= 16 ? 0xffff : (__mmask16)((1u << (hd - c)) - 1);
        __m512 acc = _mm512_maskz_loadu_ps(m, out + c);
        for (int j = 0; j < n; j++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), ld16((const char *)v + j * stride * es, c, m, t), acc);
        _mm512_mask_storeu_ps(out + c, m, acc);
    }
}

T5 static void widen_avx512(float *dst, const void *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ld16(src, i, m, t));
    }
}

/* bf16 round-to-nearest-even on the integer bits, NaN kept quiet: kn_f32_to_bf16, 16 at a time. */
T5 INLINE __m256i to_bf16(__m512 v)
{
    __m512i x = _mm512_castps_si512(v);
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)),
                         _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

T5 static void narrow_avx512(void *dst, const float *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, src + i);
        __m256i h = t == KN_F16 ? _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) : to_bf16(v);
        _mm256_mask_storeu_epi16(d + i, m, h);
    }
}

/* q8 with VNNI: |x| (unsigned) × w·sign(x) summed 4 bytes to an int32 lane by one vpdpbusd; a group
 * of 32 is one 256-bit step, scaled into a float accumulator per (weight row, activation row). */
#define DEFINE_Q8_TILE                                                                                     \
    T5V INLINE void tile_q8(float *y, int ldy, const int8_t *xq, const float *xd, int kcols,              \
                            const int8_t *wq, const float *wd, int NR, int NI, float beta)               \
    {                                                                                                      \
        int groups = kcols / KN_Q8_GROUP;                                                                  \
        __m256 acc[4][4];                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++)                                                                   \
                acc[a][b] = _mm256_setzero_ps();                                                           \
        for (int g = 0; g < groups; g++) {                                                                 \
            __m256i xv[4], ax[4];                                                                          \
            UNROLL for (int b = 0; b < NI; b++) {                                                                 \
                xv[b] = _mm256_loadu_si256((const __m256i *)(xq + (size_t)b * kcols + g * KN_Q8_GROUP));   \
                ax[b] = _mm256_abs_epi8(xv[b]);                                                            \
            }                                                                                              \
            UNROLL for (int a = 0; a < NR; a++) {                                                                 \
                __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + (size_t)a * kcols + g * KN_Q8_GROUP)); \
                float dw = wd[(size_t)a * groups + g];                                                     \
                UNROLL for (int b = 0; b < NI; b++) {                                                             \
                    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax[b], _mm256_sign_epi8(wv, xv[b])); \
                    acc[a][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),                                     \
                                                _mm256_set1_ps(dw * xd[(size_t)b * groups + g]), acc[a][b]); \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
        UNROLL for (int a = 0; a < NR; a++)                                                                       \
            UNROLL for (int b = 0; b < NI; b++) {                                                                 \
                __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[a][b]), _mm256_extractf128_ps(acc[a][b], 1)); \
                s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                                    \
                s = _mm_add_ss(s, _mm_movehdup_ps(s));                                                     \
                float v = _mm_cvtss_f32(s);                                                                \
                float *o = y + (size_t)b * ldy + a;                                                        \
                *o = beta == 0.0f ? v : beta * *o + v;                                                     \
            }                                                                                              \
    }
DEFINE_Q8_TILE

T5V static void matmul_q8_vnni(float *y, int ldy, const struct kn_q8_rows *x, int n, const struct kn_mat *w,
                               int r0, int r1, float beta)
{
    int K = w->kcols, groups = K / KN_Q8_GROUP;
    for (int r = r0; r < r1;) {
        int nr = n >= TILE_ROWS_MIN_N_Q8 && r1 - r >= 4 ? 4 : 1;
        const int8_t *wq = w->q + (size_t)r * K;
        const float *wd = w->d + (size_t)r * groups;
        for (int i = 0; i < n; i += 4) {
            const int8_t *xq = x->q + (size_t)i * K;
            const float *xd = x->d + (size_t)i * groups;
            float *yi = y + (size_t)i * ldy + r;
            int ni = n - i >= 4 ? 4 : n - i;
#define Q8CASE(NR_, NI_) tile_q8(yi, ldy, xq, xd, K, wq, wd, NR_, NI_, beta)
            if (nr == 4)
                switch (ni) {
                case 4: Q8CASE(4, 4); break;
                case 3: Q8CASE(4, 3); break;
                case 2: Q8CASE(4, 2); break;
                default: Q8CASE(4, 1); break;
                }
            else
                switch (ni) {
                case 4: Q8CASE(1, 4); break;
                case 3: Q8CASE(1, 3); break;
                case 2: Q8CASE(1, 2); break;
                default: Q8CASE(1, 1); break;
                }
#undef Q8CASE
        }
        r += nr;
    }
}

/* exp(x) for x <= 0: 2^n · p(r), n = round(x·log2 e), r = x - n·ln2 (in two parts), p a degree-6
 * Taylor polynomial (relative error < 2e-7 on |r| <= ln2/2); scalef does the 2^n, flushing what
 * falls below the normal range to 0 (x < -87.34). */
T5 INLINE __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512 e = _mm512_scalef_ps(p, n);
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(e, _mm512_set1_ps(1.17549435e-38f), _CMP_GE_OQ), e);
}

T5 static float exp_sum_avx512(float *x, int n, float m)
{
    __m512 sum = _mm512_setzero_ps(), mv = _mm512_set1_ps(m);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

T5 static void dequant_q8_avx512(float *dst, const struct kn_mat *w, int r0, int r1)
{
    int groups = w->kcols / KN_Q8_GROUP;
    for (int r = r0; r < r1; r++, dst += w->cols) {
        const int8_t *q = w->q + (size_t)r * w->kcols;
        const float *d = w->d + (size_t)r * groups;
        for (int c = 0; c < w->cols; c += 16) {
            __mmask16 m = w->cols - c >= 16 ? 0xffff : (__mmask16)((1u << (w->cols - c)) - 1);
            __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + c)));
            _mm512_mask_storeu_ps(dst + c, m, _mm512_mul_ps(_mm512_set1_ps(d[c / KN_Q8_GROUP]), v));
        }
    }
}

static struct kn_ops avx512 = {"avx512", matmul_avx512, NULL, NULL, widen_avx512, narrow_avx512, dots_avx512,
                               axpys_avx512, exp_sum_avx512, dequant_q8_avx512};

const struct kn_ops *kn_ops_avx512(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
        return NULL;
    const struct kn_ops *a2 = kn_ops_avx2(); /* every AVX-512 CPU has AVX2 */
    if (!a2)
        return NULL;
    avx512.quantize_q8 = a2->quantize_q8;
    avx512.matmul_q8 = __builtin_cpu_supports("avx512vnni") ? matmul_q8_vnni : a2->matmul_q8;
    return &avx512;
}

#else
const struct kn_ops *kn_ops_avx512(void)
{
    return NULL;
}
#endif
