/* worker.c — the daemon runtime shared by prefill, decode and colocated workers (worker.h):
 * flags, start-up, the frontend connection and its reports, draining, systemd notification.
 * Switching roles is switch.c's. */
#include "worker/worker.h"
#include "worker/worker_internal.h"

#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/tok/tok.h"
#include "common/util/log.h"
#include "proto/cluster_key.h"

#define RECONNECT_MS 1000

static void usage(FILE *f, const char *prog, bool colocated)
{
    fprintf(f,
            "usage: %s --model DIR [options]\n"
            "  --model DIR           Hugging Face model folder (config.json, *.safetensors), or FILE.gguf\n"
            "  --frontend HOST:PORT  the frontend's cluster port (--ucx-port; default 127.0.0.1:9000)\n"
            "  --listen HOST:PORT    where this worker accepts peers (default 127.0.0.1:0 = any port)\n"
            "  --advertise HOST:PORT address peers should use (default: the listen address)\n"
            "  --id N                worker id, unique per role in the cluster (default: the pid)\n"
            "  --threads N           compute threads, all used by every step (default 1)\n"
            "  --weights stored|q8   matrices as stored, or int8 groups of 32 (default stored)\n"
            "  --kv-dtype f32|f16|bf16  KV cache element type (default f16)\n"
            "  --kv-blocks N         KV cache blocks (default: --kv-gib)\n"
            "  --kv-gib X            KV cache size in GiB (default 1)\n"
            "  --block-size N        tokens per KV block (default 16)\n"
            "  --max-batch N         sequences computed together (default 64)\n"
            "  --token-budget N      tokens per forward pass, prompts chunked to fit (default 512)\n"
            "  --load-interval-ms N  load report period (default 200)\n"
            "  --drain-timeout S     seconds SIGTERM waits for in-flight work (default 30)\n"
            "  --no-prefix-cache     do not keep and reuse the KV blocks of prompts already seen\n"
            "  --kv-wait-timeout S   decode: seconds a request may wait for KV blocks before it is\n"
            "                        refused as overloaded (503 at the frontend; default 30)\n"
            "  --cluster-key-file F  the key every daemon of the cluster shares (default: systemd\n"
            "                        credential pdserve-cluster-key; none: loopback addresses only)\n"
            "  --insecure-cluster    allow non-loopback addresses without a cluster key\n"
            "  --pin-role            keep this role: the frontend's rebalancer (--rebalance) may not\n"
            "                        switch it between prefill and colocated\n"
            "  --step-log FILE       append each forward pass's shape and time to FILE, a JSON object a\n"
            "                        line: the passes this worker ran, for pdserve-plan --steps\n"
            "%s",
            prog, colocated ? "  --colocated           also run prefill here (no separate prefill workers)\n" : "");
}

static void set_defaults(struct worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->frontend = "127.0.0.1:9000";
    o->listen = "127.0.0.1:0";
    o->id = (uint32_t)getpid();
    o->threads = 1;
    o->kv_dtype = KN_F16;
    o->kv_gib = 1.0;
    o->block_size = 16;
    o->max_batch = 64;
    o->token_budget = 512;
    o->load_ms = 200;
    o->drain_s = 30;
    o->kv_wait_s = 30;
}

