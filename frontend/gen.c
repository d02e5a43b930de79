/* gen.c — the lifecycle of a completions / chat completions request: validate, prepare the prompts,
 * place each sequence on workers, follow TOKENS and ERRORs, re-route sequences whose worker died
 * before they started, end with the whole answer or the stream's last chunk, and abort the work on
 * every worker when the client goes away. See gen.h. */
#include "frontend/gen.h"

#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

#define MAX_TRIES 3

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void seq_release(struct gen_seq *s, bool abort_workers)
{
    struct fe *fe = s->g->fe;
    if (!s->id)
        return;
    if (abort_workers) {
        cluster_abort(s->p, s->id);
        if (s->d != s->p)
            cluster_abort(s->d, s->id);
    }
    cluster_release(s->p, s->d, s->undecoded);
    s->p = s->d = NULL;
    s->undecoded = 0;
    for (int i = 0; i < s->n_held; i++)
        wire_msg_release(&s->held[i]);
    free(s->held);
    s->held = NULL;
    s->n_held = 0;
    s->first_seen = false;
    idmap_del(&fe->seqs, s->id);
    fe->n_inflight--;
    s->id = 0;
}

static void req_free(struct gen_req *g)
{
    for (int i = 0; i < g->n_seqs; i++) {
        seq_release(&g->seqs[i], true);
        gen_seq_text_free(&g->seqs[i]);
    }
    free(g->seqs);
    prompt_set_free(&g->prompts);
    api_request_free(&g->api);
    free(g->body);
    free(g);
}

static void count_finish(struct fe *fe, struct gen_seq *s)
{
    fe->metrics.finished[s->finish == FINISH_NONE ? FINISH_ABORT : s->finish]++;
    fe->metrics.generation_tokens += (uint64_t)s->n_tokens;
    if (s->n_tokens > 1)
        histogram_observe(&fe->metrics.tpot, secs(s->t_last - s->t_first) / (s->n_tokens - 1));
}

/* Prompt tokens the workers' prefix caches held: per prompt, what its sequences' workers said. */
static long cached_tokens(const struct gen_req *g)
{
    long sum = 0;
    for (int p = 0; p < g->prompts.n; p++) {
        uint32_t most = 0;
        for (int i = 0; i < g->n_seqs; i++)
            if (g->seqs[i].prompt_idx == p && g->seqs[i].cached_tokens > most)
                most = g->seqs[i].cached_tokens;
        sum += most;
    }
    return sum;
}

/* best_of: orders each prompt's candidates likeliest first (the sum of their tokens' logprobs; ties
 * to the earlier one) and numbers the first n of each prompt's as its choices. */
static void rank_candidates(struct gen_req *g, struct gen_seq **order)
{
    int k = g->api.best_of;
    for (int i = 0; i < g->n_seqs; i++)
        order[i] = &g->seqs[i];
    for (int p = 0; k > g->api.n && p < g->prompts.n; p++) {
        struct gen_seq **c = order + p * k;
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && c[j]->sum_logprob > c[j - 1]->sum_logprob; j--) {
                struct gen_seq *t = c[j];
                c[j] = c[j - 1];
                c[j - 1] = t;
            }
        for (int j = 0; j < k; j++)
            c[j]->index = j < g->api.n ? p * g->api.n + j : -1;
    }
}

/* The answer: every choice; with best_of > n only the n likeliest of each prompt's candidates, though
 * usage counts every candidate's tokens (they were all computed, as OpenAI bills them). */
static void respond_whole(struct gen_req *g)
{
    json_t *choices = json_array();
    struct gen_seq **order = malloc((size_t)(g->n_seqs ? g->n_seqs : 1) * sizeof *order);
    if (!order) {
        struct apierr e;
        json_decref(choices);
        apierr_set(&e, 500, NULL, "internal_error", "out of memory");
        fe_respond_error(g->fe, g->http, &e);
        return;
    }
    rank_candidates(g, order);
    long completion = 0;
    for (int i = 0; i < g->n_seqs; i++) {
        struct gen_seq *s = order[i];
        completion += s->n_tokens;
        size_t content = s->out_len;
        json_t *calls = s->index >= 0 ? tc_parse(s->tc.format, s->out, s->out_len, &content) : NULL;
        if (s->index >= 0)
            json_array_append_new(choices, oai_choice(&g->meta, s->index, s->out, content,
                                                      calls ? "tool_calls" : finish_name(s->finish),
                                                      json_incref(s->lp_all), calls));
    }
    free(order);
    char *body = oai_response(&g->meta, choices, g->prompt_tokens, completion, cached_tokens(g));
    fe_respond_json(g->fe, g->http, 200, body ? body : "{}");
    free(body);
}

