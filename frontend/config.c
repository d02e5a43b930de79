/* config.c — the frontend's flags (see usage below and docs/frontend.md). API keys come from
 * --api-key (repeatable), --api-key-file (one key a line, '#' comments) and PDSERVE_API_KEY.
 *
 * Keys are secrets: no message here quotes one (a bad key is named by where it came from, a file and
 * line number), a key given on the command line is overwritten in argv once copied, and
 * fe_config_free wipes the copies. Key sources fail closed: an empty --api-key, a key file without a
 * key, or a set-but-empty PDSERVE_API_KEY is an error, never "no authentication". */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/fe.h"
#include "frontend/toolcall.h"
#include "common/util/log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdserve-frontend --model DIR [options]\n"
            "  --host ADDR              HTTP address (default 127.0.0.1)\n"
            "  --port N                 HTTP port (default 8000)\n"
            "  --model DIR|FILE.gguf    model folder (tokenizer.json, tokenizer_config.json, config.json) or a\n"
            "                           GGUF file (tokenizer and chat template from its metadata)\n"
            "  --served-model-name S    the name clients use (default: the folder's name)\n"
            "  --ucx-host ADDR          where workers register (default 127.0.0.1)\n"
            "  --ucx-port N             cluster port where workers join (default 9000)\n"
            "  --cluster-key-file FILE  the key every daemon of the cluster shares: peers must prove it\n"
            "                           before they join (default: systemd credential pdserve-cluster-key)\n"
            "  --insecure-cluster       allow a non-loopback --ucx-host without a cluster key\n"
            "  --api-key KEY            require 'Authorization: Bearer KEY' (repeatable; visible in ps:\n"
            "                           prefer --api-key-file or PDSERVE_API_KEY)\n"
            "  --api-key-file FILE      keys, one a line; PDSERVE_API_KEY adds one more\n"
            "  --max-model-len N        context length (default: config.json max_position_embeddings)\n"
            "  --max-body-bytes N       request body limit (default 8388608) -> 413\n"
            "  --max-buffered-bytes N   request bodies held across all connections (default 67108864) -> 503\n"
            "  --max-header-bytes N     request head limit (default 16384) -> 431\n"
            "  --max-connections N      open connections (default 4096) -> 503\n"
            "  --max-inflight N         sequences in flight (default 4096) -> 429\n"
            "  --header-timeout-ms N    whole request head must arrive within (default 10000) -> 408\n"
            "  --body-timeout-ms N      whole body must arrive within (default 30000) -> 408\n"
            "  --idle-timeout-ms N      idle keep-alive connection closed after (default 60000)\n"
            "  --worker-timeout-ms N    forget a worker silent this long (default 5000)\n"
            "  --drain-timeout S        on SIGTERM, wait this many seconds for requests in flight (default\n"
            "                           30, as the workers' --drain-timeout); a second signal stops at once\n"
            "  --drain-timeout-ms N     the same in milliseconds (the older flag)\n"
            "  --logprobs-mode M        what reported logprobs are, unless a request's logprobs_mode says:\n"
            "                           raw_logprobs (default: the model's log-softmax, before penalties\n"
            "                           and temperature, as vLLM) or processed_logprobs (after them)\n"
            "  --slo-ttft-ms N          SLO-aware routing (conditional disaggregation): a prompt whose\n"
            "                           disaggregated TTFT would exceed 80%% of N ms is prefilled on a\n"
            "                           colocated worker if that is sooner; colocated workers also decode\n"
            "                           for the prefill workers (default 0: off)\n"
            "  --slo-tpot-ms N          with --slo-ttft-ms: only while that worker's TPOT stays within N ms\n"
            "  --rebalance              with --slo-ttft-ms: switch workers between the prefill and the\n"
            "                           colocated role as the prompt work changes (drain, switch, rejoin;\n"
            "                           workers started with --pin-role keep theirs)\n"
            "  --rebalance-low X        a prefill worker turns colocated when the prompt work would keep\n"
            "                           the prefill workers under X busy each, for 3 windows in a row\n"
            "                           (one while a decoding worker's TPOT is at 80%% of --slo-tpot-ms;\n"
            "                           default 0.3)\n"
            "  --rebalance-high X       a colocated worker turns prefill when the prompt work would keep\n"
            "                           one more prefill worker at least X busy and, for a window, TTFT\n"
            "                           and TPOT have been at 80%% of their SLOs (default 0.6)\n"
            "  --rebalance-max X        ... and only while the prefill workers, with it, would be at most\n"
            "                           X busy: past that the cluster is overloaded, and a prefill worker\n"
            "                           would queue the prompts longer still (default 0.8; 0: no cap)\n"
            "  --rebalance-window-s N   the prompt work is measured over N s; no two switches closer than\n"
            "                           that (default 10)\n"
            "  --cors-origin ORIGIN     allow browsers on ORIGIN (or *): CORS headers on every answer, and\n"
            "                           OPTIONS preflights answered 204 (default: none)\n"
            "  --stats-interval-s N     a stats line (tokens/s, running, waiting, KV use) every N s while\n"
            "                           there is work (default 10; 0: never)\n"
            "  --tool-call-parser P     how the model writes tool calls: hermes (<tool_call> blocks: Qwen,\n"
            "                           Hermes), llama3_json (a JSON object: Llama 3.1+), none (left as\n"
            "                           text), or auto (default: what the chat template shows)\n");
}

