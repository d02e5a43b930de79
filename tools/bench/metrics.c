/* metrics.c — statistics of a run with vLLM's benchmark_serving definitions, so numbers compare
 * across tools: mean, median, population std and numpy-"linear" percentiles of TTFT, TPOT (per
 * request, requests with one output token excluded), ITL (every gap, all requests pooled) and E2E
 * latency over successful requests; throughput over the run's wall time; SLO attainment over *all*
 * requests (a failure misses every SLO) and goodput = requests meeting every SLO per second. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double bench_percentile(const double *sorted, int n, double p)
{
    if (n <= 0)
        return 0.0;
    double pos = p / 100.0 * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = pos - lo;
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_dist_compute(double *x, int n, struct bench_dist *d)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    if (n == 0)
        return;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    d->mean = sum / n;
    for (int i = 0; i < n; i++)
        sq += (x[i] - d->mean) * (x[i] - d->mean);
    d->std = sqrt(sq / n);
    d->median = bench_percentile(x, n, 50);
    d->p90 = bench_percentile(x, n, 90);
    d->p99 = bench_percentile(x, n, 99);
}

int bench_record_good(const struct bench_opts *o, const struct bench_record *r)
{
    if (!r->ok)
        return 0;
    if (o->slo_ttft_ms > 0 && r->ttft_ms > o->slo_ttft_ms)
        return 0;
    if (o->slo_tpot_ms > 0 && !isnan(r->tpot_ms) && r->tpot_ms > o->slo_tpot_ms)
        return 0;
    if (o->slo_e2el_ms > 0 && r->e2el_ms > o->slo_e2el_ms)
        return 0;
    return 1;
}

/* Collects one metric over successful records (and ITLs over all gaps) into four arrays. */
static int gather(const struct bench_run *run, double *ttft, double *tpot, double *e2el,
                  double **itl, int *n_ok, int *n_tpot, int *n_itl)
{
    int total_itl = 0;
    for (int i = 0; i < run->n; i++)
        total_itl += run->rec[i].ok ? run->rec[i].n_itl : 0;
    *itl = malloc(sizeof(double) * (size_t)(total_itl + 1));
    if (!*itl)
        return -1;
    *n_ok = *n_tpot = *n_itl = 0;
    for (int i = 0; i < run->n; i++) {
        const struct bench_record *r = &run->rec[i];
        if (!r->ok)
            continue;
        ttft[*n_ok] = r->ttft_ms;
        e2el[(*n_ok)++] = r->e2el_ms;
        if (!isnan(r->tpot_ms))
            tpot[(*n_tpot)++] = r->tpot_ms;
        if (r->n_itl)
            memcpy(*itl + *n_itl, r->itl_ms, sizeof(double) * (size_t)r->n_itl);
        *n_itl += r->n_itl;
    }
    return 0;
}

static void totals(const struct bench_opts *o, const struct bench_run *run, struct bench_metrics *m)
{
    m->total = run->n;
    m->duration_s = run->duration_s;
    m->has_slo = o->slo_ttft_ms > 0 || o->slo_tpot_ms > 0 || o->slo_e2el_ms > 0;
    for (int i = 0; i < run->n; i++) {
        const struct bench_record *r = &run->rec[i];
        m->good += bench_record_good(o, r);
        if (!r->ok) {
            m->failed++;
            continue;
        }
        m->completed++;
        m->total_input += r->input_len;
        m->total_output += r->output_len;
    }
    double d = m->duration_s > 0 ? m->duration_s : 1e-9;
    m->request_throughput = m->completed / d;
    m->output_throughput = (double)m->total_output / d;
    m->total_token_throughput = (double)(m->total_input + m->total_output) / d;
    m->request_goodput = m->good / d;
    m->attainment = m->total ? (double)m->good / m->total : 0.0;
}

int bench_metrics_compute(const struct bench_opts *o, const struct bench_run *run,
                          struct bench_metrics *m, struct error *err)
{
    memset(m, 0, sizeof *m);
    totals(o, run, m);
    size_t n = (size_t)(run->n ? run->n : 1);
    double *ttft = malloc(sizeof(double) * n), *tpot = malloc(sizeof(double) * n);
    double *e2el = malloc(sizeof(double) * n), *itl = NULL;
    int n_ok, n_tpot, n_itl, rc = 0;
    if (!ttft || !tpot || !e2el || gather(run, ttft, tpot, e2el, &itl, &n_ok, &n_tpot, &n_itl) < 0)
        rc = error_set(err, "out of memory computing statistics of %d requests", run->n);
    else {
        bench_dist_compute(ttft, n_ok, &m->ttft);
        bench_dist_compute(tpot, n_tpot, &m->tpot);
        bench_dist_compute(e2el, n_ok, &m->e2el);
        bench_dist_compute(itl, n_itl, &m->itl);
    }
    free(ttft);
    free(tpot);
    free(e2el);
    free(itl);
    return rc;
}
