/* main.c — pdserve-bench: parse the options, build the prompts, then one run, a sweep, or the
 * `plot` subcommand. Failed requests are results, not errors: the exit status is non-zero only
 * when the benchmark itself could not run (bad options, unreadable dataset, unwritable output). */
#include "bench.h"
#include "common/util/log.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static int run_single(const struct bench_opts *o, const struct http_target *t,
                      const struct bench_prompt *prompts, struct error *err)
{
    struct bench_run run;
    struct bench_metrics m;
    if (bench_run_once(o, t, prompts, o->request_rate, &run, err) < 0)
        return -1;
    int rc = bench_metrics_compute(o, &run, &m, err);
    if (rc == 0) {
        bench_result_print(stdout, o, &m, &run);
        json_t *res = bench_result_json(o, &run, &m);
        if (o->save_result)
            rc = bench_result_save(res, o->save_result, err);
        if (rc == 0 && o->plot_dir) {
            const char *label = o->label;
            rc = bench_plot(o->plot_dir, &res, &label, 1, err);
        }
        json_decref(res);
    }
    bench_run_free(&run);
    return rc;
}

int main(int argc, char **argv)
{
    log_init("bench");
    if (argc > 1 && !strcmp(argv[1], "plot"))
        return bench_plot_main(argc - 1, argv + 1);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        bench_opts_usage(stdout);
        return 0;
    }
    struct bench_opts o;
    struct http_target t;
    struct bench_prompt *prompts = NULL;
    struct error err = {{0}};
    int rc = bench_opts_parse(argc, argv, &o, &err);
    bool sweep = o.n_rates || o.sweep_auto;
    if (rc == 0 && !sweep)
        rc = http_target_resolve(o.base_url, &t, &err);
    if (rc == 0)
        rc = bench_prompts_make(&o, &prompts, &err);
    if (rc == 0) {
        char rate[32];
        snprintf(rate, sizeof rate, sweep ? "swept" : "%g req/s", o.request_rate);
        log_info("%d %s prompts to %s%s, rate %s", o.num_prompts,
                 o.dataset == BENCH_DATASET_RANDOM ? "random" : o.dataset == BENCH_DATASET_MULTITURN ? "multi-turn" : "sharegpt", o.base_url, o.endpoint,
                 isinf(o.request_rate) && !sweep ? "inf" : rate);
        rc = sweep ? bench_sweep(&o, prompts, &err) : run_single(&o, &t, prompts, &err);
    }
    bench_prompts_free(prompts, o.num_prompts);
    if (rc < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    return 0;
}
