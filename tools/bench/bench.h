/* bench.h — the public API of pdserve-bench's modules, one section per file.
 *
 * pdserve-bench is a load-testing client for OpenAI-compatible servers (pdserve, vLLM, llama.cpp's
 * server). It measures what vLLM's benchmark_serving and DistServe measure, with their definitions:
 * TTFT, TPOT, ITL, E2E latency, throughput, SLO attainment and goodput, optionally over a rate sweep.
 *
 * Ownership, unless a declaration says otherwise: the caller owns what it passes in; a function
 * that returns a pointer to something it allocated says so and names the function that frees it.
 * Every function that can fail returns 0 / -1 and fills the caller's `struct error`. */
#ifndef PD_BENCH_H
#define PD_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "common/util/error.h"
#include "common/engine/sample.h"

/* ---- opts.c: command-line options ------------------------------------------------------------ */

enum bench_dataset { BENCH_DATASET_RANDOM, BENCH_DATASET_SHAREGPT, BENCH_DATASET_MULTITURN };

#define BENCH_MAX_RATES 64
#define BENCH_MAX_TARGETS 8

/* A server a sweep measures: --base-url, with the --label and --save-result given in the same
 * position (the second --label names the second --base-url's results). */
struct bench_target_opts {
    const char *base_url, *label, *save_result;
};

struct bench_opts {
    const char *base_url;       /* http://host:port, no path */
    const char *endpoint;       /* /v1/completions or /v1/chat/completions */
    const char *model;
    enum bench_dataset dataset;
    const char *dataset_path;   /* ShareGPT JSON file */
    int input_len, output_len;  /* random dataset; output_len also overrides ShareGPT's when set */
    int output_len_set;         /* --output-len was given */
    int prefix_len, turns;      /* multi-turn: the shared system prompt, turns per conversation */
    double range_ratio;         /* lengths drawn uniformly from len*(1-r) .. len*(1+r) */
    int vocab_size;             /* token ids of random prompts are drawn from [0, vocab_size) */
    const char *tokenizer_dir;  /* --tokenizer: exact text lengths (chat, ShareGPT) */
    int num_prompts;
    double request_rate;        /* requests/s; INFINITY sends everything at t=0 */
    double burstiness;          /* gamma shape; 1 is Poisson */
    int max_concurrency;        /* 0: unbounded */
    uint64_t seed;
    uint64_t prompt_variant;    /* 0, or the sweep's run number: random prompts' ids (not lengths) change */
    double slo_ttft_ms, slo_tpot_ms, slo_e2el_ms; /* 0: that SLO is not set */
    double attainment;          /* target share of requests meeting every SLO, for sweeps */
    const char *save_result;
    const char *plot_dir;
    const char *label;          /* name of this run in plots; default: the model */
    double rates[BENCH_MAX_RATES];
    int n_rates;                /* > 0: --sweep with a list */
    int sweep_auto;
    double sweep_start;         /* first rate of --sweep auto */
    int sweep_steps;            /* bisection steps of --sweep auto */
    struct bench_target_opts targets[BENCH_MAX_TARGETS]; /* base_url, label, save_result: targets[0] */
    int n_targets, n_labels, n_saves; /* how many of each were given; sweeps of several are interleaved */
    const char *api_key;
    int ignore_eos;
    double timeout_s;           /* per request, 0: none */
    int progress;               /* -1: auto (bar on a TTY), 0: off, 1: on */
    int chat;                   /* derived: endpoint is a chat endpoint */
};

/* Parses argv (without the "plot" subcommand) into o, with defaults for everything not given. */
int bench_opts_parse(int argc, char **argv, struct bench_opts *o, struct error *err);
void bench_opts_usage(FILE *f);
/* Parses a rate: a positive number or "inf". */
int bench_parse_rate(const char *s, double *rate, struct error *err);

/* ---- rng.c: seeded random numbers on the engine's generator (common/engine/sample.h: struct rng,
 * xoshiro256**), plus what a workload needs on top of it ---------------------------------------- */

int bench_rng_int(struct rng *r, int lo, int hi); /* [lo, hi], inclusive */
double bench_rng_gamma(struct rng *r, double shape, double scale);

/* ---- arrival.c: when each request is sent ---------------------------------------------------- */

/* Fills at[0..n) with send times in seconds from the start: at[0] = 0, then gaps drawn from a gamma
 * distribution with shape `burstiness` and mean 1/rate (vLLM's model; shape 1 is a Poisson
 * process). rate = INFINITY gives all zeros. */
void bench_arrivals(double *at, int n, double rate, double burstiness, uint64_t seed);