/* The access log's note (oplog.c): token counts, the first token's latency and the workers of its
 * first sequence (on=P>D: prefill worker P, decode worker D; on=C: one worker did both), never text. */
static void note_request(struct gen_req *g)
{
    long out = 0;
    uint64_t first = 0;
    for (int i = 0; i < g->n_seqs; i++) {
        out += g->seqs[i].n_tokens;
        if (g->seqs[i].t_first && (!first || g->seqs[i].t_first < first))
            first = g->seqs[i].t_first;
    }
    if (!g->http)
        return;
    int n = snprintf(g->http->note, sizeof g->http->note, "%s in=%ld out=%ld", g->meta.id, g->prompt_tokens, out);
    if (first && n > 0 && (size_t)n < sizeof g->http->note)
        n += snprintf(g->http->note + n, sizeof g->http->note - (size_t)n, " ttft=%.1fms",
                      (double)(first - g->t0) / 1e6);
    const uint32_t *on = g->n_seqs > 0 && g->seqs[0].tries > 0 ? g->seqs[0].ran_on : NULL;
    if (on && n > 0 && (size_t)n < sizeof g->http->note) {
        if (on[0] == on[1])
            snprintf(g->http->note + n, sizeof g->http->note - (size_t)n, " on=%u", on[0]);
        else
            snprintf(g->http->note + n, sizeof g->http->note - (size_t)n, " on=%u>%u", on[0], on[1]);
    }
}

/* Every sequence has finished: the answer's end. */
static void req_complete(struct gen_req *g)
{
    struct fe *fe = g->fe;
    note_request(g);
    long out = 0;
    for (int i = 0; i < g->n_seqs; i++)
        out += g->seqs[i].n_tokens;
    histogram_observe(&fe->metrics.prompt_len, (double)g->prompt_tokens);
    histogram_observe(&fe->metrics.gen_len, (double)out);
    histogram_observe(&fe->metrics.e2e, secs(uv_hrtime() - g->t0));
    for (int i = 0; i < g->n_seqs; i++)
        count_finish(fe, &g->seqs[i]);
    if (g->http && g->api.stream) {
        if (g->api.include_usage) {
            long completion = 0;
            for (int i = 0; i < g->n_seqs; i++)
                completion += g->seqs[i].n_tokens;
            char *u = oai_sse_usage(&g->meta, g->prompt_tokens, completion, cached_tokens(g));
            if (u)
                http_stream_write(g->http, u, strlen(u));
            free(u);
        }
        http_stream_write(g->http, "data: [DONE]\n\n", 14);
        metrics_count_status(&fe->metrics, 200);
        http_stream_end(g->http);
    } else if (g->http) {
        respond_whole(g);
    }
    g->http = NULL;
    req_free(g);
}

/* A sequence failed: the whole request ends with an error (chunk, or status when nothing was sent). */
static void req_fail(struct gen_req *g, int status, const char *message)
{
    struct fe *fe = g->fe;
    log_warn("gen: request %s (id %s) failed: %s", g->meta.id, g->rid, message);
    note_request(g);
    for (int i = 0; i < g->n_seqs; i++) {
        if (g->seqs[i].finish == FINISH_NONE)
            g->seqs[i].finish = FINISH_ERROR;
        count_finish(fe, &g->seqs[i]);
    }
    if (g->http && g->api.stream) {
        char *chunk = oai_sse_error(status, message);
        if (chunk)
            http_stream_write(g->http, chunk, strlen(chunk));
        free(chunk);
        http_stream_write(g->http, "data: [DONE]\n\n", 14);
        metrics_count_status(&fe->metrics, status);
        http_stream_end(g->http);
    } else if (g->http) {
        struct apierr e;
        apierr_set(&e, status, NULL, status == 503 ? "worker_unavailable" : "generation_failed", "%s", message);
        fe_respond_error(fe, g->http, &e);
    }
    g->http = NULL;
    req_free(g);
}

static uint64_t random_seed(void)
{
    static uint64_t n;
    return uv_hrtime() * 0x9e3779b97f4a7c15ull ^ ++n;
}

