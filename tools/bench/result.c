/* result.c — the result of a run: a JSON object with vLLM benchmark_serving's field names (so
 * scripts that read vLLM's results read ours), our additions (SLOs, attainment, failure reasons,
 * per-request records), and the printed summary in vLLM's layout. */
#include "bench.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* JSON has no NaN or infinity: an undefined value is null. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static void put_dist(json_t *o, const char *name, const struct bench_dist *d)
{
    static const char *const stat[] = {"mean", "median", "std", "p90", "p99"};
    const double v[] = {d->mean, d->median, d->std, d->p90, d->p99};
    char key[64];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "%s_%s_ms", stat[i], name);
        json_object_set_new(o, key, json_real(v[i]));
    }
}

static json_t *record_json(const struct bench_opts *o, const struct bench_record *r, int i)
{
    json_t *itl = json_array();
    for (int k = 0; k < r->n_itl; k++)
        json_array_append_new(itl, json_real(r->itl_ms[k]));
    return json_pack("{s:i, s:s, s:b, s:s, s:f, s:o, s:o, s:o, s:o, s:i, s:i, s:b, s:b}", "index", i,
                     "id", r->id, "ok", r->ok, "error", r->error, "start_s", r->start_s, "ttft_ms",
                     num(r->ok ? r->ttft_ms : NAN), "tpot_ms", num(r->ok ? r->tpot_ms : NAN),
                     "e2el_ms", num(r->ok ? r->e2el_ms : NAN), "itl_ms", itl, "input_tokens",
                     r->input_len, "output_tokens", r->ok ? r->output_len : 0, "usage_seen",
                     r->usage_seen, "good", bench_record_good(o, r));
}

/* vLLM's per-request lists (seconds), then ours with everything per request. */
static void put_requests(json_t *res, const struct bench_opts *o, const struct bench_run *run)
{
    json_t *in = json_array(), *out = json_array(), *ttfts = json_array(), *itls = json_array();
    json_t *errors = json_array(), *recs = json_array(), *reasons = json_object();
    for (int i = 0; i < run->n; i++) {
        const struct bench_record *r = &run->rec[i];
        json_t *itl = json_array();
        for (int k = 0; k < r->n_itl; k++)
            json_array_append_new(itl, json_real(r->itl_ms[k] / 1000.0));
        json_array_append_new(in, json_integer(r->input_len));
        json_array_append_new(out, json_integer(r->ok ? r->output_len : 0));
        json_array_append_new(ttfts, json_real(r->ok ? r->ttft_ms / 1000.0 : 0.0));
        json_array_append_new(itls, itl);
        json_array_append_new(errors, json_string(r->error));
        json_array_append_new(recs, record_json(o, r, i));
        if (!r->ok) {
            json_t *c = json_object_get(reasons, r->error);
            json_object_set_new(reasons, r->error, json_integer(c ? json_integer_value(c) + 1 : 1));
        }
    }
    json_object_set_new(res, "input_lens", in);
    json_object_set_new(res, "output_lens", out);
    json_object_set_new(res, "ttfts", ttfts);
    json_object_set_new(res, "itls", itls);
    json_object_set_new(res, "errors", errors);
    json_object_set_new(res, "failure_reasons", reasons);
    json_object_set_new(res, "requests", recs);
}

static json_t *slo_json(const struct bench_opts *o)
{
    return json_pack("{s:o, s:o, s:o}", "ttft_ms", o->slo_ttft_ms > 0 ? json_real(o->slo_ttft_ms) : json_null(),
                     "tpot_ms", o->slo_tpot_ms > 0 ? json_real(o->slo_tpot_ms) : json_null(),
                     "e2el_ms", o->slo_e2el_ms > 0 ? json_real(o->slo_e2el_ms) : json_null());
}

