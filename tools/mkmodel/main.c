/* main.c — pdserve-mkmodel: writes a random-weight Llama-family model folder in the Hugging Face
 * layout, for tests, benchmarks and a local cluster. Parses flags over a preset, then writes the
 * tokenizer (its special token ids go into the configs), the configs and the weights. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util/log.h"
#include "mkmodel.h"

struct opts {
    const char *out, *tokenizer;
    uint64_t seed;
    int shards;
    int vocab_pad;  /* ids past the tokenizer's last token */
    bool vocab_set;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdserve-mkmodel --out DIR [--preset NAME] [--dtype f32|f16|bf16] [--seed N]\n"
            "         [--tokenizer tokenizer.json] [--shards N] [--arch ARCH]\n"
            "         [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N]\n"
            "         [--intermediate N] [--vocab N] [--max-pos N] [--rope-theta X] [--rms-eps X]\n"
            "         [--rope-scaling-llama3 FACTOR,LOW_FREQ,HIGH_FREQ,ORIG_MAX_POS] [--no-rope-scaling]\n"
            "         [--tie | --no-tie] [--vocab-pad N] [--sliding-window N] [--longrope ORIG_MAX_POS]\n"
            "ARCH: llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3\n"
            "--sliding-window N: config.json sliding_window (gemma2/3, phi3, mistral); 0 for none\n"
            "--longrope ORIG: phi3 rope_scaling of type longrope with original_max_position_embeddings ORIG\n"
            "--vocab-pad N: vocab_size = the tokenizer's tokens + N, the N padded ids with ordinary random\n"
            "  weights, so the model generates ids the tokenizer has no token for (as padded vocabularies do)\n"
            "presets: %s (default tiny)\n"
            "See docs/models.md.\n",
            mk_preset_names());
}

static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *v,
                     struct error *err)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (errno || end == s || *end || *v < lo || *v > hi)
        return error_set(err, "%s %s: expected an integer in [%lld, %lld]", flag, s, lo, hi);
    return 0;
}

static int parse_num(const char *flag, const char *s, double *v, struct error *err)
{
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end || !(*v > 0))
        return error_set(err, "%s %s: expected a positive number", flag, s);
    return 0;
}

static int parse_llama3(const char *s, struct mk_config *c, struct error *err)
{
    char tail;
    if (sscanf(s, "%lf,%lf,%lf,%lf%c", &c->rope_factor, &c->rope_low, &c->rope_high,
               &c->rope_orig_max, &tail) != 4)
        return error_set(err, "--rope-scaling-llama3 %s: expected FACTOR,LOW_FREQ,HIGH_FREQ,ORIG_MAX_POS "
                              "such as 32,1,4,8192", s);
    c->rope_llama3 = true;
    return 0;
}

static int parse_dtype(const char *s, enum mk_dtype *d, struct error *err)
{
    if (strcmp(s, "f32") == 0)
        *d = MK_F32;
    else if (strcmp(s, "f16") == 0)
        *d = MK_F16;
    else if (strcmp(s, "bf16") == 0)
        *d = MK_BF16;
    else
        return error_set(err, "--dtype %s: expected f32, f16 or bf16", s);
    return 0;
}

enum { O_HIDDEN = 256, O_LAYERS, O_HEADS, O_KV, O_HD, O_INTER, O_VOCAB, O_MAXPOS, O_THETA, O_EPS,
       O_LLAMA3, O_NOSCALE, O_TIE, O_NOTIE, O_SHARDS, O_ARCH, O_TOK, O_PAD, O_SW, O_LONGROPE };

