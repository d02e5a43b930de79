/* bench-engine.c — pdserve-bench-engine: the engine's prefill and decode speed next to this machine's
 * own ceilings, measured in the same run (`make bench-engine` drives it).
 *
 *   pdserve-bench-engine --model DIR [--threads N] [--prompt-len 256] [--decode-steps 32]
 *
 * Ceilings: sgemm GFLOP/s from a large OpenBLAS product, and memory bandwidth from a large copy
 * (bytes read + written per second) by as many threads as the engine uses. Prefill is reported as a fraction of the sgemm rate (matrix
 * FLOPs per token × tokens/s), batch-1 decode as a fraction of the bandwidth bound (float32 weight
 * bytes per token / bandwidth). */
#include <cblas.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/engine/engine.h"
#include "common/util/log.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_gflops(void)
{
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = 1.0f / (1 + i % 7);
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * n / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}

struct copy_part {
    char *dst;
    const char *src;
    size_t bytes;
};

static void *copy_part(void *arg)
{
    struct copy_part *c = arg;
    memcpy(c->dst, c->src, c->bytes);
    return NULL;
}

/* Bytes read + written per second by `threads` threads copying 1 GiB: the bandwidth the engine's
 * own threads can draw, so the decode bound is fair at every thread count. */
static double copy_gbps(int threads)
{
    size_t bytes = 1ull << 30, part = bytes / (size_t)threads;
    char *src = malloc(bytes), *dst = malloc(bytes);
    memset(src, 1, bytes);
    memset(dst, 2, bytes);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t tid[16];
        struct copy_part parts[16];
        double t = now();
        for (int i = 0; i < threads && i < 16; i++) {
            parts[i] = (struct copy_part){dst + i * part, src + i * part, part};
            pthread_create(&tid[i], NULL, copy_part, &parts[i]);
        }
        for (int i = 0; i < threads && i < 16; i++)
            pthread_join(tid[i], NULL);
        double g = 2.0 * part * (double)threads / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    free(src), free(dst);
    return best;
}

/* Matrix FLOPs per token: 2 × every weight matrix element (lm_head only for the last token). */
static double flops_per_token(const struct model_config *c)
{
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double per_layer = c->dim * (q + 2 * kv) + q * c->dim + 3.0 * c->dim * c->hidden_dim;
    return 2.0 * per_layer * c->n_layers;
}

static int run_seqs(struct engine *e, struct seq *seqs, int n, int budget, double *secs, int *tokens)
{
    struct seq **order = malloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = &seqs[i];
    struct error err;
    struct step_result r;
    double t = now();
    *tokens = 0;
    for (;;) {
        if (engine_step(e, order, n, budget, NULL, NULL, &r, &err) < 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            free(order);
            return -1;
        }
        if (r.n_tokens == 0)
            break;
        *tokens += r.n_tokens;
    }
    *secs = now() - t;
    free(order);
    return 0;
}

static void make_seqs(struct seq *seqs, int n, int prompt_len, int max_tokens, int vocab)
{
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = max_tokens;
    int32_t *prompt = malloc((size_t)prompt_len * sizeof *prompt);
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < prompt_len; i++)
            prompt[i] = (int32_t)((s * 7919 + i * 104729) % vocab);
        seq_init(&seqs[s], (uint64_t)s, prompt, prompt_len, &p, NULL);
    }
    free(prompt);
}

/* Decode speed at a batch size: prompts are prefilled first (not timed), then decode_steps tokens. */
static double decode_tps(struct engine *e, int batch, int steps)
{
    struct seq *seqs = calloc((size_t)batch, sizeof *seqs);
    make_seqs(seqs, batch, 16, 1, e->model->cfg.vocab_size);
    double secs;
    int tokens;
    run_seqs(e, seqs, batch, 1 << 20, &secs, &tokens); /* prefill + first token */
    for (int s = 0; s < batch; s++) {
        seqs[s].params.max_tokens = steps + 1;
        seqs[s].finish = FINISH_NONE;
    }
    run_seqs(e, seqs, batch, 1 << 20, &secs, &tokens);
    for (int s = 0; s < batch; s++)
        seq_release(&seqs[s], &e->kv);
    free(seqs);
    return tokens / secs;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int threads = 1, prompt_len = 256, steps = 32;
    static const struct option longs[] = {{"model", 1, 0, 'm'}, {"threads", 1, 0, 't'},
                                          {"prompt-len", 1, 0, 'p'}, {"decode-steps", 1, 0, 's'},
                                          {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        if (c == 'm') dir = optarg;
        else if (c == 't') threads = atoi(optarg);
        else if (c == 'p') prompt_len = atoi(optarg);
        else if (c == 's') steps = atoi(optarg);
        else return 2;
    }
    if (!dir) {
        fprintf(stderr, "usage: pdserve-bench-engine --model DIR [--threads N] [--prompt-len N] "
                        "[--decode-steps N]\n");
        return 2;
    }
    log_init("bench-engine");
    openblas_set_num_threads(threads);
    struct error err;
    struct model *m = model_load(dir, &err);
    struct engine e;
    if (!m || engine_init(&e, m, 32 * ((prompt_len + steps + 32) / 16 + 2), 16, KN_F16, threads, &err) < 0) {
        fprintf(stderr, "pdserve-bench-engine: %s\n", err.msg);
        return 1;
    }
    double gflops = sgemm_gflops(), gbps = copy_gbps(threads);
    struct seq s;
    make_seqs(&s, 1, prompt_len, 1, m->cfg.vocab_size);
    double secs;
    int tokens;
    run_seqs(&e, &s, 1, prompt_len, &secs, &tokens);
    seq_release(&s, &e.kv);
    double prefill_tps = prompt_len / secs, d1 = decode_tps(&e, 1, steps), d8 = decode_tps(&e, 8, steps),
           d32 = decode_tps(&e, 32, steps);
    double prefill_frac = prefill_tps * flops_per_token(&m->cfg) / 1e9 / gflops;
    double bound = gbps * 1e9 / (double)m->weight_bytes;
    printf("%-28s threads=%d  sgemm %.1f GFLOP/s  copy %.1f GB/s  weights %.0f MiB\n", dir, threads, gflops,
           gbps, m->weight_bytes / 1048576.0);
    printf("  prefill %4d tok: %8.1f tok/s  = %.2f of sgemm rate\n", prompt_len, prefill_tps, prefill_frac);
    printf("  decode batch 1 : %8.1f tok/s  = %.2f of bandwidth bound (%.1f tok/s)\n", d1, d1 / bound, bound);
    printf("  decode batch 8 : %8.1f tok/s  = %.1fx batch 1\n", d8, d8 / d1);
    printf("  decode batch 32: %8.1f tok/s  = %.1fx batch 1\n", d32, d32 / d1);
    engine_destroy(&e);
    model_free(m);
    return 0;
}
