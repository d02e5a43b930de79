/* sim.c — a discrete-event simulation of one pdserve deployment serving a list of requests, with
 * the scheduling rules of the real daemons (docs/workers.md):
 *
 *  - the frontend sends a prompt to the prefill worker with the fewest prompt tokens still to compute,
 *    and reserves the decode (or colocated) worker with the least work ahead: the tokens its
 *    sequences have still to generate and the prompt tokens it has queued;
 *  - a prefill worker runs FCFS passes of at most token_budget tokens, batching prompts and chunking
 *    the long ones; a prompt's first token leaves at the end of the pass that completes it;
 *  - its KV reaches the decode worker after the transfer, which overlaps the pass that computed it:
 *    what the pass did not hide, plus a fixed latency (grant, last put, KV_DONE);
 *  - a decode worker's pass runs every sequence it holds (up to max_batch), one token each; a
 *    colocated worker's pass runs its decodes first, then prompt chunks in the rest of the budget.
 *
 * Routed by the SLOs (a deployment's slo_routed: docs/frontend.md), as the frontend and workers do:
 *  - every sequence decodes on the colocated worker with the least work ahead; its prompt goes
 *    to the prefill worker unless the TTFT predicted there breaks the SLO, the colocated worker
 *    predicts a sooner one, and its prompt work up to this prompt's first token (its queue and this
 *    prompt) spread over this sequence's tokens keeps that worker's TPOT. The frontend's own code
 *    (route_slo.c, linked in) measures the costs and decides: each worker's ms per queued prompt
 *    token (arrival to first token, averaged over recent prompts by their tokens) and its time per
 *    output token (EWMA over the tokens it decodes), as they happen;
 *  - while a colocated worker decodes, its pass carries only the prompt tokens that fit in the time
 *    the tightest decoding sequence can give: 90% of the TPOT SLO for each token it has had since
 *    its first, this one included, less what those took, plus what its next (up to 64) decode
 *    passes will leave; once that is 128 tokens or all that wait; none while that time gathers;
 *    128 when nothing gathers, or when a waiting prompt would miss its TTFT SLO if it waited a pass
 *    more (decode_engine.c);
 *  - with rebalance, the frontend's rebalancer runs too, its own policy (rebalance_policy.c, linked
 *    in) asked every RB_TICK_MS with the costs measured so far: a worker it switches is routed nothing
 *    new, gets ROLE once its sequences have ended (a prefill worker at once), switches once it holds
 *    no work and is routed to again SWITCH_S later. A run is served twice, a window apart, and the
 *    second time measured: its deployment is the one this load leaves behind, not the configured one
 *    (a sweep's runs each find the split its warm-up and earlier runs left).
 *
 * The cost of each pass comes from the profile (profile.c). TTFT and TPOT are measured as
 * pdserve-bench measures them: TTFT from arrival to the first token, TPOT = (last − first) / (out − 1).
 * KV pool limits and preemption are not modelled: plan with pools that hold the working set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/rebalance_policy.h"
#include "frontend/route_slo.h"
#include "proto/wire.h"
#include "tools/plan/plan.h"

enum role { PREFILL, DECODE, COLOC };

struct sreq {
    const struct request *r;
    int done_prompt; /* prompt tokens computed */
    int generated;   /* tokens generated, the first included */
    double first, last, kv_ready;
    double prev;       /* its latest token's time */
    double queue_ahead; /* prompt tokens ahead of its last on its prefilling worker, at dispatch */
    int prefiller, decoder; /* indexes of the workers computing its prompt and decoding it */
};

struct list {
    int *v, n, cap;
};

struct worker {
    enum role role;
    double busy_until; /* < 0: idle */
    struct list queue;   /* prompts to compute, FCFS */
    struct list running; /* decoding sequences */
    struct list incoming; /* KV on its way (decode) */
    struct list pass_prompts, pass_decodes; /* what the current pass computes */
    int pass_tokens[1024];                  /* prompt tokens per entry of pass_prompts */
    double queued_tokens, decode_left; /* prompt tokens to compute; tokens its sequences have to generate */
    struct slo_costs slo; /* its costs as the frontend measures them, for SLO routing */
    int inflight;         /* unfinished sequences it prefills or decodes */
    enum role switch_to;  /* with switching: the role it is being switched to */
    bool switching, role_sent;
    double switch_done;   /* when it registers in its new role; < 0: not yet known */
};

