/* metrics.h — the frontend's Prometheus metrics, named in the spirit of vLLM's (prefix "pdserve:"):
 * request counts by finish reason, prompt and generation token counters, TTFT / TPOT / E2E /
 * queue-time histograms, the frontend's own processing time per streamed token, each disaggregated
 * request's KV transfer (bytes, seconds, and the seconds compute did not hide), and (rendered from
 * the cluster view) running and waiting requests and KV usage per worker. Loop thread only. */
#ifndef PD_METRICS_H
#define PD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/engine/finish.h"

#define METRICS_MAX_BUCKETS 20

struct histogram {
    const char *name, *help;
    int n_buckets;
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t counts[METRICS_MAX_BUCKETS]; /* per bucket, not cumulative; +Inf is count - sum(counts) */
    uint64_t count;
    double sum;
};


struct metrics {
    uint64_t finished[FINISH_COUNT]; /* by enum finish; [FINISH_NONE] stays 0 */
    uint64_t prompt_tokens, generation_tokens;
    uint64_t http_requests[6]; /* by status class: 1xx..5xx, index 1..5 */
    struct histogram ttft, tpot, e2e, queue, fe_token;
    struct histogram prompt_len, gen_len; /* tokens per request (vLLM's request_*_tokens) */
    struct histogram kv_bytes, kv_seconds, kv_exposed; /* per disaggregated request: its KV transfer */
};

void metrics_init(struct metrics *m);
void histogram_observe(struct histogram *h, double value);
void metrics_count_status(struct metrics *m, int status);

struct cluster;
struct rebalancer;
/* Prometheus text exposition (version 0.0.4) of m and the cluster's gauges (and the rebalancer's, rb
 * not NULL); malloc'd. */
char *metrics_render(const struct metrics *m, struct cluster *c, const struct rebalancer *rb, int running_seqs,
                     const char *model, size_t *len);

#endif