static int positive(const char *flag, const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n <= 0 || n > 1 << 30) {
        fprintf(stderr, "%s must be a positive integer, got \"%s\"\n", flag, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int worker_parse_weights(const char *v, enum model_weights *out)
{
    if (strcmp(v, "stored") && strcmp(v, "q8")) {
        fprintf(stderr, "--weights must be stored or q8, got \"%s\"\n", v);
        return -1;
    }
    *out = strcmp(v, "q8") ? MODEL_WEIGHTS_STORED : MODEL_WEIGHTS_Q8;
    return 0;
}

static int worker_parse_kv_dtype(const char *v, enum kn_dtype *out)
{
    int t = kn_dtype_parse(v, 0);
    if (t < 0) {
        fprintf(stderr, "--kv-dtype must be f32, f16 or bf16, got \"%s\"\n", v);
        return -1;
    }
    *out = (enum kn_dtype)t;
    return 0;
}

int worker_parse_args(int argc, char **argv, const char *prog, bool allow_colocated, struct worker_opts *o)
{
    static const struct option longs[] = {
        {"model", 1, 0, 'm'},      {"frontend", 1, 0, 'f'},   {"listen", 1, 0, 'l'},
        {"advertise", 1, 0, 'a'},  {"id", 1, 0, 'i'},         {"threads", 1, 0, 't'},
        {"kv-blocks", 1, 0, 'b'},  {"kv-gib", 1, 0, 'g'},     {"block-size", 1, 0, 's'},
        {"max-batch", 1, 0, 'B'},  {"token-budget", 1, 0, 'T'}, {"load-interval-ms", 1, 0, 'L'},
        {"drain-timeout", 1, 0, 'D'}, {"colocated", 0, 0, 'c'}, {"help", 0, 0, 'h'},
        {"kv-wait-timeout", 1, 0, 'V'}, {"no-prefix-cache", 0, 0, 'P'},
        {"cluster-key-file", 1, 0, 'K'}, {"insecure-cluster", 0, 0, 'X'},
        {"weights", 1, 0, 'W'},    {"kv-dtype", 1, 0, 'Q'},   {"pin-role", 0, 0, 'R'},
        {"step-log", 1, 0, 'S'},   {0, 0, 0, 0}};
    set_defaults(o);
    int id = 0, rc = 0;
    for (int c; rc == 0 && (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'm': o->model_dir = optarg; break;
        case 'f': o->frontend = optarg; break;
        case 'l': o->listen = optarg; break;
        case 'a': o->advertise = optarg; break;
        case 'i': rc = positive("--id", optarg, &id), o->id = (uint32_t)id; break;
        case 't': rc = positive("--threads", optarg, &o->threads); break;
        case 'b': rc = positive("--kv-blocks", optarg, &o->kv_blocks); break;
        case 'g': o->kv_gib = strtod(optarg, NULL); rc = o->kv_gib > 0 ? 0 : -1; break;
        case 's': rc = positive("--block-size", optarg, &o->block_size); break;
        case 'B': rc = positive("--max-batch", optarg, &o->max_batch); break;
        case 'T': rc = positive("--token-budget", optarg, &o->token_budget); break;
        case 'L': rc = positive("--load-interval-ms", optarg, &o->load_ms); break;
        case 'D': rc = positive("--drain-timeout", optarg, &o->drain_s); break;
        case 'V': rc = positive("--kv-wait-timeout", optarg, &o->kv_wait_s); break;
        case 'P': o->no_prefix_cache = true; break;
        case 'c': o->colocated = true; rc = allow_colocated ? 0 : -1; break;
        case 'K': o->cluster_key_file = optarg; break;
        case 'X': o->insecure_cluster = true; break;
        case 'R': o->pin_role = true; break;
        case 'S': o->step_log = optarg; break;
        case 'W': rc = worker_parse_weights(optarg, &o->weights); break;
        case 'Q': rc = worker_parse_kv_dtype(optarg, &o->kv_dtype); break;
        case 'h': usage(stdout, prog, allow_colocated); exit(0);
        default: rc = -1;
        }
    }
    if (rc == 0 && (!o->model_dir || optind < argc)) {
        fprintf(stderr, "%s: %s\n", prog, o->model_dir ? "unexpected argument" : "--model is required");
        rc = -1;
    }
    if (rc < 0)
        usage(stderr, prog, allow_colocated);
    return rc;
}

void worker_status(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_info("%s", buf);
    sd_notifyf(0, "STATUS=%s", buf);
}

void worker_send_frontend(struct worker *w, const struct wire_msg *m)
{
    struct error err;
    if (w->frontend && ucx_send(w->frontend, m, NULL, NULL, &err) < 0)
        log_warn("sending %s to the frontend: %s", wire_type_name(m->type), err.msg);
}

void worker_send_prompt_logprobs(struct worker *w, uint64_t req_id, const struct prompt_logprobs *p, int k)
{
    size_t n = (size_t)p->n;
    int32_t *ids = malloc((n * (size_t)k + 1) * sizeof *ids);
    float *lps = malloc((n * (size_t)k + 1) * sizeof *lps);
    if (!ids || !lps) {
        log_warn("request %llu: out of memory sending the prompt's logprobs", (unsigned long long)req_id);
        free(ids), free(lps);
        return;
    }
    for (size_t i = 0; i < n; i++)
        wire_tokens_fill_top(ids + i * (size_t)k, lps + i * (size_t)k, k, &p->top[i]);
    struct wire_msg m = {.type = WIRE_PROMPT_LOGPROBS, .req_id = req_id};
    m.u.prompt_lp = (struct wire_prompt_logprobs){(uint32_t)n, p->logprobs, (uint8_t)k, ids, lps};
    worker_send_frontend(w, &m);
    free(ids);
    free(lps);
}

void worker_send_error(struct worker *w, uint64_t req_id, uint32_t code, const char *fmt, ...)
{
    struct wire_msg m = {.type = WIRE_ERROR, .req_id = req_id};
    m.u.error.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.u.error.message, sizeof m.u.error.message, fmt, ap);
    va_end(ap);
    log_warn("request %llu: %s", (unsigned long long)req_id, m.u.error.message);
    worker_send_frontend(w, &m);
}

/* ---- the frontend connection ---- */

static void on_registered(void *arg, int status, const char *reason)
{
    (void)reason;
    struct worker *w = arg;
    if (status < 0)
        return; /* the peer-lost callback reconnects */
    w->registered = true;
    w->keys_resync = true;
    sd_notify(0, "READY=1");
    worker_status("registered with the frontend at %s as %s worker %u", w->opts.frontend, worker_role_name(w),
                  w->opts.id);
}

uint8_t worker_wire_role(const struct worker *w)
{
    return w->opts.colocated ? WIRE_ROLE_COLOCATED : w->role->role;
}

const char *worker_role_name(const struct worker *w)
{
    return wire_role_name(worker_wire_role(w));
}

void worker_describe(struct worker *w, struct wire_register *r)
{
    r->role = worker_wire_role(w);
    r->worker_id = w->opts.id;
    r->max_batch = (uint32_t)w->opts.max_batch;
    r->block_size = (uint32_t)w->opts.block_size;
    r->total_blocks = (uint32_t)w->engine.kv.n_blocks;
    r->prefix_salt = kv_prefix_salt(&w->engine.kv);
    snprintf(r->listen_addr, sizeof r->listen_addr, "%s", w->role->listens ? w->advertise : "");
    r->pinned = w->n_slots < 2;
    snprintf(r->model, sizeof r->model, "%s", w->opts.model_dir);
    r->kv_dtype = (uint8_t)w->engine.kv.dtype;
    r->weights = (uint8_t)w->opts.weights;
    if (w->role->fill_register)
        w->role->fill_register(w, r);
}

int worker_check_pair(const struct worker *w, const struct wire_register *peer, struct error *err)
{
    if (peer->kv_dtype != (uint8_t)w->engine.kv.dtype)
        return error_set(err, "its KV cache is %s and this worker's is %s: the KV blocks sent between them "
                              "would be misread; start both with the same --kv-dtype",
                         kn_dtype_name((enum kn_dtype)peer->kv_dtype), kn_dtype_name(w->engine.kv.dtype));
    if (peer->weights != (uint8_t)w->opts.weights)
        return error_set(err, "its weights are %s and this worker's are %s: the tokens would differ from "
                              "one worker's; start both with the same --weights",
                         model_weights_name((enum model_weights)peer->weights), model_weights_name(w->opts.weights));
    return 0;
}

void worker_send_register(struct worker *w)
{
    struct wire_msg m = {.type = WIRE_REGISTER};
    struct error err;
    worker_describe(w, &m.u.reg);
    if (ucx_send(w->frontend, &m, on_registered, w, &err) < 0)
        log_warn("registering with the frontend: %s", err.msg);
    free(m.u.reg.pool.rkey);
}

static void on_reconnect(uv_timer_t *t);

static void connect_frontend(struct worker *w)
{
    struct error err;
    if (ucx_connect(w->ucx, w->opts.frontend, &w->frontend, &err) < 0) {
        log_warn("connecting to the frontend at %s: %s; retrying", w->opts.frontend, err.msg);
        w->frontend = NULL;
        uv_timer_start(&w->reconnect_timer, on_reconnect, RECONNECT_MS, 0);
        return;
    }
    worker_send_register(w);
}

static void on_reconnect(uv_timer_t *t)
{
    struct worker *w = t->data;
    if (!w->frontend && !w->draining)
        connect_frontend(w);
}

/* The prefix-cache keys added and evicted since the last report, for the frontend's KV-aware routing;
 * all cached keys instead after registering, or when events were lost (keys_reset). */
static void fill_prefix_keys(struct worker *w, struct wire_load *l)
{
    struct kv_pool *kv = &w->engine.kv;
    if (!kv->prefix)
        return;
    kv_prefix_stats(kv, &l->query_tokens, &l->hit_tokens);
    struct kv_event *ev = malloc(WIRE_MAX_PREFIX_KEYS * sizeof *ev);
    l->added = malloc(WIRE_MAX_PREFIX_KEYS * sizeof *l->added);
    l->evicted = malloc(WIRE_MAX_PREFIX_KEYS * sizeof *l->evicted);
    bool lost = false;
    int n = ev && l->added && l->evicted ? kv_prefix_events(kv, ev, WIRE_MAX_PREFIX_KEYS, &lost) : 0;
    if (!ev || !l->added || !l->evicted || lost || w->keys_resync) {
        l->keys_reset = 1;
        l->n_added = l->added ? (uint32_t)kv_prefix_keys(kv, l->added, WIRE_MAX_PREFIX_KEYS) : 0;
        w->keys_resync = !l->added; /* the events taken are in the snapshot */
    } else {
        for (int i = 0; i < n; i++) {
            if (ev[i].added)
                l->added[l->n_added++] = ev[i].key;
            else
                l->evicted[l->n_evicted++] = ev[i].key;
        }
    }
    free(ev);
}

static void note_step(struct worker *w, double seconds)
{
    int b = 0;
    while (b < WIRE_STEP_BUCKETS && seconds > wire_step_bounds[b])
        b++;
    if (b < WIRE_STEP_BUCKETS)
        atomic_fetch_add(&w->stats.bucket[b], 1);
    atomic_fetch_add(&w->stats.count, 1);
    atomic_fetch_add(&w->stats.sum_ns, (uint64_t)(seconds * 1e9));
}

int worker_step(struct worker *w, struct seq **seqs, int n, int budget, bool (*on_layer)(void *ctx, int layer),
                void *ctx, struct step_result *res, struct error *err)
{
    int rc = engine_step(&w->engine, seqs, n, budget, on_layer, ctx, res, err);
    if (rc == 0 && res->n_tokens > 0 && !res->stopped) { /* a stopped pass has no time: not a pass */
        note_step(w, res->seconds);
        if (w->step_log) /* t: when the pass began, on the host's monotonic clock (what passes leave idle) */
            fprintf(w->step_log, "{\"threads\": %d, \"tokens\": %d, \"prompt_attn\": %.0f, \"decode_attn\": %.0f, "
                                 "\"logits\": %d, \"secs\": %.6f, \"t\": %.6f}\n", w->opts.threads, res->n_tokens,
                    res->prompt_attn, res->decode_attn, res->n_logits, res->seconds, res->started);
    }
    return rc;
}

void worker_note_preemption(struct worker *w)
{
    atomic_fetch_add(&w->stats.preemptions, 1);
}

void worker_note_slo_step(struct worker *w)
{
    atomic_fetch_add(&w->stats.slo_steps, 1);
}

static void fill_stats(struct worker *w, struct wire_load *l)
{
    for (int b = 0; b < WIRE_STEP_BUCKETS; b++)
        l->steps.bucket[b] = atomic_load(&w->stats.bucket[b]);
    l->steps.count = atomic_load(&w->stats.count);
    l->steps.sum_s = (double)atomic_load(&w->stats.sum_ns) / 1e9;
    l->preemptions = atomic_load(&w->stats.preemptions);
    l->slo_steps = atomic_load(&w->stats.slo_steps);
}

static void on_load_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    if (w->opts.load_ms > 0 && (sd_watchdog_enabled(0, NULL) > 0))
        sd_notify(0, "WATCHDOG=1");
    if (!w->frontend)
        return;
    struct wire_msg m = {.type = WIRE_LOAD};
    m.u.load.worker_id = w->opts.id;
    m.u.load.total_blocks = (uint32_t)w->engine.kv.n_blocks;
    m.u.load.free_blocks = (uint32_t)(w->engine.kv.n_blocks - kv_used(&w->engine.kv));
    m.u.load.draining = w->draining;
    w->role->fill_load(w, &m.u.load);
    fill_stats(w, &m.u.load);
    fill_prefix_keys(w, &m.u.load);
    worker_send_frontend(w, &m);
    free(m.u.load.added);
    free(m.u.load.evicted);
}

