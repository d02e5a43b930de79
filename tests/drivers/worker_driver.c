/* worker_driver.c — a test driver that plays the frontend's part of the protocol, for testing the
 * prefill and decode workers on their own (real processes, real UCX).
 *
 *   worker_driver --ucx-port P --prefill N --decode N [--colocated N] --requests FILE
 *                 [--abort first-token|tokens:K|at-once] [--timeout S] [--idle-pools]
 *
 * Waits for the workers to register, sends every request of FILE (a JSON array of {"prompt":[ids],
 * "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "ignore_eos"}) at once, routing as
 * the frontend does (prefill: least queued tokens; decode: most free blocks), and prints one JSON
 * line per request: {"i", "tokens", "finish", "error", "ttft_ms", "e2e_ms"}. With --idle-pools it then
 * waits for every worker to report an empty KV pool and prints {"pools_idle": true|false}. Exit 0
 * when every request got an answer (tokens or an error) before the timeout. As in the frontend, a
 * decode worker's tokens that overtake the prefill's first token wait for it. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/log.h"
#include "proto/ucx.h"

#define MAX_WORKERS 16

struct wk {
    struct ucx_peer *peer;
    struct wire_register reg;
    struct wire_load load;
    bool loaded;
};

struct req {
    struct wire_generate gen;
    int32_t *tokens;
    int n, cap;
    int finish; /* -1 while running */
    char error[WIRE_ERRMSG_MAX];
    struct wk *p, *d;
    double t0, ttft, e2e;
    bool aborted;
    /* Prefill and decode workers reach us on separate connections, so the decode worker's tokens
     * can overtake the prefill's first one: they wait here until it is in, as in the frontend. */
    bool first_in;
    int32_t *held;
    int n_held, held_finish;
};

static struct {
    uv_loop_t *loop;
    struct ucx *ucx;
    struct wk workers[MAX_WORKERS];
    int n_workers, want_prefill, want_decode, want_colocated;
    struct req *reqs;
    int n_reqs, n_done;
    const char *abort_mode;
    int abort_after;
    bool started, idle_pools, idle_seen;
    uv_timer_t timer;
    double deadline;
} D;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int count_role(int role)
{
    int n = 0;
    for (int i = 0; i < D.n_workers; i++)
        n += D.workers[i].peer && D.workers[i].reg.role == role;
    return n;
}

static struct wk *pick(int role, bool most_free)
{
    struct wk *best = NULL;
    for (int i = 0; i < D.n_workers; i++) {
        struct wk *w = &D.workers[i];
        if (!w->peer || w->reg.role != role)
            continue;
        if (!best || (most_free ? w->load.free_blocks > best->load.free_blocks
                                : w->load.queued_tokens < best->load.queued_tokens))
            best = w;
    }
    return best;
}

static void send_msg(struct wk *w, struct wire_msg *m)
{
    struct error err;
    if (w && w->peer && ucx_send(w->peer, m, NULL, NULL, &err) < 0)
        fprintf(stderr, "driver: send %s: %s\n", wire_type_name(m->type), err.msg);
}

static void finish(struct req *r, int finish_reason, const char *error)
{
    if (r->finish >= 0)
        return;
    r->finish = finish_reason;
    r->e2e = now_ms() - r->t0;
    if (error)
        snprintf(r->error, sizeof r->error, "%s", error);
    D.n_done++;
}

static void abort_req(struct req *r)
{
    struct wire_msg m = {.type = WIRE_ABORT, .req_id = (uint64_t)(r - D.reqs) + 1};
    send_msg(r->p, &m);
    send_msg(r->d, &m);
    r->aborted = true;
    finish(r, FINISH_ABORT, NULL);
}

static void start_requests(void)
{
    D.started = true;
    for (int i = 0; i < D.n_reqs; i++) {
        struct req *r = &D.reqs[i];
        bool coloc = D.want_colocated > 0;
        r->p = coloc ? pick(WIRE_ROLE_COLOCATED, true) : pick(WIRE_ROLE_PREFILL, false);
        r->d = coloc ? r->p : pick(WIRE_ROLE_DECODE, true);
        if (!coloc) {
            r->gen.decode_worker_id = r->d->reg.worker_id;
            snprintf(r->gen.decode_addr, sizeof r->gen.decode_addr, "%s", r->d->reg.listen_addr);
        }
        r->t0 = now_ms();
        struct wire_msg m = {.type = WIRE_GENERATE, .req_id = (uint64_t)i + 1, .u.gen = r->gen};
        send_msg(r->p, &m);
        /* spread load as the frontend would between reports */
        r->p->load.queued_tokens += r->gen.n_prompt;
        if (!coloc)
            r->d->load.free_blocks -= r->gen.n_prompt / 16 + 1;
        if (D.abort_mode && strcmp(D.abort_mode, "at-once") == 0)
            abort_req(r);
    }
}

