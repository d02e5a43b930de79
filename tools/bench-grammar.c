/* bench-grammar.c — pdserve-bench-grammar: what structured output costs a decode step. It indexes a
 * real tokenizer's vocabulary (the time a worker spends once, at startup), then walks random valid
 * outputs of a schema, timing the token mask at every step, and prints the mean, p50, p99 and max per
 * mask, split into string bodies and the rest.
 *   pdserve-bench-grammar --tokenizer DIR [--schema JSON] [--steps N] [--seed S] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
           "  --tokenizer DIR  a folder with tokenizer.json (and tokenizer_config.json)\n"
           "  --schema JSON    the JSON Schema the outputs follow (default: a person record)\n"
           "  --steps N        masks to time (default 3000)\n"
           "  --seed S         the random walk's seed (default 1)\n");
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *schema = default_schema;
    int steps = 3000;
    unsigned seed = 1;
    static const struct option opts[] = {{"tokenizer", 1, 0, 't'}, {"schema", 1, 0, 's'}, {"steps", 1, 0, 'n'},
                                         {"seed", 1, 0, 'r'},      {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 't': dir = optarg; break;
        case 's': schema = optarg; break;
        case 'n': steps = atoi(optarg); break;
        case 'r': seed = (unsigned)atoi(optarg); break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!dir || steps <= 0) {
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
    uint32_t *allowed = malloc((size_t)(n + 31) / 32 * sizeof *allowed);
    double *in_string = malloc((size_t)steps * sizeof(double)), *other = malloc((size_t)steps * sizeof(double));
    int n_string = 0, n_other = 0, outputs = 0;
    srand(seed);
    struct gmatch *m = gmatch_new(g);
    for (int s = 0; s < steps; s++) {
        bool plain = gmatch_in_plain_string(m);
        double a = now_ms();
        gmatch_mask(m, v, allowed);
        double ms = now_ms() - a;
        if (plain)
            in_string[n_string++] = ms;
        else
            other[n_other++] = ms;
        /* uniform over the allowed tokens, but a string ends one step in six, so outputs finish */
        bool close = plain && rand() % 6 == 0;
        int count = 0, pick = -1;
        for (int id = 0; id < n; id++)
            if (allowed[id >> 5] >> (id & 31) & 1) {
                size_t len;
                const uint8_t *b = gvocab_bytes(v, id, &len);
                if ((!close || (b && memchr(b, '"', len))) && rand() % ++count == 0)
                    pick = id;
            }
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
    double all_sum = 0;
    for (int i = 0; i < n_string; i++)
        all_sum += in_string[i];
    for (int i = 0; i < n_other; i++)
        all_sum += other[i];
    printf("all            %6d masks  mean %7.3f ms (%d outputs)\n", steps, all_sum / steps, outputs);
    gmatch_free(m);
    free(allowed), free(in_string), free(other);
    gvocab_free(v);
    grammar_free(g);
    tok_free(t);
    return 0;
}
