/* kernels.h — the engine's numeric kernels behind one table of function pointers, chosen once per
 * process from what the CPU supports: AVX-512 (F/BW/VL, + VNNI for int8), AVX2 + F16C + FMA, or
 * portable C. The binary is built without -march flags for these: each ISA's file compiles its
 * functions with target attributes, so a binary built on one x86-64 runs on any other.
 *
 * Weights stay resident in the dtype they are stored in (F32, F16, BF16) or, with --weights q8, as
 * int8 in groups of 32 with one float scale per group. Kernels widen in registers and accumulate in
 * float32. The KV cache holds F32, F16 or BF16 (narrowed with round-to-nearest-even, the same bits on
 * every ISA).
 *
 * Row independence: every kernel computes output element (i, r) with the same sequence of
 * operations whatever n, r0 and r1 are, so a token's result does not depend on what shares its
 * batch or how rows are split over threads (on one ISA; different ISAs sum in different orders).
 *
 * PDSERVE_ISA=avx512|avx2|portable forces a path (one the CPU supports), so tests run every one. */
#ifndef PD_KERNELS_H
#define PD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum kn_dtype { KN_F32 = 0, KN_F16 = 1, KN_BF16 = 2, KN_Q8 = 3 };

#define KN_Q8_GROUP 32 /* elements per scale: llama.cpp's Q8_0 block, and two VNNI dwords × 16 lanes */

/* A weight matrix [rows][cols] as resident. For KN_Q8, q holds rows × kcols int8 (kcols = cols
 * rounded up to a multiple of 32, zero padded) and d one scale per group: w[r][c] ≈ d[r][c/32] ·
 * q[r][c]. */
struct kn_mat {
    enum kn_dtype dtype;
    int rows, cols;
    const void *data;   /* F32/F16/BF16 elements, rows × cols, row-major */
    const int8_t *q;    /* KN_Q8 */
    const float *d;     /* KN_Q8: rows × kcols/32 */
    int kcols;          /* KN_Q8 */
};

/* Activations quantized for a q8 product: n rows of kcols int8 and kcols/32 scales each. */
struct kn_q8_rows {
    int8_t *q;
    float *d;
};

struct kn_ops {
    const char *name; /* "avx512", "avx2", "portable" */
    /* y[i·ldy + r] = beta·y[i·ldy + r] + x[i]·w[r] for i < n, r0 <= r < r1 (w F32, F16 or BF16). */
    void (*matmul)(float *y, int ldy, const float *x, int n, const struct kn_mat *w, int r0, int r1,
                   float beta);
    /* The same for a q8 matrix and activations quantized by quantize_q8. */
    void (*matmul_q8)(float *y, int ldy, const struct kn_q8_rows *x, int n, const struct kn_mat *w,
                      int r0, int r1, float beta);
    /* One row of kcols floats (zero padded past n) to int8 groups of 32. */
    void (*quantize_q8)(int8_t *q, float *d, const float *x, int n, int kcols);
    /* dst[0..n) = src widened to float (src F32, F16 or BF16). */
    void (*widen)(float *dst, const void *src, enum kn_dtype t, size_t n);
    /* dst[0..n) = src narrowed to t, round-to-nearest-even. */
    void (*narrow)(void *dst, const float *src, enum kn_dtype t, size_t n);
    /* out[j] = q·k_j for n rows k_j = k + j·stride elements of type t, each hd long. */
    void (*dots)(float *out, const float *q, const void *k, size_t stride, int n, int hd, enum kn_dtype t);
    /* out[0..hd) += Σ_j p[j]·v_j over the same kind of rows. */
    void (*axpys)(float *out, const float *p, const void *v, size_t stride, int n, int hd, enum kn_dtype t);
    /* x[i] = exp(x[i] - m) for i < n (x[i] <= m), returns their sum: softmax's inner loop. Within 2
     * float ulps of expf (a degree-6 polynomial on [-ln2/2, ln2/2]); results below 2^-126 (x - m <
     * -87.34) are 0. */
    float (*exp_sum)(float *x, int n, float m);
    /* Rows [r0, r1) of a q8 matrix as float32, cols per row, into dst (the panels sgemm multiplies
     * for long batches); exact (scale × int8 is one rounding), so every table gives the same bits. */
    void (*dequant_q8)(float *dst, const struct kn_mat *w, int r0, int r1);
};

/* The table for this CPU (or PDSERVE_ISA); chosen on the first call, then constant. */
const struct kn_ops *kn_ops(void);
/* Each table, NULL when the CPU lacks the instructions (for tests comparing them). */
const struct kn_ops *kn_ops_portable(void);
const struct kn_ops *kn_ops_avx2(void);
const struct kn_ops *kn_ops_avx512(void);

size_t kn_dtype_size(enum kn_dtype t); /* bytes per element; 1 for KN_Q8 */
const char *kn_dtype_name(enum kn_dtype t); /* "f32", "f16", "bf16", "q8" */
/* Parses "f32" / "f16" / "bf16" (and "q8" when allow_q8); -1 otherwise. */
int kn_dtype_parse(const char *s, int allow_q8);

/* Scalar conversions, exact and identical on every path. */
float kn_f16_to_f32(uint16_t h);
uint16_t kn_f32_to_f16(float f);
float kn_bf16_to_f32(uint16_t h);
uint16_t kn_f32_to_bf16(float f);

/* The portable dequant_q8. */
void kn_q8_dequant(float *dst, const struct kn_mat *w, int r0, int r1);

/* Bytes one matrix occupies resident (elements, or int8 + scales). */
size_t kn_mat_bytes(const struct kn_mat *w);

#endif
