/* main.c — pdserve-plan: options, the placement report, and the systemd files of the chosen plan
 * (docs/plan.md).
 *
 *   pdserve-plan --profile FILE [workload] [SLOs] [--nodes N --cores N] [--write-env DIR]
 *   pdserve-plan simulate --profile FILE --deployment 1P+1D|2C [--threads N] --rate R[,R...] [--max-rate]
 *   pdserve-plan simulate --profile FILE --deployment 1P+1D|2C --replay RESULT.json
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/plan/plan.h"

#define MAX_STEP_LOGS 64 /* bench-plan passes every worker's log of every cell: 6 a cell */

struct opts {
    const char *profile, *write_env, *rates, *replay, *save_result;
    const char *steps[MAX_STEP_LOGS]; /* --steps */
    int n_steps;
    struct workload w;
    struct slo slo;
    struct link link;
    struct deployment dep; /* simulate */
    double attainment;
    struct node_shape node;
    int nodes, json, max_rate, simulate, run_costs;
};

/* Prints "pdserve-plan: MESSAGE" to stderr and returns code (the exit status to give). */
static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pdserve-plan: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdserve-plan --profile FILE [options]          search the best deployment\n"
            "       pdserve-plan simulate --profile FILE --deployment D --rate R[,R...] [options]\n"
            "\n"
            "  --profile FILE        passes measured by pdserve-bench-engine --profile (or a hand-written cost)\n"
            "  --steps FILE          a worker's --step-log: its passes replace the profile's (repeatable)\n"
            "  --input-len N         prompt tokens (512)          --output-len N   generated tokens (64)\n"
            "  --range-ratio R       lengths drawn from len·(1−R) … len·(1+R) (0)\n"
            "  --dataset FILE        \"input output\" token counts a line, instead of the lengths\n"
            "  --num-prompts N       requests per simulated run (1000)   --seed N   (0)\n"
            "  --slo-ttft-ms MS      time to first token SLO (required)\n"
            "  --slo-tpot-ms MS      time per output token SLO (required)\n"
            "  --attainment A        share of requests that must meet both (0.9)\n"
            "  --nodes N             machines in the cluster (1)   --cores N   cores each (2)\n"
            "  --group-workers N     the most workers simulated together (8); a node with cores for more\n"
            "                        runs copies of the best group, each on its own cores\n"
            "  --link-gbps G         KV transfer bandwidth between workers, GB/s (2)\n"
            "  --link-latency-ms MS  per transfer: grant, last put, KV_DONE (1)\n"
            "  --token-budget N      the workers' --token-budget (512)   --max-batch N  (64)\n"
            "  --write-env DIR       write the chosen plan's /etc/pdserve files, one folder a node\n"
            "  --json                one JSON object instead of the report\n"
            "simulate:\n"
            "  --deployment D        1P+1D (prefill + decode workers), 2C (colocated workers), or 1P+1C\n"
            "                        (prefill + colocated, routed by the SLOs as pdserve-frontend does;\n"
            "                        0P+2C: colocated ones routed so, as --rebalance may leave 1P+1C)\n"
            "  --rebalance           0P+2C or 1P+1C with pdserve-frontend --rebalance: workers switch\n"
            "                        roles as its rebalancer would; a run is served twice and the second\n"
            "                        measured\n"
            "  --rebalance-low X  --rebalance-high X  --rebalance-max X  --rebalance-window-s N\n"
            "                        the rebalancer's settings, as pdserve-frontend's (0.3, 0.6, 0.8, 10)\n"
            "  --threads N           threads per worker (1)\n"
            "  --rate R[,R...]       request rates to simulate (req/s)\n"
            "  --max-rate            also search the highest rate meeting --attainment\n"
            "  --replay FILE         serve each run of a pdserve-bench result file again (its arrivals,\n"
            "                        lengths and SLOs) and print measured and simulated side by side\n"
            "  --run-costs           with --replay: each run's pass costs fitted to the --steps passes\n"
            "                        that began while it ran (the machine's speed then)\n"
            "  --save-result FILE    with --replay: the simulated runs as a pdserve-bench result, for\n"
            "                        pdserve-bench plot beside the measured file\n");
}

