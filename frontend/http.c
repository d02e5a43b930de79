/* http.c — the HTTP/1.1 server's connections: accept, read, parse with llhttp, enforce limits and
 * timeouts, hand complete requests to the handler one at a time, close cleanly. Writing answers is in
 * http_response.c. See http.h for the contract. */
#include "frontend/http_conn.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/apierr.h"
#include "log.h"
#include "strbuf.h"

#define LINGER_MS 2000

static llhttp_settings_t parser_settings;
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
}

static void request_free(struct http_request *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->path);
    free(r->body);
    free(r);
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

/* --- parser callbacks ----------------------------------------------------------------------- */

static int limit(struct http_conn *c, int status)
{
    c->err_status = status;
    return -1;
}

static int head_add(struct http_conn *c, char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->srv->lim.max_head)
        return limit(c, 431);
    return strbuf_append(buf, len, cap, at, n) ? limit(c, 500) : 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = p->data;
    request_free(c->cur);
    c->cur = calloc(1, sizeof *c->cur);
    if (!c->cur)
        return limit(c, 500);
    c->cur->conn = c;
    c->head_bytes = 0;
    c->url_len = c->hname_len = c->hval_len = 0;
    c->body_cap = 0;
    c->hdr_cap = 0;
    c->phase = PH_HEAD;
    timer_arm(c, c->srv->lim.head_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    return head_add(c, &c->url, &c->url_len, &c->url_cap, at, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    return head_add(c, &c->hname, &c->hname_len, &c->hname_cap, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    return head_add(c, &c->hval, &c->hval_len, &c->hval_cap, at, n);
}

/* Chunk extensions (";name=value" after a chunk size) are parsed and dropped, but a client could send
 * them without end: they count towards the head limit, as trailers do. */
static int on_chunk_extension(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    c->head_bytes += n;
    return c->head_bytes > c->srv->lim.max_head ? limit(c, 431) : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->cur;
    c->head_bytes += 4; /* ": " and CRLF count towards the head limit too */
    if (r->n_headers >= c->srv->lim.max_headers || c->head_bytes > c->srv->lim.max_head)
        return limit(c, 431);
    if (r->n_headers == c->hdr_cap) {
        int ncap = c->hdr_cap ? c->hdr_cap * 2 : 16;
        struct http_header *nh = realloc(r->headers, (size_t)ncap * sizeof *nh);
        if (!nh)
            return limit(c, 500);
        r->headers = nh;
        c->hdr_cap = ncap;
    }
    struct http_header *h = &r->headers[r->n_headers];
    h->name = strndup(c->hname ? c->hname : "", c->hname_len);
    h->value = strndup(c->hval ? c->hval : "", c->hval_len);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return limit(c, 500);
    }
    r->n_headers++;
    for (char *s = h->name; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    c->hname_len = c->hval_len = 0;
    return 0;
}

static int split_url(struct http_request *r, const char *url, size_t len)
{
    r->path = strndup(url ? url : "", len);
    if (!r->path)
        return -1;
    char *q = strchr(r->path, '?');
    if (q) {
        *q = 0;
        r->query = q + 1;
    } else {
        r->query = r->path + strlen(r->path);
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->cur;
    r->method = llhttp_get_method(p);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    if (split_url(r, c->url, c->url_len))
        return limit(c, 500);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->lim.max_body)
        return limit(c, 413);
    const char *expect = http_header(r, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1)
        http_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->phase = PH_BODY;
    timer_arm(c, c->srv->lim.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->cur;
    if (r->body_len + n > c->srv->lim.max_body)
        return limit(c, 413);
    return strbuf_append(&r->body, &r->body_len, &c->body_cap, at, n) ? limit(c, 500) : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->cur;
    if (!r->body && strbuf_append(&r->body, &r->body_len, &c->body_cap, "", 0))
        return limit(c, 500);
    r->keep_alive = llhttp_should_keep_alive(p);
    r->received_ns = uv_hrtime();
    c->ready = r;
    c->cur = NULL;
    /* One request at a time: stop here, answer it, and parse what follows afterwards. */
    return HPE_PAUSED;
}

static void settings_init(void)
{
    llhttp_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_header_value_complete = on_header_value_complete;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_chunk_extension_name = on_chunk_extension;
    parser_settings.on_chunk_extension_value = on_chunk_extension;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
}

const char *http_header(const struct http_request *req, const char *name)
{
    for (int i = 0; i < req->n_headers; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* --- request flow --------------------------------------------------------------------------- */

static void dispatch(struct http_conn *c)
{
    struct http_request *r = c->ready;
    c->ready = NULL;
    c->active = r;
    c->phase = PH_BUSY;
    uv_timer_stop(&c->timer);
    r->state = RQ_NEW;
    c->srv->handler(r, c->srv->ctx);
}

static void parse_error(struct http_conn *c, llhttp_errno_t e)
{
    if (c->err_status == 413)
        http_conn_fail(c, 413, "request_too_large", "request body is larger than the server accepts");
    else if (c->err_status == 431)
        http_conn_fail(c, 431, "headers_too_large", "request headers are larger than the server accepts");
    else if (c->err_status)
        http_conn_fail(c, 500, "internal_error", "out of memory while reading the request");
    else {
        char msg[200];
        snprintf(msg, sizeof msg, "malformed HTTP request: %s", llhttp_get_error_reason(&c->parser));
        http_conn_fail(c, 400, "bad_http", msg);
    }
    (void)e;
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
        const char *start = c->in + c->in_off;
        llhttp_errno_t e = llhttp_execute(&c->parser, start, c->in_len - c->in_off);
        if (e == HPE_OK) {
            c->in_off = c->in_len;
        } else if (e == HPE_PAUSED) {
            c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
            llhttp_resume(&c->parser);
            dispatch(c);
        } else {
            parse_error(c, e);
        }
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
    request_free(req);
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
    request_free(c->cur);
    request_free(c->ready);
    free(c->in);
    free(c->url);
    free(c->hname);
    free(c->hval);
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
    request_free(r);
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
    char head[256];
    size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, http_status_text(status), blen);
    http_conn_write(c, head, (size_t)hl);
    if (body)
        http_conn_write(c, body, blen);
    free(body);
    http_conn_shutdown(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct http_server *s = ls->data;
    if (status < 0) {
        log_warn("http: accept failed: %s", uv_strerror(status));
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
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    if (s->n_conns > s->lim.max_conns) {
        log_warn("http: %d connections open, the limit; refusing one (raise --max-connections)", s->lim.max_conns);
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
    if (!parser_settings.on_message_begin)
        settings_init();
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
