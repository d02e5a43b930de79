/* opts.c — pdserve-bench's command line: option names and defaults follow vLLM's
 * benchmark_serving where one exists, so a command line moves between the two tools. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void bench_opts_usage(FILE *f)
{
    fputs(
        "usage: pdserve-bench [options]          one run, or a sweep with --sweep\n"
        "       pdserve-bench plot --out DIR [--label NAME]... RESULT.json...\n"
        "\n"
        "target:    --base-url http://HOST:PORT (default http://127.0.0.1:8000)\n"
        "           --endpoint /v1/completions|/v1/chat/completions   --model NAME\n"
        "           --api-key KEY   --timeout SECONDS (per request, default 600)\n"
        "workload:  --dataset random | --dataset sharegpt FILE | --dataset multi-turn\n"
        "           --num-prompts N (default 100)\n"
        "           multi-turn: conversations of --turns N (4) sharing a --prefix-len N (1000) token\n"
        "           system prompt, each turn --input-len new tokens after the history so far (the\n"
        "           earlier turns and a --output-len reply each), resent every turn\n"
        "           --input-len N (1024)  --output-len N (128)  --range-ratio R (0)\n"
        "           --vocab-size N (1000; random token-id prompts are drawn below it)\n"
        "           --tokenizer DIR (the model's tokenizer.json: exact chat/ShareGPT lengths)\n"
        "           --ignore-eos   --seed N (0)\n"
        "arrivals:  --request-rate R|inf (inf)  --burstiness B (1 = Poisson)  --max-concurrency N\n"
        "SLOs:      --slo-ttft-ms MS  --slo-tpot-ms MS  --slo-e2el-ms MS\n"
        "           --goodput ttft:MS tpot:MS e2el:MS   --attainment 0.9\n"
        "sweep:     --sweep R1,R2,...|auto  --sweep-start R (auto, default 1)\n"
        "           --sweep-steps N (auto bisection steps, default 3)\n"
        "           several --base-url (each with its own --label and --save-result, in the same\n"
        "           order): the servers' sweeps run interleaved, one run each in turn, so a machine\n"
        "           whose speed drifts moves every server's results alike\n"
        "output:    --save-result FILE  --plot DIR  --label NAME  --progress|--no-progress\n",
        f);
}

int bench_parse_rate(const char *s, double *rate, struct error *err)
{
    if (!strcmp(s, "inf")) {
        *rate = INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || isinf(v))
        return error_set(err, "bad request rate '%s': want a positive number or 'inf'", s);
    *rate = v;
    return 0;
}

static int parse_num(const char *name, const char *s, double lo, double *out, struct error *err)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || !(v >= lo) || isinf(v))
        return error_set(err, "%s: bad value '%s' (want a number >= %g)", name, s ? s : "", lo);
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *s, int lo, int *out, struct error *err)
{
    double v;
    if (parse_num(name, s, lo, &v, err) < 0)
        return -1;
    if (v != floor(v) || v > 1e9)
        return error_set(err, "%s: bad value '%s' (want an integer >= %d)", name, s, lo);
    *out = (int)v;
    return 0;
}

static int parse_seed(const char *s, uint64_t *seed, struct error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return error_set(err, "--seed: bad value '%s' (want a non-negative integer)", s);
    *seed = v;
    return 0;
}

static void defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->endpoint = "/v1/completions";
    o->model = "default";
    o->input_len = 1024;
    o->output_len = 128;
    o->prefix_len = 1000;
    o->turns = 4;
    o->vocab_size = 1000;
    o->num_prompts = 100;
    o->request_rate = INFINITY;
    o->burstiness = 1.0;
    o->attainment = 0.9;
    o->sweep_start = 1.0;
    o->sweep_steps = 3;
    o->timeout_s = 600;
    o->progress = -1;
}

/* "ttft:200 tpot:50 e2el:2000": the words after --goodput that contain a colon. */
static int parse_goodput(char **argv, int argc, int *i, struct bench_opts *o, struct error *err)
{
    int used = 0;
    while (*i + 1 < argc && strchr(argv[*i + 1], ':') && argv[*i + 1][0] != '-') {
        const char *w = argv[++*i];
        double v;
        const char *colon = strchr(w, ':');
        if (parse_num("--goodput", colon + 1, 0, &v, err) < 0)
            return -1;
        if (!strncmp(w, "ttft:", 5))
            o->slo_ttft_ms = v;
        else if (!strncmp(w, "tpot:", 5))
            o->slo_tpot_ms = v;
        else if (!strncmp(w, "e2el:", 5))
            o->slo_e2el_ms = v;
        else
            return error_set(err, "--goodput: unknown metric in '%s' (want ttft, tpot or e2el)", w);
        used++;
    }
    return used ? 0 : error_set(err, "--goodput wants one or more of ttft:MS tpot:MS e2el:MS");
}

