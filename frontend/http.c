/* http.c — the HTTP/1.1 server's connections: accept, read, feed the bytes to the request parser
 * (http_parse.c: syntax and limits), enforce timeouts, hand complete requests to the handler one at a
 * time, close cleanly. Writing answers is in http_response.c. See http.h for the contract. */
#include "frontend/http_conn.h"

#include <stdlib.h>
#include <string.h>

#include "frontend/apierr.h"
#include "common/util/log.h"

#define LINGER_MS 2000

static void process_input(struct http_conn *c);
static void listener_closed(uv_handle_t *h);


void http_limits_default(struct http_limits *l)
{
    l->max_body = 8u << 20;
    l->max_head = 16u << 10;
    l->max_headers = 100;
    l->max_conns = 4096;
    l->head_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->max_write_queue = 64u << 20;
    l->max_buffered = 64u << 20;
}

/* --- timers --------------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->dead || c->closing || c->phase == PH_IDLE) {
        http_conn_close(c); /* idle keep-alive, or a lingering close that the client never finished */
        return;
    }
    if (c->phase == PH_HEAD || c->phase == PH_BODY) {
        log_debug("http: client too slow sending its request, closing");
        http_conn_fail(c, 408, "request_timeout", "the request did not arrive in time");
    }
}

static void timer_arm(struct http_conn *c, int ms)
{
    if (ms > 0)
        uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* --- parsing ------------------------------------------------------------------------------- */

/* The parser's phase changes drive the slow-client timers and the answer to Expect: 100-continue. */
static void on_parse_phase(void *user, enum http_parse_phase ph, bool expect_continue)
{
    struct http_conn *c = user;
    if (ph == HTTP_PARSE_HEAD) {
        c->phase = PH_HEAD;
        timer_arm(c, c->srv->lim.head_timeout_ms);
        return;
    }
    if (expect_continue)
        http_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->phase = PH_BODY;
    timer_arm(c, c->srv->lim.body_timeout_ms);
}

/* --- request flow --------------------------------------------------------------------------- */

static void dispatch(struct http_conn *c, struct http_request *r)
{
    r->conn = c;
    c->active = r;
    c->phase = PH_BUSY;
    uv_timer_stop(&c->timer);
    r->state = RQ_NEW;
    c->srv->handler(r, c->srv->ctx);
}

static void input_compact(struct http_conn *c)
{
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        /* an idle keep-alive connection holds no read buffer (thousands of them may be open) */
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    } else if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
}

static void process_input(struct http_conn *c)
{
    if (c->in_process)
        return;
    c->in_process = true;
    while (!c->closing && !c->dead && !c->active && c->in_off < c->in_len) {
        size_t used = 0;
        struct http_request *r = NULL;
        struct http_parse_error e;
        enum http_parse_result res =
            http_parse_feed(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &used, &r, &e);
        c->in_off += used;
        if (res == HTTP_PARSE_REQUEST)
            dispatch(c, r);
        else if (res == HTTP_PARSE_ERROR)
            http_conn_fail(c, e.status, e.code, e.message);
    }
    if (!c->closed)
        input_compact(c);
    c->in_process = false;
}

void http_conn_request_done(struct http_conn *c, struct http_request *req)
{
    bool keep = req->keep_alive && !c->srv->draining;
    if (c->active == req)
        c->active = NULL;
    if (c->srv->on_done)
        c->srv->on_done(req, false, c->srv->ctx);
    http_request_free(req);
    if (c->closed || c->closing || c->dead)
        return;
    if (!keep) {
        c->closing = true;
        /* Let the answer drain, then shut down our side and linger (see conn_shutdown). */
        http_conn_shutdown(c);
        return;
    }
    c->phase = PH_IDLE;
    timer_arm(c, c->srv->lim.idle_timeout_ms);
    if (c->read_paused) {
        http_conn_resume_read(c);
    }
    process_input(c);
}

/* --- connection lifetime -------------------------------------------------------------------- */

static void conn_free_cb(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    http_parse_free(&c->parser);
    free(c->in);
    free(c);
}

static void abort_active(struct http_conn *c)
{
    struct http_request *r = c->active;
    if (!r)
        return;
    c->active = NULL;
    r->state = RQ_DONE;
    if (r->on_abort)
        r->on_abort(r, r->user);
    if (c->srv->on_done)
        c->srv->on_done(r, true, c->srv->ctx);
    http_request_free(r);
}

