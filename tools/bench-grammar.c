/* bench-grammar.c — pdserve-bench-grammar: what structured output costs a decode step. It indexes a
 * real tokenizer's vocabulary (the time a worker spends once, at startup), then walks random valid
 * outputs of a schema, timing the token mask at every step, and prints the mean, p50, p99 and max per
 * mask, split into string bodies and the rest. With --model it also decodes with the engine, the same
 * sequences free and constrained in turn, and prints the constrained decode speed as a ratio of the
 * free one (the mask, the masked sampling and the matcher's step are all that differ).
 *   pdserve-bench-grammar --tokenizer DIR [--schema JSON] [--steps N] [--seed S]
 *                         [--model DIR [--threads N] [--decode-steps N] [--batch N]] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/engine/engine.h"
#include "common/grammar/grammar_impl.h"
#include "common/tok/tok.h"

static const char *default_schema =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
    "\"email\":{\"type\":\"string\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"street\",\"city\"]},\"score\":{\"type\":\"number\"},\"active\":{\"type\":\"boolean\"}},"
    "\"required\":[\"name\",\"age\",\"tags\",\"address\",\"score\",\"active\"]}";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *bytes_of(void *ctx, int32_t id, size_t *len)
{
    const struct tokenizer *t = ctx;
    if (tok_is_special(t, id))
        return NULL;
    return tok_id_bytes(t, id, len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *ms, int n)
{
    if (n == 0)
        return;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += ms[i];
    printf("%-14s %6d masks  mean %7.3f ms  p50 %7.3f  p99 %7.3f  max %7.3f\n", what, n, sum / n, ms[n / 2],
           ms[(int)(n * 0.99)], ms[n - 1]);
}

static void usage(void)
{
    printf("usage: pdserve-bench-grammar --tokenizer DIR [--schema JSON] [--steps N] [--seed S]\n"
           "                             [--model DIR [--threads N] [--decode-steps N] [--batch N]]\n"
           "  --tokenizer DIR     a folder with tokenizer.json (and tokenizer_config.json)\n"
           "  --schema JSON       the JSON Schema the outputs follow (default: a person record)\n"
           "  --steps N           masks to time (default 3000)\n"
           "  --seed S            the random walk's seed (default 1)\n"
           "  --model DIR         also decode with this model (its tokenizer is --tokenizer's default),\n"
           "                      free and constrained by an open array of strings, and print the ratio\n"
           "  --threads N         the engine's threads (default 1)\n"
           "  --decode-steps N    decode steps a run (default 64)\n"
           "  --batch N           sequences decoded together (default 1)\n");
}

/* Decode tokens/s of `batch` sequences after a 16-token prompt (not timed), constrained by schema
 * or free; a sequence whose answer closes starts over, so every step decodes the whole batch. */
static double decode_rate(struct engine *e, const char *schema, int batch, int steps)
{
    struct seq *seqs = calloc((size_t)batch, sizeof *seqs);
    struct seq **order = calloc((size_t)batch, sizeof *order);
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 1;
    p.ignore_eos = true;
    p.max_tokens = 1 << 20;
    int32_t prompt[16];
    struct error err;
    for (int s = 0; s < batch; s++) {
        for (int i = 0; i < 16; i++)
            prompt[i] = 3 + (s * 7919 + i * 104729) % (e->model->cfg.vocab_size - 3);
        p.seed = (uint64_t)s + 1;
        engine_seq_init(&seqs[s], (uint64_t)s, prompt, 16, &p, &err);
        if (schema && engine_seq_constrain(e, &seqs[s], schema, &err) < 0) {
            fprintf(stderr, "pdserve-bench-grammar: %s\n", err.msg);
            exit(1);
        }
        order[s] = &seqs[s];
    }
    struct step_result r;
    engine_step(e, order, batch, 1 << 20, NULL, NULL, &r, &err); /* the prompts and first tokens */
    int tokens = 0;
    double t0 = now_ms();
    for (int step = 0; step < steps; step++) {
        for (int s = 0; s < batch; s++)
            if (seqs[s].finish != FINISH_NONE) { /* closed: the same prompt again, its KV kept */
                seqs[s].finish = FINISH_NONE;
                if (schema) {
                    gmatch_free(seqs[s].match);
                    seqs[s].match = gmatch_new(seqs[s].grammar);
                }
            }
        if (engine_step(e, order, batch, 1 << 20, NULL, NULL, &r, &err) < 0) {
            fprintf(stderr, "pdserve-bench-grammar: %s\n", err.msg);
            exit(1);
        }
        tokens += r.n_tokens;
    }
    double secs = (now_ms() - t0) / 1e3;
    for (int s = 0; s < batch; s++)
        engine_seq_release(&seqs[s], &e->kv);
    free(seqs), free(order);
    return tokens / secs;
}

