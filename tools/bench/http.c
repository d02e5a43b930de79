/* http.c — a minimal HTTP/1.1 client for pdserve-bench: one POST per connection on the libuv loop,
 * responses parsed by llhttp (chunked or not), body bytes handed over with the time they arrived.
 *
 * One connection per request ("Connection: close") keeps every request independent: a reset or a
 * truncated stream fails that request alone, and there is no pool whose state could skew timings.
 * Connecting over loopback or a LAN costs well under a millisecond, far below the TTFT we time. */
#include "bench.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "llhttp.h"

struct http_request {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    llhttp_t parser;
    char *out;               /* the request bytes, kept until the write completes */
    size_t out_len;
    struct http_callbacks cb;
    void *ud;
    uint64_t t_read;         /* uv_hrtime() of the read being parsed */
    uint64_t timeout_ms;
    int status;
    int complete;            /* llhttp saw the end of the message */
    int done;                /* on_done has run */
    int open_handles;        /* freed when both handles have closed */
};

static void on_close(uv_handle_t *h)
{
    struct http_request *r = h->data;
    if (--r->open_handles == 0) {
        free(r->out);
        free(r);
    }
}

/* Reports the outcome once and tears the connection down; safe to call again. */
static void finish(struct http_request *r, const char *failure)
{
    if (r->done)
        return;
    r->done = 1;
    r->cb.on_done(r->ud, r->status, failure);
    uv_close((uv_handle_t *)&r->tcp, on_close);
    uv_close((uv_handle_t *)&r->timer, on_close);
}

void http_abort(struct http_request *r, const char *reason)
{
    finish(r, reason ? reason : "aborted");
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_request *r = p->data;
    r->status = p->status_code;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_request *r = p->data;
    if (r->done)
        return -1;
    if (r->cb.on_body(r->ud, r->status, at, len, r->t_read)) {
        finish(r, "aborted");
        return -1;
    }
    return r->done ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_request *r = p->data;
    r->complete = 1;
    return 0;
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static int ready;
    if (!ready) {
        llhttp_settings_init(&s);
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        ready = 1;
    }
    return &s;
}

/* One loop thread parses each read to the end before the next, so one buffer serves all. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    static char space[65536];
    buf->base = space;
    buf->len = sizeof space;
}

static void on_eof(struct http_request *r)
{
    /* A body delimited by the close itself ends here; a chunked or sized one cut short fails. */
    if (!r->complete)
        llhttp_finish(&r->parser);
    if (r->complete)
        finish(r, NULL);
    else if (r->status)
        finish(r, "connection closed before the response ended (truncated stream)");
    else
        finish(r, "connection closed before any response");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_request *r = s->data;
    char why[160];
    if (r->done || nread == 0)
        return;
    if (nread == UV_EOF)
        return on_eof(r);
    if (nread < 0) {
        snprintf(why, sizeof why, nread == UV_ECONNRESET ? "connection reset by peer"
                                                         : "read error: %s",
                 uv_strerror((int)nread));
        return finish(r, why);
    }
    r->t_read = uv_hrtime();
    llhttp_errno_t e = llhttp_execute(&r->parser, buf->base, (size_t)nread);
    if (r->done)
        return;
    if (e != HPE_OK) {
        snprintf(why, sizeof why, "malformed HTTP response: %s", llhttp_errno_name(e));
        return finish(r, why);
    }
    if (r->complete)
        finish(r, NULL);
}

static void on_write(uv_write_t *w, int status)
{
    struct http_request *r = w->data;
    char why[160];
    if (status < 0 && !r->done) {
        snprintf(why, sizeof why, "sending the request: %s", uv_strerror(status));
        finish(r, why);
    }
}

static void on_connect(uv_connect_t *c, int status)
{
    struct http_request *r = c->data;
    char why[160];
    if (r->done)
        return;
    if (status < 0) {
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        return finish(r, why);
    }
    uv_buf_t b = uv_buf_init(r->out, (unsigned)r->out_len);
    r->write.data = r;
    int rc = uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
    if (rc < 0) {
        snprintf(why, sizeof why, "starting the request: %s", uv_strerror(rc));
        finish(r, why);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct http_request *r = t->data;
    char why[96];
    snprintf(why, sizeof why, "timeout after %.1f s", (double)r->timeout_ms / 1000.0);
    finish(r, why);
}

static char *format_request(const struct http_target *t, const char *path, const char *headers,
                            const char *body, size_t *len)
{
    size_t body_len = strlen(body), cap = strlen(path) + strlen(headers) + body_len + 512;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Accept: text/event-stream\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "User-Agent: pdserve-bench\r\n%s\r\n",
                     path, t->host, t->port, body_len, headers);
    memcpy(s + n, body, body_len);
    *len = (size_t)n + body_len;
    return s;
}

int http_post(uv_loop_t *loop, const struct http_target *t, const char *path, const char *headers,
              const char *body, uint64_t timeout_ms, const struct http_callbacks *cb, void *ud,
              struct http_request **out, struct error *err)
{
    struct http_request *r = calloc(1, sizeof *r);
    if (!r || !(r->out = format_request(t, path, headers, body, &r->out_len))) {
        free(r);
        return error_set(err, "out of memory for a request");
    }
    r->cb = *cb;
    r->ud = ud;
    r->timeout_ms = timeout_ms;
    llhttp_init(&r->parser, HTTP_RESPONSE, settings());
    r->parser.data = r;
    uv_tcp_init(loop, &r->tcp);
    uv_timer_init(loop, &r->timer);
    r->tcp.data = r->timer.data = r->connect.data = r;
    r->open_handles = 2;
    if (timeout_ms)
        uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
    int rc = uv_tcp_connect(&r->connect, &r->tcp, (const struct sockaddr *)&t->addr, on_connect);
    if (rc < 0) {
        /* Reported like any failed request (on_done runs before we return), so callers have one
         * path for every failure. */
        char why[160];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
        finish(r, why);
    }
    if (out)
        *out = r;
    return 0;
}

/* "http://host[:port][/]" or "http://[v6addr]:port". */
static int split_url(const char *url, struct http_target *t, struct error *err)
{
    const char *h = url + 7, *end;
    if (strncmp(url, "http://", 7))
        return error_set(err, "%s: only http:// URLs are supported", url);
    if (*h == '[') {
        end = strchr(++h, ']');
        if (!end)
            return error_set(err, "%s: unterminated [IPv6 address]", url);
    } else
        end = h + strcspn(h, ":/");
    if (end == h || (size_t)(end - h) >= sizeof t->host)
        return error_set(err, "%s: bad host", url);
    memcpy(t->host, h, (size_t)(end - h));
    t->host[end - h] = '\0';
    const char *rest = end + (*end == ']');
    snprintf(t->port, sizeof t->port, "80");
    if (*rest == ':') {
        size_t n = strspn(rest + 1, "0123456789");
        if (n == 0 || n >= sizeof t->port)
            return error_set(err, "%s: bad port", url);
        memcpy(t->port, rest + 1, n);
        t->port[n] = '\0';
        rest += 1 + n;
    }
    if (*rest && strcmp(rest, "/"))
        return error_set(err, "%s: the base URL takes no path; give it with --endpoint", url);
    return 0;
}

int http_target_resolve(const char *base_url, struct http_target *t, struct error *err)
{
    memset(t, 0, sizeof *t);
    if (split_url(base_url, t, err) < 0)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc)
        return error_set(err, "resolving %s: %s", t->host, gai_strerror(rc));
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}