static void take_tokens(struct req *r, const int32_t *tokens, uint32_t n, int finish_reason)
{
    if (r->finish >= 0)
        return;
    if (r->n == 0)
        r->ttft = now_ms() - r->t0;
    for (uint32_t i = 0; i < n; i++) {
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->tokens = realloc(r->tokens, (size_t)r->cap * sizeof *r->tokens);
        }
        r->tokens[r->n++] = tokens[i];
    }
    if (finish_reason != FINISH_NONE)
        finish(r, finish_reason, NULL);
    else if (D.abort_mode && ((!strcmp(D.abort_mode, "first-token") && r->n >= 1) ||
                              (D.abort_after && r->n >= D.abort_after)))
        abort_req(r);
}

static void on_tokens(struct req *r, const struct wk *from, const struct wire_tokens *t)
{
    bool split = r->p != r->d;
    if (split && from == r->d && !r->first_in) {
        if (t->n) {
            r->held = realloc(r->held, (size_t)(r->n_held + (int)t->n) * sizeof *r->held);
            if (!r->held)
                abort();
            memcpy(r->held + r->n_held, t->tokens, t->n * sizeof *r->held);
            r->n_held += (int)t->n;
        }
        r->held_finish = t->finish;
        return;
    }
    take_tokens(r, t->tokens, t->n, t->finish);
    if (split && from == r->p && !r->first_in) {
        r->first_in = true;
        take_tokens(r, r->held, (uint32_t)r->n_held, r->held_finish);
    }
}

static void on_message(struct ucx *u, struct ucx_peer *peer, struct wire_msg *msg, void *user)
{
    (void)u, (void)user;
    struct wk *w = ucx_peer_user(peer);
    if (msg->type == WIRE_REGISTER && !w && D.n_workers < MAX_WORKERS) {
        w = &D.workers[D.n_workers++];
        w->peer = peer;
        w->reg = msg->u.reg;
        w->reg.pool.rkey = NULL; /* not ours to keep */
        ucx_peer_set_user(peer, w);
        fprintf(stderr, "driver: worker %u registered (role %d, %u blocks, listen %s)\n",
                w->reg.worker_id, w->reg.role, w->reg.total_blocks, w->reg.listen_addr);
        return;
    }
    if (msg->type == WIRE_LOAD && w) {
        w->load = msg->u.load;
        w->loaded = true;
        return;
    }
    if (msg->req_id < 1 || msg->req_id > (uint64_t)D.n_reqs)
        return;
    struct req *r = &D.reqs[msg->req_id - 1];
    if (msg->type == WIRE_TOKENS)
        on_tokens(r, w, &msg->u.tokens);
    else if (msg->type == WIRE_ERROR)
        finish(r, FINISH_ERROR, msg->u.error.message);
}

static void on_peer_lost(struct ucx *u, struct ucx_peer *peer, const char *reason, void *user)
{
    (void)u, (void)user;
    struct wk *w = ucx_peer_user(peer);
    if (!w)
        return;
    fprintf(stderr, "driver: worker %u lost: %s\n", w->reg.worker_id, reason);
    w->peer = NULL;
    for (int i = 0; i < D.n_reqs; i++)
        if (D.reqs[i].finish < 0 && (D.reqs[i].p == w || D.reqs[i].d == w) && D.started) {
            /* what the frontend does: the request ends with an error */
            D.reqs[i].p = D.reqs[i].p == w ? NULL : D.reqs[i].p;
            D.reqs[i].d = D.reqs[i].d == w ? NULL : D.reqs[i].d;
            finish(&D.reqs[i], FINISH_ERROR, "worker lost");
        }
}

static bool pools_idle(void)
{
    for (int i = 0; i < D.n_workers; i++) {
        struct wk *w = &D.workers[i];
        if (w->peer && (!w->loaded || w->load.free_blocks != w->load.total_blocks || w->load.running))
            return false;
    }
    return true;
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    if (!D.started) {
        bool ready = D.want_colocated ? count_role(WIRE_ROLE_COLOCATED) >= D.want_colocated
                                      : count_role(WIRE_ROLE_PREFILL) >= D.want_prefill &&
                                            count_role(WIRE_ROLE_DECODE) >= D.want_decode;
        for (int i = 0; i < D.n_workers && ready; i++)
            ready = D.workers[i].loaded;
        if (ready)
            start_requests();
    }
    bool done = D.started && D.n_done == D.n_reqs;
    if (done && D.idle_pools && !D.idle_seen) {
        D.idle_seen = pools_idle();
        done = D.idle_seen;
    }
    if (done || now_ms() > D.deadline)
        uv_stop(D.loop);
}