static int bench_decode(const char *model_dir, struct tokenizer *t, int threads, int batch, int steps)
{
    struct error err;
    struct model *m = model_load(model_dir, &err);
    struct engine e;
    int blocks = batch * ((16 + 4 * steps) / 16 + 4);
    struct gvocab *v = NULL;
    if (!m || engine_init(&e, m, blocks, 16, KN_F16, threads, &err) < 0 ||
        !(v = gvocab_new(m->cfg.vocab_size, bytes_of, t, m->cfg.eos_ids, m->cfg.n_eos, &err)) ||
        engine_set_vocab(&e, v, &err) < 0) {
        fprintf(stderr, "pdserve-bench-grammar: %s\n", err.msg);
        return 1;
    }
    const char *open_array = "{\"schema\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}";
    decode_rate(&e, NULL, batch, 4); /* warm-up */
    double free_tps = 0, constrained_tps = 0;
    for (int rep = 0; rep < 3; rep++) { /* in turn, best of three: the machine's noise hits both alike */
        double f = decode_rate(&e, NULL, batch, steps), c = decode_rate(&e, open_array, batch, steps);
        free_tps = f > free_tps ? f : free_tps;
        constrained_tps = c > constrained_tps ? c : constrained_tps;
    }
    printf("decode batch %d, %d steps: free %.1f tok/s, constrained %.1f tok/s  = %.3f of free (%s)\n", batch,
           steps, free_tps, constrained_tps, constrained_tps / free_tps, model_dir);
    engine_destroy(&e); /* frees v */
    model_free(m);
    return 0;
}

/* A random token the mask allows, uniform over them; when close, only one that holds a '"', so
 * string bodies end and outputs finish. -1 when there is none. */
static int pick_token(const struct gvocab *v, const uint32_t *allowed, int n, bool close)
{
    int count = 0, pick = -1;
    for (int id = 0; id < n; id++)
        if (allowed[id >> 5] >> (id & 31) & 1) {
            size_t len;
            const uint8_t *b = gvocab_bytes(v, id, &len);
            if ((!close || (b && memchr(b, '"', len))) && rand() % ++count == 0)
                pick = id;
        }
    return pick;
}

/* Walks random valid outputs of g for steps tokens, timing each mask; prints the report. */
static int bench_masks(const struct grammar *g, const struct gvocab *v, int n, int steps, unsigned seed)
{
    uint32_t *allowed = malloc((size_t)(n + 31) / 32 * sizeof *allowed);
    double *in_string = malloc((size_t)steps * sizeof(double)), *other = malloc((size_t)steps * sizeof(double));
    if (!allowed || !in_string || !other) {
        free(allowed), free(in_string), free(other);
        fprintf(stderr, "pdserve-bench-grammar: out of memory\n");
        return 1;
    }
    int n_string = 0, n_other = 0, outputs = 0;
    double all_sum = 0;
    srand(seed);
    struct gmatch *m = gmatch_new(g);
    for (int s = 0; s < steps; s++) {
        bool plain = gmatch_in_plain_string(m);
        double a = now_ms();
        gmatch_mask(m, v, allowed);
        double ms = now_ms() - a;
        all_sum += ms;
        if (plain)
            in_string[n_string++] = ms;
        else
            other[n_other++] = ms;
        int pick = pick_token(v, allowed, n, plain && rand() % 6 == 0);
        size_t len;
        const uint8_t *b = pick >= 0 ? gvocab_bytes(v, pick, &len) : NULL;
        if (!b || !gmatch_feed(m, b, len) || gmatch_closed(m)) { /* an end token, or the value closed */
            gmatch_free(m);
            m = gmatch_new(g);
            outputs++;
        }
    }
    report("string bodies", in_string, n_string);
    report("elsewhere", other, n_other);
    printf("all            %6d masks  mean %7.3f ms (%d outputs)\n", steps, all_sum / steps, outputs);
    gmatch_free(m);
    free(allowed), free(in_string), free(other);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *schema = default_schema, *model_dir = NULL;
    int steps = 3000, threads = 1, decode_steps = 64, batch = 1;
    unsigned seed = 1;
    static const struct option opts[] = {{"tokenizer", 1, 0, 't'}, {"schema", 1, 0, 's'},  {"steps", 1, 0, 'n'},
                                         {"seed", 1, 0, 'r'},      {"model", 1, 0, 'm'},   {"threads", 1, 0, 'T'},
                                         {"decode-steps", 1, 0, 'd'}, {"batch", 1, 0, 'b'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 't': dir = optarg; break;
        case 's': schema = optarg; break;
        case 'n': steps = atoi(optarg); break;
        case 'r': seed = (unsigned)atoi(optarg); break;
        case 'm': model_dir = optarg; break;
        case 'T': threads = atoi(optarg); break;
        case 'd': decode_steps = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    dir = dir ? dir : model_dir;
    if (!dir || steps <= 0 || threads < 1 || batch < 1 || decode_steps < 1) {
        usage();
        return 2;
    }
    struct error err;
    struct tokenizer *t = tok_load(dir, &err);
    struct grammar *g = t ? grammar_compile_text(schema, &err) : NULL;
    if (!g) {
        fprintf(stderr, "pdserve-bench-grammar: %s\n", err.msg);
        return 1;
    }
    int n = tok_vocab_size(t);
    const int32_t *eos;
    int n_eos = tok_eos_ids(t, &eos);
    double t0 = now_ms();
    struct gvocab *v = gvocab_new(n, bytes_of, t, eos, n_eos, &err);
    if (!v) {
        fprintf(stderr, "pdserve-bench-grammar: %s\n", err.msg);
        return 1;
    }
    printf("vocabulary of %d tokens indexed in %.1f ms\n", n, now_ms() - t0);
    int rc = bench_masks(g, v, n, steps, seed);
    grammar_free(g);
    gvocab_free(v);
    if (!rc && model_dir)
        rc = bench_decode(model_dir, t, threads, batch, decode_steps);
    tok_free(t);
    return rc;
}
