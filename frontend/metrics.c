/* metrics.c — counters, histograms and their Prometheus text rendering (see metrics.h). */
#include "frontend/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/cluster.h"
#include "frontend/rebalance.h"

static void hist_init(struct histogram *h, const char *name, const char *help, const double *b, int n)
{
    memset(h, 0, sizeof *h);
    h->name = name;
    h->help = help;
    h->n_buckets = n;
    memcpy(h->bounds, b, (size_t)n * sizeof *b);
}

void metrics_init(struct metrics *m)
{
    static const double lat[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    static const double tpot[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
                                  0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
    static const double tiny[] = {1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 1e-2};
    memset(m, 0, sizeof *m);
    hist_init(&m->ttft, "pdserve:time_to_first_token_seconds", "Time to first token.", lat, 19);
    hist_init(&m->tpot, "pdserve:time_per_output_token_seconds", "Mean time per output token after the first.",
              tpot, 16);
    hist_init(&m->e2e, "pdserve:e2e_request_latency_seconds", "Request latency, arrival to last token.", lat, 19);
    hist_init(&m->queue, "pdserve:request_queue_time_seconds",
              "Arrival to dispatch at the frontend (parse, template, tokenize, route).", lat, 19);
    hist_init(&m->fe_token, "pdserve:frontend_token_processing_seconds",
              "Frontend time per TOKENS message: detokenize, stop strings, shape and write the chunk.", tiny, 12);
    static const double toks[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
                                  100000, 200000};
    hist_init(&m->prompt_len, "pdserve:request_prompt_tokens", "Prompt tokens per finished request.", toks, 17);
    hist_init(&m->gen_len, "pdserve:request_generation_tokens", "Generated tokens per finished request.", toks, 17);
    static const double bytes[] = {65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456, 1073741824,
                                   4294967296.0};
    hist_init(&m->kv_bytes, "pdserve:request_kv_transfer_bytes",
              "KV cache bytes a prefill worker pushed to a decode worker, per request.", bytes, 9);
    hist_init(&m->kv_seconds, "pdserve:request_kv_transfer_seconds",
              "A request's KV transfer, from its first put to the flush that completed it.", lat, 19);
    hist_init(&m->kv_exposed, "pdserve:request_kv_transfer_exposed_seconds",
              "A request's KV transfer time the forward pass did not hide: its end to KV_DONE.", lat, 19);
}

void histogram_observe(struct histogram *h, double v)
{
    h->count++;
    h->sum += v;
    for (int i = 0; i < h->n_buckets; i++)
        if (v <= h->bounds[i]) {
            h->counts[i]++;
            return;
        }
}

void metrics_count_status(struct metrics *m, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        m->http_requests[cls]++;
}

struct out {
    char *s;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s ? o->s + o->len : NULL, o->s ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->s && o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = (o->cap ? o->cap * 2 : 8192) + (size_t)n;
        char *ns = realloc(o->s, ncap);
        if (!ns)
            return;
        o->s = ns;
        o->cap = ncap;
    }
}

/* One histogram's series under `labels` (already formatted, e.g. model_name="m"): counts[] per
 * bucket, not cumulative; the +Inf bucket is count. */
static void put_series(struct out *o, const char *name, const char *labels, const double *bounds,
                       const uint64_t *counts, int n_buckets, uint64_t count, double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < n_buckets; i++) {
        cum += counts[i];
        put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds[i], (unsigned long long)cum);
    }
    put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)count);
    put(o, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, sum, name, labels, (unsigned long long)count);
}

static void put_hist(struct out *o, const struct histogram *h, const char *model)
{
    char labels[192];
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    snprintf(labels, sizeof labels, "model_name=\"%s\"", model);
    put_series(o, h->name, labels, h->bounds, h->counts, h->n_buckets, h->count, h->sum);
}

/* Each worker's engine, as its last LOAD said: steps by time (a prefill step computes a chunk of
 * prompts, a decode step one token of every running sequence), preemptions, and the steps whose prompt
 * tokens were cut to keep a TPOT SLO. */
