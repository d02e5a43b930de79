/* config.c — the frontend's flags (see usage below and docs/frontend.md). API keys come from
 * --api-key (repeatable), --api-key-file (one key a line, '#' comments) and PDSERVE_API_KEY. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/fe.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdserve-frontend --model DIR [options]\n"
            "  --host ADDR              HTTP address (default 127.0.0.1)\n"
            "  --port N                 HTTP port (default 8000)\n"
            "  --model DIR              model folder: tokenizer.json, tokenizer_config.json, config.json\n"
            "  --served-model-name S    the name clients use (default: the folder's name)\n"
            "  --ucx-host ADDR          where workers register (default 127.0.0.1)\n"
            "  --ucx-port N             UCX port for workers (default 9000)\n"
            "  --api-key KEY            require 'Authorization: Bearer KEY' (repeatable)\n"
            "  --api-key-file FILE      keys, one a line; PDSERVE_API_KEY adds one more\n"
            "  --max-model-len N        context length (default: config.json max_position_embeddings)\n"
            "  --max-body-bytes N       request body limit (default 8388608) -> 413\n"
            "  --max-header-bytes N     request head limit (default 16384) -> 431\n"
            "  --max-connections N      open connections (default 4096) -> 503\n"
            "  --max-inflight N         sequences in flight (default 4096) -> 429\n"
            "  --header-timeout-ms N    whole request head must arrive within (default 10000) -> 408\n"
            "  --body-timeout-ms N      longest pause inside a body (default 30000) -> 408\n"
            "  --idle-timeout-ms N      idle keep-alive connection closed after (default 60000)\n"
            "  --worker-timeout-ms N    forget a worker silent this long (default 5000)\n"
            "  --drain-timeout-ms N     on SIGTERM, wait this long for requests in flight (default 30000);\n"
            "                           a second signal stops at once\n");
}

static int add_key(struct fe_config *c, const char *k, struct error *err)
{
    if (!*k)
        return 0;
    if (c->n_keys == FE_MAX_KEYS)
        return error_set(err, "more than %d API keys", FE_MAX_KEYS);
    c->api_keys[c->n_keys] = strdup(k);
    return c->api_keys[c->n_keys++] ? 0 : error_set(err, "out of memory");
}

static int key_file(struct fe_config *c, const char *path, struct error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return error_set(err, "--api-key-file %s: cannot open it", path);
    char line[512];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] != '#')
            rc = add_key(c, line, err);
    }
    fclose(f);
    return rc;
}

static int num(const char *flag, const char *v, long lo, long hi, int *out, struct error *err)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end || x < lo || x > hi)
        return error_set(err, "%s must be an integer from %ld to %ld, got \"%s\"", flag, lo, hi, v);
    *out = (int)x;
    return 0;
}

static void defaults(struct fe_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8000;
    c->ucx_host = "127.0.0.1";
    c->ucx_port = 9000;
    http_limits_default(&c->http);
    c->max_inflight = 4096;
    c->stale_ms = 5000;
    c->drain_ms = 30000;
}

static int set_size(const char *flag, const char *v, size_t *out, struct error *err)
{
    int x;
    if (num(flag, v, 1, 1L << 30, &x, err))
        return -1;
    *out = (size_t)x;
    return 0;
}

static int one_flag(struct fe_config *c, int opt, const char *v, const char *flag, struct error *err)
{
    switch (opt) {
    case 'H': c->host = v; return 0;
    case 'p': return num(flag, v, 0, 65535, &c->port, err);
    case 'm': c->model_dir = v; return 0;
    case 'n': c->served_name = v; return 0;
    case 'U': c->ucx_host = v; return 0;
    case 'u': return num(flag, v, 0, 65535, &c->ucx_port, err);
    case 'k': return add_key(c, v, err);
    case 'K': return key_file(c, v, err);
    case 'L': return num(flag, v, 2, 1 << 24, &c->max_model_len, err);
    case 'b': return set_size(flag, v, &c->http.max_body, err);
    case 'e': return set_size(flag, v, &c->http.max_head, err);
    case 'c': return num(flag, v, 1, 1 << 20, &c->http.max_conns, err);
    case 'i': return num(flag, v, 1, 1 << 24, &c->max_inflight, err);
    case 't': return num(flag, v, 1, 1 << 30, &c->http.head_timeout_ms, err);
    case 'T': return num(flag, v, 1, 1 << 30, &c->http.body_timeout_ms, err);
    case 'I': return num(flag, v, 1, 1 << 30, &c->http.idle_timeout_ms, err);
    case 'w': return num(flag, v, 100, 1 << 30, &c->stale_ms, err);
    case 'D': return num(flag, v, 0, 1 << 30, &c->drain_ms, err);
    default: return error_set(err, "unknown flag (see --help)");
    }
}

int fe_parse_args(int argc, char **argv, struct fe_config *c, struct error *err)
{
    static const struct option opts[] = {
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"model", 1, 0, 'm'}, {"served-model-name", 1, 0, 'n'},
        {"ucx-host", 1, 0, 'U'}, {"ucx-port", 1, 0, 'u'}, {"api-key", 1, 0, 'k'}, {"api-key-file", 1, 0, 'K'},
        {"max-model-len", 1, 0, 'L'}, {"max-body-bytes", 1, 0, 'b'}, {"max-header-bytes", 1, 0, 'e'},
        {"max-connections", 1, 0, 'c'}, {"max-inflight", 1, 0, 'i'}, {"header-timeout-ms", 1, 0, 't'},
        {"body-timeout-ms", 1, 0, 'T'}, {"idle-timeout-ms", 1, 0, 'I'}, {"worker-timeout-ms", 1, 0, 'w'},
        {"drain-timeout-ms", 1, 0, 'D'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    defaults(c);
    int opt, idx;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        }
        if (opt == '?' || opt == ':')
            return error_set(err, "unknown flag or missing value: %s (see --help)", argv[optind - 1]);
        if (one_flag(c, opt, optarg, argv[optind - 1], err))
            return -1;
    }
    if (optind < argc)
        return error_set(err, "unexpected argument \"%s\" (see --help)", argv[optind]);
    if (!c->model_dir)
        return error_set(err, "--model DIR is required (a folder with tokenizer.json)");
    const char *env = getenv("PDSERVE_API_KEY");
    return env ? add_key(c, env, err) : 0;
}

void fe_config_free(struct fe_config *c)
{
    for (int i = 0; i < c->n_keys; i++)
        free(c->api_keys[i]);
    c->n_keys = 0;
}
