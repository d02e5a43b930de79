/* plan.h — pdserve-plan: DistServe's placement search for pdserve. A model's measured cost on the
 * target hardware (a profile written by `pdserve-bench-engine --profile`), a workload, SLOs and a
 * cluster go in; a discrete-event simulation of pdserve's router, batching, queues and KV transfers
 * finds the deployment with the highest goodput per core.
 *
 *   profile.c  the cost of one forward pass, fitted to the profile's measured passes
 *   workload.c requests: arrival times and prompt/output lengths (seeded)
 *   sim.c      one deployment (prefill, decode and colocated workers) serving one workload
 *   search.c   the highest rate meeting the attainment target; the deployments a cluster allows
 *   replay.c   the simulator against a measurement: a pdserve-bench result's requests served again
 *   main.c     options and the report */
#ifndef PD_TOOLS_PLAN_H
#define PD_TOOLS_PLAN_H

#include <stdbool.h>

#include "frontend/rebalance_policy.h"

/* What one forward pass computes: new tokens, the (query, key) pairs their attention spans —
 * prompt tokens' (a matrix product per head) and decoded tokens' (a pass over the cached K/V, bound
 * by memory) cost differently — and the logits rows it produces. */
struct pass {
    double tokens, prompt_attn, decode_attn, logits;
};

/* Seconds for a pass on `threads` threads:
 *   knots(tokens) + c[0] + c[1]·tokens + c[2]·prompt_attn + c[3]·decode_attn + c[4]·logits
 * where knots() interpolates linearly between values at measured token counts (a pass of 4 tokens
 * costs far more than 4/64 of one of 64: small passes are bound by reading the weights, large ones
 * by arithmetic). A measured profile is fitted as knots + c[2]·prompt_attn + c[3]·decode_attn by
 * least squares on relative error; a hand-written one gives c[] and no knots. */
#define PLAN_MAX_KNOTS 32
struct cost_model {
    int threads;
    double c[5];
    int n_knots;
    double knot_tokens[PLAN_MAX_KNOTS], knot_secs[PLAN_MAX_KNOTS];
    double max_rel_err; /* of the fit over its samples */
    int n_samples;
};

#define PLAN_MAX_THREADS 8

struct profile {
    char model[256];
    double kv_bytes_per_token; /* every layer's K and V of one position */
    int n_models;
    struct cost_model by_threads[PLAN_MAX_THREADS]; /* those the profile measured */
};

/* Where pass costs come from: a profile (`pdserve-bench-engine --profile`), whose measured passes
 * the step logs' (workers' --step-log files) replace for the thread counts they cover; with to > from,
 * only the logged passes that began within [from, to) on the host's monotonic clock (their "t"). */
