/* oplog.c — what an operator reads: request ids, one access-log line per request, and a periodic
 * stats line (as vLLM prints).
 *  - Every request gets an id: the client's X-Request-Id when it is sane (1 to 64 characters from
 *    [A-Za-z0-9._:-]), else a generated one. The answer carries it back as X-Request-Id, and the log
 *    lines about the request name it.
 *  - When a request ends, one info line: method, route (the path as routed: a path a client made up,
 *    or a model name in it, could carry anything), status, the handler's note (tokens in and out,
 *    TTFT), duration, id. Never a prompt or an answer. /health and /metrics, which are polled, log at
 *    debug.
 *  - Every --stats-interval-s seconds while there is work, one info line: prompt and generation
 *    tokens/s since the last line, sequences running, requests waiting on the workers, KV cache use. */
#include <stdio.h>
#include <string.h>

#include "common/util/log.h"
#include "frontend/cluster.h"
#include "frontend/fe.h"

static bool sane_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') &&
            !strchr("._:-", s[i]))
            return false;
    return true;
}

void oplog_request_id(struct http_request *req)
{
    static uint64_t counter;
    const char *given = http_header(req, "x-request-id");
    if (sane_id(given)) {
        snprintf(req->id, sizeof req->id, "%s", given);
        return;
    }
    uint64_t x = uv_hrtime() * 0x9e3779b97f4a7c15ull ^ ((uint64_t)uv_os_getpid() << 32) ^ ++counter;
    snprintf(req->id, sizeof req->id, "req-%016llx%04llx", (unsigned long long)x,
             (unsigned long long)(counter & 0xffff));
}

void oplog_access(const struct http_request *req, bool aborted, void *ctx)
{
    (void)ctx;
    double ms = (double)(uv_hrtime() - req->received_ns) / 1e6;
    const char *path = req->route ? req->route : "(not routed)";
    /* what load balancers and scrapers poll every few seconds goes to the debug level */
    bool polled = !strcmp(path, "/health") || !strcmp(path, "/metrics");
    log_msg(polled ? LOG_DEBUG : LOG_INFO, "%s %s %d%s%s %.1f ms%s id=%s",
            req->method_name ? req->method_name : "?", path, req->status, req->note[0] ? " " : "", req->note, ms,
            aborted ? " (client went away)" : "", req->id);
}

/* Requests waiting on the workers and the KV cache in use, as the workers last reported. */
static void worker_state(struct fe *fe, unsigned long long *waiting, double *kv_use)
{
    uint64_t used = 0, total = 0;
    *waiting = 0;
    for (struct cl_worker *w = cluster_workers(fe->cluster); w; w = w->next) {
        *waiting += w->load.queued_requests;
        used += w->load.total_blocks - w->load.free_blocks;
        total += w->load.total_blocks;
    }
    *kv_use = total ? 100.0 * (double)used / (double)total : 0;
}

static void on_stats(uv_timer_t *t)
{
    struct fe *fe = t->data;
    uint64_t p = fe->metrics.prompt_tokens, g = fe->metrics.generation_tokens;
    double secs = fe->cfg.stats_interval_s;
    if (p == fe->stats_prompt && g == fe->stats_gen && fe->n_inflight == 0)
        return; /* idle: nothing new to say */
    unsigned long long waiting;
    double kv;
    worker_state(fe, &waiting, &kv);
    log_info("stats: prompt %.1f tokens/s, generation %.1f tokens/s, %d sequences running, %llu requests "
             "waiting, KV cache %.1f%% used", (double)(p - fe->stats_prompt) / secs,
             (double)(g - fe->stats_gen) / secs, fe->n_inflight, waiting, kv);
    fe->stats_prompt = p;
    fe->stats_gen = g;
}

void oplog_start(struct fe *fe)
{
    http_server_on_done(fe->http, oplog_access);
    if (fe->cfg.cors_origin) {
        snprintf(fe->cors_headers, sizeof fe->cors_headers,
                 "Access-Control-Allow-Origin: %s\r\nAccess-Control-Expose-Headers: X-Request-Id\r\nVary: Origin\r\n",
                 fe->cfg.cors_origin);
        http_server_set_response_headers(fe->http, fe->cors_headers);
    }
    if (fe->cfg.stats_interval_s <= 0)
        return;
    uv_timer_init(fe->loop, &fe->stats_timer);
    uv_unref((uv_handle_t *)&fe->stats_timer);
    fe->stats_timer.data = fe;
    fe->stats_on = true;
    uint64_t ms = (uint64_t)fe->cfg.stats_interval_s * 1000;
    uv_timer_start(&fe->stats_timer, on_stats, ms, ms);
}

void oplog_stop(struct fe *fe)
{
    if (fe->stats_on)
        uv_close((uv_handle_t *)&fe->stats_timer, NULL);
    fe->stats_on = false;
}
