/* run.c — one benchmark run: sends every prompt on the arrival schedule (respecting
 * --max-concurrency, as vLLM's semaphore: a request that arrives while the cap is reached waits,
 * and its clock starts when it is sent), streams the responses, and times each request:
 * TTFT at the first chunk carrying text, one ITL per later such chunk, E2E at the last one, output
 * tokens from the usage block. Everything runs on one private libuv loop, so timestamps are taken
 * in the read callback that received the bytes. */
#include "bench.h"
#include "common/util/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct run_state;

struct req_ctx {
    struct run_state *rs;
    int idx;
    uint64_t t_start, t_last, t_now;
    struct sse_parser sse;
    struct http_request *http;
    char reason[200];        /* why the stream is being aborted, if it is */
    char body[200];          /* start of a non-200 response body, for the error message */
    size_t body_len;
};

struct run_state {
    uv_loop_t loop;
    uv_timer_t arrival_timer;
    const struct bench_opts *o;
    const struct http_target *t;
    const struct bench_prompt *prompts;
    struct bench_run *run;
    struct req_ctx *ctx;
    double *arrivals;
    int n, arrived, started, in_flight, finished, starting;
    uint64_t t0, t_end;
    char headers[600];
    struct bench_progress progress;
    int warned_no_usage;
};

static double ms_between(uint64_t a, uint64_t b)
{
    return (double)(b - a) / 1e6;
}

static int push_itl(struct bench_record *r, double ms)
{
    if (r->n_itl == r->cap_itl) {
        int cap = r->cap_itl ? r->cap_itl * 2 : 64;
        double *p = realloc(r->itl_ms, sizeof(double) * (size_t)cap);
        if (!p)
            return -1;
        r->itl_ms = p;
        r->cap_itl = cap;
    }
    r->itl_ms[r->n_itl++] = ms;
    return 0;
}

static void on_content(struct req_ctx *c, struct bench_record *r)
{
    if (r->content_chunks++ == 0)
        r->ttft_ms = ms_between(c->t_start, c->t_now);
    else if (push_itl(r, ms_between(c->t_last, c->t_now)) < 0)
        snprintf(c->reason, sizeof c->reason, "out of memory recording latencies");
    c->t_last = c->t_now;
}

/* One SSE event; returns non-zero to abort the request (c->reason says why). */
static int on_event(void *ud, const char *data, size_t len)
{
    struct req_ctx *c = ud;
    struct bench_record *r = &c->rs->run->rec[c->idx];
    struct stream_chunk ch;
    struct error e;
    if (r->saw_done)
        return 0; /* nothing after [DONE] counts */
    if (stream_parse_chunk(data, len, c->rs->o->chat, &ch, &e) < 0) {
        snprintf(c->reason, sizeof c->reason, "%.190s", e.msg);
        return 1;
    }
    if (ch.error[0]) {
        snprintf(c->reason, sizeof c->reason, "%s", ch.error);
        return 1;
    }
    r->saw_done |= ch.done;
    if (!r->id[0] && ch.id[0])
        memcpy(r->id, ch.id, sizeof r->id);
    if (ch.has_content)
        on_content(c, r);
    if (ch.has_usage) {
        r->usage_seen = 1;
        r->output_len = ch.completion_tokens;
        if (ch.prompt_tokens >= 0)
            r->input_len = ch.prompt_tokens;
    }
    return c->reason[0] != '\0';
}

static int on_body(void *ud, int status, const char *data, size_t len, uint64_t t_ns)
{
    struct req_ctx *c = ud;
    if (status != 200) {
        size_t room = sizeof c->body - 1 - c->body_len, k = len < room ? len : room;
        memcpy(c->body + c->body_len, data, k);
        c->body[c->body_len += k] = '\0';
        return 0;
    }
    c->t_now = t_ns;
    int rc = sse_feed(&c->sse, data, len, on_event, c);
    if (rc < 0)
        snprintf(c->reason, sizeof c->reason, "SSE line longer than 8 MiB or out of memory");
    if (rc) {
        http_abort(c->http, c->reason);
        return 1;
    }
    return 0;
}