static int parse_sweep(const char *s, struct bench_opts *o, struct error *err)
{
    if (!strcmp(s, "auto")) {
        o->sweep_auto = 1;
        return 0;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_rates == BENCH_MAX_RATES)
            return error_set(err, "--sweep: at most %d rates", BENCH_MAX_RATES);
        if (bench_parse_rate(tok, &o->rates[o->n_rates++], err) < 0)
            return error_wrap(err, "--sweep");
    }
    return o->n_rates ? 0 : error_set(err, "--sweep wants R1,R2,... or auto");
}

/* Options that take one value and store it in a field: a table rather than a chain of ifs. */
enum opt_kind { OPT_STR, OPT_INT, OPT_NUM };
struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t off;
    double lo;
};
#define F(field) offsetof(struct bench_opts, field)
static const struct opt_def opt_defs[] = {
    {"--endpoint", OPT_STR, F(endpoint), 0},
    {"--model", OPT_STR, F(model), 0},             {"--dataset-path", OPT_STR, F(dataset_path), 0},
    {"--plot", OPT_STR, F(plot_dir), 0},           {"--api-key", OPT_STR, F(api_key), 0},
    {"--tokenizer", OPT_STR, F(tokenizer_dir), 0},
    {"--input-len", OPT_INT, F(input_len), 1},     {"--output-len", OPT_INT, F(output_len), 1},
    {"--vocab-size", OPT_INT, F(vocab_size), 1},   {"--num-prompts", OPT_INT, F(num_prompts), 1},
    {"--prefix-len", OPT_INT, F(prefix_len), 0},   {"--turns", OPT_INT, F(turns), 1},
    {"--max-concurrency", OPT_INT, F(max_concurrency), 1},
    {"--sweep-steps", OPT_INT, F(sweep_steps), 0}, {"--range-ratio", OPT_NUM, F(range_ratio), 0},
    {"--burstiness", OPT_NUM, F(burstiness), 1e-3}, {"--slo-ttft-ms", OPT_NUM, F(slo_ttft_ms), 0},
    {"--slo-tpot-ms", OPT_NUM, F(slo_tpot_ms), 0}, {"--slo-e2el-ms", OPT_NUM, F(slo_e2el_ms), 0},
    {"--attainment", OPT_NUM, F(attainment), 0},   {"--timeout", OPT_NUM, F(timeout_s), 0},
    {"--sweep-start", OPT_NUM, F(sweep_start), 1e-6},
};
#undef F

static int set_field(const struct opt_def *d, const char *v, struct bench_opts *o,
                     struct error *err)
{
    char *base = (char *)o + d->off;
    if (!v)
        return error_set(err, "%s needs a value", d->name);
    if (d->kind == OPT_STR) {
        *(const char **)base = v;
        return 0;
    }
    if (d->kind == OPT_INT)
        return parse_int(d->name, v, (int)d->lo, (int *)base, err);
    return parse_num(d->name, v, d->lo, (double *)base, err);
}

/* --base-url, --label, --save-result: the n-th of each describes the n-th target. */
static int parse_target(const char *a, const char *v, struct bench_opts *o, struct error *err)
{
    int *n = a[2] == 'b' ? &o->n_targets : a[2] == 'l' ? &o->n_labels : &o->n_saves;
    if (!v)
        return error_set(err, "%s needs a value", a);
    if (*n == BENCH_MAX_TARGETS)
        return error_set(err, "%s: at most %d servers", a, BENCH_MAX_TARGETS);
    struct bench_target_opts *t = &o->targets[(*n)++];
    *(a[2] == 'b' ? &t->base_url : a[2] == 'l' ? &t->label : &t->save_result) = v;
    return 0;
}