/* The workers' constants for SLO routing (decode_engine.c). */
#define SLO_SHARE 0.9
#define SLO_MIN_PROMPT 128
#define SLO_LEND_TOKENS 64
/* A worker that holds no work switches role and registers again in this time (bench-goodput's
 * frontend logs: 0.50 s from the decision to the registration, for an idle prefill worker). */
#define SWITCH_S 0.5

struct sim {
    const struct cost_model *cost;
    const struct deployment *d;
    const struct slo *slo;
    const struct link *l;
    double kv_bytes_per_token;
    struct sreq *reqs;
    struct worker *w;
    int n_w, finished;
    /* the rebalancer, with d->rebalance */
    struct rb_config rbc;
    struct rb_state rb;
    double next_tick;
    int switching; /* the worker being switched; -1: none */
};

static void push(struct list *l, int x)
{
    if (l->n == l->cap && !(l->v = realloc(l->v, sizeof *l->v * (size_t)(l->cap = l->cap ? 2 * l->cap : 16))))
        abort();
    l->v[l->n++] = x;
}

static void remove_at(struct list *l, int i) { memmove(&l->v[i], &l->v[i + 1], sizeof *l->v * (size_t)(--l->n - i)); }

/* The key a worker is picked by: its queued prompt tokens (a prefill worker), or the work ahead of
 * a new sequence decoding there (tokens to generate and prompt tokens queued, as the frontend counts
 * it). */
static double load_key(const struct worker *w, bool by_queue)
{
    return by_queue ? w->queued_tokens : w->decode_left + w->queued_tokens;
}

/* The worker of a role with the least load_key. */
static int least(struct sim *s, enum role role, bool by_queue)
{
    int best = -1;
    for (int i = 0; i < s->n_w; i++) {
        struct worker *w = &s->w[i];
        if (w->role != role || w->switching)
            continue; /* a worker being switched is routed nothing new */
        if (best < 0 || load_key(w, by_queue) < load_key(&s->w[best], by_queue))
            best = i;
    }
    return best;
}

/* ms per prompt token assumed for a worker not measured yet: the mean of those measured, or 1. */
static double fallback_ms_per_token(const struct sim *s)
{
    double sum = 0;
    int n = 0;
    for (int k = 0; k < s->n_w; k++)
        if (s->w[k].slo.prefill_ms_per_token > 0)
            sum += s->w[k].slo.prefill_ms_per_token, n++;
    return n ? sum / n : 1.0;
}

/* The frontend's choice between the prefill worker pf and the colocated worker co: its own rule. */
static bool go_local(const struct sim *s, const struct sreq *q, int pf, int co)
{
    double fb = fallback_ms_per_token(s);
    struct slo_route r = {.ttft_ms = s->slo->ttft_ms, .tpot_ms = s->slo->tpot_ms};
    struct slo_paths p = {.split_ms = slo_predict_ttft(&s->w[pf].slo, s->w[pf].queued_tokens + q->r->in, fb),
                          .local_ms = slo_predict_ttft(&s->w[co].slo, s->w[co].queued_tokens + q->r->in, fb),
                          .out_tokens = (uint32_t)q->r->out};
    return slo_go_local(&r, &p, &s->w[co].slo);
}

static void route(struct sim *s, int id, double now)
{
    struct sreq *q = &s->reqs[id];
    int pf = least(s, PREFILL, true), prefiller;
    if (s->d->slo_routed) {
        q->decoder = least(s, COLOC, false);
        prefiller = pf < 0 || go_local(s, q, pf, q->decoder) ? q->decoder : pf;
    } else {
        prefiller = pf >= 0 ? pf : least(s, COLOC, false);
        q->decoder = pf >= 0 ? least(s, DECODE, false) : prefiller;
    }
    push(&s->w[prefiller].queue, id);
    s->w[prefiller].queued_tokens += q->r->in;
    s->w[q->decoder].decode_left += q->r->out;
    q->queue_ahead = s->w[prefiller].queued_tokens;
    q->prefiller = prefiller;
    s->w[prefiller].inflight++;
    if (q->decoder != prefiller)
        s->w[q->decoder].inflight++;
    if (s->d->rebalance)
        rb_note_prompt(&s->rb, &s->rbc, (uint64_t)(now * 1e3), (uint32_t)q->r->in);
}

