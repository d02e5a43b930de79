/* fe.c — the frontend's objects: loading the model's tokenizer, template and context length, and
 * starting/stopping the HTTP server and the worker listener together. */
#include "frontend/fe.h"
#include "proto/cluster_key.h"

#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/log.h"
#include "common/util/modelfile.h"
#include "common/engine/gguf_hf.h"

/* config.json's max_position_embeddings (unless --max-model-len was given) and vocab_size. A model's
 * vocabulary is often padded past its tokenizer (to a multiple of 64 or 128), so it can generate
 * ids the tokenizer has no token for: those are valid ids everywhere and decode to "". */
static int read_model_config(struct fe *fe, struct error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", fe->cfg.model_dir);
    json_error_t je;
    bool absent;
    struct error gerr;
    json_t *cfg = gguf_is_file(fe->cfg.model_dir) ? gguf_hf_file(fe->cfg.model_dir, "config.json", &absent, &gerr)
                                                   : mf_load_json(path, 0, &je);
    if (!cfg && gguf_is_file(fe->cfg.model_dir))
        return error_set(err, "%s", gerr.msg);
    if (!cfg && !fe->max_model_len)
        return error_set(err, "%s: %s; give --max-model-len to run without it", path, je.text);
    json_t *v = json_object_get(cfg, "max_position_embeddings");
    int n = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    v = json_object_get(cfg, "vocab_size");
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < (1 << 30))
        fe->vocab_size = (int)json_integer_value(v);
    json_decref(cfg);
    if (!fe->max_model_len && n < 2)
        return error_set(err, "%s has no max_position_embeddings; give --max-model-len", path);
    if (!fe->max_model_len)
        fe->max_model_len = n;
    return 0;
}

int fe_vocab_size(const struct fe *fe)
{
    int t = tok_vocab_size(fe->tok);
    return fe->vocab_size > t ? fe->vocab_size : t;
}

int fe_max_model_len(struct fe *fe)
{
    int max_prompt, max_seq;
    cluster_limits(fe->cluster, &max_prompt, &max_seq);
    return max_seq > 0 && max_seq < fe->max_model_len ? max_seq : fe->max_model_len;
}

int fe_max_prompt_len(struct fe *fe)
{
    int max_prompt, max_seq, n = fe_max_model_len(fe) - 1; /* room for one generated token */
    cluster_limits(fe->cluster, &max_prompt, &max_seq);
    return max_prompt > 0 && max_prompt < n ? max_prompt : n;
}

static void default_name(struct fe *fe)
{
    if (fe->cfg.served_name) {
        snprintf(fe->served_name, sizeof fe->served_name, "%s", fe->cfg.served_name);
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fe->cfg.model_dir);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    const char *base = strrchr(dir, '/');
    /* a longer folder name is cut to the buffer; --served-model-name sets any name */
    snprintf(fe->served_name, sizeof fe->served_name, "%.*s", (int)sizeof fe->served_name - 1, base ? base + 1 : dir);
}

/* The same served model and config.json on the same build give the same fingerprint, as OpenAI's
 * system_fingerprint names a backend configuration. */
static void fingerprint(struct fe *fe)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    char conf[4096];
    snprintf(conf, sizeof conf, "%s|%s|%s %s|%d", fe->served_name, fe->cfg.model_dir, __DATE__, __TIME__,
             fe->max_model_len);
    for (const char *p = conf; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(fe->fingerprint, sizeof fe->fingerprint, "fp_%010llx", (unsigned long long)(h & 0xffffffffffull));
}

/* Fill-in-the-middle: the tokenizer's FIM tokens, as Qwen (<|fim_prefix|>) or StarCoder (<fim_prefix>)
 * spell them; a prompt and suffix become PREFIX prompt SUFFIX suffix MIDDLE. */
static void find_fim(struct fe *fe)
{
    static const char *const styles[][3] = {{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
                                            {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}};
    for (size_t i = 0; i < sizeof styles / sizeof *styles && !fe->fim[0]; i++)
        if (tok_token_id(fe->tok, styles[i][0]) >= 0 && tok_token_id(fe->tok, styles[i][1]) >= 0 &&
            tok_token_id(fe->tok, styles[i][2]) >= 0)
            memcpy(fe->fim, styles[i], sizeof fe->fim);
    if (fe->fim[0])
        log_info("fill in the middle: %s … %s … %s", fe->fim[0], fe->fim[1], fe->fim[2]);
}

int fe_load_model(struct fe *fe, struct error *err)
{
    default_name(fe);
    if (!gguf_is_file(fe->cfg.model_dir) && mf_check_dir(fe->cfg.model_dir, "--model", err))
        return -1;
    fe->tok = tok_load(fe->cfg.model_dir, err);
    if (!fe->tok)
        return error_wrap(err, "--model %s", fe->cfg.model_dir);
    struct error cerr;
    fe->chat = chat_load(fe->cfg.model_dir, NULL, &cerr);
    if (!fe->chat)
        log_warn("no chat template (%s): /v1/chat/completions will answer 400", cerr.msg);
    fe->tool_format = fe->cfg.tool_call_parser == TC_AUTO ? tc_detect(fe->chat) : (enum tc_format)fe->cfg.tool_call_parser;
    log_info("tool calls: %s%s", tc_format_name(fe->tool_format),
             fe->cfg.tool_call_parser == TC_AUTO ? " (from the chat template)" : "");
    find_fim(fe);
    fe->max_model_len = fe->cfg.max_model_len;
    if (read_model_config(fe, err))
        return -1;
    fingerprint(fe);
    fe->created = (long long)time(NULL);
    log_info("model %s: vocabulary %d (tokenizer %d), context %d tokens, served as \"%s\"", fe->cfg.model_dir,
             fe_vocab_size(fe), tok_vocab_size(fe->tok), fe->max_model_len, fe->served_name);
    return 0;
}

/* File descriptors besides clients' connections: listeners, UCX (its sockets and event fds), the
 * thread pool, model and log files. */
#define FD_HEADROOM 256

/* Every client connection is a file descriptor: over the open-file limit, libuv accepts and drops
 * extra clients with a reset, where --max-connections answers them 503. So the soft limit goes up
 * to the hard one, and if that is still short, --max-connections comes down to fit, with a warning. */
static void fit_open_files(struct fe *fe)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return;
    }
    rlim_t need = (rlim_t)fe->cfg.http.max_conns + FD_HEADROOM;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    int fit = rl.rlim_cur > 2 * FD_HEADROOM ? (int)(rl.rlim_cur - FD_HEADROOM) : (int)(rl.rlim_cur / 2);
    log_warn("the open-file limit is %llu: --max-connections lowered from %d to %d so that clients over it "
             "get a 503 rather than a reset; raise the limit (ulimit -n, LimitNOFILE=) to serve more",
             (unsigned long long)rl.rlim_cur, fe->cfg.http.max_conns, fit);
    fe->cfg.http.max_conns = fit > 0 ? fit : 1;
}