/* ---- transport callbacks ---- */

static void on_message(struct ucx *u, struct ucx_peer *peer, struct wire_msg *msg, void *user)
{
    (void)u;
    struct worker *w = user;
    if (msg->type == WIRE_ROLE) {
        if (peer == w->frontend)
            worker_on_role(w, &msg->u.role);
        return;
    }
    w->role->on_message(w, peer, msg);
}

static void on_peer_lost(struct ucx *u, struct ucx_peer *peer, const char *reason, void *user)
{
    (void)u;
    struct worker *w = user;
    if (peer != w->frontend) {
        log_warn("peer %s lost: %s", ucx_peer_name(peer), reason);
        if (w->role->on_peer_lost)
            w->role->on_peer_lost(w, peer);
        return;
    }
    log_warn("frontend %s lost: %s; reconnecting every %d ms", w->opts.frontend, reason, RECONNECT_MS);
    w->frontend = NULL;
    w->registered = false;
    worker_switch_cancel(w, "the frontend is gone");
    w->role->on_frontend_lost(w);
    if (!w->draining)
        uv_timer_start(&w->reconnect_timer, on_reconnect, RECONNECT_MS, 0);
}

void worker_take_mail(struct worker *w)
{
    for (struct mail *m = mailbox_take_all(&w->to_loop), *next; m; m = next) {
        next = m->next;
        w->role->on_mail(w, m);
    }
    if (w->role->after_mail)
        w->role->after_mail(w);
}