/* Attention pairs of computing positions [from, from + k): Σ (position + 1). */
static double attn_pairs(double from, double k) { return k * from + k * (k + 1) / 2; }

/* Take prompt chunks FCFS into the pass, within `budget` tokens, adding to what x computes. */
static void take_prompts(struct sim *s, struct worker *w, int budget, struct pass *x)
{
    for (int i = 0; i < w->queue.n && budget > 0 && w->pass_prompts.n < 1024; i++) {
        struct sreq *q = &s->reqs[w->queue.v[i]];
        int k = q->r->in - q->done_prompt;
        k = k < budget ? k : budget;
        w->pass_tokens[w->pass_prompts.n] = k;
        push(&w->pass_prompts, w->queue.v[i]);
        budget -= k;
        x->tokens += k, x->prompt_attn += attn_pairs(q->done_prompt, k);
        x->logits += q->done_prompt + k == q->r->in;
    }
}

/* Whether holding the prompts can pay (decode_engine.c): within `slack` passes, before the first is
 * due, the tightest sequence (`left` tokens to go) gathers the `need` its `room` lacks, or ends. */
static bool worth_waiting(double room, double need, double per_step, double slack, int left)
{
    double gaining = fmax(0, left - 1 - SLO_LEND_TOKENS);
    return slack >= left || room + fmin(slack, gaining) * per_step >= need;
}

/* The prompt tokens a colocated pass of decodes x may add under the TPOT SLO at `now`: what fits in
 * the time the tightest decoding sequence can give (above), from a decode pass's cost and a prompt
 * token's (decode_engine.c). */
static int tpot_room(const struct sim *s, const struct worker *w, const struct pass *x, double now, int budget)
{
    struct pass chunk = *x;
    chunk.tokens += 128, chunk.prompt_attn += attn_pairs(0, 128);
    double base = pass_secs(s->cost, x), per_token = (pass_secs(s->cost, &chunk) - base) / 128;
    double share = s->slo->tpot_ms * 1e-3 * SLO_SHARE, per_step = share - base, give = INFINITY;
    int left = 0;
    for (int i = 0; i < w->pass_decodes.n; i++) {
        const struct sreq *q = &s->reqs[w->pass_decodes.v[i]];
        int ahead = (int)fmin(q->r->out - q->generated - 1, SLO_LEND_TOKENS);
        double lent = ahead > 0 && per_step > 0 ? ahead * per_step : 0, g = share * q->generated - (now - q->first) + lent;
        if (g < give)
            give = g, left = q->r->out - q->generated;
    }
    double room = give - base;
    if (per_step <= 0)
        return SLO_MIN_PROMPT;
    if (per_token <= 0)
        return budget;
    int waiting = 0;
    double slack = INFINITY; /* passes of decodes alone before the first waiting prompt is due */
    for (int i = 0; i < w->queue.n; i++) {
        const struct sreq *q = &s->reqs[w->queue.v[i]];
        int rest = q->r->in - q->done_prompt, steps = (rest + SLO_MIN_PROMPT - 1) / SLO_MIN_PROMPT;
        waiting += rest;
        double deadline = q->r->arrival + s->slo->ttft_ms * 1e-3;
        slack = fmin(slack, (deadline - now - rest * per_token - steps * base) / base - 1);
    }
    int least = waiting < SLO_MIN_PROMPT ? waiting : SLO_MIN_PROMPT;
    if (room >= least * per_token)
        return (int)fmin(room / per_token, budget);
    return worth_waiting(room, least * per_token, per_step, slack, left) ? 0 : SLO_MIN_PROMPT;
}