/* Places s on workers and sends GENERATE; -1 when no worker can take it. */
static int seq_dispatch(struct gen_seq *s, struct apierr *e)
{
    struct gen_req *g = s->g;
    struct fe *fe = g->fe;
    const int32_t *ids = g->prompts.ids[s->prompt_idx];
    uint32_t n = (uint32_t)g->prompts.n_ids[s->prompt_idx];
    struct cl_worker *p, *d;
    struct cl_seq need = {.prompt = ids, .n_prompt = n,
                          .n_positions = n + (uint32_t)(s->sp.max_tokens > 0 ? s->sp.max_tokens : 0),
                          .slo_ttft_ms = g->api.slo_ttft_ms, .slo_tpot_ms = g->api.slo_tpot_ms};
    if (cluster_pick_except(fe->cluster, &need, s->refused_role, s->refused_id, &p, &d))
        return apierr_set(e, 503, NULL, "no_workers", "no worker is available to run the request; retry later");
    s->id = ++fe->next_seq;
    struct error err;
    bool logprobs = g->api.logprobs || g->api.best_of > g->api.n; /* best_of ranks by them */
    if (cluster_generate(p, d, s->id, &s->sp, logprobs, g->api.constraint, &need, &err) ||
        idmap_put(&fe->seqs, s->id, s)) {
        s->id = 0;
        return apierr_set(e, 503, NULL, "worker_unavailable", "sending the request to a worker failed: %s", err.msg);
    }
    s->p = p;
    s->d = d;
    s->undecoded = (uint32_t)s->sp.max_tokens;
    s->ran_on[0] = p->id;
    s->ran_on[1] = d->id;
    rebalancer_note_prompt(fe->rebalancer, need.to_compute);
    s->t_dispatch = uv_hrtime();
    s->queue_ahead = need.queue_ahead;
    s->tries++;
    fe->n_inflight++;
    log_debug("gen: %s (id %s) choice %d is request %llu on %s worker %u, decode worker %u", g->meta.id, g->rid,
              s->index,
              (unsigned long long)s->id, wire_role_name(p->role), p->id, d->id);
    return 0;
}

static int seq_init(struct gen_req *g, struct gen_seq *s, int index, int prompt_idx, int j)
{
    struct fe *fe = g->fe;
    s->g = g;
    s->index = index;
    s->prompt_idx = prompt_idx;
    s->finish = FINISH_NONE;
    s->sp = g->api.sp;
    s->sp.logprobs_mode = (uint8_t)(g->api.logprobs_mode >= 0 ? g->api.logprobs_mode : fe->cfg.logprobs_mode);
    s->sp.seed = g->api.seed_given ? g->api.sp.seed + (uint64_t)j : random_seed();
    int room = fe_max_model_len(fe) - g->prompts.n_ids[prompt_idx];
    if (s->sp.max_tokens > room)
        s->sp.max_tokens = room;
    s->ts = tok_stream_new(fe->tok, g->api.skip_special_tokens);
    s->tc.format = g->api.tools.choice != TC_CHOICE_NONE ? fe->tool_format : TC_NONE;
    stopstr_init(&s->stop, (const char *const *)g->api.stop, g->api.n_stop);
    if (!s->ts)
        return -1;
    if (g->api.echo) { /* the prompt's text leads the answer */
        const char *t = g->prompts.text[prompt_idx];
        s->out = strdup(t);
        if (!s->out)
            return -1;
        s->out_len = strlen(t);
        s->out_cap = s->out_len + 1;
        s->echo_chars = oai_text_chars(t, s->out_len);
    }
    return 0;
}

static void on_client_gone(struct http_request *req, void *user)
{
    (void)req;
    struct gen_req *g = user;
    log_info("gen: client of %s (id %s) went away; aborting its work on the workers", g->meta.id, g->rid);
    g->http = NULL;
    if (g->preparing)
        return; /* prep_done frees it */
    for (int i = 0; i < g->n_seqs; i++) {
        if (g->seqs[i].finish == FINISH_NONE)
            g->seqs[i].finish = FINISH_ABORT;
        count_finish(g->fe, &g->seqs[i]);
    }
    req_free(g); /* releases every sequence with an ABORT to its workers */
}