static void on_mail(uv_async_t *a)
{
    worker_take_mail(a->data);
}

void worker_wake_engine(struct worker *w)
{
    struct mail *wake = calloc(1, sizeof *wake); /* type 0: "look at stopping" */
    if (wake)
        mailbox_post(&w->to_engine, wake);
}

/* ---- draining and shutdown ---- */

static void stop_loop(struct worker *w)
{
    atomic_store(&w->stopping, true);
    worker_wake_engine(w);
    uv_timer_stop(&w->load_timer);
    uv_timer_stop(&w->reconnect_timer);
    uv_timer_stop(&w->drain_timer);
    uv_timer_stop(&w->sw.timer);
    uv_signal_stop(&w->sigterm);
    uv_signal_stop(&w->sigint);
    uv_stop(&w->loop);
}

static void on_drain_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    bool busy = w->role->busy(w) || now < w->drain_started_ms + DRAIN_GRACE_MS;
    if (busy && now < w->drain_deadline_ms)
        return;
    if (busy)
        log_warn("drain timeout (%d s): failing the requests still in flight", w->opts.drain_s);
    w->role->on_frontend_lost(w); /* fails what is left, frees its blocks */
    stop_loop(w);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct worker *w = s->data;
    if (w->draining) {
        log_warn("second signal: stopping now");
        w->drain_deadline_ms = 0;
        return;
    }
    worker_switch_cancel(w, "shutting down");
    w->draining = true;
    w->drain_started_ms = uv_now(&w->loop);
    w->drain_deadline_ms = w->drain_started_ms + (uint64_t)w->opts.drain_s * 1000;
    sd_notify(0, "STOPPING=1");
    on_load_timer(&w->load_timer); /* the frontend routes nothing new here from now on */
    worker_status("%s: draining (new requests refused, %d s for those in flight)", strsignal(signum),
                  w->opts.drain_s);
    uv_timer_start(&w->drain_timer, on_drain_timer, 0, 50);
}