static bool start_pass(struct sim *s, struct worker *w, double now)
{
    struct pass x = {0};
    w->pass_prompts.n = w->pass_decodes.n = 0;
    for (int i = 0; i < w->incoming.n; i++) { /* KV that has landed joins the batch */
        struct sreq *q = &s->reqs[w->incoming.v[i]];
        if (q->kv_ready <= now && w->running.n < s->d->max_batch)
            push(&w->running, w->incoming.v[i]), remove_at(&w->incoming, i--);
    }
    for (int i = 0; i < w->running.n; i++) {
        struct sreq *q = &s->reqs[w->running.v[i]];
        push(&w->pass_decodes, w->running.v[i]);
        x.tokens += 1, x.decode_attn += q->r->in + q->generated, x.logits += 1;
    }
    int room = s->d->max_batch - w->running.n, budget = s->d->token_budget - w->pass_decodes.n;
    if (w->role == COLOC && s->d->slo_routed && w->pass_decodes.n > 0 && s->slo->tpot_ms > 0) {
        int cut = tpot_room(s, w, &x, now, budget);
        budget = cut < budget ? cut : budget;
    }
    if (w->role != DECODE && room > 0)
        take_prompts(s, w, budget, &x);
    if (x.tokens == 0)
        return false;
    w->busy_until = now + pass_secs(s->cost, &x);
    return true;
}

static void finish(struct sim *s, struct sreq *q, double t)
{
    q->last = t;
    s->w[q->prefiller].inflight--;
    if (q->decoder != q->prefiller)
        s->w[q->decoder].inflight--;
    s->finished++;
}

/* A prompt whose last chunk this pass computed: first token out, then its KV or its decoding. */
static void prompt_done(struct sim *s, struct worker *w, int id, double t, double pass)
{
    struct sreq *q = &s->reqs[id];
    q->first = q->prev = t, q->generated = 1;
    s->w[q->decoder].decode_left -= 1;
    if (s->d->slo_routed) /* the frontend's measure of w's prefill speed */
        slo_observe_prefill(&w->slo, q->queue_ahead, (t - q->r->arrival) * 1e3);
    if (q->r->out == 1) {
        finish(s, q, t);
        return;
    }
    if (w->role == COLOC) {
        push(&w->running, id);
        return;
    }
    double xfer = q->r->in * s->kv_bytes_per_token / (s->l->gbps * 1e9);
    q->kv_ready = t + fmax(0, xfer - pass) + s->l->latency_ms * 1e-3;
    push(&s->w[q->decoder].incoming, id);
}

static void end_pass(struct sim *s, struct worker *w, double t, double pass)
{
    w->busy_until = -1;
    for (int i = 0; i < w->pass_decodes.n; i++) {
        struct sreq *q = &s->reqs[w->pass_decodes.v[i]];
        if (s->d->slo_routed) /* the frontend's measure of w's time per output token */
            slo_observe_tpot(&w->slo, (t - q->prev) * 1e3);
        q->prev = t;
        w->decode_left -= 1;
        if (++q->generated == q->r->out) {
            finish(s, q, t);
            for (int j = 0; j < w->running.n; j++)
                if (w->running.v[j] == w->pass_decodes.v[i])
                    remove_at(&w->running, j);
        }
    }
    for (int i = 0; i < w->pass_prompts.n; i++) {
        int id = w->pass_prompts.v[i];
        struct sreq *q = &s->reqs[id];
        q->done_prompt += w->pass_tokens[i];
        w->queued_tokens -= w->pass_tokens[i];
        if (q->done_prompt < q->r->in)
            continue;
        for (int j = 0; j < w->queue.n; j++)
            if (w->queue.v[j] == id)
                remove_at(&w->queue, j);
        prompt_done(s, w, id, t, pass);
    }
}

/* ---- the rebalancer (rebalance.c's on_tick and follow, on simulated time) ---- */

static uint8_t wire_role(enum role r)
{
    return r == PREFILL ? WIRE_ROLE_PREFILL : r == COLOC ? WIRE_ROLE_COLOCATED : WIRE_ROLE_DECODE;
}

/* A switch under way: ROLE once the worker's sequences have ended (a prefill worker's at once);
 * the rebalancer's next decision waits a window from the worker's registration. */
static void follow(struct sim *s, double now)
{
    struct worker *w = &s->w[s->switching];
    if (!w->switching) {
        rb_switched(&s->rb, &s->rbc, (uint64_t)(now * 1e3));
        s->switching = -1;
    } else if (!w->role_sent && (w->role == PREFILL || w->inflight == 0)) {
        w->role_sent = true;
    }
}