/* Why a whole response still failed the request, or NULL if it succeeded. */
static const char *judge(struct req_ctx *c, struct bench_record *r, int status, char *buf,
                         size_t cap)
{
    if (status != 200) {
        for (char *p = c->body; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        snprintf(buf, cap, "HTTP %d: %.150s", status, c->body);
        return buf;
    }
    if (!r->saw_done)
        return "stream ended without [DONE] (truncated stream)";
    if (r->content_chunks == 0)
        return "no generated text in the response";
    return NULL;
}

static void complete_record(struct run_state *rs, struct req_ctx *c, struct bench_record *r)
{
    r->ok = 1;
    r->e2el_ms = ms_between(c->t_start, c->t_last);
    if (!r->usage_seen) {
        /* The server ignored stream_options.include_usage: chunks are the best count we have. */
        if (!rs->warned_no_usage++)
            log_warn("no usage block in the stream: counting output tokens as text chunks, which "
                     "undercounts when a chunk carries several tokens");
        r->output_len = r->content_chunks;
    }
    r->tpot_ms = r->output_len > 1 ? (r->e2el_ms - r->ttft_ms) / (r->output_len - 1) : NAN;
}

static void start_ready(struct run_state *rs);
static void end_run(struct run_state *rs);

static void on_done(void *ud, int status, const char *failure)
{
    struct req_ctx *c = ud;
    struct run_state *rs = c->rs;
    struct bench_record *r = &rs->run->rec[c->idx];
    char buf[sizeof r->error];
    const char *why = failure ? failure : judge(c, r, status, buf, sizeof buf);
    if (why) {
        r->ok = 0;
        snprintf(r->error, sizeof r->error, "%s", why);
        log_debug("request %d failed: %s", c->idx, why);
    } else
        complete_record(rs, c, r);
    sse_free(&c->sse);
    c->http = NULL;
    rs->in_flight--;
    rs->finished++;
    rs->t_end = uv_hrtime();
    rs->progress.done = rs->finished;
    rs->progress.failed += !r->ok;
    rs->progress.in_flight = rs->in_flight;
    if (rs->finished == rs->n)
        end_run(rs);
    else
        start_ready(rs);
}

static void start_one(struct run_state *rs, int i)
{
    static const struct http_callbacks cb = {on_body, on_done};
    struct req_ctx *c = &rs->ctx[i];
    struct bench_record *r = &rs->run->rec[i];
    struct error e;
    c->rs = rs;
    c->idx = i;
    sse_init(&c->sse);
    r->input_len = rs->prompts[i].input_len;
    r->tpot_ms = NAN;
    c->t_start = uv_hrtime();
    r->start_s = (double)(c->t_start - rs->t0) / 1e9;
    rs->in_flight++;
    rs->progress.in_flight = rs->in_flight;
    char *body = bench_payload(rs->o, &rs->prompts[i]);
    uint64_t timeout_ms = (uint64_t)(rs->o->timeout_s * 1000.0);
    if (!body)
        return on_done(c, 0, "out of memory building the request body");
    if (http_post(&rs->loop, rs->t, rs->o->endpoint, rs->headers, body, timeout_ms, &cb, c,
                  &c->http, &e) < 0)
        on_done(c, 0, e.msg);
    free(body);
}

static void start_ready(struct run_state *rs)
{
    if (rs->starting)
        return; /* a request that failed at once re-entered us: the loop below goes on */
    rs->starting = 1;
    int cap = rs->o->max_concurrency;
    while (rs->started < rs->arrived && (cap == 0 || rs->in_flight < cap))
        start_one(rs, rs->started++);
    rs->starting = 0;
}

static void on_arrival(uv_timer_t *t)
{
    struct run_state *rs = t->data;
    double now = (double)(uv_hrtime() - rs->t0) / 1e9;
    /* Timers fire with millisecond resolution: take everything due within half of one. */
    while (rs->arrived < rs->n && rs->arrivals[rs->arrived] <= now + 0.0005)
        rs->arrived++;
    start_ready(rs);
    if (rs->arrived < rs->n) {
        double wait_ms = (rs->arrivals[rs->arrived] - now) * 1000.0;
        uv_timer_start(t, on_arrival, wait_ms > 0 ? (uint64_t)ceil(wait_ms) : 0, 0);
    }
}

static void end_run(struct run_state *rs)
{
    uv_timer_stop(&rs->arrival_timer);
    uv_close((uv_handle_t *)&rs->arrival_timer, NULL);
    bench_progress_stop(&rs->progress);
}

static void format_headers(const struct bench_opts *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (o->api_key)
        snprintf(buf, cap, "Authorization: Bearer %s\r\n", o->api_key);
}

static double load_average(void)
{
    double l;
    return getloadavg(&l, 1) == 1 ? l : -1.0;
}

static int setup(struct run_state *rs, double rate, struct error *err)
{
    int n = rs->n;
    rs->run->n = n;
    rs->run->rate = rate;
    rs->run->rec = calloc((size_t)n, sizeof *rs->run->rec);
    rs->ctx = calloc((size_t)n, sizeof *rs->ctx);
    rs->arrivals = malloc(sizeof(double) * (size_t)n);
    if (!rs->run->rec || !rs->ctx || !rs->arrivals)
        return error_set(err, "out of memory for %d requests", n);
    bench_arrivals(rs->arrivals, n, rate, rs->o->burstiness, rs->o->seed);
    format_headers(rs->o, rs->headers, sizeof rs->headers);
    int rc = uv_loop_init(&rs->loop);
    if (rc < 0)
        return error_set(err, "libuv loop: %s", uv_strerror(rc));
    return 0;
}

int bench_run_once(const struct bench_opts *o, const struct http_target *t,
                   const struct bench_prompt *prompts, double rate, struct bench_run *run,
                   struct error *err)
{
    struct run_state rs = {.o = o, .t = t, .prompts = prompts, .run = run, .n = o->num_prompts};
    memset(run, 0, sizeof *run);
    int rc = setup(&rs, rate, err);
    if (rc == 0) {
        uv_timer_init(&rs.loop, &rs.arrival_timer);
        rs.arrival_timer.data = &rs;
        run->load_start = load_average();
        rs.t0 = rs.t_end = run->t0_ns = uv_hrtime();
        bench_progress_start(&rs.progress, &rs.loop, o->progress, rs.n, rate);
        uv_timer_start(&rs.arrival_timer, on_arrival, 0, 0);
        uv_run(&rs.loop, UV_RUN_DEFAULT);
        run->duration_s = (double)(rs.t_end - rs.t0) / 1e9;
        run->load_end = load_average();
        if (uv_loop_close(&rs.loop) != 0)
            log_warn("libuv loop closed with handles still open");
    }
    free(rs.ctx);
    free(rs.arrivals);
    if (rc < 0)
        bench_run_free(run);
    return rc;
}

void bench_run_free(struct bench_run *run)
{
    for (int i = 0; run->rec && i < run->n; i++)
        free(run->rec[i].itl_ms);
    free(run->rec);
    memset(run, 0, sizeof *run);
}