/* ---- start-up ---- */

/* What makes two workers' KV blocks interchangeable: the model's shape (prefix-cache keys chain from
 * it, so the frontend and the other role find the same keys for the same tokens). */
static uint64_t model_salt(const struct model_config *c)
{
    int32_t shape[] = {c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim, c->vocab_size,
                       c->max_pos, (int32_t)(c->rope_theta * 16), (int32_t)(c->norm_eps * 1e9f)};
    return kv_block_key(0x70647365727665ull /* "pdserve" */, shape, (int)(sizeof shape / sizeof *shape));
}

static const char *token_bytes(void *ctx, int32_t id, size_t *len)
{
    const struct tokenizer *t = ctx;
    return tok_is_special(t, id) ? NULL : tok_id_bytes(t, id, len);
}

/* Structured output needs every token's bytes: from the model's tokenizer, indexed once. Without a
 * tokenizer the worker still serves everything else (constrained requests get an error saying why). */
static void load_vocabulary(struct worker *w)
{
    struct error err;
    uint64_t t0 = uv_hrtime();
    struct tokenizer *t = tok_load(w->opts.model_dir, &err);
    const struct model_config *c = &w->model->cfg;
    struct gvocab *v = t ? gvocab_new(c->vocab_size, token_bytes, t, c->eos_ids, c->n_eos, &err) : NULL;
    tok_free(t);
    if (!v || engine_set_vocab(&w->engine, v, &err) < 0) {
        log_warn("structured output is off: %s", err.msg);
        return;
    }
    log_info("structured output: %d token ids indexed in %.0f ms", c->vocab_size, (double)(uv_hrtime() - t0) / 1e6);
}