/* One sequence per prompt and choice, once the prompts are tokenized. */
static int req_make_seqs(struct gen_req *g, struct apierr *e)
{
    struct fe *fe = g->fe;
    struct api_request *r = &g->api;
    int n_seqs = g->prompts.n * r->best_of;
    if (fe->n_inflight + n_seqs > fe->cfg.max_inflight)
        return apierr_set(e, 429, NULL, "rate_limit_exceeded",
                          "the server is at its limit of %d sequences in flight; retry later", fe->cfg.max_inflight);
    if (!cluster_ready(fe->cluster))
        return apierr_set(e, 503, NULL, "no_workers",
                          "no workers are registered yet (need a prefill and a decode worker, or a colocated one)");
    g->seqs = calloc((size_t)n_seqs, sizeof *g->seqs);
    if (!g->seqs)
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    g->n_seqs = n_seqs;
    for (int i = 0; i < g->prompts.n; i++) {
        g->prompt_tokens += g->prompts.n_ids[i];
        for (int j = 0; j < r->best_of; j++)
            if (seq_init(g, &g->seqs[i * r->best_of + j], i * r->best_of + j, i, j))
                return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    }
    return 0;
}

/* Ends a request that failed before it was dispatched. */
static void req_refuse(struct gen_req *g, struct http_request *req, const struct apierr *e)
{
    req->on_abort = NULL;
    req->user = NULL;
    fe_respond_error(g->fe, req, e);
    g->http = NULL;
    req_free(g);
}

