/* kernels.c — the portable C kernels, the exact scalar conversions every path shares, and the
 * choice of a kernel table for this CPU (see kernels.h). The AVX2 and AVX-512 tables live in
 * kernels_avx2.c and kernels_avx512.c. */
#include "common/engine/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

size_t kn_dtype_size(enum kn_dtype t)
{
    return t == KN_F32 ? 4 : t == KN_Q8 ? 1 : 2;
}

const char *kn_dtype_name(enum kn_dtype t)
{
    static const char *const names[] = {"f32", "f16", "bf16", "q8"};
    return (unsigned)t < 4 ? names[t] : "?";
}

int kn_dtype_parse(const char *s, int allow_q8)
{
    for (int t = 0; t < (allow_q8 ? 4 : 3); t++)
        if (strcmp(s, kn_dtype_name((enum kn_dtype)t)) == 0)
            return t;
    return -1;
}

size_t kn_mat_bytes(const struct kn_mat *w)
{
    if (w->dtype == KN_Q8)
        return (size_t)w->rows * w->kcols + (size_t)w->rows * (w->kcols / KN_Q8_GROUP) * sizeof(float);
    return (size_t)w->rows * w->cols * kn_dtype_size(w->dtype);
}

float kn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | man << 13;
    else if (exp)
        bits = sign | (exp + 112) << 23 | man << 13;
    else if (man) { /* subnormal: renormalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    } else
        bits = sign;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* IEEE round-to-nearest-even, as F16C's vcvtps2ph with rounding mode 0 (subnormals kept). */
uint16_t kn_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or NaN (quiet it, keep the top payload bits) */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | (ax >> 13 & 0x3ff) : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal half: a subnormal or zero */
        if (ax < 0x33000000u) /* < 2^-25: rounds to zero */
            return (uint16_t)sign;
        uint32_t e = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24: half subnormal = man >> (shift) with rounding */
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((ax >> 13) - (112u << 10)), rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float kn_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round-to-nearest-even on the bits (NaN stays a quiet NaN); subnormals are kept, unlike
 * vcvtneps2bf16, so every path gives the same bits. */
uint16_t kn_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(x >> 16 | 0x40);
    return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

static float load_elem(const void *p, enum kn_dtype t, size_t i)
{
    if (t == KN_F32)
        return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    return t == KN_F16 ? kn_f16_to_f32(h) : kn_bf16_to_f32(h);
}

/* ---- portable C ---- */

static void widen_c(float *dst, const void *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = load_elem(src, t, i);
}

static void narrow_c(void *dst, const float *src, enum kn_dtype t, size_t n)
{
    if (t == KN_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = t == KN_F16 ? kn_f32_to_f16(src[i]) : kn_f32_to_bf16(src[i]);
}

/* Sums in 8 lanes over k then adds the lanes pairwise: the order AVX2 uses, so portable and AVX2
 * results are close (not bitwise: portable has no FMA). */
static float dot_c(const float *x, const void *w, enum kn_dtype t, int n)
{
    float lane[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            lane[j] += x[k + j] * load_elem(w, t, (size_t)k + j);
    float tail = 0;
    for (; k < n; k++)
        tail += x[k] * load_elem(w, t, (size_t)k);
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

static void matmul_c(float *y, int ldy, const float *x, int n, const struct kn_mat *w, int r0, int r1,
                     float beta)
{
    size_t es = kn_dtype_size(w->dtype);
    for (int r = r0; r < r1; r++) {
        const void *wr = (const char *)w->data + (size_t)r * w->cols * es;
        for (int i = 0; i < n; i++) {
            float *o = y + (size_t)i * ldy + r;
            float v = dot_c(x + (size_t)i * w->cols, wr, w->dtype, w->cols);
            *o = beta == 0.0f ? v : beta * *o + v;
        }
    }
}

static void quantize_q8_c(int8_t *q, float *d, const float *x, int n, int kcols)
{
    for (int g = 0; g < kcols / KN_Q8_GROUP; g++) {
        float amax = 0;
        for (int j = 0; j < KN_Q8_GROUP; j++) {
            int k = g * KN_Q8_GROUP + j;
            float a = k < n ? fabsf(x[k]) : 0.0f;
            amax = a > amax ? a : amax;
        }
        float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
        d[g] = scale;
        for (int j = 0; j < KN_Q8_GROUP; j++) {
            int k = g * KN_Q8_GROUP + j;
            q[k] = k < n ? (int8_t)lrintf(x[k] * inv) : 0;
        }
    }
}

static void matmul_q8_c(float *y, int ldy, const struct kn_q8_rows *x, int n, const struct kn_mat *w,
                        int r0, int r1, float beta)
{
    int groups = w->kcols / KN_Q8_GROUP;
    for (int r = r0; r < r1; r++) {
        const int8_t *wq = w->q + (size_t)r * w->kcols;
        const float *wd = w->d + (size_t)r * groups;
        for (int i = 0; i < n; i++) {
            const int8_t *xq = x->q + (size_t)i * w->kcols;
            const float *xd = x->d + (size_t)i * groups;
            float acc = 0;
            for (int g = 0; g < groups; g++) {
                int32_t s = 0;
                for (int j = 0; j < KN_Q8_GROUP; j++)
                    s += (int32_t)wq[g * KN_Q8_GROUP + j] * xq[g * KN_Q8_GROUP + j];
                acc += (float)s * (wd[g] * xd[g]);
            }
            float *o = y + (size_t)i * ldy + r;
            *o = beta == 0.0f ? acc : beta * *o + acc;
        }
    }
}

static void dots_c(float *out, const float *q, const void *k, size_t stride, int n, int hd, enum kn_dtype t)
{
    size_t es = kn_dtype_size(t);
    for (int j = 0; j < n; j++)
        out[j] = dot_c(q, (const char *)k + j * stride * es, t, hd);
}

static void axpys_c(float *out, const float *p, const void *v, size_t stride, int n, int hd, enum kn_dtype t)
{
    size_t es = kn_dtype_size(t);
    for (int j = 0; j < n; j++) {
        const void *vr = (const char *)v + j * stride * es;
        for (int c = 0; c < hd; c++)
            out[c] += p[j] * load_elem(vr, t, (size_t)c);
    }
}

void kn_q8_dequant(float *dst, const struct kn_mat *w, int r0, int r1);

static float exp_sum_c(float *x, int n, float m)
{
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

static const struct kn_ops portable = {"portable", matmul_c, matmul_q8_c, quantize_q8_c, widen_c, narrow_c,
                                       dots_c, axpys_c, exp_sum_c, kn_q8_dequant};

const struct kn_ops *kn_ops_portable(void)
{
    return &portable;
}

/* ---- dispatch ---- */

static const struct kn_ops *chosen;

static void choose(void)
{
    const struct kn_ops *best = kn_ops_avx512();
    if (!best)
        best = kn_ops_avx2();
    if (!best)
        best = &portable;
    const char *force = getenv("PDSERVE_ISA");
    if (force && *force) {
        const struct kn_ops *want = !strcmp(force, "avx512") ? kn_ops_avx512()
                                    : !strcmp(force, "avx2") ? kn_ops_avx2()
                                    : !strcmp(force, "portable") ? &portable
                                                                 : NULL;
        if (want)
            best = want;
        else
            log_warn("PDSERVE_ISA=%s: not one of avx512, avx2, portable that this CPU runs; using %s", force,
                     best->name);
    }
    chosen = best;
    log_debug("engine kernels: %s", chosen->name);
}

const struct kn_ops *kn_ops(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose);
    return chosen;
}

void kn_q8_dequant(float *dst, const struct kn_mat *w, int r0, int r1)
{
    int groups = w->kcols / KN_Q8_GROUP;
    for (int r = r0; r < r1; r++, dst += w->cols) {
        const int8_t *q = w->q + (size_t)r * w->kcols;
        const float *d = w->d + (size_t)r * groups;
        for (int c = 0; c < w->cols; c++)
            dst[c] = d[c / KN_Q8_GROUP] * (float)q[c];
    }
}