static const struct option long_opts[] = {
    {"out", 1, 0, 'o'}, {"preset", 1, 0, 'p'}, {"dtype", 1, 0, 'd'}, {"seed", 1, 0, 's'},
    {"tokenizer", 1, 0, O_TOK}, {"arch", 1, 0, O_ARCH}, {"hidden", 1, 0, O_HIDDEN},
    {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS}, {"kv-heads", 1, 0, O_KV},
    {"head-dim", 1, 0, O_HD}, {"intermediate", 1, 0, O_INTER}, {"vocab", 1, 0, O_VOCAB},
    {"max-pos", 1, 0, O_MAXPOS}, {"rope-theta", 1, 0, O_THETA}, {"rms-eps", 1, 0, O_EPS},
    {"rope-scaling-llama3", 1, 0, O_LLAMA3}, {"no-rope-scaling", 0, 0, O_NOSCALE},
    {"tie", 0, 0, O_TIE}, {"no-tie", 0, 0, O_NOTIE}, {"shards", 1, 0, O_SHARDS}, {"vocab-pad", 1, 0, O_PAD},
    {"sliding-window", 1, 0, O_SW}, {"longrope", 1, 0, O_LONGROPE},
    {"help", 0, 0, 'h'}, {0, 0, 0, 0}};

/* Shape flags that take a positive int, and where they go. */
static int *int_field(struct mk_config *c, int opt)
{
    switch (opt) {
    case O_HIDDEN: return &c->hidden;
    case O_LAYERS: return &c->layers;
    case O_HEADS: return &c->heads;
    case O_KV: return &c->kv_heads;
    case O_HD: return &c->head_dim;
    case O_INTER: return &c->intermediate;
    case O_VOCAB: return &c->vocab;
    case O_MAXPOS: return &c->max_pos;
    default: return NULL;
    }
}

static const char *flag_name(int opt)
{
    for (const struct option *f = long_opts; f->name; f++)
        if (f->val == opt)
            return f->name;
    return "?";
}

/* One flag over the preset; tracks what the defaults that follow from other flags need to know. */
static int apply_flag(int opt, const char *arg, struct mk_config *c, struct opts *o, int *seen,
                      struct error *err)
{
    long long v;
    int *field = int_field(c, opt);
    if (field) {
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", flag_name(opt));
        if (parse_int(flag, arg, 1, 1 << 30, &v, err) < 0)
            return -1;
        *field = (int)v;
        seen[opt - O_HIDDEN] = 1;
        return 0;
    }
    switch (opt) {
    case 'o': o->out = arg; return 0;
    case 'p': return 0; /* applied before the other flags */
    case 'd': return parse_dtype(arg, &c->dtype, err);
    case 's': return parse_int("--seed", arg, 0, INT64_MAX, &v, err) < 0 ? -1 : (o->seed = (uint64_t)v, 0);
    case O_TOK: o->tokenizer = arg; return 0;
    case O_ARCH:
        snprintf(c->arch, sizeof c->arch, "%s", arg);
        c->qkv_bias = strcmp(arg, "qwen2") == 0; /* Qwen2 always has q/k/v biases, Llama never */
        return 0;
    case O_THETA: return parse_num("--rope-theta", arg, &c->rope_theta, err);
    case O_EPS: return parse_num("--rms-eps", arg, &c->rms_eps, err);
    case O_LLAMA3: return parse_llama3(arg, c, err);
    case O_NOSCALE: c->rope_llama3 = false; return 0;
    case O_TIE: c->tie = true; return 0;
    case O_NOTIE: c->tie = false; return 0;
    case O_SHARDS:
        if (parse_int("--shards", arg, 1, 99999, &v, err) < 0)
            return -1;
        o->shards = (int)v;
        return 0;
    case O_SW:
        if (parse_int("--sliding-window", arg, 0, 1 << 30, &v, err) < 0)
            return -1;
        c->sliding_window = (int)v;
        return 0;
    case O_LONGROPE:
        if (parse_int("--longrope", arg, 1, 1 << 30, &v, err) < 0)
            return -1;
        c->longrope_orig = (int)v;
        return 0;
    case O_PAD:
        if (parse_int("--vocab-pad", arg, 0, 1 << 20, &v, err) < 0)
            return -1;
        o->vocab_pad = (int)v;
        return 0;
    default: return error_set(err, "unknown flag (see --help)");
    }
}

