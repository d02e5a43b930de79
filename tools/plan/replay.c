/* replay.c — the simulator against a measurement: every run of a pdserve-bench result file (--save-result,
 * one run's or a sweep's) is served again in simulation, with each request's own arrival time and prompt and
 * output lengths, and the two are printed side by side. What is left between them is the
 * simulator's error, not the workload's sampling. The simulated runs can also be saved as a result
 * file of pdserve-bench's shape, so that `pdserve-bench plot` draws them beside the measured ones. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/plan/plan.h"

/* One measured run's requests, in arrival order; NULL with a message when it has none usable. */
static struct request *run_requests(json_t *run, int *n, char *err, int errlen)
{
    json_t *list = json_object_get(run, "requests"), *e;
    size_t i;
    struct request *r = calloc(json_array_size(list) + 1, sizeof *r);
    *n = 0;
    json_array_foreach(list, i, e) {
        struct request q = {json_number_value(json_object_get(e, "start_s")),
                            (int)json_number_value(json_object_get(e, "input_tokens")),
                            (int)json_number_value(json_object_get(e, "output_tokens"))};
        if (!json_is_true(json_object_get(e, "ok")) || q.in < 1 || q.out < 1)
            continue; /* failed: the server never said how long it would have been */
        int k = (*n)++;
        while (k > 0 && r[k - 1].arrival > q.arrival) /* insertion: they come nearly sorted */
            r[k] = r[k - 1], k--;
        r[k] = q;
    }
    if (*n == 0) {
        free(r);
        plan_error(err, errlen, "a run without completed requests (\"requests\": [{start_s, input_tokens, ...}])");
        return NULL;
    }
    return r;
}

static double num(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

/* One simulated run with pdserve-bench's field names (the ones its plots read). */
static json_t *run_json(double rate, const struct sim_result *s)
{
    return json_pack("{s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "request_rate", rate,
                     "completed", s->n, "attainment", s->attainment, "request_throughput", s->throughput,
                     "request_goodput", s->attainment * s->throughput, "mean_ttft_ms", s->ttft_mean_ms,
                     "median_ttft_ms", s->ttft_p50_ms, "p90_ttft_ms", s->ttft_p90_ms, "p99_ttft_ms",
                     s->ttft_p99_ms, "mean_tpot_ms", s->tpot_mean_ms, "median_tpot_ms", s->tpot_p50_ms,
                     "p90_tpot_ms", s->tpot_p90_ms, "p99_tpot_ms", s->tpot_p99_ms);
}

/* The costs of one run: p, or fitted to the passes logged while the run went (per_run). */
static const struct profile *run_costs(json_t *run, const struct profile *p, const struct cost_source *per_run,
                                       struct profile *own, char *err, int errlen)
{
    if (!per_run)
        return p;
    json_t *start = json_object_get(run, "start_monotonic_ns");
    if (!json_is_integer(start)) {
        plan_error(err, errlen, "--run-costs: a run without \"start_monotonic_ns\" (pdserve-bench writes it)");
        return NULL;
    }
    struct cost_source src = *per_run;
    src.from = (double)json_integer_value(start) / 1e9;
    src.to = src.from + num(run, "duration");
    return profile_load(&src, own, err, errlen) ? NULL : own;
}

int replay(const char *path, const char *save, const struct profile *p, const struct cost_source *per_run,
           const struct deployment *d, const struct link *l, const struct slo *flags, char *err, int errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je), *runs = json_object_get(root, "runs"), *run;
    if (!root)
        return plan_error(err, errlen, "%s: %s (line %d)", path, je.text, je.line);
    if (!json_is_array(runs)) /* a single run's file */
        runs = json_pack("[O]", root);
    else
        json_incref(runs);
    json_t *so = json_object_get(root, "slo") ?: json_object_get(json_array_get(runs, 0), "slo");
    struct slo slo = {num(so, "ttft_ms") ?: flags->ttft_ms, num(so, "tpot_ms") ?: flags->tpot_ms};
    char name[64];
    printf("%s replaying %s (SLOs TTFT %.0f ms, TPOT %.1f ms)\n", deployment_name(d, name, sizeof name), path,
           slo.ttft_ms, slo.tpot_ms);
    printf("  %8s %5s  %-17s %-17s %-17s\n", "rate", "n", "attainment", "TTFT mean (ms)", "TPOT mean (ms)");
    printf("  %8s %5s  %8s %8s %8s %8s %8s %8s\n", "", "", "measured", "sim", "measured", "sim", "measured", "sim");
    size_t i;
    int rc = 0;
    json_t *saved = json_array();
    double goal = num(root, "attainment_target") ?: 0.9, best_measured = 0, best_sim = 0;
    json_array_foreach(runs, i, run) {
        int n;
        struct sim_result s;
        struct profile own;
        const struct profile *costs = run_costs(run, p, per_run, &own, err, errlen);
        struct request *reqs = costs ? run_requests(run, &n, err, errlen) : NULL;
        if (!reqs || sim_run(costs, d, l, reqs, n, &slo, &s, err, errlen)) {
            free(reqs);
            rc = -1;
            break;
        }
        free(reqs);
        json_array_append_new(saved, run_json(num(run, "request_rate"), &s));
        printf("  %8.3f %5d  %7.1f%% %7.1f%% %8.1f %8.1f %8.2f %8.2f", num(run, "request_rate"), n,
               100 * num(run, "attainment"), 100 * s.attainment, num(run, "mean_ttft_ms"), s.ttft_mean_ms,
               num(run, "mean_tpot_ms"), s.tpot_mean_ms);
        if (d->rebalance) /* the split the simulated run began and ended with */
            printf("  %dP→%dP", s.prefill_start, s.prefill_end);
        printf("\n");
        double rate = num(run, "request_rate");
        if (num(run, "attainment") >= goal && rate > best_measured)
            best_measured = rate;
        if (s.attainment >= goal && rate > best_sim)
            best_sim = rate;
    }
    if (!rc && best_measured > 0) /* pdserve-bench's measure: the highest rate run that met the target */
        printf("  max rate at %.0f%%: measured %.3f, simulated %.3f (%.2fx)\n", 100 * goal, best_measured,
               best_sim, best_sim / best_measured);
    if (!rc && save) {
        char label[96];
        snprintf(label, sizeof label, "%s simulated", deployment_name(d, name, sizeof name));
        json_t *out = json_pack("{s:s, s:{s:f, s:f}, s:O}", "label", label, "slo", "ttft_ms", slo.ttft_ms,
                                "tpot_ms", slo.tpot_ms, "runs", saved);
        json_t *target = json_object_get(root, "attainment_target");
        if (target)
            json_object_set(out, "attainment_target", target);
        if (json_dump_file(out, save, JSON_INDENT(1)))
            rc = plan_error(err, errlen, "cannot write %s", save);
        json_decref(out);
    }
    json_decref(saved);
    json_decref(runs);
    json_decref(root);
    return rc;
}