/* A key is what a client can send after "Bearer ": printable ASCII, no spaces (RFC 6750's token
 * characters and a few more). `where` names the source in errors; the key itself is never quoted. */
static int add_key(struct fe_config *c, const char *k, size_t len, const char *where, struct error *err)
{
    if (len == 0)
        return error_set(err, "%s: the API key is empty", where);
    if (len > FE_MAX_KEY_LEN)
        return error_set(err, "%s: the API key is longer than %d bytes", where, FE_MAX_KEY_LEN);
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)k[i]))
            return error_set(err, "%s: the API key holds a space or a non-printable byte (at offset %zu); keys "
                                  "are printable ASCII", where, i);
    if (c->n_keys == FE_MAX_KEYS)
        return error_set(err, "%s: more than %d API keys", where, FE_MAX_KEYS);
    c->api_keys[c->n_keys] = strndup(k, len);
    return c->api_keys[c->n_keys++] ? 0 : error_set(err, "out of memory");
}

/* One key a line; blank lines and lines starting with '#' are skipped, whitespace around a key is
 * not part of it. A file that names no key is an error: the operator asked for authentication. */
static int key_file(struct fe_config *c, const char *path, struct error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return error_set(err, "--api-key-file %s: cannot open it", path);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("--api-key-file %s is readable by every user of this machine; chmod o-r it", path);
    char *line = NULL, where[512];
    size_t cap = 0;
    ssize_t n;
    int rc = 0, lineno = 0, before = c->n_keys;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *k = line, *end = line + n;
        while (k < end && isspace((unsigned char)*k))
            k++;
        while (end > k && isspace((unsigned char)end[-1]))
            end--;
        if (k == end || *k == '#')
            continue;
        snprintf(where, sizeof where, "--api-key-file %s, line %d", path, lineno);
        rc = add_key(c, k, (size_t)(end - k), where, err);
    }
    if (line) {
        explicit_bzero(line, cap);
        free(line);
    }
    fclose(f);
    if (rc == 0 && c->n_keys == before)
        rc = error_set(err, "--api-key-file %s holds no key (one a line; '#' starts a comment)", path);
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

/* A fraction in (0, 10]. */
static int share(const char *flag, const char *v, double *out, struct error *err)
{
    char *end;
    double x = strtod(v, &end);
    if (*v == 0 || *end || !(x > 0 && x <= 10))
        return error_set(err, "%s must be a number above 0 and at most 10, got \"%s\"", flag, v);
    *out = x;
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
    c->stats_interval_s = 10;
    c->rb = (struct rb_config)RB_CONFIG_DEFAULTS;
    c->tool_call_parser = TC_AUTO;
}