static int load_engine(struct worker *w, struct error *err)
{
    if (!(w->model = model_load_as(w->opts.model_dir, w->opts.weights, err)))
        return -1;
    int blocks = w->opts.kv_blocks;
    if (!blocks)
        blocks = kv_blocks_in_bytes(&w->model->cfg, w->opts.block_size, w->opts.kv_dtype, (size_t)(w->opts.kv_gib * (1 << 30)));
    if (blocks < 1)
        return error_set(err, "--kv-gib %.3f holds no KV block of this model; raise it", w->opts.kv_gib);
    if (engine_init(&w->engine, w->model, blocks, w->opts.block_size, w->opts.kv_dtype, w->opts.threads, err) < 0)
        return -1;
    if (w->opts.step_log && !(w->step_log = fopen(w->opts.step_log, "a")))
        return error_set(err, "--step-log %s: %s", w->opts.step_log, strerror(errno));
    if (w->step_log) /* a line a pass, whole: a worker killed keeps the passes it ran */
        setvbuf(w->step_log, NULL, _IOLBF, 0);
    load_vocabulary(w);
    return w->opts.no_prefix_cache ? 0 : kv_prefix_enable(&w->engine.kv, model_salt(&w->model->cfg), err);
}

/* Whether the daemon may accept peers: when any role it can take does (it listens from when it
 * first takes such a role). */
static bool listens(const struct worker *w)
{
    for (int i = 0; i < w->n_slots; i++)
        if (w->slots[i].role->listens)
            return true;
    return false;
}

/* The hosts of the frontend's address and of our own listen/advertise addresses. */
static int peer_hosts(struct worker *w, char hosts[3][96], const char *h[3], struct error *err)
{
    const char *addrs[3] = {w->opts.frontend, listens(w) ? w->opts.listen : NULL,
                            listens(w) ? w->opts.advertise : NULL};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        uint16_t port;
        if (!addrs[i])
            continue;
        if (ucx_parse_addr(addrs[i], hosts[n], sizeof hosts[n], &port, err) < 0)
            return -1;
        h[n] = hosts[n];
        n++;
    }
    return n;
}

/* The cluster key, and the rule without one; then, when every address is a loopback one, UCX's
 * transports kept off the other interfaces. */
