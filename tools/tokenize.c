/* tokenize.c — pdserve-tokenize: runs the tokenizer from the command line, to look at ids, to decode
 * them, and to time encoding.
 *   pdserve-tokenize MODEL_DIR [--add-special] [--parse-special] [FILE]    ids of FILE (default stdin)
 *   pdserve-tokenize MODEL_DIR --decode [--skip-special] [FILE]            text of the ids in FILE
 *   pdserve-tokenize MODEL_DIR --bench N [FILE]                             time N encodes of FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/log.h"
#include "common/tok/tok.h"

struct opts {
    const char *dir, *file;
    bool add_special, parse_special, decode, skip_special;
    int bench;
};

static int usage(FILE *f)
{
    fprintf(f, "usage: pdserve-tokenize MODEL_DIR [--add-special] [--parse-special] [--decode "
                    "[--skip-special]] [--bench N] [FILE]\n");
    return 2;
}

static char *read_all(const char *file, size_t *len)
{
    FILE *f = file ? fopen(file, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n + 1 >= cap) {   /* always room for the NUL strtok needs */
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    if (file)
        fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench(const struct tokenizer *t, const char *text, size_t len, int n, struct error *err)
{
    double best = 1e9, total = 0;
    int n_ids = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        double t0 = now();
        if (tok_encode(t, text, len, false, false, &ids, &n_ids, err))
            return -1;
        double dt = now() - t0;
        free(ids);
        total += dt;
        if (dt < best)
            best = dt;
    }
    printf("encode %zu bytes -> %d tokens: best %.2f ms, mean %.2f ms over %d runs (%.1f MB/s)\n", len, n_ids,
           best * 1e3, total / n * 1e3, n, len / best / 1e6);
    return 0;
}

static int decode(const struct tokenizer *t, char *text, bool skip_special, struct error *err)
{
    int32_t *ids = NULL;
    int n = 0, cap = 0;
    for (char *p = strtok(text, " \t\r\n,[]"); p; p = strtok(NULL, " \t\r\n,[]")) {
        if (n == cap) {
            int32_t *v = realloc(ids, (size_t)(cap = cap ? cap * 2 : 256) * sizeof *v);
            if (!v)
                break;
            ids = v;
        }
        ids[n++] = (int32_t)strtol(p, NULL, 10);
    }
    char *out;
    size_t len;
    int rc = tok_decode(t, ids, n, skip_special, &out, &len, err);
    free(ids);
    if (rc == 0) {
        fwrite(out, 1, len, stdout);
        free(out);
    }
    return rc;
}

static int encode(const struct tokenizer *t, const char *text, size_t len, const struct opts *o, struct error *err)
{
    int32_t *ids;
    int n;
    if (tok_encode(t, text, len, o->add_special, o->parse_special, &ids, &n, err))
        return -1;
    for (int i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--add-special"))
            o->add_special = true;
        else if (!strcmp(a, "--parse-special"))
            o->parse_special = true;
        else if (!strcmp(a, "--decode"))
            o->decode = true;
        else if (!strcmp(a, "--skip-special"))
            o->skip_special = true;
        else if (!strcmp(a, "--bench") && i + 1 < argc)
            o->bench = atoi(argv[++i]);
        else if (a[0] == '-')
            return -1;
        else if (!o->dir)
            o->dir = a;
        else
            o->file = a;
    }
    return o->dir ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (parse(argc, argv, &o))
        return usage(stderr);
    log_init("tokenize");
    struct error err = {{0}};
    struct tokenizer *t = tok_load(o.dir, &err);
    if (!t) {
        log_error("%s", err.msg);
        return 1;
    }
    size_t len;
    char *text = read_all(o.file, &len);
    int rc = -1;
    if (!text)
        error_set(&err, "cannot read %s", o.file ? o.file : "stdin");
    else if (o.bench > 0)
        rc = bench(t, text, len, o.bench, &err);
    else if (o.decode)
        rc = decode(t, text, o.skip_special, &err);
    else
        rc = encode(t, text, len, &o, &err);
    if (rc)
        log_error("%s", err.msg);
    free(text);
    tok_free(t);
    return rc ? 1 : 0;
}
