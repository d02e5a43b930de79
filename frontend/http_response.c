/* http_response.c — writing answers: status line and headers, whole bodies, chunked streams, and
 * the write path with its backpressure limit. See http.h. */
#include "frontend/http_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

struct wreq {
    uv_write_t req;
    struct http_conn *c;
    char data[];
};

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct http_conn *c = wr->c;
    free(wr);
    if (status < 0 && status != UV_ECANCELED && !c->closed)
        http_conn_kill(c); /* the client is gone: abort what it asked for */
}

void http_conn_write(struct http_conn *c, const char *data, size_t len)
{
    if (c->closed || c->dead || len == 0)
        return;
    uv_stream_t *st = (uv_stream_t *)&c->tcp;
    if (uv_stream_get_write_queue_size(st) == 0) {
        /* Usually the socket takes it all at once and nothing needs copying. */
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(st, &b, 1);
        if (n == (int)len)
            return;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            http_conn_kill(c);
            return;
        }
    }
    if (uv_stream_get_write_queue_size(st) + len > c->srv->lim.max_write_queue) {
        log_warn("http: a client stopped reading with %zu bytes queued; dropping it",
                 uv_stream_get_write_queue_size(st));
        http_conn_kill(c);
        return;
    }
    struct wreq *wr = malloc(sizeof *wr + len);
    if (!wr) {
        http_conn_kill(c);
        return;
    }
    wr->c = c;
    memcpy(wr->data, data, len);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
    if (uv_write(&wr->req, st, &b, 1, on_write) < 0) {
        free(wr);
        http_conn_kill(c);
    }
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static bool is_http10(const struct http_request *r)
{
    return r->conn->parser.llh.http_major == 1 && r->conn->parser.llh.http_minor == 0;
}

/* Writes status line and headers; `length` < 0 means no Content-Length (a stream). */
static void write_head(struct http_request *r, int status, const char *ctype, long long length,
                       const char *extra)
{
    char head[1024];
    r->status = status;
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nServer: pdserve\r\nContent-Type: %s\r\n", status,
                     http_status_text(status), ctype ? ctype : "application/octet-stream");
    if (length >= 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %lld\r\n", length);
    else if (r->chunked_out)
        n += snprintf(head + n, sizeof head - (size_t)n, "Transfer-Encoding: chunked\r\n");
    if (r->id[0])
        n += snprintf(head + n, sizeof head - (size_t)n, "X-Request-Id: %s\r\n", r->id);
    n += snprintf(head + n, sizeof head - (size_t)n, "Connection: %s\r\n%s%s\r\n",
                  r->keep_alive && !r->conn->srv->draining ? "keep-alive" : "close",
                  r->conn->srv->response_headers ? r->conn->srv->response_headers : "", extra ? extra : "");
    if (n >= (int)sizeof head) {
        log_error("http: response head for status %d longer than %zu bytes; extra headers cut", status,
                  sizeof head);
        n = (int)sizeof head - 1;
    }
    http_conn_write(r->conn, head, (size_t)n);
}

void http_respond(struct http_request *r, int status, const char *ctype, const char *body, size_t len,
                  const char *extra)
{
    if (r->state != RQ_NEW) {
        log_error("http: http_respond on a request already answered (state %d); ignored", r->state);
        return;
    }
    r->state = RQ_DONE;
    write_head(r, status, ctype, (long long)len, extra);
    if (len && r->method != HTTP_HEAD)
        http_conn_write(r->conn, body, len);
    http_conn_request_done(r->conn, r);
}

void http_stream_begin(struct http_request *r, int status, const char *ctype, const char *extra)
{
    if (r->state != RQ_NEW)
        return;
    r->state = RQ_STREAMING;
    if (is_http10(r))
        r->keep_alive = false; /* HTTP/1.0 has no chunked encoding: the close ends the body */
    else
        r->chunked_out = true;
    write_head(r, status, ctype, -1, extra);
}

void http_stream_write(struct http_request *r, const char *data, size_t len)
{
    if (r->state != RQ_STREAMING || len == 0)
        return;
    if (!r->chunked_out) {
        http_conn_write(r->conn, data, len);
        return;
    }
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    /* One write per chunk keeps the frames whole and saves syscalls. */
    char stackbuf[4096];
    size_t total = (size_t)n + len + 2;
    char *buf = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (!buf) {
        http_conn_kill(r->conn);
        return;
    }
    memcpy(buf, size, (size_t)n);
    memcpy(buf + n, data, len);
    memcpy(buf + n + len, "\r\n", 2);
    http_conn_write(r->conn, buf, total);
    if (buf != stackbuf)
        free(buf);
}

void http_stream_end(struct http_request *r)
{
    if (r->state != RQ_STREAMING)
        return;
    r->state = RQ_DONE;
    if (r->chunked_out)
        http_conn_write(r->conn, "0\r\n\r\n", 5);
    http_conn_request_done(r->conn, r);
}