static int load_requests(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *o;
    if (!json_is_array(root)) {
        fprintf(stderr, "driver: %s: %s\n", path, jerr.text);
        return -1;
    }
    D.n_reqs = (int)json_array_size(root);
    D.reqs = calloc((size_t)D.n_reqs, sizeof *D.reqs);
    size_t i;
    json_array_foreach(root, i, o)
    {
        struct req *r = &D.reqs[i];
        json_t *p = json_object_get(o, "prompt");
        sample_params_default(&r->gen.params);
        r->gen.params.temperature = (float)json_number_value(json_object_get(o, "temperature"));
        if (json_object_get(o, "top_p"))
            r->gen.params.top_p = (float)json_number_value(json_object_get(o, "top_p"));
        r->gen.params.top_k = (int32_t)json_integer_value(json_object_get(o, "top_k"));
        r->gen.params.min_p = (float)json_number_value(json_object_get(o, "min_p"));
        r->gen.params.seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
        r->gen.params.max_tokens = (int32_t)json_integer_value(json_object_get(o, "max_tokens"));
        r->gen.params.ignore_eos = json_is_true(json_object_get(o, "ignore_eos"));
        r->gen.n_prompt = (uint32_t)json_array_size(p);
        r->gen.prompt = malloc(r->gen.n_prompt * sizeof(int32_t));
        for (uint32_t k = 0; k < r->gen.n_prompt; k++)
            r->gen.prompt[k] = (int32_t)json_integer_value(json_array_get(p, k));
        r->finish = -1;
    }
    json_decref(root);
    return 0;
}

static void print_results(void)
{
    for (int i = 0; i < D.n_reqs; i++) {
        struct req *r = &D.reqs[i];
        json_t *toks = json_array();
        for (int k = 0; k < r->n; k++)
            json_array_append_new(toks, json_integer(r->tokens[k]));
        json_t *o = json_pack("{s:i,s:o,s:i,s:s,s:f,s:f}", "i", i, "tokens", toks, "finish", r->finish,
                              "error", r->error, "ttft_ms", r->ttft, "e2e_ms", r->e2e);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    if (D.idle_pools)
        printf("{\"pools_idle\": %s}\n", D.idle_seen ? "true" : "false");
}

int main(int argc, char **argv)
{
    int port = 0, timeout = 60;
    const char *requests = NULL;
    static const struct option longs[] = {
        {"ucx-port", 1, 0, 'u'}, {"prefill", 1, 0, 'p'},   {"decode", 1, 0, 'd'},
        {"colocated", 1, 0, 'c'}, {"requests", 1, 0, 'r'}, {"abort", 1, 0, 'a'},
        {"timeout", 1, 0, 't'},  {"idle-pools", 0, 0, 'i'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'u': port = atoi(optarg); break;
        case 'p': D.want_prefill = atoi(optarg); break;
        case 'd': D.want_decode = atoi(optarg); break;
        case 'c': D.want_colocated = atoi(optarg); break;
        case 'r': requests = optarg; break;
        case 'a': D.abort_mode = optarg; D.abort_after = strncmp(optarg, "tokens:", 7) ? 0 : atoi(optarg + 7); break;
        case 't': timeout = atoi(optarg); break;
        case 'i': D.idle_pools = true; break;
        default: return 2;
        }
    }
    log_init("driver");
    struct error err;
    uv_loop_t loop;
    uv_loop_init(&loop);
    D.loop = &loop;
    struct ucx_handlers h = {NULL, on_message, on_peer_lost};
    if (!requests || load_requests(requests) < 0 || ucx_create(&loop, &h, NULL, &D.ucx, &err) < 0 ||
        ucx_listen(D.ucx, "127.0.0.1", (uint16_t)port, &err) < 0) {
        fprintf(stderr, "driver: %s\n", requests ? err.msg : "--requests is required");
        return 2;
    }
    D.deadline = now_ms() + timeout * 1000.0;
    uv_timer_init(&loop, &D.timer);
    uv_timer_start(&D.timer, on_timer, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    print_results();
    int rc = D.n_done == D.n_reqs ? 0 : 1;
    if (rc)
        fprintf(stderr, "driver: %d of %d requests unanswered after %d s\n", D.n_reqs - D.n_done, D.n_reqs, timeout);
    ucx_destroy(D.ucx);
    uv_close((uv_handle_t *)&D.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int i = 0; i < D.n_reqs; i++)
        free(D.reqs[i].tokens), free(D.reqs[i].held), free(D.reqs[i].gen.prompt);
    free(D.reqs);
    return rc;
}