static int parse_args(int argc, char **argv, struct mk_config *c, struct opts *o, struct error *err)
{
    const char *preset = "tiny";
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0)
            preset = argv[i + 1];
    if (mk_preset(preset, c, err) < 0)
        return -1;
    int seen[O_MAXPOS - O_HIDDEN + 1] = {0}, opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        }
        if (opt == '?')
            return error_set(err, "%s: unknown flag or missing value (see --help)", argv[optind - 1]);
        if (apply_flag(opt, optarg, c, o, seen, err) < 0)
            return -1;
    }
    if (optind < argc)
        return error_set(err, "unexpected argument \"%s\" (see --help)", argv[optind]);
    if (!o->out)
        return error_set(err, "--out DIR is required (see --help)");
    /* A new width or head count without --head-dim means the usual hidden / heads. */
    if (!seen[O_HD - O_HIDDEN] && (seen[O_HIDDEN - O_HIDDEN] || seen[O_HEADS - O_HIDDEN]))
        c->head_dim = c->heads > 0 ? c->hidden / c->heads : 0;
    o->vocab_set = seen[O_VOCAB - O_HIDDEN];
    return 0;
}

/* With --tokenizer, the vocabulary must hold every token id: grown to fit unless --vocab was given. */
static int fit_vocab(struct mk_config *c, const struct opts *o, struct error *err)
{
    int n;
    if (!o->tokenizer)
        return 0;
    if (mk_tokenizer_size(o->tokenizer, &n, err) < 0)
        return -1;
    if (n > c->vocab && o->vocab_set)
        return error_set(err, "%s has %d tokens but --vocab is %d: pass --vocab %d or more",
                         o->tokenizer, n, c->vocab, n);
    if (n > c->vocab) {
        log_info("vocab: %d → %d to fit the tokenizer", c->vocab, n);
        c->vocab = n;
    }
    return 0;
}

/* After the tokenizer is written: --vocab-pad makes vocab_size its size + N, ids it has no token for. */
static void pad_vocab(struct mk_config *c, struct mk_specials *sp, int pad)
{
    sp->n_live_rows = sp->n_tokens;
    if (!pad)
        return;
    c->vocab = sp->n_tokens + pad;
    sp->n_live_rows = c->vocab;
    log_info("vocab: %d = %d tokenizer tokens + %d padded ids", c->vocab, sp->n_tokens, pad);
}

static double params(const struct mk_config *c)
{
    double d = c->hidden, q = (double)c->heads * c->head_dim, kv = (double)c->kv_heads * c->head_dim;
    double layer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * c->intermediate +
                   (c->qkv_bias ? q + 2 * kv : 0);
    return (double)c->vocab * d * (c->tie ? 1 : 2) + c->layers * layer + d;
}

static int run(int argc, char **argv, struct error *err)
{
    struct mk_config c;
    struct opts o = {.seed = 1, .shards = 1};
    struct mk_specials sp = {-1, -1, -1, 0, 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (parse_args(argc, argv, &c, &o, err) < 0 || fit_vocab(&c, &o, err) < 0 ||
        mk_config_check(&c, err) < 0)
        return -1;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST)
        return error_set(err, "--out %s: cannot create the folder: %s", o.out, strerror(errno));
    if (mk_write_tokenizer(o.out, o.tokenizer, &c, &sp, err) < 0)
        return -1;
    pad_vocab(&c, &sp, o.vocab_pad);
    if (mk_write_hf_config(o.out, &c, &sp, err) < 0 || mk_write_weights(o.out, &c, &sp, o.seed,
                                                                        o.shards, err) < 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double p = params(&c), secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    log_info("wrote %s: %s, %.1fM parameters, %.1f MB of weights in %d file(s), %.2f s", o.out, c.arch,
             p / 1e6, p * (c.dtype == MK_F32 ? 4 : 2) / 1e6, o.shards, secs);
    return 0;
}

int main(int argc, char **argv)
{
    struct error err = {{0}};
    log_init("mkmodel");
    if (run(argc, argv, &err) < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    return 0;
}