static void tick(struct sim *s, double now)
{
    if (s->switching >= 0) {
        follow(s, now);
        return;
    }
    struct rb_worker ws[64];
    for (int i = 0; i < s->n_w; i++)
        ws[i] = rb_worker_of((uint32_t)i + 1, wire_role(s->w[i].role), false, s->w[i].inflight, &s->w[i].slo);
    struct rb_decision d;
    if (!rb_decide(&s->rb, &s->rbc, (uint64_t)(now * 1e3), ws, s->n_w, &d))
        return;
    struct worker *w = &s->w[d.index];
    w->switch_to = d.to == WIRE_ROLE_PREFILL ? PREFILL : COLOC;
    w->switching = true, w->role_sent = false, w->switch_done = -1;
    s->switching = d.index;
    follow(s, now);
}

/* A worker told to switch does so once it holds no work, and is routed to SWITCH_S later. */
static void switch_roles(struct sim *s, double now)
{
    for (int i = 0; i < s->n_w; i++) {
        struct worker *w = &s->w[i];
        if (!w->switching || !w->role_sent)
            continue;
        if (w->switch_done < 0 && w->busy_until < 0 && !w->queue.n && !w->running.n && !w->incoming.n)
            w->switch_done = now + SWITCH_S;
        if (w->switch_done >= 0 && now >= w->switch_done)
            w->role = w->switch_to, w->switching = false;
    }
}

/* The next time anything happens after `now`: an arrival, a pass ending, KV landing at an idle
 * worker, the rebalancer's tick, a switched worker registering. */
static double next_event(struct sim *s, double next_arrival)
{
    double t = s->d->rebalance ? fmin(next_arrival, s->next_tick) : next_arrival;
    for (int i = 0; i < s->n_w; i++) {
        struct worker *w = &s->w[i];
        if (w->switching && w->switch_done >= 0)
            t = fmin(t, w->switch_done);
        if (w->busy_until >= 0)
            t = fmin(t, w->busy_until);
        else
            for (int j = 0; j < w->incoming.n; j++)
                t = fmin(t, s->reqs[w->incoming.v[j]].kv_ready);
    }
    return t;
}

