/* bench-engine.c — pdserve-bench-engine: the engine's prefill and decode speed next to this machine's
 * own ceilings, measured in the same run (`make bench-engine` drives it, next to llama.cpp).
 *
 *   pdserve-bench-engine --model DIR [--threads N] [--prompt-lens 128,512,2048] [--decode-steps 64]
 *                        [--batch 32] [--weights stored|q8] [--kv-dtype f16] [--check JSON] [--json]
 *                        [--profile FILE]
 *
 * Ceilings: sgemm GFLOP/s from a large OpenBLAS product on as many threads as the engine uses, and
 * memory bandwidth from a large copy (bytes read + written per second) by as many threads. Prefill
 * is reported as a fraction of the sgemm rate (matrix FLOPs per token × tokens/s), batch-1 decode as
 * a fraction of the bandwidth bound (resident weight bytes read per token / bandwidth), batch-N decode
 * as a fraction of the token rate the sgemm rate allows (its FLOPs per token include the lm_head:
 * every decoded token needs its logits; a prompt only its last). RSS is the process's after the runs: the
 * weights as held plus the KV blocks touched (and this tool's small buffers). --check decodes 16
 * greedy tokens after the given prompt ids, to show another engine computes the same model. --profile
 * writes timed passes for pdserve-plan instead of the report (profile.c). */
#include <cblas.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/engine/blas_core.h"
#include "common/engine/engine.h"
#include "common/util/log.h"
#include "tools/bench-engine/bench_engine.h"

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_gflops(int threads)
{
    openblas_set_num_threads(threads);
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
    openblas_set_num_threads(1);
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

int run_seqs(struct engine *e, struct seq *seqs, int n, int budget, double *secs, int *tokens)
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

/* The same prompt ids bench.mjs (llama.cpp) uses. */
void make_seqs(struct seq *seqs, int n, int prompt_len, int max_tokens, int vocab, int seed0)
{
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = max_tokens;
    int32_t *prompt = malloc((size_t)prompt_len * sizeof *prompt);
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < prompt_len; i++)
            prompt[i] = 3 + (int32_t)(((long long)(s + seed0) * 7919 + (long long)i * 104729) % (vocab - 3));
        engine_seq_init(&seqs[s], (uint64_t)s, prompt, prompt_len, &p, NULL);
    }
    free(prompt);
}

/* Prefill tokens/s of one prompt computed in one step (best of reps). */
static double prefill_tps(struct engine *e, int len, int reps)
{
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        struct seq s;
        make_seqs(&s, 1, len, 1, e->model->cfg.vocab_size, rep + 1);
        double secs;
        int tokens;
        if (run_seqs(e, &s, 1, len, &secs, &tokens) == 0 && len / secs > best)
            best = len / secs;
        engine_seq_release(&s, &e->kv);
    }
    return best;
}

/* Decode speed at a batch size: 16-token prompts are prefilled first (not timed), then `steps`
 * tokens each. */
static double decode_tps(struct engine *e, int batch, int steps)
{
    struct seq *seqs = calloc((size_t)batch, sizeof *seqs);
    make_seqs(seqs, batch, 16, 1, e->model->cfg.vocab_size, 5);
    double secs;
    int tokens;
    run_seqs(e, seqs, batch, 1 << 20, &secs, &tokens); /* prefill + first token */
    for (int s = 0; s < batch; s++) {
        seqs[s].params.max_tokens = steps + 1;
        seqs[s].finish = FINISH_NONE;
    }
    run_seqs(e, seqs, batch, 1 << 20, &secs, &tokens);
    for (int s = 0; s < batch; s++)
        engine_seq_release(&seqs[s], &e->kv);
    free(seqs);
    return tokens / secs;
}

/* 16 greedy tokens after a prompt given as a JSON array of ids, into out as a JSON array. */
static void check_tokens(struct engine *e, const char *json, char *out, size_t cap)
{
    int32_t ids[256];
    int n = 0;
    for (const char *p = json; *p && n < 256; p++)
        if ((*p >= '0' && *p <= '9'))
            ids[n++] = (int32_t)strtol(p, (char **)&p, 10), p--;
    struct sample_params sp;
    sample_params_default(&sp);
    sp.temperature = 0;
    sp.ignore_eos = true;
    sp.max_tokens = 16;
    struct seq s;
    snprintf(out, cap, "[]");
    if (n == 0 || engine_seq_init(&s, 1, ids, n, &sp, NULL) < 0)
        return;
    double secs;
    int tokens;
    run_seqs(e, &s, 1, 1 << 20, &secs, &tokens);
    size_t len = 0;
    for (int i = s.n_prompt; i < s.n_tokens && len + 16 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%d", i == s.n_prompt ? "[" : ",", s.tokens[i]);
    snprintf(out + len, cap - len, "]");
    engine_seq_release(&s, &e->kv);
}

static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib / 1024;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: pdserve-bench-engine --model DIR [--threads N] [--prompt-lens 128,512,2048] "
               "[--decode-steps N] [--batch N] [--weights stored|q8] [--kv-dtype f32|f16|bf16] "
               "[--check JSON] [--json] [--profile FILE]\n");
    return 2;
}

