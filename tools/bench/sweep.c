/* sweep.c — runs the same workload at several request rates and reports the highest rate whose
 * SLO attainment meets the target: DistServe's "max rate at 90% attainment", the number that says
 * how much traffic a deployment serves within its SLOs. With --sweep auto the rates are found by
 * doubling from --sweep-start until attainment falls below the target, then bisecting between the
 * last rate that met it and the first that did not. Each run of a random dataset sends prompts of
 * its own (the same lengths), so a server's prefix cache cannot serve a run from an earlier one.
 *
 * Several servers (--base-url given more than once) are swept interleaved: each keeps its own
 * search, and they take one run each in turn, the n-th runs of all sending the same prompts. A
 * machine whose speed drifts (a VM beside busy neighbours moved 15-20% within an hour here) then
 * moves every server's results alike, where sweeping one server after another would credit one
 * deployment with the machine's good quarter of an hour. */
#include "bench.h"
#include "common/util/log.h"

#include <math.h>
#include <stdlib.h>

#define SWEEP_MAX_DOUBLINGS 16
#define SWEEP_MAX_HALVINGS 6

/* Where a search stands: it measures `next`, then moves on by the verdict (sweep_record). */
enum sweep_phase { SWEEP_LIST, SWEEP_UP, SWEEP_DOWN, SWEEP_BISECT, SWEEP_DONE };

struct sweep {
    const struct bench_opts *o; /* this server's: base_url, label, save_result are its own */
    struct http_target t;
    const struct bench_prompt *prompts;
    json_t *runs;      /* one result object per measured rate, in the order measured */
    int n_measured;
    double best;       /* highest rate meeting the target so far, 0 if none */
    enum sweep_phase phase;
    double lo, hi;     /* auto: the highest rate that met the target (0: none yet), the lowest that missed */
    int steps;         /* in this phase */
    double next;
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
    int ran = bench_run_once(&o, &s->t, prompts, rate, &run, err);
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
        char who[160] = ""; /* names the server when several are swept */
        if (s->o->n_targets > 1)
            snprintf(who, sizeof who, "[%s] ", s->o->label);
        printf("sweep: %srate %8.3f req/s  attainment %6.2f%%  goodput %7.3f req/s  "
               "p90 TTFT %8.1f ms  p90 TPOT %7.1f ms  failed %d  load %.1f  %s\n",
               who, rate, 100.0 * m.attainment, m.request_goodput, m.ttft.p90, m.tpot.p90, m.failed,
               run.load_end, *ok ? "meets target" : "misses target");
        fflush(stdout);
        json_array_append_new(s->runs, bench_result_json(s->o, &run, &m));
    }
    bench_run_free(&run);
    return rc;
}

static void sweep_begin(struct sweep *s)
{
    s->phase = s->o->sweep_auto ? SWEEP_UP : SWEEP_LIST;
    s->next = s->o->sweep_auto ? s->o->sweep_start : s->o->rates[0];
    s->hi = s->next;
}

/* Bisection between lo (met) and hi (missed), or done after --sweep-steps of it. */
static void bisect(struct sweep *s)
{
    s->phase = s->steps < s->o->sweep_steps ? SWEEP_BISECT : SWEEP_DONE;
    s->next = (s->lo + s->hi) / 2;
}

/* Moves the search on by whether the rate just measured (s->next) met the target. */
static void sweep_record(struct sweep *s, int ok)
{
    double r = s->next;
    s->steps++;
    switch (s->phase) {
    case SWEEP_LIST:
        s->phase = s->steps < s->o->n_rates ? SWEEP_LIST : SWEEP_DONE;
        s->next = s->o->rates[s->steps % s->o->n_rates];
        break;
    case SWEEP_UP: /* find a bracket [lo met, hi missed] by doubling */
        if (ok) {
            s->lo = r;
            s->hi = s->next = 2 * r;
            s->phase = s->steps <= SWEEP_MAX_DOUBLINGS ? SWEEP_UP : SWEEP_DONE; /* never missed */
        } else if (s->lo > 0) {
            s->steps = 0;
            bisect(s);
        } else {
            s->steps = 0;
            s->phase = SWEEP_DOWN;
            s->next = r / 2;
        }
        break;
    case SWEEP_DOWN: /* the first rate missed: halve until one meets it */
        if (ok) {
            s->lo = r;
            s->steps = 0;
            bisect(s);
        } else {
            s->hi = r;
            s->phase = s->steps < SWEEP_MAX_HALVINGS ? SWEEP_DOWN : SWEEP_DONE; /* nothing met it */
            s->next = r / 2;
        }
        break;
    case SWEEP_BISECT:
        *(ok ? &s->lo : &s->hi) = r;
        bisect(s);
        break;
    case SWEEP_DONE:
        break;
    }
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

/* Prints, saves and plots one server's sweep. */
static int sweep_report(struct sweep *s, struct error *err)
{
    const struct bench_opts *o = s->o;
    if (s->best > 0)
        printf("max rate at %.0f%% attainment: %.3f req/s (%s)\n", 100.0 * o->attainment, s->best, o->label);
    else
        printf("max rate at %.0f%% attainment: none of the rates tried met it (%s)\n", 100.0 * o->attainment,
               o->label);
    json_t *res = sweep_json(s);
    int rc = o->save_result ? bench_result_save(res, o->save_result, err) : 0;
    json_decref(res);
    return rc;
}

/* Plots every server's sweep in one set of figures. */
static int sweep_plot(const struct sweep *s, int n, const char *dir, struct error *err)
{
    json_t *res[BENCH_MAX_TARGETS];
    const char *labels[BENCH_MAX_TARGETS];
    for (int i = 0; i < n; i++) {
        res[i] = sweep_json(&s[i]);
        labels[i] = s[i].o->label;
    }
    int rc = bench_plot(dir, res, labels, n, err);
    for (int i = 0; i < n; i++)
        json_decref(res[i]);
    return rc;
}

/* The servers' searches, one run each in turn until every one is done. */
static int sweep_all(struct sweep *s, int n, struct error *err)
{
    for (int busy = 1; busy;) {
        busy = 0;
        for (int i = 0; i < n; i++) {
            if (s[i].phase == SWEEP_DONE)
                continue;
            int ok = 0;
            if (measure(&s[i], s[i].next, &ok, err) < 0)
                return -1;
            sweep_record(&s[i], ok);
            busy = 1;
        }
    }
    return 0;
}

int bench_sweep(const struct bench_opts *o, const struct bench_prompt *prompts, struct error *err)
{
    int n = o->n_targets, rc = 0;
    struct bench_opts each[BENCH_MAX_TARGETS];
    struct sweep s[BENCH_MAX_TARGETS];
    for (int i = 0; i < n; i++) {
        each[i] = *o;
        each[i].base_url = o->targets[i].base_url;
        each[i].label = o->targets[i].label;
        each[i].save_result = o->targets[i].save_result;
        s[i] = (struct sweep){.o = &each[i], .prompts = prompts, .runs = json_array()};
        sweep_begin(&s[i]);
        if (rc == 0)
            rc = http_target_resolve(each[i].base_url, &s[i].t, err);
    }
    if (rc == 0)
        rc = sweep_all(s, n, err);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = sweep_report(&s[i], err);
    if (rc == 0 && o->plot_dir)
        rc = sweep_plot(s, n, o->plot_dir, err);
    for (int i = 0; i < n; i++)
        json_decref(s[i].runs);
    return rc;
}
