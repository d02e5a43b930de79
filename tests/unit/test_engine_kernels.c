/* test_engine_kernels.c — every kernel table this CPU runs (portable, AVX2, AVX-512) against plain
 * double-precision C on odd sizes (columns not multiples of 8, 16 or 32; head_dim 48/64/80/128),
 * conversions bit-exact between paths (edge values included), rows independent of the batch they
 * are computed in, and PDSERVE_ISA honoured. */
#include <stdlib.h>

#include "tests/helpers/check.h"
#include "common/engine/kernels.h"

static unsigned rng_state = 12345;
static float frand(void) /* in [-1, 1) */
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A [rows][cols] matrix in dtype t with random values, and the same values as float. */
static void *make_matrix(enum kn_dtype t, int rows, int cols, float *as_float)
{
    size_t n = (size_t)rows * cols;
    void *m = malloc(n * kn_dtype_size(t) + 64);
    for (size_t i = 0; i < n; i++) {
        float v = frand();
        if (t == KN_F32)
            ((float *)m)[i] = as_float[i] = v;
        else if (t == KN_F16)
            as_float[i] = kn_f16_to_f32(((uint16_t *)m)[i] = kn_f32_to_f16(v));
        else
            as_float[i] = kn_bf16_to_f32(((uint16_t *)m)[i] = kn_f32_to_bf16(v));
    }
    return m;
}

static const struct kn_ops *tables[3];
static int n_tables;

static void matmul_matches_double(void)
{
    static const int cols_list[] = {1, 7, 15, 17, 33, 64, 80, 100, 129, 1000};
    static const int n_list[] = {1, 2, 3, 4, 5, 7, 9, 33};
    for (int ti = 0; ti < n_tables; ti++)
        for (int t = KN_F32; t <= KN_BF16; t++)
            for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++)
                for (size_t ni = 0; ni < sizeof n_list / sizeof *n_list; ni++) {
                    int rows = 11, cols = cols_list[ci], n = n_list[ni];
                    float *wf = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n * cols),
                          *y = malloc(sizeof(float) * n * rows);
                    void *wd = make_matrix((enum kn_dtype)t, rows, cols, wf);
                    for (int i = 0; i < n * cols; i++)
                        x[i] = frand();
                    for (int i = 0; i < n * rows; i++)
                        y[i] = 0.5f;
                    struct kn_mat w = {.dtype = (enum kn_dtype)t, .rows = rows, .cols = cols, .data = wd};
                    float beta = ni % 2 ? 1.0f : 0.0f;
                    /* split the rows in two calls, as the threads do */
                    tables[ti]->matmul(y, rows, x, n, &w, 0, 5, beta);
                    tables[ti]->matmul(y, rows, x, n, &w, 5, rows, beta);
                    double worst = 0;
                    for (int i = 0; i < n; i++)
                        for (int r = 0; r < rows; r++) {
                            double ref = beta * 0.5, mag = beta * 0.5;
                            for (int k = 0; k < cols; k++) {
                                ref += (double)x[i * cols + k] * wf[r * cols + k];
                                mag += fabs((double)x[i * cols + k] * wf[r * cols + k]);
                            }
                            double e = fabs(y[i * rows + r] - ref) / (mag + 1e-30);
                            worst = e > worst ? e : worst;
                        }
                    CHECK_MSG(worst < 1e-5, "%s matmul %s cols %d n %d: relative error %g", tables[ti]->name,
                              kn_dtype_name((enum kn_dtype)t), cols, n, worst);
                    free(wf), free(x), free(y), free(wd);
                }
}

/* A row's result is the same bits whether it is computed alone or among others, in a batch of any
 * size from 2 to 9 (every tile shape, on either side of each table's 1-row/4-row threshold: 2 or 3
 * rows on AVX-512, 8 on AVX2). */