/* NP+MD (disaggregated), NC (colocated) or NP+MC (routed by the SLOs: conditional disaggregation). */
static int parse_deployment(const char *s, struct deployment *d)
{
    int a, b;
    char x, y, end;
    d->n_prefill = d->n_decode = d->n_coloc = 0;
    d->slo_routed = false;
    if (sscanf(s, "%d%c+%d%c%c", &a, &x, &b, &y, &end) == 4 && (x | 32) == 'p' && b > 0 &&
        ((a > 0 && (y | 32) == 'd') || (a >= 0 && (y | 32) == 'c'))) {
        d->n_prefill = a;
        d->slo_routed = (y | 32) == 'c';
        *(d->slo_routed ? &d->n_coloc : &d->n_decode) = b;
        return 0;
    }
    if (sscanf(s, "%d%c%c", &a, &x, &end) == 2 && (x | 32) == 'c' && a > 0)
        return d->n_coloc = a, 0;
    return -1;
}

static double num(const char *name, const char *v, double min)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= min)) {
        fprintf(stderr, "pdserve-plan: %s %s: expected a number ≥ %g\n", name, v, min);
        exit(2);
    }
    return x;
}

static void defaults(struct opts *o)
{
    *o = (struct opts){.w = {.input_len = 512, .output_len = 64, .n = 1000},
                       .link = {.gbps = 2, .latency_ms = 1},
                       .dep = {.threads = 1, .token_budget = 512, .max_batch = 64,
                               .rb = RB_CONFIG_DEFAULTS},
                       .attainment = 0.9, .node = {.cores = 2, .group_workers = 8}, .nodes = 1};
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"profile", 1, 0, 'p'},     {"input-len", 1, 0, 'i'},      {"output-len", 1, 0, 'o'},
        {"range-ratio", 1, 0, 'r'}, {"dataset", 1, 0, 'D'},        {"num-prompts", 1, 0, 'n'},
        {"seed", 1, 0, 's'},        {"slo-ttft-ms", 1, 0, 'T'},    {"slo-tpot-ms", 1, 0, 'P'},
        {"attainment", 1, 0, 'a'},  {"nodes", 1, 0, 'N'},          {"cores", 1, 0, 'C'},
        {"link-gbps", 1, 0, 'g'},   {"link-latency-ms", 1, 0, 'L'}, {"token-budget", 1, 0, 'b'},
        {"max-batch", 1, 0, 'B'},   {"write-env", 1, 0, 'w'},      {"json", 0, 0, 'j'},
        {"deployment", 1, 0, 'd'},  {"threads", 1, 0, 't'},        {"rate", 1, 0, 'R'},
        {"max-rate", 0, 0, 'M'},    {"replay", 1, 0, 'X'},         {"steps", 1, 0, 'S'},
        {"rebalance", 0, 0, 'E'},   {"group-workers", 1, 0, 'G'},  {"save-result", 1, 0, 'O'},
        {"run-costs", 0, 0, 'c'},   {"rebalance-low", 1, 0, 'l'}, {"rebalance-high", 1, 0, 'H'},
        {"rebalance-max", 1, 0, 'Y'}, {"rebalance-window-s", 1, 0, 'W'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    defaults(o);
    if (argc > 1 && !strcmp(argv[1], "simulate"))
        o->simulate = 1, argv++, argc--;
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'p': o->profile = optarg; break;
        case 'i': o->w.input_len = (int)num("--input-len", optarg, 1); break;
        case 'o': o->w.output_len = (int)num("--output-len", optarg, 1); break;
        case 'r': o->w.range_ratio = num("--range-ratio", optarg, 0); break;
        case 'D': o->w.dataset = optarg; break;
        case 'n': o->w.n = (int)num("--num-prompts", optarg, 1); break;
        case 's': o->w.seed = (unsigned)num("--seed", optarg, 0); break;
        case 'T': o->slo.ttft_ms = num("--slo-ttft-ms", optarg, 0); break;
        case 'P': o->slo.tpot_ms = num("--slo-tpot-ms", optarg, 0); break;
        case 'a': o->attainment = num("--attainment", optarg, 0); break;
        case 'N': o->nodes = (int)num("--nodes", optarg, 1); break;
        case 'C': o->node.cores = (int)num("--cores", optarg, 1); break;
        case 'G': o->node.group_workers = (int)num("--group-workers", optarg, 1); break;
        case 'g': o->link.gbps = num("--link-gbps", optarg, 1e-6); break;
        case 'L': o->link.latency_ms = num("--link-latency-ms", optarg, 0); break;
        case 'b': o->dep.token_budget = (int)num("--token-budget", optarg, 1); break;
        case 'B': o->dep.max_batch = (int)num("--max-batch", optarg, 1); break;
        case 'w': o->write_env = optarg; break;
        case 'j': o->json = 1; break;
        case 'd':
            if (parse_deployment(optarg, &o->dep))
                exit(die(2, "--deployment %s: expected like 1P+1D, 2C or 1P+1C", optarg));
            break;
        case 't': o->dep.threads = (int)num("--threads", optarg, 1); break;
        case 'R': o->rates = optarg; break;
        case 'M': o->max_rate = 1; break;
        case 'X': o->replay = optarg; break;
        case 'O': o->save_result = optarg; break;
        case 'E': o->dep.rebalance = true; break;
        case 'c': o->run_costs = 1; break;
        case 'l': o->dep.rb.low = num("--rebalance-low", optarg, 0); break;
        case 'H': o->dep.rb.high = num("--rebalance-high", optarg, 0); break;
        case 'Y': o->dep.rb.max_busy = num("--rebalance-max", optarg, 0); break;
        case 'W': o->dep.rb.window_s = (int)num("--rebalance-window-s", optarg, 1); break;
        case 'S':
            if (o->n_steps == MAX_STEP_LOGS)
                exit(die(2, "--steps: at most %d files", MAX_STEP_LOGS));
            o->steps[o->n_steps++] = optarg;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    int replaying = o->simulate && o->replay; /* the result file has the SLOs */
    const char *missing = !o->profile ? "--profile" : !replaying && !o->slo.ttft_ms ? "--slo-ttft-ms"
                        : !replaying && !o->slo.tpot_ms ? "--slo-tpot-ms"
                        : o->simulate && !o->dep.n_coloc && !o->dep.n_prefill ? "--deployment"
                        : o->simulate && !o->rates && !o->max_rate && !o->replay ? "--rate" : NULL;
    if (missing || optind < argc) {
        die(2, "%s %s", missing ? "missing" : "unexpected argument", missing ? missing : argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (o->attainment > 1)
        exit(die(2, "--attainment is a share, 0 … 1"));
    if (o->run_costs && (!replaying || !o->n_steps))
        exit(die(2, "--run-costs fits each replayed run to its own logged passes: give --replay FILE and --steps"));
    if (o->save_result && !replaying)
        exit(die(2, "--save-result saves what simulate --replay simulated: give --replay FILE"));
    char band[160];
    if (rb_config_check(&o->dep.rb, band, sizeof band))
        exit(die(2, "%s", band));
    if (o->dep.rb.window_s > RB_MAX_WINDOW_S)
        exit(die(2, "--rebalance-window-s must be at most %d", RB_MAX_WINDOW_S));
    if (o->dep.rebalance && !o->dep.slo_routed)
        exit(die(2, "--rebalance switches prefill and colocated workers: give --deployment like 0P+2C or 1P+1C"));
}

/* With --rebalance: the prefill workers a run began and ended with, as "  1P→0P"; else "". */
static const char *split(const struct deployment *d, const struct sim_result *r)
{
    static char buf[48];
    if (!d->rebalance)
        return "";
    snprintf(buf, sizeof buf, "  %dP→%dP", r->prefill_start, r->prefill_end);
    return buf;
}

/* One simulated run at `sim_rate`, shown as `rate` (in a plan: the cluster's, of which a group had
 * sim_rate). */
static void print_result(const struct opts *o, double rate, double sim_rate, const struct sim_result *r)
{
    if (o->json)
        printf("{\"rate\":%.6g,\"attainment\":%.4f,\"ttft_mean_ms\":%.3f,\"ttft_p90_ms\":%.3f,"
               "\"tpot_mean_ms\":%.3f,\"tpot_p90_ms\":%.3f,\"throughput\":%.6g,\"prefill_start\":%d,"
               "\"prefill_end\":%d}\n", rate, r->attainment, r->ttft_mean_ms, r->ttft_p90_ms, r->tpot_mean_ms,
               r->tpot_p90_ms, r->throughput, r->prefill_start, r->prefill_end);
    else
        printf("  %8.3f req/s  attainment %5.1f%%  TTFT mean %8.1f p90 %8.1f ms  TPOT mean %7.2f p90 %7.2f ms%s%s\n",
               rate, 100 * r->attainment, r->ttft_mean_ms, r->ttft_p90_ms, r->tpot_mean_ms, r->tpot_p90_ms,
               split(&o->dep, r), r->throughput < 0.8 * sim_rate ? "  (overloaded: served at under 80% of this rate)" : "");
}

static int simulate_at(const struct opts *o, const struct profile *p, double rate)
{
    char err[256];
    struct sim_result r;
    struct request *reqs = workload_make(&o->w, rate, err, sizeof err);
    if (!reqs || sim_run(p, &o->dep, &o->link, reqs, o->w.n, &o->slo, &r, err, sizeof err)) {
        free(reqs);
        return die(1, "%s", err);
    }
    free(reqs);
    print_result(o, rate, rate, &r);
    return 0;
}

static int simulate(const struct opts *o, const struct profile *p, const struct cost_source *costs)
{
    char name[64], err[512];
    if (o->replay)
        return replay(o->replay, o->save_result, p, o->run_costs ? costs : NULL, &o->dep, &o->link, &o->slo, err,
                      sizeof err) ? die(1, "%s", err) : 0;
    if (!o->json)
        printf("%s on %s, %d in / %d out, %d requests a rate\n", deployment_name(&o->dep, name, sizeof name),
               p->model, o->w.input_len, o->w.output_len, o->w.n);
    for (const char *s = o->rates; s && *s; s += *s == ',') {
        char *end;
        double rate = strtod(s, &end);
        if (end == s || rate <= 0)
            return die(2, "--rate %s: expected rates > 0, comma-separated", o->rates);
        if (simulate_at(o, p, rate))
            return 1;
        s = end;
    }
    if (o->max_rate) {
        double r = search_max_rate(p, &o->dep, &o->link, &o->w, &o->slo, o->attainment);
        printf(o->json ? "{\"max_rate\":%.6g}\n" : "  max rate at %.0f%% attainment: %.3f req/s\n",
               o->json ? r : 100 * o->attainment, r);
    }
    return 0;
}

/* Writes a whole file under node_dir; -1 (errno set) on failure. */
static int write_file(const char *node_dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int write_file(const char *node_dir, const char *name, const char *fmt, ...)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", node_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) ? -1 : 0;
}

static int make_dir(const char *path) { return mkdir(path, 0755) && errno != EEXIST ? -1 : 0; }

/* Worker `i` of a group, the node's `slot`-th: NAME.env with its cluster-unique id, and a drop-in
 * pinning it to the slot's cores. */
static int write_worker(const char *node_dir, const struct deployment *d, int i, int slot, int id, char *units,
                        size_t cap)
{
    bool prefill = i < d->n_prefill;
    const char *kind = prefill ? "prefill" : "decode";
    char name[64], dropin[4200];
    snprintf(name, sizeof name, "%s%d.env", kind, id);
    snprintf(dropin, sizeof dropin, "%s/pdserve-%s@%s%d.service.d", node_dir, kind, kind, id);
    snprintf(units + strlen(units), cap - strlen(units), "pdserve-%s@%s%d.service\n", kind, kind, id);
    if (write_file(node_dir, name, "PDSERVE_ID=%d\nPDSERVE_ARGS=\"%s\"\n", id, !prefill && d->n_coloc ? "--colocated" : "") ||
        make_dir(dropin))
        return -1;
    return write_file(dropin, "pin.conf", "[Service]\nCPUAffinity=%d-%d\n", slot * d->threads,
                      (slot + 1) * d->threads - 1);
}

/* The chosen plan as /etc/pdserve files: DIR/nodeK/{cluster.env, NAME.env, pin drop-ins, units}, and
 * for a plan routed by the SLOs, node 1's frontend.env giving the frontend the SLOs. */
static int write_node(const char *dir, int node, const struct deployment *d, const struct slo *slo)
{
    char node_dir[4096], units[16384] = "";
    int group = d->n_prefill + d->n_decode + d->n_coloc, n = group * (d->copies > 1 ? d->copies : 1);
    snprintf(node_dir, sizeof node_dir, "%s/node%d", dir, node + 1);
    if (make_dir(dir) || make_dir(node_dir))
        return -1;
    if (write_file(node_dir, "cluster.env", "# written by pdserve-plan: add PDSERVE_MODEL and PDSERVE_FRONTEND\n"
                   "PDSERVE_WORKER_ARGS=\"--threads %d --token-budget %d --max-batch %d\"\n",
                   d->threads, d->token_budget, d->max_batch))
        return -1;
    for (int slot = 0; slot < n; slot++)
        if (write_worker(node_dir, d, slot % group, slot, node * n + slot + 1, units, sizeof units))
            return -1;
    if (d->slo_routed && node == 0 &&
        write_file(node_dir, "frontend.env", "# written by pdserve-plan: the plan routes by these SLOs; add the addresses "
                   "(docs/deploy.md)\nPDSERVE_ARGS=\"--slo-ttft-ms %.0f --slo-tpot-ms %g\"\n", slo->ttft_ms, slo->tpot_ms))
        return -1;
    return write_file(node_dir, "units", "%s", units);
}

struct candidate {
    struct deployment d;
    double group_rate; /* the max rate of one group of d's workers */
};

static int node_cores(const struct candidate *c)
{
    return (c->d.n_prefill + c->d.n_decode + c->d.n_coloc) * c->d.threads * c->d.copies;
}
static double node_rate(const struct candidate *c) { return c->group_rate * c->d.copies; }

static void report_curve(const struct opts *o, const struct profile *p, const struct candidate *best)
{
    static const double at[] = {0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5};
    printf("\npredicted attainment of the plan (cluster rate = %d × a group's):\n", o->nodes * best->d.copies);
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        char err[256];
        struct sim_result r;
        double rate = best->group_rate * at[i];
        struct request *reqs = workload_make(&o->w, rate, err, sizeof err);
        if (reqs && !sim_run(p, &best->d, &o->link, reqs, o->w.n, &o->slo, &r, err, sizeof err))
            print_result(o, rate * best->d.copies * o->nodes, rate, &r);
        free(reqs);
    }
}

static const struct candidate *by_rate;
static int faster(const void *a, const void *b)
{
    double x = node_rate(&by_rate[*(const int *)a]), y = node_rate(&by_rate[*(const int *)b]);
    return (x < y) - (x > y);
}

#define REPORT_ROWS 12

static void report(const struct opts *o, const struct profile *p, const struct candidate *c, int n, int best)
{
    char name[64];
    if (o->json) {
        printf("{\"deployments\":[");
        for (int i = 0; i < n; i++)
            printf("%s{\"deployment\":\"%s\",\"copies\":%d,\"cores\":%d,\"max_rate_per_node\":%.6g,"
                   "\"goodput_per_core\":%.6g}", i ? "," : "", deployment_name(&c[i].d, name, sizeof name),
                   c[i].d.copies, node_cores(&c[i]), node_rate(&c[i]), node_rate(&c[i]) / o->node.cores);
        printf("],\"best\":\"%s\",\"cluster_rate\":%.6g}\n", deployment_name(&c[best].d, name, sizeof name),
               node_rate(&c[best]) * o->nodes);
        return;
    }
    int *order = malloc(sizeof *order * (size_t)n);
    for (int i = 0; i < n; i++)
        order[i] = i;
    by_rate = c;
    qsort(order, (size_t)n, sizeof *order, faster);
    printf("%d in / %d out (±%.0f%%), SLOs TTFT %.0f ms, TPOT %.1f ms at %.0f%%; %d node(s) × %d cores\n\n",
           o->w.input_len, o->w.output_len, 100 * o->w.range_ratio, o->slo.ttft_ms, o->slo.tpot_ms,
           100 * o->attainment, o->nodes, o->node.cores);
    printf("  %-30s %10s %16s %14s\n", "per node", "cores used", "max rate/node", "goodput/core");
    for (int k = 0; k < n; k++) {
        const struct candidate *x = &c[order[k]];
        if (k < REPORT_ROWS || order[k] == best)
            printf("  %-30s %10d %10.3f req/s %8.3f req/s%s\n", deployment_name(&x->d, name, sizeof name),
                   node_cores(x), node_rate(x), node_rate(x) / o->node.cores, order[k] == best ? "  <- best" : "");
    }
    if (n > REPORT_ROWS)
        printf("  (%d deployments tried; the %d fastest shown)\n", n, REPORT_ROWS);
    free(order);
    printf("\nbest: %s on each of %d node(s): %.3f req/s in all\n", deployment_name(&c[best].d, name, sizeof name),
           o->nodes, node_rate(&c[best]) * o->nodes);
    report_curve(o, p, &c[best]);
}

/* The best is the highest goodput per core of the node, idle cores counted: the highest rate per node;
 * between near-equals (within 2%), the one leaving more cores idle (for the frontend, or other work). */
static int plan(const struct opts *o, const struct profile *p)
{
    int cap = p->n_models * o->node.group_workers * (o->node.group_workers + 1), best = -1;
    struct candidate *c = calloc((size_t)cap, sizeof *c);
    struct deployment *d = calloc((size_t)cap, sizeof *d);
    int n = search_deployments(p, &o->node, o->dep.token_budget, o->dep.max_batch, d, cap);
    double top = 0;
    for (int i = 0; i < n; i++) {
        c[i] = (struct candidate){d[i], search_max_rate(p, &d[i], &o->link, &o->w, &o->slo, o->attainment)};
        top = node_rate(&c[i]) > top ? node_rate(&c[i]) : top;
    }
    for (int i = 0; i < n; i++)
        if (node_rate(&c[i]) >= 0.98 * top &&
            (best < 0 || node_cores(&c[i]) < node_cores(&c[best]) ||
             (node_cores(&c[i]) == node_cores(&c[best]) && node_rate(&c[i]) > node_rate(&c[best]))))
            best = i;
    int rc = 0;
    if (best < 0 || c[best].group_rate == 0)
        rc = die(1, "no deployment of %d cores meets these SLOs even unloaded", o->node.cores);
    else
        report(o, p, c, n, best);
    for (int k = 0; !rc && o->write_env && k < o->nodes; k++)
        if (write_node(o->write_env, k, &c[best].d, &o->slo))
            rc = die(1, "cannot write %s: %s", o->write_env, strerror(errno));
    free(c), free(d);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct profile p;
    char err[512];
    parse(argc, argv, &o);
    struct cost_source costs = {o.profile, NULL, 0, 0};
    if (cost_source_read(&costs, o.steps, o.n_steps, err, sizeof err) || profile_load(&costs, &p, err, sizeof err)) {
        cost_source_free(&costs);
        return die(1, "%s", err);
    }
    if (!o.json)
        for (int i = 0; i < p.n_models; i++)
            if (p.by_threads[i].n_samples)
                fprintf(stderr, "pdserve-plan: %d-thread cost fitted to %d passes, largest error %.1f%%\n",
                        p.by_threads[i].threads, p.by_threads[i].n_samples, 100 * p.by_threads[i].max_rel_err);
    int rc = o.simulate ? simulate(&o, &p, &costs) : plan(&o, &p);
    cost_source_free(&costs);
    return rc;
}