/* ---- dataset.c: the prompts ------------------------------------------------------------------ */

struct bench_prompt {
    int *ids;        /* token-id prompt (random dataset on /v1/completions), owned; or NULL */
    int n_ids;
    char *text;      /* text prompt, owned; or NULL */
    int input_len;   /* exact for token ids; an estimate for text until the server's usage says */
    int output_len;  /* max_tokens to ask for */
};

/* Builds o->num_prompts prompts from o's dataset options into a new array (*out) that the caller
 * frees with bench_prompts_free. Deterministic in o->seed. */
int bench_prompts_make(const struct bench_opts *o, struct bench_prompt **out, struct error *err);
void bench_prompts_free(struct bench_prompt *p, int n);

/* ---- tokens.c: exact token counts with the model's tokenizer (--tokenizer DIR) ------------- */

struct tokenizer; /* common/tok/tok.h */

/* Tokens in text, without the special tokens the tokenizer would add. */
int bench_tok_count(const struct tokenizer *t, const char *text, int *n, struct error *err);
/* A text of words drawn from vocab that encodes to `want` tokens (*got says how many it reached:
 * `want` unless no word fits the last slot). *out is malloc'd; the caller frees it. */
int bench_tok_fit_text(const struct tokenizer *t, struct rng *rng, const char *const *vocab,
                       int n_vocab, int want, char **out, int *got, struct error *err);

/* ---- payload.c: request bodies --------------------------------------------------------------- */

/* Returns the JSON body of one streaming request, malloc'd (caller frees), or NULL on OOM. */
char *bench_payload(const struct bench_opts *o, const struct bench_prompt *p);

/* ---- http.c: a minimal HTTP/1.1 client on libuv + llhttp ------------------------------------- */

struct http_target {
    char host[256];
    char port[8];
    struct sockaddr_storage addr;   /* resolved once, before the run */
};

/* Resolves "http://host[:port]" (a trailing path is an error: pass it as the endpoint). */
int http_target_resolve(const char *base_url, struct http_target *t, struct error *err);

struct http_callbacks {
    /* The body bytes as they arrive; t_ns is uv_hrtime() when the read completed. Return non-zero
     * to abort the request (then on_done reports the reason given to http_abort, or "aborted"). */
    int (*on_body)(void *ud, int status, const char *data, size_t len, uint64_t t_ns);
    /* Called exactly once. failure is NULL when a whole response arrived (any status), otherwise
     * it says why not (connect error, reset, truncated message, timeout); the string lives only
     * during the call. After on_done the request is gone: never touch its handle again. */
    void (*on_done)(void *ud, int status, const char *failure);
};

struct http_request;

/* Starts one POST on its own connection. `headers` are extra header lines, each ending in "\r\n"
 * (may be ""). body is copied. timeout_ms = 0 means none. The request frees itself after on_done;
 * *out (optional) lets the caller abort it before then. */
int http_post(uv_loop_t *loop, const struct http_target *t, const char *path, const char *headers,
              const char *body, uint64_t timeout_ms, const struct http_callbacks *cb, void *ud,
              struct http_request **out, struct error *err);
/* Ends the request now; on_done receives `reason` (copied) unless it already ran. */
void http_abort(struct http_request *r, const char *reason);

/* ---- sse.c: Server-Sent Events framing ------------------------------------------------------- */

struct sse_parser {
    char *line;      /* the current unterminated line */
    size_t line_len, line_cap;
    char *data;      /* the data lines of the event so far, joined by '\n' */
    size_t data_len, data_cap;
    int has_data;
    int after_cr;    /* the last byte was CR: a following LF ends no new line */
};

/* Called once per complete event that had data; return non-zero to stop parsing. data is
 * NUL-terminated and lives during the call only. */
typedef int (*sse_event_fn)(void *ud, const char *data, size_t len);

void sse_init(struct sse_parser *p);
void sse_free(struct sse_parser *p);
/* Feeds bytes; returns 0, 1 when the callback stopped parsing, or -1 on an over-long line. */
int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ud);

/* ---- stream.c: what one OpenAI streaming chunk says ------------------------------------------ */

struct stream_chunk {
    int done;               /* the "[DONE]" sentinel */
    int has_content;        /* carries generated text (the chunks that TTFT and ITL time) */
    int has_usage;
    int prompt_tokens, completion_tokens;
    char error[200];        /* non-empty: the server sent an error object in the stream */
    char id[64];            /* the response id, if the chunk has one */
};