static void rows_independent_of_batch(void)
{
    int rows = 13, cols = 77, max_n = 9;
    float *wf = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * max_n * cols);
    float *all = malloc(sizeof(float) * max_n * rows), one[13];
    for (int i = 0; i < max_n * cols; i++)
        x[i] = frand();
    for (int ti = 0; ti < n_tables; ti++)
        for (int t = KN_F32; t <= KN_BF16; t++) {
            void *wd = make_matrix((enum kn_dtype)t, rows, cols, wf);
            struct kn_mat w = {.dtype = (enum kn_dtype)t, .rows = rows, .cols = cols, .data = wd};
            for (int n = 2; n <= max_n; n++) {
                tables[ti]->matmul(all, rows, x, n, &w, 0, rows, 0.0f);
                for (int i = 0; i < n; i++) {
                    tables[ti]->matmul(one, rows, x + (size_t)i * cols, 1, &w, 0, rows, 0.0f);
                    for (int r = 0; r < rows; r++) /* also row by row */
                        tables[ti]->matmul(one, rows, x + (size_t)i * cols, 1, &w, r, r + 1, 0.0f);
                    CHECK_MSG(memcmp(one, all + (size_t)i * rows, sizeof one) == 0,
                              "%s %s row %d differs in a batch of %d", tables[ti]->name, kn_dtype_name((enum kn_dtype)t),
                              i, n);
                }
            }
            free(wd);
        }
    free(wf), free(x), free(all);
}

static void attention_kernels_match_double(void)
{
    static const int hds[] = {48, 64, 80, 128, 20};
    for (int ti = 0; ti < n_tables; ti++)
        for (int t = KN_F32; t <= KN_BF16; t++)
            for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++) {
                int hd = hds[hi], n = 19, stride = 3 * hd + 5; /* rows of a block: other heads between */
                float *kf = malloc(sizeof(float) * n * stride), q[128], p[19], out[128], s[19];
                void *k = make_matrix((enum kn_dtype)t, n, stride, kf);
                for (int j = 0; j < hd; j++)
                    q[j] = frand(), out[j] = 0.25f;
                for (int j = 0; j < n; j++)
                    p[j] = (frand() + 1) / 2;
                tables[ti]->dots(s, q, k, (size_t)stride, n, hd, (enum kn_dtype)t);
                tables[ti]->axpys(out, p, k, (size_t)stride, n, hd, (enum kn_dtype)t);
                double worst = 0;
                for (int j = 0; j < n; j++) {
                    double ref = 0;
                    for (int c = 0; c < hd; c++)
                        ref += (double)q[c] * kf[j * stride + c];
                    worst = fmax(worst, fabs(s[j] - ref) / hd);
                }
                for (int c = 0; c < hd; c++) {
                    double ref = 0.25;
                    for (int j = 0; j < n; j++)
                        ref += (double)p[j] * kf[j * stride + c];
                    worst = fmax(worst, fabs(out[c] - ref) / n);
                }
                CHECK_MSG(worst < 1e-6, "%s dots/axpys %s hd %d: error %g", tables[ti]->name,
                          kn_dtype_name((enum kn_dtype)t), hd, worst);
                free(kf), free(k);
            }
}

/* Narrowing gives the same bits on every path (the KV cache sent between workers depends on it),
 * including subnormals, ties, overflow, infinities and NaN; widening undoes it exactly. */