static int secure_network(struct worker *w, struct ckey *key, struct error *err)
{
    char hosts[3][96];
    const char *h[3];
    int n = peer_hosts(w, hosts, h, err);
    if (n < 0 || ckey_load(w->opts.cluster_key_file, key, err) || ckey_check(key, h, n, w->opts.insecure_cluster, err))
        return -1;
    if (ucx_loopback_only_default(h, n))
        log_info("every UCX address is a loopback one: UCX uses the lo interface only (set UCX_NET_DEVICES to "
                 "change that)");
    return 0;
}

static int start_network(struct worker *w, struct error *err)
{
    struct ucx_handlers h = {NULL, on_message, on_peer_lost};
    struct ckey key;
    if (secure_network(w, &key, err) < 0)
        return -1;
    int rc = ucx_create(&w->loop, &h, w, &w->ucx, err);
    if (rc == 0)
        rc = ucx_set_cluster_key(w->ucx, key.bytes, key.len, err);
    if (rc == 0 && key.len)
        log_info("peers must prove the cluster key from %s", key.source);
    ckey_wipe(&key);
    if (rc < 0)
        return -1;
    return w->role->listens ? worker_listen(w, err) : 0;
}

int worker_listen(struct worker *w, struct error *err)
{
    char host[96];
    uint16_t port;
    if (w->advertise[0])
        return 0; /* listening already */
    if (ucx_parse_addr(w->opts.listen, host, sizeof host, &port, err) < 0 || ucx_listen(w->ucx, host, port, err) < 0)
        return error_wrap(err, "--listen %s", w->opts.listen);
    if (w->opts.advertise)
        snprintf(w->advertise, sizeof w->advertise, "%s", w->opts.advertise);
    else
        snprintf(w->advertise, sizeof w->advertise, "%s:%u", host, ucx_listen_port(w->ucx));
    return 0;
}

static void *engine_thread(void *arg)
{
    struct worker *w = arg;
    w->role->engine_main(w);
    return NULL;
}

void worker_start_engine(struct worker *w)
{
    pthread_create(&w->engine_thread, NULL, engine_thread, w);
}

static void init_handles(struct worker *w)
{
    uv_timer_t *timers[] = {&w->load_timer, &w->reconnect_timer, &w->drain_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(&w->loop, timers[i]);
        timers[i]->data = w;
    }
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_timer_start(&w->load_timer, on_load_timer, (uint64_t)w->opts.load_ms, (uint64_t)w->opts.load_ms);
    worker_switch_init(w);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int worker_main(const struct worker_opts *o, const struct worker_slot *slots, int n_slots)
{
    static struct worker w; /* one per process: signal handlers and systemd see this one */
    struct error err;
    w.opts = *o;
    w.n_slots = o->pin_role ? 1 : n_slots < WORKER_MAX_ROLES ? n_slots : WORKER_MAX_ROLES;
    for (int i = 0; i < w.n_slots; i++)
        w.slots[i] = slots[i];
    w.role = slots[0].role;
    w.state = slots[0].state;
    uv_loop_init(&w.loop);
    if (load_engine(&w, &err) < 0 || start_network(&w, &err) < 0 ||
        (w.role->start && w.role->start(&w, &err) < 0)) {
        log_error("%s", err.msg);
        return 1;
    }
    mailbox_init_thread(&w.to_engine);
    mailbox_init_loop(&w.to_loop, &w.loop, on_mail, &w);
    init_handles(&w);
    worker_start_engine(&w);
    worker_status("model %s loaded: %d layers, KV pool %d blocks of %d tokens%s%s", o->model_dir,
                  w.model->cfg.n_layers, w.engine.kv.n_blocks, o->block_size,
                  w.advertise[0] ? ", listening on " : "", w.advertise);
    connect_frontend(&w);
    uv_run(&w.loop, UV_RUN_DEFAULT);

    pthread_join(w.engine_thread, NULL);
    if (w.role->stop)
        w.role->stop(&w);
    ucx_destroy(w.ucx);
    mailbox_close(&w.to_loop);
    uv_walk(&w.loop, close_handle, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
    mailbox_destroy(&w.to_loop);
    mailbox_destroy(&w.to_engine);
    engine_destroy(&w.engine);
    model_free(w.model);
    if (w.step_log && fclose(w.step_log))
        log_warn("--step-log %s: %s", o->step_log, strerror(errno));
    log_info("stopped");
    return 0;
}