struct opts {
    const char *dir, *lens_arg, *check, *profile;
    int threads, steps, batch, json, kv_dtype;
    enum model_weights weights;
};

/* 1 on --help, -1 on a bad command line, 0 to run. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.lens_arg = "128,512,2048", .threads = 1, .steps = 64, .batch = 32, .kv_dtype = KN_F16,
                       .weights = MODEL_WEIGHTS_STORED};
    static const struct option longs[] = {{"model", 1, 0, 'm'}, {"threads", 1, 0, 't'},
                                          {"prompt-lens", 1, 0, 'p'}, {"decode-steps", 1, 0, 's'},
                                          {"batch", 1, 0, 'b'}, {"weights", 1, 0, 'w'},
                                          {"kv-dtype", 1, 0, 'k'}, {"check", 1, 0, 'c'},
                                          {"json", 0, 0, 'j'}, {"profile", 1, 0, 'P'}, {"help", 0, 0, 'h'},
                                          {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        if (c == 'm') o->dir = optarg;
        else if (c == 't') o->threads = atoi(optarg);
        else if (c == 'p') o->lens_arg = optarg;
        else if (c == 's') o->steps = atoi(optarg);
        else if (c == 'b') o->batch = atoi(optarg);
        else if (c == 'w') o->weights = strcmp(optarg, "q8") ? MODEL_WEIGHTS_STORED : MODEL_WEIGHTS_Q8;
        else if (c == 'k') o->kv_dtype = kn_dtype_parse(optarg, 0);
        else if (c == 'c') o->check = optarg;
        else if (c == 'j') o->json = 1;
        else if (c == 'P') o->profile = optarg;
        else if (c == 'h') return 1;
        else return -1;
    }
    return o->dir && o->kv_dtype >= 0 ? 0 : -1;
}

/* One run's measurements, and the machine's ceilings they are read against. */
struct report {
    int lens[8], n_lens;
    double prefill[8];       /* tokens/s for each prompt length */
    double d1, dn;           /* decode tokens/s at batch 1 and at --batch */
    double gflops, gbps, rss;
    char tokens[512];        /* greedy ids after --check, as JSON */
};

static void measure(struct engine *e, const struct opts *o, struct report *r)
{
    for (int i = 0; i < r->n_lens; i++)
        r->prefill[i] = prefill_tps(e, r->lens[i], r->lens[i] >= 2048 ? 1 : 2);
    r->d1 = decode_tps(e, 1, o->steps);
    r->dn = decode_tps(e, o->batch, o->steps / 2 > 8 ? o->steps / 2 : 8);
    strcpy(r->tokens, "[]");
    if (o->check)
        check_tokens(e, o->check, r->tokens, sizeof r->tokens);
    r->rss = rss_mib();
}

/* The rates each figure is read against: a decoded token also needs its logits, so the lm_head
 * counts in the rate the sgemm ceiling allows a decode step. */
struct ceilings {
    double bound, sgemm_rate, decode_rate;
};

static struct ceilings ceilings_of(const struct model *m, const struct report *r)
{
    double fpt = flops_per_token(&m->cfg), decode_fpt = fpt + 2.0 * m->cfg.vocab_size * m->cfg.dim;
    return (struct ceilings){.bound = r->gbps * 1e9 / (double)m->weight_bytes,
                             .sgemm_rate = r->gflops * 1e9 / fpt,
                             .decode_rate = r->gflops * 1e9 / decode_fpt};
}

static const char *weights_name(const struct model *m, const struct opts *o)
{
    return o->weights == MODEL_WEIGHTS_Q8 ? "q8" : kn_dtype_name(m->dtype);
}