/* Options that are not one plain value; returns 1 if `a` was one of them. */
static int parse_special(char **argv, int argc, int *i, struct bench_opts *o, struct error *err,
                         int *rc)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    *rc = 0;
    if (!strcmp(a, "--ignore-eos"))
        o->ignore_eos = 1;
    else if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress"))
        o->progress = a[2] == 'p';
    else if (!strcmp(a, "--goodput"))
        *rc = parse_goodput(argv, argc, i, o, err);
    else if (!strcmp(a, "--base-url") || !strcmp(a, "--label") || !strcmp(a, "--save-result")) {
        *rc = parse_target(a, v, o, err);
        ++*i;
    }
    else if (!strcmp(a, "--request-rate") || !strcmp(a, "--sweep") || !strcmp(a, "--seed")) {
        if (!v)
            *rc = error_set(err, "%s needs a value", a);
        else if (a[2] == 'r')
            *rc = bench_parse_rate(v, &o->request_rate, err);
        else if (a[3] == 'w')
            *rc = parse_sweep(v, o, err);
        else
            *rc = parse_seed(v, &o->seed, err);
        ++*i;
    } else if (!strcmp(a, "--dataset") || !strcmp(a, "--dataset-name")) {
        if (v && !strcmp(v, "random"))
            o->dataset = BENCH_DATASET_RANDOM;
        else if (v && !strcmp(v, "sharegpt"))
            o->dataset = BENCH_DATASET_SHAREGPT;
        else if (v && !strcmp(v, "multi-turn"))
            o->dataset = BENCH_DATASET_MULTITURN;
        else
            *rc = error_set(err, "--dataset: want random, sharegpt FILE or multi-turn, got '%s'", v ? v : "");
        ++*i;
        /* vLLM spells the file --dataset-path; we also take it right after the name. */
        if (!*rc && o->dataset == BENCH_DATASET_SHAREGPT && *i + 1 < argc && argv[*i + 1][0] != '-')
            o->dataset_path = argv[++*i];
    } else
        return 0;
    return 1;
}

/* One target (the default one when no --base-url was given) or several, each labelled and saved
 * apart; base_url, label and save_result name the first. */
static int check_targets(struct bench_opts *o, struct error *err)
{
    int n = o->n_targets ? o->n_targets : 1;
    if (n > 1 && !o->n_rates && !o->sweep_auto)
        return error_set(err, "several --base-url need --sweep: their sweeps run interleaved");
    if (n > 1 && (o->n_labels != n || (o->n_saves && o->n_saves != n)))
        return error_set(err, "%d servers want %d --label (and none or %d --save-result), one each, "
                              "in the order of their --base-url", n, n, n);
    if (n == 1 && (o->n_labels > 1 || o->n_saves > 1))
        return error_set(err, "--label and --save-result name one server's results; give as many --base-url");
    o->n_targets = n;
    for (int i = 0; i < n; i++) {
        struct bench_target_opts *t = &o->targets[i];
        t->base_url = t->base_url ? t->base_url : "http://127.0.0.1:8000";
        t->label = t->label ? t->label : o->model;
        if (strncmp(t->base_url, "http://", 7))
            return error_set(err, "--base-url must start with http:// (got '%s')", t->base_url);
    }
    o->base_url = o->targets[0].base_url;
    o->label = o->targets[0].label;
    o->save_result = o->targets[0].save_result;
    return 0;
}

static int check_opts(struct bench_opts *o, struct error *err)
{
    if (check_targets(o, err) < 0)
        return -1;
    if (o->endpoint[0] != '/')
        return error_set(err, "--endpoint must be a path such as /v1/completions");
    o->chat = strstr(o->endpoint, "chat") != NULL;
    if (o->dataset == BENCH_DATASET_MULTITURN && o->chat)
        return error_set(err, "--dataset multi-turn sends token-id prompts: use --endpoint /v1/completions");
    if (o->dataset == BENCH_DATASET_SHAREGPT && !o->dataset_path)
        return error_set(err, "--dataset sharegpt needs a file: --dataset sharegpt FILE");
    if (o->range_ratio >= 1.0)
        return error_set(err, "--range-ratio must be in [0, 1)");
    if (o->attainment > 1.0)
        return error_set(err, "--attainment is a share in [0, 1], e.g. 0.9");
    if ((o->n_rates || o->sweep_auto) && !(o->slo_ttft_ms || o->slo_tpot_ms || o->slo_e2el_ms))
        return error_set(err, "--sweep needs at least one SLO (--slo-ttft-ms, --slo-tpot-ms, "
                              "--goodput ...) to measure attainment against");
    return 0;
}

int bench_opts_parse(int argc, char **argv, struct bench_opts *o, struct error *err)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc;
        if (parse_special(argv, argc, &i, o, err, &rc)) {
            if (rc < 0)
                return -1;
            continue;
        }
        size_t k = 0, nd = sizeof opt_defs / sizeof opt_defs[0];
        while (k < nd && strcmp(opt_defs[k].name, a))
            k++;
        if (k == nd)
            return error_set(err, "unknown option '%s' (see --help)", a);
        if (set_field(&opt_defs[k], i + 1 < argc ? argv[i + 1] : NULL, o, err) < 0)
            return -1;
        if (opt_defs[k].off == offsetof(struct bench_opts, output_len))
            o->output_len_set = 1;
        i++;
    }
    return check_opts(o, err);
}