static void put_worker_engine(struct out *o, struct cluster *c, const char *model)
{
    put(o, "# HELP pdserve:worker_step_seconds The worker's engine steps that computed tokens, by time.\n"
           "# TYPE pdserve:worker_step_seconds histogram\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next) {
        const struct wire_steps *st = &w->load.steps;
        char labels[256];
        snprintf(labels, sizeof labels, "model_name=\"%s\",worker=\"%u\",role=\"%s\"", model, w->id,
                 wire_role_name(w->role));
        put_series(o, "pdserve:worker_step_seconds", labels, wire_step_bounds, st->bucket, WIRE_STEP_BUCKETS,
                   st->count, st->sum_s);
    }
    put(o, "# HELP pdserve:num_preemptions_total Sequences that gave their KV blocks up to be computed again.\n"
           "# TYPE pdserve:num_preemptions_total counter\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:num_preemptions_total{model_name=\"%s\",worker=\"%u\",role=\"%s\"} %llu\n", model, w->id,
            wire_role_name(w->role), (unsigned long long)w->load.preemptions);
    put(o, "# HELP pdserve:slo_limited_steps_total Decode steps that computed fewer prompt tokens so the "
           "running sequences kept their TPOT SLO.\n"
           "# TYPE pdserve:slo_limited_steps_total counter\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:slo_limited_steps_total{model_name=\"%s\",worker=\"%u\",role=\"%s\"} %llu\n", model,
            w->id, wire_role_name(w->role), (unsigned long long)w->load.slo_steps);
}

/* Each worker's prefix cache and KV transfer, as its last LOAD said (counters since it started). */
static void put_prefix_cache(struct out *o, struct cluster *c, const char *model)
{
    static const char *const names[4][2] = {
        {"pdserve:prefix_cache_queries_total", "Prompt tokens looked up in the worker's prefix cache."},
        {"pdserve:prefix_cache_hits_total", "Prompt tokens found in the worker's prefix cache (not computed)."},
        {"pdserve:kv_transfer_bytes_total", "KV cache bytes the prefill worker pushed to decode workers."},
        {"pdserve:kv_transfer_saved_bytes_total", "KV cache bytes not pushed: the decode worker's cache had them."},
    };
    put(o, "# HELP pdserve:prefix_cache_blocks Blocks the worker's prefix cache holds, as the frontend's routing "
           "index knows them.\n# TYPE pdserve:prefix_cache_blocks gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:prefix_cache_blocks{model_name=\"%s\",worker=\"%u\",role=\"%s\"} %zu\n", model, w->id,
            wire_role_name(w->role), w->keys.count);
    for (int k = 0; k < 4; k++) {
        put(o, "# HELP %s %s\n# TYPE %s counter\n", names[k][0], names[k][1], names[k][0]);
        for (struct cl_worker *w = cluster_workers(c); w; w = w->next) {
            uint64_t v[4] = {w->query_tokens, w->hit_tokens, w->kv_bytes_sent, w->kv_bytes_saved};
            put(o, "%s{model_name=\"%s\",worker=\"%u\",role=\"%s\"} %llu\n", names[k][0], model, w->id,
                wire_role_name(w->role), (unsigned long long)v[k]);
        }
    }
}

