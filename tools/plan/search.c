/* search.c — the two searches of the planner: for one deployment, the highest request rate at which
 * the target share of requests meets both SLOs (DistServe's "max rate at 90% attainment", found by
 * doubling then bisecting, each probe a whole simulated run with the same seed); and the deployments
 * one node allows: groups of workers (every colocated count, plain and routed by the SLOs, and every
 * prefill:decode split, also with colocated workers routed by the SLOs in place of the decode ones, at
 * each thread count the profile measured), each repeated as many times as the node's cores hold. */
#include <stdio.h>
#include <stdlib.h>

#include "tools/plan/plan.h"

static double attainment(const struct profile *p, const struct deployment *d, const struct link *l,
                         const struct workload *w, const struct slo *s, double rate)
{
    char err[256];
    struct sim_result r = {0};
    struct request *reqs = workload_make(w, rate, err, sizeof err);
    if (!reqs || sim_run(p, d, l, reqs, w->n, s, &r, err, sizeof err))
        r.attainment = 0;
    free(reqs);
    return r.throughput >= 0.8 * rate ? r.attainment : 0;
}

double search_max_rate(const struct profile *p, const struct deployment *d, const struct link *l,
                       const struct workload *w, const struct slo *s, double target)
{
    double lo = 0, hi = 0.01;
    while (hi < 1e6 && attainment(p, d, l, w, s, hi) >= target)
        lo = hi, hi *= 2;
    if (lo == 0 && attainment(p, d, l, w, s, hi / 64) < target)
        return 0; /* the SLOs cannot be met even unloaded */
    for (int i = 0; i < 14; i++) {
        double mid = (lo + hi) / 2;
        if (attainment(p, d, l, w, s, mid) >= target)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* A group of base's thread count and settings, as many times as a node's cores hold it. */
static struct deployment group(struct deployment g, int n_prefill, int n_decode, int n_coloc, bool slo_routed,
                               int cores)
{
    g.n_prefill = n_prefill, g.n_decode = n_decode, g.n_coloc = n_coloc, g.slo_routed = slo_routed;
    g.copies = cores / ((n_prefill + n_decode + n_coloc) * g.threads);
    return g;
}

int search_deployments(const struct profile *p, const struct node_shape *node, int token_budget, int max_batch,
                       struct deployment *out, int cap)
{
    int n = 0;
    for (int m = 0; m < p->n_models; m++) {
        int t = p->by_threads[m].threads, workers = node->cores / t;
        workers = workers < node->group_workers ? workers : node->group_workers;
        struct deployment base = {.threads = t, .token_budget = token_budget, .max_batch = max_batch};
        for (int c = 1; c <= workers && n + 1 < cap; c++) {
            out[n++] = group(base, 0, 0, c, false, node->cores);
            /* the same, routed by the SLOs: their steps keep each decode's TPOT (the TPOT cut) */
            out[n++] = group(base, 0, 0, c, true, node->cores);
        }
        for (int pf = 1; pf < workers; pf++)
            for (int dc = 1; pf + dc <= workers && n + 1 < cap; dc++) {
                out[n++] = group(base, pf, dc, 0, false, node->cores);
                /* the same split with colocated workers, routed by the SLOs */
                out[n++] = group(base, pf, 0, dc, true, node->cores);
            }
    }
    return n;
}

const char *deployment_name(const struct deployment *d, char *buf, int len)
{
    char copies[16] = "";
    if (d->copies > 1)
        snprintf(copies, sizeof copies, "%d × ", d->copies);
    if (d->slo_routed)
        snprintf(buf, (size_t)len, "%s%dP+%dC×%dt SLO-routed%s", copies, d->n_prefill, d->n_coloc, d->threads,
                 d->rebalance ? ", rebalanced" : "");
    else if (d->n_coloc)
        snprintf(buf, (size_t)len, "%s%dC×%dt", copies, d->n_coloc, d->threads);
    else
        snprintf(buf, (size_t)len, "%s%dP+%dD×%dt", copies, d->n_prefill, d->n_decode, d->threads);
    return buf;
}