void http_conn_kill(struct http_conn *c)
{
    if (c->closed || c->dead)
        return;
    c->dead = true;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

void http_conn_close(struct http_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    c->closing = true;
    struct http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    abort_active(c);
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct http_conn *c = h->data;
    size_t want = 65536;
    if (c->in_cap - c->in_len < want) {
        char *nb = realloc(c->in, c->in_len + want);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->in = nb;
        c->in_cap = c->in_len + want;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct http_conn *c = st->data;
    if (n < 0) {
        http_conn_close(c); /* EOF or error: the client is gone; its request (if any) is aborted */
        return;
    }
    if (c->closing)
        return; /* lingering: discard what a client still sends after our error answer */
    c->in_len += (size_t)n;
    process_input(c);
    /* A client pipelining faster than we answer: stop reading until the backlog is parsed. */
    if (!c->closed && !c->read_paused && c->in_len - c->in_off > c->srv->lim.max_body + c->srv->lim.max_head) {
        uv_read_stop(st);
        c->read_paused = true;
    }
}

void http_conn_resume_read(struct http_conn *c)
{
    c->read_paused = false;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct http_conn *c = sr->data;
    if (c->closed)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    /* Our answer is out; wait briefly for the client's FIN so unread input does not turn into a RST
     * that destroys the answer in the client's buffers. */
    timer_arm(c, LINGER_MS);
    if (c->read_paused)
        http_conn_resume_read(c);
}

void http_conn_shutdown(struct http_conn *c)
{
    c->closing = true;
    /* A client that reads nothing would keep the shutdown (which waits for our writes) pending
     * forever: give up on it after a while. */
    timer_arm(c, 5 * LINGER_MS);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        http_conn_close(c);
}

void http_conn_fail(struct http_conn *c, int status, const char *code, const char *message)
{
    if (c->closing || c->dead)
        return;
    abort_active(c);
    char *body = apierr_json_simple(status, code, message);
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n%s\r\n",
                      status, http_status_text(status), blen,
                      c->srv->response_headers ? c->srv->response_headers : "");
    http_conn_write(c, head, hl < (int)sizeof head ? (size_t)hl : sizeof head - 1);
    if (body)
        http_conn_write(c, body, blen);
    free(body);
    http_conn_shutdown(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct http_server *s = ls->data;
    if (status < 0) {
        log_limited(&s->accept_log, 60000, LOG_WARN, "http: accept failed: %s (open-file limit? ulimit -n, "
                    "LimitNOFILE=)", uv_strerror(status));
        return;
    }
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parse_init(&c->parser, &s->lim, on_parse_phase, c);
    c->parser.buffered = &s->buffered;
    if (s->n_conns > s->lim.max_conns) {
        log_limited(&s->refused_log, 60000, LOG_WARN, "http: %d connections open, the limit; refusing one "
                    "(raise --max-connections)", s->lim.max_conns);
        http_conn_fail(c, 503, "too_many_connections", "the server has too many open connections; retry later");
        return;
    }
    c->phase = PH_IDLE;
    timer_arm(c, s->lim.idle_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int listen_on(struct http_server *s, const struct sockaddr *addr, const char *host, int port,
                     struct error *err)
{
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc < 0)
        return error_set(err, "cannot listen on %s:%d: %s (is another server using the port?)", host, port,
                         uv_strerror(rc));
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

struct http_server *http_server_new(uv_loop_t *loop, const char *host, int port,
                                    const struct http_limits *limits, http_handler_fn handler,
                                    void *ctx, struct error *err)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        error_set(err, "--host %s: not an IPv4 or IPv6 address", host);
        return NULL;
    }
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->lim = *limits;
    s->handler = handler;
    s->ctx = ctx;
    if (listen_on(s, (struct sockaddr *)&addr, host, port, err)) {
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, listener_closed);
        return NULL;
    }
    return s;
}

int http_server_port(const struct http_server *s) { return s->port; }
void http_server_set_response_headers(struct http_server *s, const char *lines) { s->response_headers = lines; }
void http_server_on_done(struct http_server *s, http_done_fn fn) { s->on_done = fn; }
int http_server_conn_count(const struct http_server *s) { return s->n_conns; }

/* The listener's close callback frees the server once http_server_close was called too. */
static void listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->listener_closed = true;
    if (s->closing)
        free(s);
}

void http_server_stop_accepting(struct http_server *s)
{
    if (s->draining)
        return;
    s->draining = true;
    /* Open connections stay: one that looks idle may hold a request not read yet. Each closes after
     * its next answer; http_server_close ends the rest. */
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}

void http_server_close(struct http_server *s)
{
    if (s->closing)
        return;
    s->closing = true;
    while (s->conns)
        http_conn_close(s->conns);
    if (!s->draining)
        uv_close((uv_handle_t *)&s->listener, listener_closed);
    else if (s->listener_closed)
        free(s);
}