/* The prompts are ready (or refused): place every sequence on workers and start answering. */
static void prep_done(uv_work_t *w, int status)
{
    struct gen_req *g = w->data;
    struct fe *fe = g->fe;
    struct http_request *req = g->http;
    struct apierr e;
    g->preparing = false;
    fe->n_preparing--;
    free(g->body); /* parsed: a generation does not hold its request's body */
    g->body = NULL;
    if (req)
        http_request_release_body(req);
    fe_memory_body_done(fe, g->body_len);
    if (!req) { /* the client went away meanwhile */
        req_free(g);
        return;
    }
    if (status < 0 || g->prep_rc) {
        if (status < 0)
            apierr_set(&g->prep_err, 500, NULL, "internal_error", "preparing the prompt: %s", uv_strerror(status));
        req_refuse(g, req, &g->prep_err);
        return;
    }
    if (req_make_seqs(g, &e)) {
        req_refuse(g, req, &e);
        return;
    }
    for (int i = 0; i < g->n_seqs; i++)
        if (seq_dispatch(&g->seqs[i], &e)) {
            req_refuse(g, req, &e);
            return;
        }
    fe->metrics.prompt_tokens += (uint64_t)g->prompt_tokens;
    histogram_observe(&fe->metrics.queue, secs(uv_hrtime() - g->t0));
    g->n_live = g->n_seqs;
    if (g->api.stream)
        http_stream_begin(req, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
}

/* Parsing the body, rendering a chat template and tokenizing take about 0.2 us a byte: a second for
 * a body of megabytes, during which the loop would serve nobody else. So they run on libuv's thread
 * pool; they read only the request and immutable parts of fe (the tokenizer and templates are safe
 * to share between threads: tok.h, chat.h). */
static void prep_work(uv_work_t *w)
{
    struct gen_req *g = w->data;
    struct fe *fe = g->fe;
    struct api_request *r = &g->api;
    struct apierr *e = &g->prep_err;
    g->prep_rc = -1;
    if (api_request_parse(g->meta.kind, g->body, g->body_len, r, e))
        return;
    if (r->model && strcmp(r->model, fe->served_name) != 0) {
        apierr_set(e, 404, "model", "model_not_found", "The model `%s` does not exist; this server serves `%s`",
                   r->model, fe->served_name);
        return;
    }
    g->meta.usage_null = r->include_usage;
    g->prep_rc = prompt_prepare(fe, r, &g->prompts, e);
    if (g->prep_rc == 0 && (r->tools.choice == TC_CHOICE_REQUIRED || r->tools.choice == TC_CHOICE_NAMED)) {
        if (r->constraint) /* a forced call is a constraint of its own */
            g->prep_rc = apierr_set(e, 400, "response_format", "invalid_value", "'response_format' cannot "
                                    "be combined with a tool_choice that forces a call");
        else
            g->prep_rc = tc_constraint(&r->tools, fe->tool_format, &r->constraint, e);
    }
}

void gen_start(struct fe *fe, struct http_request *req, enum api_kind kind)
{
    struct gen_req *g = calloc(1, sizeof *g);
    char *body = http_request_take_body(req); /* the prep thread reads it, whatever happens to req */
    struct apierr e;
    if (!g || !body) {
        free(g), free(body);
        apierr_set(&e, 500, NULL, "internal_error", "out of memory");
        fe_respond_error(fe, req, &e);
        return;
    }
    g->fe = fe;
    g->t0 = req->received_ns;
    g->body = body;
    g->body_len = req->body_len;
    oai_meta_init(&g->meta, kind, fe->served_name, false); /* its id names the request in logs */
    g->meta.fingerprint = fe->fingerprint;
    snprintf(g->rid, sizeof g->rid, "%s", req->id);
    g->http = req;
    req->user = g;
    req->on_abort = on_client_gone;
    g->prep.data = g;
    g->preparing = true;
    fe->n_preparing++;
    int rc = uv_queue_work(fe->loop, &g->prep, prep_work, prep_done);
    if (rc < 0) {
        g->preparing = false;
        fe->n_preparing--;
        apierr_set(&e, 500, NULL, "internal_error", "queueing the request: %s", uv_strerror(rc));
        req_refuse(g, req, &e);
    }
}

static void on_tokens(struct gen_seq *s, const struct wire_tokens *t)
{
    struct gen_req *g = s->g;
    struct fe *fe = g->fe; /* g may be freed below */
    uint64_t now = uv_hrtime();
    if (!s->started) {
        s->started = true;
        s->t_first = now;
        histogram_observe(&g->fe->metrics.ttft, secs(now - g->t0));
        if (s->p) /* the router's measure of its prefill speed (route_slo.h) */
            slo_observe_prefill(&s->p->slo, s->queue_ahead, (double)(now - s->t_dispatch) / 1e6);
    } else if (s->d && t->n) {
        slo_observe_tpot(&s->d->slo, (double)(now - s->t_last) / 1e6 / t->n);
    }
    s->t_last = now;
    uint32_t n = t->n < s->undecoded ? t->n : s->undecoded;
    cluster_decoded(s->d, n);
    s->undecoded -= n;
    if (t->cached_tokens > s->cached_tokens)
        s->cached_tokens = t->cached_tokens;
    bool done = gen_text_tokens(s, t);
    gen_text_emit(s, done);
    if (done) {
        /* A stop string or our own length count ends it before the workers know: tell them. */
        seq_release(s, t->finish == FINISH_NONE);
        if (--g->n_live == 0)
            req_complete(g);
    }
    histogram_observe(&fe->metrics.fe_token, secs(uv_hrtime() - now) / (t->n ? t->n : 1));
}

static int error_status(uint32_t code)
{
    switch (code) {
    case WIRE_ERR_BAD_REQUEST: return 400;
    case WIRE_ERR_OVERLOADED: return 503;
    case WIRE_ERR_PEER_LOST: return 503;
    default: return 500;
    }
}

/* Sends s again elsewhere if it never started; otherwise the request fails. */
static void seq_retry_or_fail(struct gen_seq *s, int status, const char *why)
{
    struct gen_req *g = s->g;
    char msg[WIRE_ERRMSG_MAX + 64];
    snprintf(msg, sizeof msg, "%s", why);
    seq_release(s, true);
    struct apierr e;
    if (!s->started && s->tries < MAX_TRIES && status != 400) {
        if (seq_dispatch(s, &e) == 0) {
            log_info("gen: %s (id %s) re-routed (%s)", g->meta.id, g->rid, msg);
            return;
        }
        snprintf(msg, sizeof msg, "%s", e.message);
    }
    req_fail(g, status, msg);
}

/* Keeps a decode TOKENS message (taking it: msg is left empty) until the prefill's first token is in. */
static void hold_tokens(struct gen_seq *s, struct wire_msg *msg)
{
    struct wire_msg *h = realloc(s->held, (size_t)(s->n_held + 1) * sizeof *h);
    if (!h) {
        req_fail(s->g, 500, "out of memory holding tokens");
        return;
    }
    s->held = h;
    s->held[s->n_held++] = *msg;
    memset(msg, 0, sizeof *msg);
}

/* The prefill's first token arrived: whatever the decode worker sent meanwhile follows it. */
static void release_held(struct fe *fe, uint64_t id)
{
    struct gen_seq *s = idmap_get(&fe->seqs, id);
    if (!s)
        return;
    s->first_seen = true;
    struct wire_msg *held = s->held;
    int n = s->n_held;
    s->held = NULL;
    s->n_held = 0;
    for (int i = 0; i < n; i++) {
        if ((s = idmap_get(&fe->seqs, id)))
            on_tokens(s, &held[i].u.tokens);
        wire_msg_release(&held[i]);
    }
    free(held);
}

void gen_on_message(void *user, struct cl_worker *from, struct wire_msg *msg)
{
    struct fe *fe = user;
    struct gen_seq *s = idmap_get(&fe->seqs, msg->req_id);
    if (msg->type == WIRE_KV_STATS) { /* the sequence may have ended: its transfer still counts */
        if (from->role == WIRE_ROLE_PREFILL) {
            histogram_observe(&fe->metrics.kv_bytes, (double)msg->u.stats.bytes);
            histogram_observe(&fe->metrics.kv_seconds, msg->u.stats.seconds);
            histogram_observe(&fe->metrics.kv_exposed, msg->u.stats.exposed_seconds);
        }
        return;
    }
    if (!s)
        return; /* a sequence already ended (aborted, stopped): late tokens are expected */
    if (msg->type == WIRE_PROMPT_LOGPROBS) {
        if (from == s->p && gen_text_prompt_logprobs(s, &msg->u.prompt_lp))
            log_warn("gen: out of memory recording the prompt's logprobs");
        return;
    }
    if (msg->type == WIRE_TOKENS && msg->u.tokens.finish == FINISH_ERROR) {
        /* Workers say why in an ERROR; a bare "error" finish is still a failure, never a 200. */
        seq_retry_or_fail(s, 500, "a worker ended the sequence with an error");
        return;
    }
    if (msg->type == WIRE_TOKENS) {
        bool split = s->p && s->d && s->p != s->d;
        if (split && from == s->d && !s->first_seen) {
            hold_tokens(s, msg);
            return;
        }
        uint64_t id = s->id;
        bool first = split && from == s->p;
        on_tokens(s, &msg->u.tokens); /* may end and free s */
        if (first)
            release_held(fe, id);
        return;
    }
    char why[WIRE_ERRMSG_MAX + 64];
    snprintf(why, sizeof why, "worker %u: %s", from->id, msg->u.error.message);
    if (msg->u.error.code == WIRE_ERR_OVERLOADED) { /* e.g. draining after SIGTERM: retry elsewhere */
        s->refused_role = from->role;
        s->refused_id = from->id;
    }
    seq_retry_or_fail(s, error_status(msg->u.error.code), why);
}

/* The ids of the sequences in flight, so handling one (which may end others, or add new ones) does
 * not disturb the walk over the table. Caller frees. */
static uint64_t *inflight_ids(struct fe *fe, size_t *n)
{
    uint64_t *ids = malloc((fe->seqs.count + 1) * sizeof *ids);
    size_t it = 0, k = 0;
    uint64_t key;
    void *val;
    while (ids && idmap_next(&fe->seqs, &it, &key, &val))
        ids[k++] = key;
    *n = k;
    return ids;
}

void gen_on_worker_lost(void *user, struct cl_worker *w, const char *reason)
{
    struct fe *fe = user;
    size_t n;
    uint64_t *ids = inflight_ids(fe, &n);
    for (size_t i = 0; ids && i < n; i++) {
        struct gen_seq *s = idmap_get(&fe->seqs, ids[i]);
        if (!s || (s->p != w && s->d != w))
            continue;
        if (s->p == w && s->d && s->d != w && s->first_seen) {
            /* Its first token is out and the decode worker holds the rest: it either delivers it
             * or, having lost the transfer with this prefill worker, reports an error itself. */
            cluster_release(s->p, NULL, 0);
            s->p = NULL;
            continue;
        }
        if (s->p == w)
            s->p = NULL; /* gone: no ABORT, no release */
        if (s->d == w)
            s->d = NULL;
        char why[300];
        snprintf(why, sizeof why, "the %s worker %u serving this request failed (%s)", wire_role_name(w->role),
                 w->id, reason);
        seq_retry_or_fail(s, 503, why);
    }
    free(ids);
}

void gen_abort_all(struct fe *fe)
{
    size_t n;
    uint64_t *ids = inflight_ids(fe, &n);
    for (size_t i = 0; ids && i < n; i++) {
        struct gen_seq *s = idmap_get(&fe->seqs, ids[i]);
        if (s)
            req_fail(s->g, 503, "the server is shutting down");
    }
    free(ids);
}