/* An origin goes into a header line: printable ASCII, no spaces (e.g. https://app.example:8443, or *). */
static int cors_ok(const char *v, struct error *err)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)v[i]))
            return error_set(err, "--cors-origin: an origin is printable ASCII without spaces");
    return n && n < 256 ? 0 : error_set(err, "--cors-origin: 1 to 255 characters");
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
    case 'k': return add_key(c, v, strlen(v), "--api-key", err);
    case 'K': return key_file(c, v, err);
    case 'L': return num(flag, v, 2, 1 << 24, &c->max_model_len, err);
    case 'b': return set_size(flag, v, &c->http.max_body, err);
    case 'B': return set_size(flag, v, &c->http.max_buffered, err);
    case 'e': return set_size(flag, v, &c->http.max_head, err);
    case 'c': return num(flag, v, 1, 1 << 20, &c->http.max_conns, err);
    case 'i': return num(flag, v, 1, 1 << 24, &c->max_inflight, err);
    case 't': return num(flag, v, 1, 1 << 30, &c->http.head_timeout_ms, err);
    case 'T': return num(flag, v, 1, 1 << 30, &c->http.body_timeout_ms, err);
    case 'I': return num(flag, v, 1, 1 << 30, &c->http.idle_timeout_ms, err);
    case 'w': return num(flag, v, 100, 1 << 30, &c->stale_ms, err);
    case 'D': return num(flag, v, 0, 1 << 30, &c->drain_ms, err);
    case 'r':
        if (num(flag, v, 0, 1 << 20, &c->drain_ms, err))
            return -1;
        c->drain_ms *= 1000;
        return 0;
    case 'M':
        if ((c->logprobs_mode = sample_logprobs_mode_parse(v)) < 0)
            return error_set(err, "--logprobs-mode %s: expected raw_logprobs or processed_logprobs", v);
        return 0;
    case 'O': c->cors_origin = v; return cors_ok(v, err);
    case 'P':
        if ((c->tool_call_parser = tc_format_parse(v)) < 0)
            return error_set(err, "--tool-call-parser %s: expected hermes, llama3_json, none or auto", v);
        return 0;
    case 'Q': return num(flag, v, 0, 86400, &c->stats_interval_s, err);
    case 's': return num(flag, v, 0, 1 << 30, &c->slo_ttft_ms, err);
    case 'S': return num(flag, v, 0, 1 << 30, &c->slo_tpot_ms, err);
    case 'A': c->rebalance = true; return 0;
    case 'l': return share(flag, v, &c->rb.low, err);
    case 'g': return share(flag, v, &c->rb.high, err);
    case 'x': return strcmp(v, "0") ? share(flag, v, &c->rb.max_busy, err) : (c->rb.max_busy = 0, 0);
    case 'W': return num(flag, v, 1, RB_MAX_WINDOW_S, &c->rb.window_s, err);
    case 'C': c->cluster_key_file = v; return 0;
    case 'X': c->insecure_cluster = true; return 0;
    default: return error_set(err, "unknown flag (see --help)");
    }
}

/* "--api-kye=SECRET" is an unknown flag: name it in the error without what follows '='. */
static int bad_flag(const char *arg, struct error *err)
{
    const char *eq = strchr(arg, '=');
    int n = eq ? (int)(eq - arg) : (int)strlen(arg);
    return error_set(err, "unknown flag or missing value: %.*s%s (see --help)", n, arg, eq ? "=..." : "");
}

/* The key's bytes in argv (/proc/PID/cmdline, ps) are overwritten once copied. ps still shows the
 * key for the moment between exec and this, and shells keep it in their history: the file and the
 * environment are the ways to pass keys (README.md, "Security and threat model"). */
static void hide_arg(char *v)
{
    memset(v, 'x', strlen(v));
}

static int env_key(struct fe_config *c, struct error *err)
{
    const char *env = getenv("PDSERVE_API_KEY");
    if (!env)
        return 0;
    const char *k = env, *end = env + strlen(env);
    while (k < end && isspace((unsigned char)*k))
        k++;
    while (end > k && isspace((unsigned char)end[-1]))
        end--;
    if (k == end)
        return error_set(err, "PDSERVE_API_KEY is set but empty; unset it to run without that key");
    return add_key(c, k, (size_t)(end - k), "PDSERVE_API_KEY", err);
}