static void run(struct sim *s, const struct request *reqs, int n)
{
    int arrived = 0;
    double now = 0, pass_start[64] = {0};
    while (s->finished < n) {
        now = next_event(s, arrived < n ? reqs[arrived].arrival : INFINITY);
        if (!isfinite(now))
            break; /* nothing can move: cannot happen with valid input */
        while (arrived < n && reqs[arrived].arrival <= now)
            route(s, arrived++, now);
        for (int i = 0; i < s->n_w; i++)
            if (s->w[i].busy_until >= 0 && s->w[i].busy_until <= now)
                end_pass(s, &s->w[i], now, now - pass_start[i]);
        if (s->d->rebalance && now >= s->next_tick) {
            tick(s, now);
            s->next_tick += RB_TICK_MS * 1e-3;
        }
        switch_roles(s, now);
        for (int i = 0; i < s->n_w; i++)
            if (s->w[i].busy_until < 0 && start_pass(s, &s->w[i], now))
                pass_start[i] = now;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of v[0..n), sorted: nearest rank. */
static double quantile(const double *v, int n, double q) { return n ? v[(int)ceil(q * n) - 1] : 0; }

static void measure(const struct sim *s, int n, const struct slo *slo, struct sim_result *out)
{
    double *ttft = malloc(sizeof *ttft * (size_t)n), *tpot = malloc(sizeof *tpot * (size_t)n);
    int met = 0, n_tpot = 0;
    double end = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        const struct sreq *q = &s->reqs[i];
        end = fmax(end, q->last);
        ttft[i] = (q->first - q->r->arrival) * 1e3;
        double tp = q->r->out > 1 ? (q->last - q->first) * 1e3 / (q->r->out - 1) : 0;
        if (q->r->out > 1)
            tpot[n_tpot++] = tp, out->tpot_mean_ms += tp;
        out->ttft_mean_ms += ttft[i];
        met += ttft[i] <= slo->ttft_ms && tp <= slo->tpot_ms;
    }
    out->n = n;
    out->attainment = (double)met / n;
    out->throughput = n / fmax(end - s->reqs[0].r->arrival, 1e-9);
    out->ttft_mean_ms /= n;
    out->tpot_mean_ms = n_tpot ? out->tpot_mean_ms / n_tpot : 0;
    qsort(ttft, (size_t)n, sizeof *ttft, cmp_double);
    qsort(tpot, (size_t)n_tpot, sizeof *tpot, cmp_double);
    out->ttft_p50_ms = quantile(ttft, n, 0.5), out->ttft_p90_ms = quantile(ttft, n, 0.9);
    out->ttft_p99_ms = quantile(ttft, n, 0.99);
    out->tpot_p50_ms = quantile(tpot, n_tpot, 0.5), out->tpot_p90_ms = quantile(tpot, n_tpot, 0.9);
    out->tpot_p99_ms = quantile(tpot, n_tpot, 0.99);
    free(ttft), free(tpot);
}

static int count_prefill(const struct sim *s)
{
    int n = 0;
    for (int i = 0; i < s->n_w; i++)
        n += s->w[i].role == PREFILL;
    return n;
}

/* With the rebalancer: serves reqs once, from the configured split, and returns them again a window
 * after the last has finished, for the run to be measured (the rebalancer's state carried over). */
static struct request *settle(struct sim *s, const struct request *reqs, int n)
{
    s->rbc = s->d->rb;
    s->rbc.tpot_slo_ms = (int)s->slo->tpot_ms;
    s->rbc.ttft_slo_ms = (int)s->slo->ttft_ms;
    rb_init(&s->rb, &s->rbc, 0);
    s->switching = -1;
    s->next_tick = RB_TICK_MS * 1e-3;
    run(s, reqs, n);
    struct request *again = malloc(sizeof *again * (size_t)n);
    double end = 0;
    for (int i = 0; i < n; i++)
        end = fmax(end, s->reqs[i].last);
    for (int i = 0; i < n; i++) {
        again[i] = reqs[i];
        again[i].arrival += end + s->rbc.window_s;
        s->reqs[i] = (struct sreq){.r = &again[i]};
    }
    s->finished = 0;
    return again;
}

static bool valid(const struct deployment *d)
{
    int n = d->n_prefill + d->n_decode + d->n_coloc;
    if (n > 64 || n < 1)
        return false;
    if (d->slo_routed)
        return d->n_coloc > 0 && d->n_decode == 0;
    return d->n_coloc ? d->n_prefill + d->n_decode == 0 : d->n_prefill > 0 && d->n_decode > 0;
}

int sim_run(const struct profile *p, const struct deployment *d, const struct link *l, const struct request *reqs,
            int n, const struct slo *slo, struct sim_result *out, char *err, int errlen)
{
    struct sim s = {.cost = profile_cost(p, d->threads), .d = d, .slo = slo, .l = l,
                    .kv_bytes_per_token = p->kv_bytes_per_token};
    s.n_w = d->n_prefill + d->n_decode + d->n_coloc;
    if (!s.cost)
        return plan_error(err, errlen, "the profile has no %d-thread passes", d->threads);
    if (!valid(d))
        return plan_error(err, errlen, "a deployment is prefill + decode workers, colocated ones, or, routed by "
                                       "the SLOs, prefill + colocated ones (≤ 64 in all)");
    s.reqs = calloc((size_t)n, sizeof *s.reqs);
    s.w = calloc((size_t)s.n_w, sizeof *s.w);
    for (int i = 0; i < n; i++)
        s.reqs[i].r = &reqs[i];
    for (int i = 0; i < s.n_w; i++) {
        s.w[i].role = i < d->n_prefill ? PREFILL : d->n_coloc ? COLOC : DECODE;
        s.w[i].busy_until = -1;
    }
    struct request *again = d->rebalance ? settle(&s, reqs, n) : NULL;
    int prefill_start = count_prefill(&s);
    run(&s, again ? again : reqs, n);
    measure(&s, n, slo, out);
    out->prefill_start = prefill_start, out->prefill_end = count_prefill(&s);
    free(again);
    for (int i = 0; i < s.n_w; i++) {
        struct worker *w = &s.w[i];
        free(w->queue.v), free(w->running.v), free(w->incoming.v), free(w->pass_prompts.v), free(w->pass_decodes.v);
    }
    free(s.w), free(s.reqs);
    return 0;
}