struct json_t;
struct cost_source {
    const char *profile;
    struct json_t *logged; /* every pass of the step logs, read once (cost_source_read); NULL: no logs */
    double from, to;
};
/* Reads the step logs into src->logged (none: it stays NULL); free with cost_source_free. */
int cost_source_read(struct cost_source *src, const char *const *steps, int n_steps, char *err, int errlen);
void cost_source_free(struct cost_source *src);
int profile_load(const struct cost_source *src, struct profile *p, char *err, int errlen);
/* Formats a message into err (errlen bytes) and returns -1. */
int plan_error(char *err, int errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const struct cost_model *profile_cost(const struct profile *p, int threads);
double pass_secs(const struct cost_model *m, const struct pass *x);

struct request {
    double arrival; /* seconds from the start */
    int in, out;    /* prompt tokens; generated tokens including the first */
};

struct workload {
    int input_len, output_len; /* fixed lengths, or the middle of a range */
    double range_ratio;        /* lengths drawn uniformly from len·(1−r) … len·(1+r) */
    const char *dataset;       /* a file of "input output" lines, used instead when set */
    int n;                     /* requests per simulated run */
    unsigned seed;
};

/* n requests at Poisson rate `rate` (requests/s); NULL with a message in err on a bad dataset. */
struct request *workload_make(const struct workload *w, double rate, char *err, int errlen);

/* One deployment: n_prefill + n_decode workers (disaggregated), n_coloc colocated ones, or, routed
 * by the SLOs, n_prefill (perhaps none) + n_coloc; each worker with `threads` compute threads. */
struct deployment {
    int n_prefill, n_decode, n_coloc;
    int threads;
    /* In a plan: the node runs this many such groups of workers, each on its own cores, behind one
     * frontend; each group is simulated alone at its share of the node's rate (the frontend's
     * least-loaded choice over the whole node does at least as well). 0 or 1: one. */
    int copies;
    int token_budget; /* tokens per pass (pdserve's --token-budget) */
    int max_batch;    /* sequences per decode pass (--max-batch) */
    /* The frontend has the SLOs (--slo-ttft-ms, --slo-tpot-ms): a prompt goes to a prefill worker
     * unless that breaks its TTFT SLO and a colocated one is sooner (conditional disaggregation),
     * every sequence decodes on a colocated worker, and colocated passes carry only the prompt
     * tokens that keep them within the TPOT SLO. */
    bool slo_routed;
    bool rebalance;    /* and --rebalance: the frontend's rebalancer switches workers' roles */
    struct rb_config rb; /* its --rebalance-low/-high/-window-s (the TPOT SLO is the run's) */
};

struct link {
    double gbps;       /* KV transfer bandwidth between a prefill and a decode worker, GB/s */
    double latency_ms; /* per transfer: grant, last layer's put, KV_DONE */
};

struct slo {
    double ttft_ms, tpot_ms;
};

struct sim_result {
    int n;
    double attainment;              /* share of requests meeting both SLOs */
    double ttft_mean_ms, ttft_p50_ms, ttft_p90_ms, ttft_p99_ms;
    double tpot_mean_ms, tpot_p50_ms, tpot_p90_ms, tpot_p99_ms;
    double throughput; /* requests / (last finish − first arrival) */
    int prefill_start, prefill_end; /* prefill workers when the (measured) run began and ended */
};

/* Serve reqs (sorted by arrival) with d; every request's TTFT and TPOT measured as pdserve-bench does. */
int sim_run(const struct profile *p, const struct deployment *d, const struct link *l, const struct request *reqs,
            int n, const struct slo *s, struct sim_result *out, char *err, int errlen);

/* The highest request rate whose attainment is at least `target` and that the deployment sustains:
 * a run finished at under 80% of the offered rate is overloaded, however many of its finite number of
 * requests met their SLOs. */
double search_max_rate(const struct profile *p, const struct deployment *d, const struct link *l,
                       const struct workload *w, const struct slo *s, double target);

/* A node of the cluster: its cores, and the most workers the planner simulates as one group (a larger
 * node runs copies of a group). */
struct node_shape {
    int cores, group_workers;
};

/* Deployments of one node: every group of up to group_workers workers with the same thread count
 * that fits its cores (colocated ones; prefill + decode; prefill + colocated ones routed by the SLOs),
 * repeated as often as the cores hold it, at most `cap` of them; returns how many were written. */
int search_deployments(const struct profile *p, const struct node_shape *node, int token_budget, int max_batch,
                       struct deployment *out, int cap);

/* Serves again, in simulation, each run of the pdserve-bench result file at `path` (arrivals and
 * lengths as measured; SLOs the file's, else `slo`) and prints measured and simulated side by side,
 * and the max rates meeting the file's attainment target; with `save`, also writes the simulated runs
 * there as a pdserve-bench result (for its plots). Pass costs are p's, or with `per_run` each run's
 * own: fitted to the logged passes that began while it ran (its start_monotonic_ns and duration). */
int replay(const char *path, const char *save, const struct profile *p, const struct cost_source *per_run,
           const struct deployment *d, const struct link *l, const struct slo *slo, char *err, int errlen);

const char *deployment_name(const struct deployment *d, char *buf, int len);

#endif