int fe_parse_args(int argc, char **argv, struct fe_config *c, struct error *err)
{
    static const struct option opts[] = {
        {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"model", 1, 0, 'm'}, {"served-model-name", 1, 0, 'n'},
        {"ucx-host", 1, 0, 'U'}, {"ucx-port", 1, 0, 'u'}, {"api-key", 1, 0, 'k'}, {"api-key-file", 1, 0, 'K'},
        {"max-model-len", 1, 0, 'L'}, {"max-body-bytes", 1, 0, 'b'}, {"max-buffered-bytes", 1, 0, 'B'}, {"max-header-bytes", 1, 0, 'e'},
        {"max-connections", 1, 0, 'c'}, {"max-inflight", 1, 0, 'i'}, {"header-timeout-ms", 1, 0, 't'},
        {"body-timeout-ms", 1, 0, 'T'}, {"idle-timeout-ms", 1, 0, 'I'}, {"worker-timeout-ms", 1, 0, 'w'},
        {"drain-timeout-ms", 1, 0, 'D'}, {"drain-timeout", 1, 0, 'r'}, {"logprobs-mode", 1, 0, 'M'},
        {"cluster-key-file", 1, 0, 'C'}, {"insecure-cluster", 0, 0, 'X'},
        {"slo-ttft-ms", 1, 0, 's'}, {"slo-tpot-ms", 1, 0, 'S'}, {"cors-origin", 1, 0, 'O'},
        {"stats-interval-s", 1, 0, 'Q'}, {"tool-call-parser", 1, 0, 'P'}, {"rebalance", 0, 0, 'A'},
        {"rebalance-low", 1, 0, 'l'}, {"rebalance-high", 1, 0, 'g'}, {"rebalance-max", 1, 0, 'x'},
        {"rebalance-window-s", 1, 0, 'W'},
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
            return bad_flag(argv[optind - 1], err);
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", opts[idx].name);
        if (one_flag(c, opt, optarg, flag, err))
            return -1;
        if (opt == 'k')
            hide_arg(optarg);
    }
    if (optind < argc)
        return error_set(err, "an argument that is not a flag follows the flags (not shown: it could be a key; "
                              "see --help)");
    if (!c->model_dir)
        return error_set(err, "--model DIR is required (a folder with tokenizer.json, or a .gguf file)");
    if (c->rebalance && !c->slo_ttft_ms)
        return error_set(err, "--rebalance needs --slo-ttft-ms: only SLO-aware routing lets colocated workers "
                              "decode for prefill workers, so that either role can serve");
    char band[160];
    if (rb_config_check(&c->rb, band, sizeof band))
        return error_set(err, "%s", band);
    c->rb.tpot_slo_ms = c->slo_tpot_ms;
    c->rb.ttft_slo_ms = c->slo_ttft_ms;
    return env_key(c, err);
}

/* Whether `given` (glen bytes) equals `key`, in time that depends on the key's length only: every
 * byte of the key is compared whatever the client sent, with no branch on the bytes, so response
 * times do not reveal how much of a guess was right. Bytes past the end of `given` compare as its
 * terminating NUL (never equal to a key byte, keys being printable). */
static bool key_equal(const char *given, size_t glen, const char *key)
{
    size_t klen = strlen(key);
    volatile unsigned char diff = (unsigned char)(glen != klen);
    for (size_t i = 0; i < klen; i++) {
        size_t j = i < glen ? i : glen; /* a conditional move, not a branch on content */
        diff |= (unsigned char)(key[i] ^ given[j]);
    }
    return diff == 0;
}

/* Every key is compared, so the time does not tell which key matched or how many were tried. */
bool fe_config_key_ok(const struct fe_config *c, const char *given)
{
    size_t glen = strlen(given);
    bool ok = false;
    for (int i = 0; i < c->n_keys; i++)
        ok |= key_equal(given, glen, c->api_keys[i]);
    return ok;
}

void fe_config_free(struct fe_config *c)
{
    for (int i = 0; i < c->n_keys; i++) {
        explicit_bzero(c->api_keys[i], strlen(c->api_keys[i]));
        free(c->api_keys[i]);
        c->api_keys[i] = NULL;
    }
    c->n_keys = 0;
}
