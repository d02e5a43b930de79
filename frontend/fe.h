/* fe.h — the frontend daemon as a whole: its configuration (flags), the objects it owns (tokenizer,
 * chat template, HTTP server, cluster view, metrics, the table of sequences in flight) and the entry
 * points between its modules. Everything runs on the one libuv loop thread. */
#ifndef PD_FE_H
#define PD_FE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/tmpl/chat.h"
#include "frontend/api_req.h"
#include "frontend/cluster.h"
#include "frontend/http.h"
#include "frontend/metrics.h"
#include "frontend/rebalance.h"
#include "frontend/toolcall.h"
#include "common/util/idmap.h"
#include "common/tok/tok.h"

#define FE_MAX_KEYS 16
#define FE_MAX_KEY_LEN 4096 /* bytes; a key must fit in an Authorization header */

struct fe_config {
    const char *host;
    int port;
    const char *model_dir;
    const char *served_name; /* default: the model folder's last path component */
    const char *ucx_host;
    int ucx_port;
    char *api_keys[FE_MAX_KEYS];
    int n_keys;
    struct http_limits http;
    int max_model_len;    /* 0: config.json's max_position_embeddings */
    int max_inflight;     /* sequences in flight; more → 429 */
    int stale_ms;         /* forget a worker silent this long */
    int drain_ms;         /* SIGTERM waits this long for requests in flight */
    int logprobs_mode;    /* enum sample_logprobs_mode for requests that do not name one */
    int tool_call_parser; /* enum tc_format; TC_AUTO: what the chat template shows */
    const char *cluster_key_file; /* NULL: systemd's credential, or none */
    bool insecure_cluster;        /* no key needed on a non-loopback --ucx-host */
    int slo_ttft_ms, slo_tpot_ms; /* SLO-aware routing (route_slo.h); 0: off */
    bool rebalance;               /* live prefill:decode rebalancing (rebalance.h) */
    struct rb_config rb;
    const char *cors_origin;      /* NULL: no CORS headers, OPTIONS is a 405 */
    int stats_interval_s;         /* 0: no stats lines (oplog.c) */
};

/* Parses argv (and PDSERVE_API_KEY) into c. Exits 0 on --help; returns -1 with err on a bad flag. */
int fe_parse_args(int argc, char **argv, struct fe_config *c, struct error *err);
/* Whether `given` (what followed "Bearer ") is one of c's keys. Its time depends on the lengths of
 * the configured keys only, never on which bytes match. */
bool fe_config_key_ok(const struct fe_config *c, const char *given);
/* Wipes the keys from memory and frees them. */
void fe_config_free(struct fe_config *c);

struct fe {
    struct fe_config cfg;
    uv_loop_t *loop;
    struct tokenizer *tok;
    struct chat_template *chat; /* NULL: the model has no template; chat requests get 400 */
    enum tc_format tool_format; /* how the model writes tool calls (TC_NONE: they stay text) */
    const char *fim[3];         /* fill-in-the-middle tokens (prefix, suffix, middle), or NULLs */
    int max_model_len;
    int vocab_size;             /* config.json's; 0 if unknown (see fe_vocab_size) */
    char served_name[128];
    char fingerprint[16];       /* system_fingerprint: "fp_" + a hash of the model and this build */
    long long created;          /* unix seconds the model was loaded: /v1/models' "created" */
    struct http_server *http;
    struct cluster *cluster;
    struct rebalancer *rebalancer; /* NULL: --rebalance is off */
    struct metrics metrics;
    struct idmap seqs;          /* sequence id → struct gen_seq */
    uint64_t next_seq;
    int n_inflight;             /* sequences in flight */
    int n_preparing;            /* requests being parsed and tokenized on the thread pool (gen.c, tokenize.c) */
    char *models_json;          /* the /v1/models answer, rebuilt when max_model_len changes */
    int models_len;             /* the max_model_len it says */
    bool draining;              /* new generation requests get 503 */
    uv_timer_t drain_timer;
    uint64_t drain_deadline;
    void (*on_drained)(struct fe *fe);
    uv_timer_t watchdog;
    bool watchdog_on;
    uv_timer_t trim_timer;      /* memory.c */
    uv_timer_t stats_timer;     /* oplog.c */
    bool stats_on;
    uint64_t stats_prompt, stats_gen; /* token counts at the last stats line */
    char cors_headers[512];
    int trim_timer_state;       /* 0 not made yet, 1 made, -1 closed at shutdown */
    size_t parsed_since_trim;
};

/* Token ids below this are valid in prompts and /detokenize: the larger of config.json's vocab_size
 * and the tokenizer's size. Ids past the tokenizer's last token (a padded vocabulary) decode to "". */
int fe_vocab_size(const struct fe *fe);
/* The longest sequence (prompt + completion) the deployment can hold: the model's context (or
 * --max-model-len) or, when smaller, the largest decode worker's KV pool. Safe from any thread. */
int fe_max_model_len(struct fe *fe);
/* The longest prompt: less than fe_max_model_len, and within the largest prefill worker's pool. */
int fe_max_prompt_len(struct fe *fe);
/* Loads the tokenizer, template and context length from cfg.model_dir. */
int fe_load_model(struct fe *fe, struct error *err);
/* Starts the HTTP server and the cluster port (workers join there, cluster.h) on fe->loop. */
int fe_start(struct fe *fe, struct error *err);
/* Graceful stop: no new connections or generation requests; when the requests in flight have
 * finished (or cfg.drain_ms passed) it stops as fe_stop and calls done. */
void fe_drain(struct fe *fe, void (*done)(struct fe *fe));
/* Stops both; in-flight requests are aborted. Run the loop afterwards so handles close. */
void fe_stop(struct fe *fe);
void fe_free(struct fe *fe);

/* notify.c: systemd READY/STATUS/WATCHDOG (when the unit asks for it) and STOPPING. */
void fe_notify_ready(struct fe *fe);
void fe_notify_stopping(struct fe *fe);

/* routes.c: the HTTP handler (ctx is the struct fe). */
void routes_handle(struct http_request *req, void *ctx);
/* Answers with an OpenAI-shaped error and counts it. */
void fe_respond_error(struct fe *fe, struct http_request *req, const struct apierr *e);
void fe_respond_json(struct fe *fe, struct http_request *req, int status, const char *json);

/* tokenize.c: /tokenize and /detokenize, computed on the thread pool. */
void fe_tokenize(struct fe *fe, struct http_request *req);
void fe_detokenize(struct fe *fe, struct http_request *req);

/* gen.c: completions and chat completions from a validated request to the last chunk. */
void gen_start(struct fe *fe, struct http_request *req, enum api_kind kind);
/* From the cluster: a TOKENS or ERROR message for one of our sequences; a worker being forgotten. */
void gen_on_message(void *fe, struct cl_worker *from, struct wire_msg *msg);
void gen_on_worker_lost(void *fe, struct cl_worker *w, const char *reason);
/* Aborts every request in flight (shutdown). */
void gen_abort_all(struct fe *fe);

/* oplog.c: request ids, the access log, the stats line and CORS headers (after the HTTP server starts). */
void oplog_request_id(struct http_request *req);
void oplog_start(struct fe *fe);
void oplog_stop(struct fe *fe);

/* memory.c: the malloc policy (call once at start), a trim when a burst of bodies is over, and the
 * trim timer closed (fe_stop). */
void fe_memory_init(void);
void fe_memory_body_done(struct fe *fe, size_t body_len);
void fe_memory_stop(struct fe *fe);

#endif