static void print_json(const struct engine *e, const struct opts *o, const struct report *r)
{
    const struct model *m = e->model;
    struct ceilings c = ceilings_of(m, r);
    printf("{\"engine\":\"pdserve\",\"threads\":%d,\"weights\":\"%s\",\"kv\":\"%s\",\"kernels\":\"%s\",\"blas\":\"%s\","
           "\"sgemm_gflops\":%.2f,\"copy_gbps\":%.2f,\"weight_mib\":%.1f,\"kv_pool_mib\":%.1f,\"prefill\":{",
           o->threads, weights_name(m, o), kn_dtype_name((enum kn_dtype)o->kv_dtype), kn_ops()->name,
           openblas_get_corename(), r->gflops, r->gbps, m->resident_bytes / 1048576.0, e->kv.bytes / 1048576.0);
    for (int i = 0; i < r->n_lens; i++)
        printf("%s\"%d\":%.2f", i ? "," : "", r->lens[i], r->prefill[i]);
    printf("},\"prefill_of_sgemm\":{");
    for (int i = 0; i < r->n_lens; i++)
        printf("%s\"%d\":%.3f", i ? "," : "", r->lens[i], r->prefill[i] / c.sgemm_rate);
    printf("},\"decode\":%.2f,\"decode_of_bandwidth\":%.3f,\"decode_batch\":%d,\"decode_n\":%.2f,"
           "\"decode_n_of_sgemm\":%.3f,\"tokens\":%s,\"rss_mib\":%.1f}\n",
           r->d1, r->d1 / c.bound, o->batch, r->dn, r->dn / c.decode_rate, r->tokens, r->rss);
}

static void print_text(const struct engine *e, const struct opts *o, const struct report *r)
{
    const struct model *m = e->model;
    struct ceilings c = ceilings_of(m, r);
    printf("%-28s threads=%d weights=%s kv=%s kernels=%s blas=%s  sgemm %.1f GFLOP/s  copy %.1f GB/s  "
           "weights %.0f MiB\n", o->dir, o->threads, weights_name(m, o), kn_dtype_name((enum kn_dtype)o->kv_dtype),
           kn_ops()->name, openblas_get_corename(), r->gflops, r->gbps, m->resident_bytes / 1048576.0);
    for (int i = 0; i < r->n_lens; i++)
        printf("  prefill %4d tok: %8.1f tok/s  = %.2f of sgemm rate\n", r->lens[i], r->prefill[i],
               r->prefill[i] / c.sgemm_rate);
    printf("  decode batch 1 : %8.1f tok/s  = %.2f of bandwidth bound (%.1f tok/s)\n", r->d1, r->d1 / c.bound,
           c.bound);
    printf("  decode batch %-2d: %8.1f tok/s  = %.2f of the sgemm-bound rate (%.1f tok/s), %.1fx batch 1\n",
           o->batch, r->dn, r->dn / c.decode_rate, c.decode_rate, r->dn / r->d1);
    printf("  RSS %.0f MiB (weights %.0f MiB + KV pool of %.0f MiB, touched as used)\n", r->rss,
           m->resident_bytes / 1048576.0, e->kv.bytes / 1048576.0);
    if (o->check)
        printf("  greedy tokens after --check: %s\n", r->tokens);
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc > 0) {
        usage(stdout);
        return 0;
    }
    if (rc < 0)
        return usage(stderr);
    struct report r = {0};
    int max_len = 16;
    for (const char *p = o.lens_arg; *p && r.n_lens < 8; p += *p == ',') {
        r.lens[r.n_lens] = (int)strtol(p, (char **)&p, 10);
        max_len = r.lens[r.n_lens] > max_len ? r.lens[r.n_lens] : max_len;
        r.n_lens++;
    }
    log_init("bench-engine");
    blas_core_check(argv);
    r.gflops = sgemm_gflops(o.threads);
    r.gbps = copy_gbps(o.threads);
    struct error err;
    struct model *m = model_load_as(o.dir, o.weights, &err);
    struct engine e;
    int blocks = o.batch * ((16 + o.steps + 2) / 16 + 2) + max_len / 16 + 2;
    if (!m || engine_init(&e, m, blocks, 16, (enum kn_dtype)o.kv_dtype, o.threads, &err) < 0) {
        fprintf(stderr, "pdserve-bench-engine: %s\n", err.msg);
        return 1;
    }
    decode_tps(&e, 1, 4); /* warm-up: every page of the weights touched, threads started */
    if (o.profile)
        rc = profile_write(&e, o.dir, o.threads, o.profile) ? 1 : 0;
    else {
        measure(&e, &o, &r);
        (o.json ? print_json : print_text)(&e, &o, &r);
    }
    engine_destroy(&e);
    model_free(m);
    return rc;
}