static void conversions_agree_bitwise(void)
{
    enum { N = 4099 };
    float *src = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    uint16_t *ref = malloc(2 * N), *got = malloc(2 * N);
    static const uint32_t edge[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0xffa00000,
                                    0x00000001, 0x33000000, 0x33000001, 0x387fc000, 0x38800000, 0x477fe000,
                                    0x477ff000, 0x477fefff, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000,
                                    0x00800000, 0x007fffff, 0x7f7fffff, 0x3dcccccd};
    for (int i = 0; i < N; i++) {
        uint32_t b;
        if (i < (int)(sizeof edge / sizeof *edge))
            b = edge[i];
        else if (i % 3 == 0)
            b = (uint32_t)rand() * 2654435761u; /* any bits */
        else {
            float f = frand() * (i % 7 == 0 ? 1e-6f : 100.0f);
            memcpy(&b, &f, 4);
        }
        memcpy(&src[i], &b, 4);
    }
    for (int t = KN_F16; t <= KN_BF16; t++) {
        kn_ops_portable()->narrow(ref, src, (enum kn_dtype)t, N);
        for (int ti = 0; ti < n_tables; ti++) {
            tables[ti]->narrow(got, src, (enum kn_dtype)t, N);
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++)
                if (got[i] != ref[i])
                    bad = i;
            CHECK_MSG(bad < 0, "%s narrow %s: element %d (bits %08x) gives %04x, portable %04x", tables[ti]->name,
                      kn_dtype_name((enum kn_dtype)t), bad, bad < 0 ? 0 : ((uint32_t *)src)[bad],
                      bad < 0 ? 0 : got[bad], bad < 0 ? 0 : ref[bad]);
            tables[ti]->widen(back, got, (enum kn_dtype)t, N);
            int wbad = 0;
            for (int i = 0; i < N; i++) {
                float w = t == KN_F16 ? kn_f16_to_f32(ref[i]) : kn_bf16_to_f32(ref[i]);
                wbad += memcmp(&w, &back[i], 4) != 0;
            }
            CHECK_MSG(wbad == 0, "%s widen %s: %d elements differ", tables[ti]->name, kn_dtype_name((enum kn_dtype)t),
                      wbad);
        }
    }
    /* the scalar f16 rounding is IEEE's: 1 + 2^-11 is a tie that rounds to even (1.0), 1 + 3·2^-11 up */
    CHECK_EQ_INT(kn_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);
    CHECK_EQ_INT(kn_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    CHECK_EQ_INT(kn_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ_INT(kn_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(kn_f32_to_f16(5.9604645e-08f), 0x0001);
    CHECK_EQ_INT(kn_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
    CHECK_EQ_INT(kn_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    free(src), free(back), free(ref), free(got);
}

static void q8_matches_integer_math(void)
{
    static const int cols_list[] = {32, 33, 64, 100, 1024};
    for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) {
        int rows = 9, cols = cols_list[ci], n = 6, kcols = (cols + 31) / 32 * 32, groups = kcols / 32;
        float *wf = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n * cols);
        int8_t *wq = malloc((size_t)rows * kcols), *xq = malloc((size_t)n * kcols), *xq2 = malloc((size_t)n * kcols);
        float *wd = malloc(sizeof(float) * rows * groups), *xd = malloc(sizeof(float) * n * groups),
              *xd2 = malloc(sizeof(float) * n * groups), *y = malloc(sizeof(float) * n * rows);
        for (int i = 0; i < rows * cols; i++)
            wf[i] = frand();
        for (int i = 0; i < n * cols; i++)
            x[i] = frand() * 3;
        for (int r = 0; r < rows; r++)
            kn_ops_portable()->quantize_q8(wq + r * kcols, wd + r * groups, wf + r * cols, cols, kcols);
        for (int i = 0; i < n; i++)
            kn_ops_portable()->quantize_q8(xq + i * kcols, xd + i * groups, x + i * cols, cols, kcols);
        struct kn_mat w = {.dtype = KN_Q8, .rows = rows, .cols = cols, .q = wq, .d = wd, .kcols = kcols};
        for (int ti = 0; ti < n_tables; ti++) {
            for (int i = 0; i < n; i++)
                tables[ti]->quantize_q8(xq2 + i * kcols, xd2 + i * groups, x + i * cols, cols, kcols);
            CHECK_MSG(!memcmp(xq, xq2, (size_t)n * kcols) && !memcmp(xd, xd2, sizeof(float) * n * groups),
                      "%s quantize_q8 differs from portable (cols %d)", tables[ti]->name, cols);
            struct kn_q8_rows xr = {xq, xd};
            tables[ti]->matmul_q8(y, rows, &xr, n, &w, 0, rows, 0.0f);
            double worst = 0, qerr = 0;
            for (int i = 0; i < n; i++)
                for (int r = 0; r < rows; r++) {
                    double ref = 0, exact = 0, mag = 0;
                    for (int k = 0; k < cols; k++) {
                        ref += (double)wd[r * groups + k / 32] * wq[r * kcols + k] * xd[i * groups + k / 32] *
                               xq[i * kcols + k];
                        exact += (double)wf[r * cols + k] * x[i * cols + k];
                        mag += fabs((double)wf[r * cols + k] * x[i * cols + k]);
                    }
                    worst = fmax(worst, fabs(y[i * rows + r] - ref) / mag);
                    qerr = fmax(qerr, fabs(ref - exact) / mag);
                }
            CHECK_MSG(worst < 1e-5, "%s matmul_q8 cols %d: error %g against the integer math", tables[ti]->name,
                      cols, worst);
            CHECK_MSG(qerr < 2e-2, "q8 cols %d: quantization error %g of Σ|w·x|", cols, qerr);
        }
        float *deq = malloc(sizeof(float) * rows * cols), *deq2 = malloc(sizeof(float) * rows * cols);
        kn_q8_dequant(deq, &w, 0, rows);
        CHECK_NEAR(deq[cols + 3], wd[groups + 0] * wq[kcols + 3], 0);
        for (int ti = 0; ti < n_tables; ti++) {
            tables[ti]->dequant_q8(deq2, &w, 0, rows);
            CHECK_MSG(!memcmp(deq, deq2, sizeof(float) * rows * cols), "%s dequant_q8 differs (cols %d)",
                      tables[ti]->name, cols);
        }
        free(deq), free(deq2), free(wf), free(x), free(wq), free(xq), free(xq2), free(wd), free(xd), free(xd2), free(y);
    }
}

static void exp_sum_matches_expf(void)
{
    enum { N = 1003 };
    float x[N], y[N];
    for (int ti = 0; ti < n_tables; ti++) {
        for (int i = 0; i < N; i++)
            x[i] = i == 0 ? 0.0f : i == 1 ? -87.0f : i == 2 ? -88.0f : i == 3 ? -1e-9f : frand() * 45 - 45;
        memcpy(y, x, sizeof x);
        float m = 0.5f, sum = tables[ti]->exp_sum(y, N, m);
        double ref_sum = 0, worst = 0;
        for (int i = 0; i < N; i++) {
            double ref = exp((double)x[i] - m);
            ref = ref < 1.17549435e-38 ? 0 : ref;
            ref_sum += ref;
            double e = ref ? fabs(y[i] - ref) / ref : fabs(y[i]);
            worst = e > worst ? e : worst;
        }
        CHECK_MSG(worst < 3e-7, "%s exp_sum: relative error %g", tables[ti]->name, worst);
        CHECK_MSG(fabs(sum - ref_sum) / ref_sum < 1e-6, "%s exp_sum: sum %g vs %g", tables[ti]->name, sum, ref_sum);
    }
}

static void isa_can_be_forced(void)
{
    const char *force = getenv("PDSERVE_ISA");
    fprintf(stderr, "kernels: %s (PDSERVE_ISA=%s); tables here:", kn_ops()->name, force ? force : "");
    for (int i = 0; i < n_tables; i++)
        fprintf(stderr, " %s", tables[i]->name);
    fputc('\n', stderr);
    if (force && *force)
        CHECK_EQ_STR(kn_ops()->name, force);
}

int main(void)
{
    tables[n_tables++] = kn_ops_portable();
    if (kn_ops_avx2())
        tables[n_tables++] = kn_ops_avx2();
    if (kn_ops_avx512())
        tables[n_tables++] = kn_ops_avx512();
    RUN(matmul_matches_double);
    RUN(rows_independent_of_batch);
    RUN(attention_kernels_match_double);
    RUN(conversions_agree_bitwise);
    RUN(q8_matches_integer_math);
    RUN(exp_sum_matches_expf);
    RUN(isa_can_be_forced);
    return check_report();
}