int fe_start(struct fe *fe, struct error *err)
{
    metrics_init(&fe->metrics);
    fit_open_files(fe);
    struct cluster_handlers h = {.on_message = gen_on_message, .on_worker_lost = gen_on_worker_lost};
    struct ckey key;
    if (ckey_load(fe->cfg.cluster_key_file, &key, err) ||
        ckey_check(&key, &fe->cfg.ucx_host, 1, fe->cfg.insecure_cluster, err))
        return -1;
    fe->cluster = cluster_new(fe->loop, fe->cfg.ucx_host, fe->cfg.ucx_port, fe->cfg.stale_ms, &key, &h, fe, err);
    ckey_wipe(&key);
    if (!fe->cluster)
        return -1;
    cluster_set_slo(fe->cluster, fe->cfg.slo_ttft_ms, fe->cfg.slo_tpot_ms);
    if (fe->cfg.slo_ttft_ms)
        log_info("SLO-aware routing: TTFT %d ms, TPOT %d ms%s", fe->cfg.slo_ttft_ms, fe->cfg.slo_tpot_ms,
                 fe->cfg.slo_tpot_ms ? "" : " (not checked)");
    if (fe->cfg.rebalance && !(fe->rebalancer = rebalancer_new(fe->loop, fe->cluster, &fe->cfg.rb))) {
        cluster_free(fe->cluster);
        fe->cluster = NULL;
        return error_set(err, "out of memory starting the rebalancer");
    }
    if (fe->rebalancer)
        log_info("rebalancing: prefill workers between %.2f and %.2f busy (taken on up to %.2f), measured over %d s",
                 fe->cfg.rb.low, fe->cfg.rb.high, fe->cfg.rb.max_busy, fe->cfg.rb.window_s);
    fe->http = http_server_new(fe->loop, fe->cfg.host, fe->cfg.port, &fe->cfg.http, routes_handle, fe, err);
    if (!fe->http) {
        cluster_free(fe->cluster);
        fe->cluster = NULL;
        return -1;
    }
    oplog_start(fe);
    log_info("listening on http://%s:%d (workers register at %s:%d)%s", fe->cfg.host, http_server_port(fe->http),
             fe->cfg.ucx_host, cluster_port(fe->cluster),
             fe->cfg.n_keys ? "; API keys required" : "; no API key: any client that reaches the port may use it");
    fe_notify_ready(fe);
    return 0;
}

static void drain_tick(uv_timer_t *t)
{
    struct fe *fe = t->data;
    if (fe->n_inflight + fe->n_preparing > 0 && uv_now(fe->loop) < fe->drain_deadline)
        return;
    if (fe->n_inflight > 0)
        log_warn("drain: %d sequences still running after %d ms; ending them", fe->n_inflight, fe->cfg.drain_ms);
    uv_close((uv_handle_t *)t, NULL);
    fe_stop(fe);
    if (fe->on_drained)
        fe->on_drained(fe);
}

void fe_drain(struct fe *fe, void (*done)(struct fe *fe))
{
    if (fe->draining)
        return;
    log_info("draining: no new requests; waiting up to %d ms for %d sequences in flight", fe->cfg.drain_ms,
             fe->n_inflight);
    fe->draining = true;
    fe->on_drained = done;
    fe_notify_stopping(fe);
    if (fe->http)
        http_server_stop_accepting(fe->http);
    fe->drain_deadline = uv_now(fe->loop) + (uint64_t)fe->cfg.drain_ms;
    uv_timer_init(fe->loop, &fe->drain_timer);
    fe->drain_timer.data = fe;
    uv_timer_start(&fe->drain_timer, drain_tick, 0, 50);
}

void fe_stop(struct fe *fe)
{
    fe_notify_stopping(fe);
    fe_memory_stop(fe);
    oplog_stop(fe);
    gen_abort_all(fe);
    if (fe->http)
        http_server_close(fe->http);
    fe->http = NULL;
    rebalancer_free(fe->rebalancer);
    fe->rebalancer = NULL;
    if (fe->cluster)
        cluster_free(fe->cluster);
    fe->cluster = NULL;
}

void fe_free(struct fe *fe)
{
    idmap_free(&fe->seqs);
    free(fe->models_json);
    chat_free(fe->chat);
    tok_free(fe->tok);
    fe_config_free(&fe->cfg);
}
