/* http.h — the HTTP/1.1 server the frontend speaks: libuv for sockets and timers, llhttp for parsing.
 *
 * It owns connections and everything below the request/response level: keep-alive, pipelining (one
 * request at a time per connection, later ones wait in the input buffer, answered in order), chunked
 * request bodies, `Expect: 100-continue`, limits (body size → 413, head size → 431, connection count →
 * 503), timeouts for slow clients (the whole head must arrive within head_timeout_ms — a slowloris
 * client dripping header bytes gets 408; a stalled body gets 408; an idle keep-alive connection is
 * closed), and a lingering close so an error response reaches a client that is still sending.
 *
 * Above it, one handler gets each complete request and answers it once, either whole (http_respond)
 * or as a stream (http_stream_begin / _write / _end, chunked transfer encoding). Everything runs on
 * the loop thread. */
#ifndef PD_HTTP_H
#define PD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/util/error.h"

struct http_limits {
    size_t max_body;         /* bytes of request body; more → 413 */
    size_t max_head;         /* bytes of request line + headers; more → 431 */
    int max_headers;         /* header lines; more → 431 */
    int max_conns;           /* open connections; one more gets 503 and is closed */
    int head_timeout_ms;     /* from the first byte of a request to the end of its head */
    int body_timeout_ms;     /* from the end of the head to the end of the body */
    int idle_timeout_ms;     /* keep-alive connection with no request in progress */
    size_t max_write_queue;  /* bytes queued to a client that does not read; more → connection dropped */
    size_t max_buffered;     /* request body bytes held across all connections; a body that does not
                              * fit → 503 (before it is read when Content-Length announces it) */
};

/* Defaults: 8 MiB body, 16 KiB head, 100 headers, 4096 connections, 10 s head, 30 s body, 60 s idle,
 * 64 MiB write queue, 64 MiB of request bodies buffered. */
void http_limits_default(struct http_limits *l);

struct http_header {
    char *name;  /* lower-cased */
    char *value;
};

struct http_conn;

/* One request. Owned by the server. The handler may keep the pointer until it has ended the request
 * (http_respond or http_stream_end) or until its on_abort callback has returned — whichever comes
 * first; after that the request is freed. */
struct http_request {
    struct http_conn *conn;
    int method;           /* llhttp_method_t: HTTP_GET, HTTP_POST, ... */
    const char *method_name;
    char *path;           /* the URL without its query, NUL-terminated */
    char *query;          /* after '?', or "" */
    struct http_header *headers;
    int n_headers;
    char *body;           /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    bool keep_alive;
    uint64_t received_ns; /* uv_hrtime() when the request was complete */
    int status;           /* of the answer, once its head is written; 0 before */
    char id[72];          /* sent back as X-Request-Id when set (by the handler) */
    char note[128];       /* what the handler adds to the access log line (never content) */
    const char *route;    /* static: the path as the access log names it (the handler sets it) */

    /* Set by the handler if it answers later: called once, on the loop thread, when the client has
     * gone (disconnect, write error, server shutdown) before the request ended. The handler must stop
     * using the request when it returns. */
    void (*on_abort)(struct http_request *req, void *user);
    void *user;

    /* Internal. */
    int state;
    bool chunked_out;
    size_t held;          /* body bytes counted against max_buffered until released */
    size_t *held_total;   /* the server's count */
};

/* Moves the body to the caller, who frees it (free()); its bytes stay counted against max_buffered
 * until http_request_release_body or the end of the request. req->body becomes NULL; body_len stays. */
char *http_request_take_body(struct http_request *req);
/* Frees the body if the request still has it and gives its bytes back to the max_buffered budget:
 * call once the body is parsed, so a long generation does not hold it. */
void http_request_release_body(struct http_request *req);

/* Called once per complete request. It must end the request (now or later) or set on_abort. */
typedef void (*http_handler_fn)(struct http_request *req, void *ctx);

struct http_server;

/* Creates a server listening on host:port in `loop`. port 0 picks a free port (see http_server_port).
 * The limits are copied. Returns NULL and fills err on failure (e.g. the port is taken). */
struct http_server *http_server_new(uv_loop_t *loop, const char *host, int port,
                                    const struct http_limits *limits, http_handler_fn handler,
                                    void *ctx, struct error *err);
int http_server_port(const struct http_server *s);
int http_server_conn_count(const struct http_server *s);
/* Draining: stops accepting and makes every connection close after its next answer. Requests in
 * flight go on. */
void http_server_stop_accepting(struct http_server *s);
/* Stops listening and closes every connection (in-flight requests get on_abort). The server is freed
 * once all its handles have closed, which needs the loop to run a little longer. */
void http_server_close(struct http_server *s);

/* Header lines (each ending "\r\n") added to every answer, e.g. CORS; borrowed, NULL for none. */
void http_server_set_response_headers(struct http_server *s, const char *lines);
/* Called when a dispatched request ends, answered (aborted false) or because its client went away
 * (aborted true; req->status is what was sent, 0 if nothing), just before it is freed. */
typedef void (*http_done_fn)(const struct http_request *req, bool aborted, void *ctx);
void http_server_on_done(struct http_server *s, http_done_fn fn);

/* Value of a header (name lower-case), or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* Answers the request whole and ends it. `extra_headers` is NULL or complete header lines, each
 * ending in "\r\n". The body is copied. */
void http_respond(struct http_request *req, int status, const char *content_type, const char *body,
                  size_t len, const char *extra_headers);

/* Starts a streamed answer (chunked for HTTP/1.1; for HTTP/1.0, raw bytes and the connection closes
 * at the end). Then any number of http_stream_write and one http_stream_end, which ends the request.
 * Writes to a client that has gone are dropped silently: on_abort tells the handler. */
void http_stream_begin(struct http_request *req, int status, const char *content_type,
                       const char *extra_headers);
void http_stream_write(struct http_request *req, const char *data, size_t len);
void http_stream_end(struct http_request *req);

/* "OK", "Not Found", ... */
const char *http_status_text(int status);

#endif
