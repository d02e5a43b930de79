/* sweep.c — runs the same workload at several request rates and reports the highest rate whose
 * SLO attainment meets the target: DistServe's "max rate at 90% attainment", the number that says
 * how much traffic a deployment serves within its SLOs. With --sweep auto the rates are found by
 * doubling from --sweep-start until attainment falls below the target, then bisecting between the
 * last rate that met it and the first that did not. Each run of a random dataset sends prompts of
 * its own (the same lengths), so a server's prefix cache cannot serve a run from an earlier one. */
#include "bench.h"
#include "common/util/log.h"

#include <math.h>
#include <stdlib.h>

#define SWEEP_MAX_DOUBLINGS 16
#define SWEEP_MAX_HALVINGS 6

struct sweep {
    const struct bench_opts *o;
    const struct http_target *t;
    const struct bench_prompt *prompts;
    json_t *runs;      /* one result object per measured rate, in the order measured */
    int n_measured;
    double best;       /* highest rate meeting the target so far, 0 if none */
};

/* One run's prompts: random prompts differ from run to run (with the same lengths), so no run is
 * served from the prefix cache an earlier run filled; datasets of real text repeat. */
static int run_prompts(struct sweep *s, struct bench_opts *o, struct bench_prompt **p, struct error *err)
{
    *o = *s->o;
    *p = (struct bench_prompt *)s->prompts;
    if (o->dataset != BENCH_DATASET_RANDOM || s->n_measured == 0)
        return 0;
    o->prompt_variant = (uint64_t)s->n_measured;
    return bench_prompts_make(o, p, err);
}

/* Runs one rate; *ok says whether its attainment met the target. */
static int measure(struct sweep *s, double rate, int *ok, struct error *err)
{
    struct bench_run run;
    struct bench_metrics m;
    struct bench_opts o;
    struct bench_prompt *prompts;
    if (run_prompts(s, &o, &prompts, err) < 0)
        return -1;
    int ran = bench_run_once(&o, s->t, prompts, rate, &run, err);
    if (prompts != s->prompts)
        bench_prompts_free(prompts, o.num_prompts);
    s->n_measured++;
    if (ran < 0)
        return -1;
    int rc = bench_metrics_compute(s->o, &run, &m, err);
    if (rc == 0) {
        *ok = m.attainment >= s->o->attainment;
        if (*ok && rate > s->best)
            s->best = rate;
        printf("sweep: rate %8.3f req/s  attainment %6.2f%%  goodput %7.3f req/s  "
               "p90 TTFT %8.1f ms  p90 TPOT %7.1f ms  failed %d  load %.1f  %s\n",
               rate, 100.0 * m.attainment, m.request_goodput, m.ttft.p90, m.tpot.p90, m.failed,
               run.load_end, *ok ? "meets target" : "misses target");
        fflush(stdout);
        json_array_append_new(s->runs, bench_result_json(s->o, &run, &m));
    }
    bench_run_free(&run);
    return rc;
}

static int sweep_list(struct sweep *s, struct error *err)
{
    int ok;
    for (int i = 0; i < s->o->n_rates; i++)
        if (measure(s, s->o->rates[i], &ok, err) < 0)
            return -1;
    return 0;
}

static int sweep_auto(struct sweep *s, struct error *err)
{
    double lo = 0, hi = s->o->sweep_start;
    int ok, steps = 0;
    if (measure(s, hi, &ok, err) < 0)
        return -1;
    /* Find a bracket [lo passes, hi fails]. */
    while (ok && steps++ < SWEEP_MAX_DOUBLINGS) {
        lo = hi;
        hi *= 2;
        if (measure(s, hi, &ok, err) < 0)
            return -1;
    }
    if (ok)
        return 0; /* never missed: best is the highest rate tried */
    for (steps = 0; lo == 0 && steps < SWEEP_MAX_HALVINGS; steps++) {
        double r = hi / 2;
        if (measure(s, r, &ok, err) < 0)
            return -1;
        if (ok)
            lo = r;
        else
            hi = r;
    }
    if (lo == 0)
        return 0; /* nothing tried met the target */
    for (steps = 0; steps < s->o->sweep_steps; steps++) {
        double mid = (lo + hi) / 2;
        if (measure(s, mid, &ok, err) < 0)
            return -1;
        if (ok)
            lo = mid;
        else
            hi = mid;
    }
    return 0;
}

static json_t *sweep_json(const struct sweep *s)
{
    const struct bench_opts *o = s->o;
    json_t *slo = json_pack("{s:o, s:o, s:o}",
                            "ttft_ms", o->slo_ttft_ms > 0 ? json_real(o->slo_ttft_ms) : json_null(),
                            "tpot_ms", o->slo_tpot_ms > 0 ? json_real(o->slo_tpot_ms) : json_null(),
                            "e2el_ms", o->slo_e2el_ms > 0 ? json_real(o->slo_e2el_ms) : json_null());
    return json_pack("{s:s, s:s, s:f, s:o, s:o, s:O}", "label", o->label, "model_id", o->model,
                     "attainment_target", o->attainment, "slo", slo,
                     "max_rate_at_attainment", s->best > 0 ? json_real(s->best) : json_null(),
                     "runs", s->runs);
}

int bench_sweep(const struct bench_opts *o, const struct http_target *t,
                const struct bench_prompt *prompts, struct error *err)
{
    struct sweep s = {.o = o, .t = t, .prompts = prompts, .runs = json_array()};
    int rc = o->sweep_auto ? sweep_auto(&s, err) : sweep_list(&s, err);
    if (rc == 0) {
        if (s.best > 0)
            printf("max rate at %.0f%% attainment: %.3f req/s (%s)\n", 100.0 * o->attainment,
                   s.best, o->label);
        else
            printf("max rate at %.0f%% attainment: none of the rates tried met it (%s)\n",
                   100.0 * o->attainment, o->label);
        json_t *res = sweep_json(&s);
        if (o->save_result)
            rc = bench_result_save(res, o->save_result, err);
        if (rc == 0 && o->plot_dir) {
            const char *label = o->label;
            rc = bench_plot(o->plot_dir, &res, &label, 1, err);
        }
        json_decref(res);
    }
    json_decref(s.runs);
    return rc;
}