static void put_workers(struct out *o, struct cluster *c, const char *model)
{
    uint64_t waiting = 0;
    int n_role[5] = {0};
    put(o, "# HELP pdserve:kv_cache_usage_perc KV cache blocks in use, per worker (1 = full).\n"
           "# TYPE pdserve:kv_cache_usage_perc gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next) {
        double use = w->load.total_blocks ? 1.0 - (double)w->load.free_blocks / w->load.total_blocks : 0;
        put(o, "pdserve:kv_cache_usage_perc{model_name=\"%s\",worker=\"%u\",role=\"%s\"} %.6f\n", model, w->id,
            wire_role_name(w->role), use);
        waiting += w->load.queued_requests;
        if (w->role < 5)
            n_role[w->role]++;
    }
    put(o, "# HELP pdserve:num_requests_waiting Requests queued on the workers, as last reported.\n"
           "# TYPE pdserve:num_requests_waiting gauge\npdserve:num_requests_waiting{model_name=\"%s\"} %llu\n",
        model, (unsigned long long)waiting);
    put(o, "# HELP pdserve:workers Registered workers by role.\n# TYPE pdserve:workers gauge\n");
    for (uint8_t r = WIRE_ROLE_PREFILL; r <= WIRE_ROLE_COLOCATED; r++)
        put(o, "pdserve:workers{role=\"%s\"} %d\n", wire_role_name(r), n_role[r]);
    put_prefix_cache(o, c, model);
    put_worker_engine(o, c, model);
}

/* SLO-aware routing (route_slo.h): each worker's costs as measured, and the paths taken. */
static void put_router(struct out *o, struct cluster *c)
{
    const struct slo_route *r = cluster_slo(c);
    put(o, "# HELP pdserve:router_prefill_ms_per_token Prefill time per queued prompt token, measured per "
           "worker (dispatch to first token).\n# TYPE pdserve:router_prefill_ms_per_token gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:router_prefill_ms_per_token{worker=\"%u\",role=\"%s\"} %.6f\n", w->id,
            wire_role_name(w->role), w->slo.prefill_ms_per_token);
    put(o, "# HELP pdserve:router_tpot_ms Time per output token measured per decoding worker.\n"
           "# TYPE pdserve:router_tpot_ms gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:router_tpot_ms{worker=\"%u\",role=\"%s\"} %.6f\n", w->id, wire_role_name(w->role),
            w->slo.tpot_ms);
    put(o, "# HELP pdserve:router_ttft_ms Time to first token (dispatch to first token) measured per prefilling "
           "worker.\n# TYPE pdserve:router_ttft_ms gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:router_ttft_ms{worker=\"%u\",role=\"%s\"} %.6f\n", w->id, wire_role_name(w->role),
            w->slo.ttft_ms);
    put(o, "# HELP pdserve:router_decode_tokens_left Tokens the sequences decoding on the worker have still to "
           "generate (max_tokens less those received): the decode choice.\n"
           "# TYPE pdserve:router_decode_tokens_left gauge\n");
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        put(o, "pdserve:router_decode_tokens_left{worker=\"%u\",role=\"%s\"} %llu\n", w->id,
            wire_role_name(w->role), (unsigned long long)w->decode_left);
    put(o, "# HELP pdserve:router_routed_total Sequences by path under SLO-aware routing.\n"
           "# TYPE pdserve:router_routed_total counter\n"
           "pdserve:router_routed_total{path=\"disaggregated\"} %llu\npdserve:router_routed_total{path=\"local\"} %llu\n",
        (unsigned long long)r->n_split, (unsigned long long)r->n_local);
}

/* Live rebalancing (rebalance.h): the prompt work it measures, the switches done, and the worker
 * being switched now (1, with the role it is switching to). */
static void put_rebalance(struct out *o, struct cluster *c, const struct rebalancer *rb)
{
    if (!rb)
        return;
    put(o, "# HELP pdserve:rebalance_prompt_work Prompt work over the rebalancer's window, in workers kept busy.\n"
           "# TYPE pdserve:rebalance_prompt_work gauge\npdserve:rebalance_prompt_work %.6f\n"
           "# HELP pdserve:role_switches_total Workers switched between the prefill and colocated roles.\n"
           "# TYPE pdserve:role_switches_total counter\npdserve:role_switches_total %llu\n"
           "# HELP pdserve:worker_switching A worker draining to take another role.\n"
           "# TYPE pdserve:worker_switching gauge\n",
        rebalancer_load(rb), (unsigned long long)rebalancer_switches(rb));
    for (struct cl_worker *w = cluster_workers(c); w; w = w->next)
        if (w->switch_to)
            put(o, "pdserve:worker_switching{worker=\"%u\",role=\"%s\",to=\"%s\"} 1\n", w->id,
                wire_role_name(w->role), wire_role_name(w->switch_to));
}