/* Interprets one SSE data payload of /v1/completions (chat = 0) or /v1/chat/completions. */
int stream_parse_chunk(const char *data, size_t len, int chat, struct stream_chunk *c,
                       struct error *err);

/* ---- run.c: one benchmark run at one rate ---------------------------------------------------- */

struct bench_record {
    int ok;
    char error[200];
    double start_s;          /* when it was sent, from the run's start */
    double ttft_ms, e2el_ms; /* e2el: to the last chunk carrying tokens, as vLLM */
    double tpot_ms;          /* NAN when undefined (fewer than two output tokens) */
    double *itl_ms;          /* owned */
    int n_itl, cap_itl;
    int input_len, output_len;
    int usage_seen;          /* output_len came from the usage block */
    int content_chunks;
    int saw_done;
    char id[64];             /* the server's response id, to find the request in its logs */
};

struct bench_run {
    double rate;
    double duration_s;
    uint64_t t0_ns;           /* the run's start, uv_hrtime() (CLOCK_MONOTONIC), to line up with
                               * server logs on the same machine */
    double load_start, load_end; /* the machine's 1-minute load average around the run: other
                                  * work on a shared machine skews latencies */
    int n;
    struct bench_record *rec; /* owned, n entries */
};

/* Sends every prompt at `rate` per o's arrival process and concurrency cap, waits for all, and
 * fills run (free with bench_run_free). Failed requests are records with ok = 0, not errors. */
int bench_run_once(const struct bench_opts *o, const struct http_target *t,
                   const struct bench_prompt *prompts, double rate, struct bench_run *run,
                   struct error *err);
void bench_run_free(struct bench_run *run);

/* ---- metrics.c: statistics over a run -------------------------------------------------------- */

struct bench_dist {
    double mean, median, std, p90, p99; /* ms; all 0 when there are no samples, as vLLM */
    int n;
};

struct bench_metrics {
    int total, completed, failed, good;
    long total_input, total_output;
    double duration_s;
    double request_throughput, output_throughput, total_token_throughput;
    double request_goodput;   /* good / duration */
    double attainment;        /* good / total: failures count as misses */
    int has_slo;
    struct bench_dist ttft, tpot, itl, e2el;
};

/* Numpy's default ("linear") percentile of a sorted array; p in [0, 100]. */
double bench_percentile(const double *sorted, int n, double p);
void bench_dist_compute(double *x, int n, struct bench_dist *d); /* sorts x in place */
/* Whether a finished record meets every SLO set in o (undefined TPOT meets its SLO, as vLLM). */
int bench_record_good(const struct bench_opts *o, const struct bench_record *r);
int bench_metrics_compute(const struct bench_opts *o, const struct bench_run *run,
                          struct bench_metrics *m, struct error *err);

/* ---- result.c: the JSON result and the printed summary --------------------------------------- */

/* Returns a new JSON object (caller json_decref's) with vLLM's field names for one run. */
json_t *bench_result_json(const struct bench_opts *o, const struct bench_run *run,
                          const struct bench_metrics *m);
void bench_result_print(FILE *f, const struct bench_opts *o, const struct bench_metrics *m,
                        const struct bench_run *run);
int bench_result_save(json_t *result, const char *path, struct error *err);

/* ---- progress.c: live progress ------------------------------------------------------------- */

struct bench_progress {
    uv_timer_t timer;
    int tty;
    int total, done, failed, in_flight;
    uint64_t t0_ns, last_print_ns;
    double rate;
};

/* Starts a timer on loop that redraws a bar on a TTY (stderr) or prints a plain line every 5 s. */
int bench_progress_start(struct bench_progress *p, uv_loop_t *loop, int mode, int total,
                         double rate);
/* Prints the final state and closes the timer (the loop must run once more to finish closing). */
void bench_progress_stop(struct bench_progress *p);

/* ---- sweep.c: runs over several rates ------------------------------------------------------ */

/* Runs o's rate list or the automatic search on each of o's targets (interleaved when several),
 * prints the table and each one's highest rate meeting o->attainment, saves and plots as o asks. */
int bench_sweep(const struct bench_opts *o, const struct bench_prompt *prompts, struct error *err);

/* ---- plot.c: gnuplot PNGs ------------------------------------------------------------------- */

/* Writes attainment.png, ttft.png, tpot.png (and goodput.png) into dir, one line per result; each
 * result is a sweep result or a single run (one point). labels[i] names results[i]. */
int bench_plot(const char *dir, json_t *const *results, const char *const *labels, int n,
               struct error *err);
/* `pdserve-bench plot --out DIR a.json b.json ...` */
int bench_plot_main(int argc, char **argv);

#endif