static void put_config(json_t *res, const struct bench_opts *o, double rate)
{
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y%m%d-%H%M%S", localtime(&now));
    json_object_set_new(res, "date", json_string(date));
    json_object_set_new(res, "backend", json_string(o->chat ? "openai-chat" : "openai"));
    json_object_set_new(res, "model_id", json_string(o->model));
    json_object_set_new(res, "label", json_string(o->label));
    json_object_set_new(res, "base_url", json_string(o->base_url));
    json_object_set_new(res, "endpoint", json_string(o->endpoint));
    json_object_set_new(res, "dataset", json_string(o->dataset == BENCH_DATASET_RANDOM      ? "random"
                                                     : o->dataset == BENCH_DATASET_MULTITURN ? "multi-turn"
                                                                                             : "sharegpt"));
    json_object_set_new(res, "num_prompts", json_integer(o->num_prompts));
    json_object_set_new(res, "request_rate", isinf(rate) ? json_string("inf") : json_real(rate));
    json_object_set_new(res, "burstiness", json_real(o->burstiness));
    json_object_set_new(res, "max_concurrency",
                        o->max_concurrency ? json_integer(o->max_concurrency) : json_null());
    json_object_set_new(res, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(res, "slo", slo_json(o));
}

json_t *bench_result_json(const struct bench_opts *o, const struct bench_run *run,
                          const struct bench_metrics *m)
{
    json_t *res = json_object();
    put_config(res, o, run->rate);
    json_object_set_new(res, "start_monotonic_ns", json_integer((json_int_t)run->t0_ns));
    json_object_set_new(res, "load_average", json_pack("[f, f]", run->load_start, run->load_end));
    json_object_set_new(res, "duration", json_real(m->duration_s));
    json_object_set_new(res, "completed", json_integer(m->completed));
    json_object_set_new(res, "failed", json_integer(m->failed));
    json_object_set_new(res, "total_input_tokens", json_integer(m->total_input));
    json_object_set_new(res, "total_output_tokens", json_integer(m->total_output));
    json_object_set_new(res, "request_throughput", json_real(m->request_throughput));
    json_object_set_new(res, "request_goodput",
                        m->has_slo ? json_real(m->request_goodput) : json_null());
    json_object_set_new(res, "output_throughput", json_real(m->output_throughput));
    json_object_set_new(res, "total_token_throughput", json_real(m->total_token_throughput));
    json_object_set_new(res, "good_requests", json_integer(m->good));
    json_object_set_new(res, "attainment", json_real(m->attainment));
    put_dist(res, "ttft", &m->ttft);
    put_dist(res, "tpot", &m->tpot);
    put_dist(res, "itl", &m->itl);
    put_dist(res, "e2el", &m->e2el);
    put_requests(res, o, run);
    return res;
}

int bench_result_save(json_t *result, const char *path, struct error *err)
{
    if (json_dump_file(result, path, JSON_INDENT(1)) < 0)
        return error_set(err, "writing the result to %s failed (does its directory exist?)", path);
    return 0;
}

static void print_dist(FILE *f, const char *title, const char *name, const struct bench_dist *d)
{
    static const char *const stat[] = {"Mean", "Median", "P90", "P99"};
    const double v[] = {d->mean, d->median, d->p90, d->p99};
    char label[64];
    fprintf(f, "%s\n", title);
    for (int i = 0; i < 4; i++) {
        snprintf(label, sizeof label, "%s %s (ms):", stat[i], name);
        fprintf(f, "%-40s%-10.2f\n", label, v[i]);
    }
}

static void print_failures(FILE *f, const struct bench_run *run)
{
    /* Small n and few distinct reasons: count each reason at its first occurrence. */
    for (int i = 0; i < run->n; i++) {
        const struct bench_record *r = &run->rec[i];
        int seen = 0, count = 0;
        if (r->ok)
            continue;
        for (int k = 0; k < i && !seen; k++)
            seen = !run->rec[k].ok && !strcmp(run->rec[k].error, r->error);
        for (int k = i; k < run->n && !seen; k++)
            count += !run->rec[k].ok && !strcmp(run->rec[k].error, r->error);
        if (!seen)
            fprintf(f, "  %6d  %s\n", count, r->error);
    }
}

void bench_result_print(FILE *f, const struct bench_opts *o, const struct bench_metrics *m,
                        const struct bench_run *run)
{
    fprintf(f, "============ Serving Benchmark Result ============\n");
    fprintf(f, "%-40s%-10d\n", "Successful requests:", m->completed);
    fprintf(f, "%-40s%-10d\n", "Failed requests:", m->failed);
    fprintf(f, "%-40s%-10.2f\n", "Benchmark duration (s):", m->duration_s);
    fprintf(f, "%-40s%-10ld\n", "Total input tokens:", m->total_input);
    fprintf(f, "%-40s%-10ld\n", "Total generated tokens:", m->total_output);
    fprintf(f, "%-40s%-10.2f\n", "Request throughput (req/s):", m->request_throughput);
    if (m->has_slo) {
        fprintf(f, "%-40s%-10.2f\n", "Request goodput (req/s):", m->request_goodput);
        fprintf(f, "%-40s%-10.2f\n", "SLO attainment (%):", 100.0 * m->attainment);
    }
    fprintf(f, "%-40s%-10.2f\n", "Output token throughput (tok/s):", m->output_throughput);
    fprintf(f, "%-40s%-10.2f\n", "Total Token throughput (tok/s):", m->total_token_throughput);
    print_dist(f, "---------------Time to First Token----------------", "TTFT", &m->ttft);
    print_dist(f, "-----Time per Output Token (excl. 1st token)------", "TPOT", &m->tpot);
    print_dist(f, "---------------Inter-token Latency----------------", "ITL", &m->itl);
    print_dist(f, "----------------E2E Latency-----------------------", "E2EL", &m->e2el);
    if (m->failed) {
        fprintf(f, "---------------Failed requests--------------------\n");
        print_failures(f, run);
    }
    fprintf(f, "==================================================\n");
    (void)o;
}