/* What reached the cluster port: joined, refused (wrong key), failed (garbage, timeout, closed),
 * evicted (over the caps); and UCX messages dropped (malformed, or without a peer's token). */
static void put_cluster_port(struct out *o, struct cluster *c)
{
    const struct ucx_stats *s = cluster_ucx_stats(c);
    put(o, "# HELP pdserve:cluster_handshakes_total Connections to the cluster port by outcome.\n"
           "# TYPE pdserve:cluster_handshakes_total counter\n"
           "pdserve:cluster_handshakes_total{outcome=\"ok\"} %llu\n"
           "pdserve:cluster_handshakes_total{outcome=\"refused\"} %llu\n"
           "pdserve:cluster_handshakes_total{outcome=\"failed\"} %llu\n"
           "pdserve:cluster_handshakes_total{outcome=\"evicted\"} %llu\n",
        (unsigned long long)s->hs_ok, (unsigned long long)s->hs_refused, (unsigned long long)s->hs_failed,
        (unsigned long long)s->hs_evicted);
    put(o, "# HELP pdserve:cluster_messages_rejected_total Messages from peers dropped: malformed, or without "
           "an authenticated peer's token.\n# TYPE pdserve:cluster_messages_rejected_total counter\n"
           "pdserve:cluster_messages_rejected_total %llu\n", (unsigned long long)s->rejected);
}

char *metrics_render(const struct metrics *m, struct cluster *c, const struct rebalancer *rb, int running,
                     const char *model, size_t *len)
{
    struct out o = {0};
    put(&o, "# HELP pdserve:request_success_total Finished sequences by finish reason.\n"
            "# TYPE pdserve:request_success_total counter\n");
    for (int i = FINISH_STOP; i < FINISH_COUNT; i++)
        put(&o, "pdserve:request_success_total{model_name=\"%s\",finished_reason=\"%s\"} %llu\n", model, finish_name(i),
            (unsigned long long)m->finished[i]);
    put(&o, "# HELP pdserve:prompt_tokens_total Prompt tokens processed.\n# TYPE pdserve:prompt_tokens_total counter\n"
            "pdserve:prompt_tokens_total{model_name=\"%s\"} %llu\n", model, (unsigned long long)m->prompt_tokens);
    put(&o, "# HELP pdserve:generation_tokens_total Tokens generated.\n"
            "# TYPE pdserve:generation_tokens_total counter\npdserve:generation_tokens_total{model_name=\"%s\"} %llu\n",
        model, (unsigned long long)m->generation_tokens);
    put(&o, "# HELP pdserve:http_requests_total HTTP responses by status class.\n"
            "# TYPE pdserve:http_requests_total counter\n");
    for (int i = 1; i <= 5; i++)
        put(&o, "pdserve:http_requests_total{code=\"%dxx\"} %llu\n", i, (unsigned long long)m->http_requests[i]);
    put(&o, "# HELP pdserve:num_requests_running Sequences in flight on the workers.\n"
            "# TYPE pdserve:num_requests_running gauge\npdserve:num_requests_running{model_name=\"%s\"} %d\n",
        model, running);
    if (c) {
        put_workers(&o, c, model);
        put_router(&o, c);
        put_rebalance(&o, c, rb);
        put_cluster_port(&o, c);
    }
    const struct histogram *hs[] = {&m->ttft,     &m->tpot,    &m->e2e,      &m->queue,     &m->fe_token,
                                    &m->prompt_len, &m->gen_len, &m->kv_bytes, &m->kv_seconds, &m->kv_exposed};
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        put_hist(&o, hs[i], model);
    *len = o.len;
    return o.s;
}
