/* http_conn.h — internals shared by http.c (accepting, reading, timeouts; it feeds the request
 * parser of http_parse.h) and http_response.c (writing answers). Not for use outside the HTTP module. */
#ifndef PD_HTTP_CONN_H
#define PD_HTTP_CONN_H

#include "common/util/log.h"
#include "frontend/http_parse.h"

enum conn_phase { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY };

/* Request states (http_request.state). */
enum req_state { RQ_NEW, RQ_STREAMING, RQ_DONE };

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct http_limits lim;
    http_handler_fn handler;
    void *ctx;
    int port;
    int n_conns;
    size_t buffered;      /* request body bytes held by all connections (lim.max_buffered) */
    bool closing;
    bool draining;        /* not accepting; connections close after their current answer */
    bool listener_closed;
    struct http_conn *conns; /* doubly linked */
    struct log_limit refused_log, accept_log; /* floods of refused connections log one line a minute */
    const char *response_headers; /* added to every answer */
    http_done_fn on_done;
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct http_server *srv;
    struct http_conn *prev, *next;
    struct http_parse parser;
    int handles_open;   /* tcp + timer; freed at 0 */
    int phase;
    bool in_process;    /* process_input on the stack: do not re-enter */
    bool closing;       /* graceful close started: no more requests */
    bool closed;        /* uv_close called */
    bool read_paused;
    bool dead;          /* write failed: closing on the next loop turn, writes dropped */
    /* Input not yet given to the parser (pipelined requests wait here). */
    char *in;
    size_t in_len, in_off, in_cap;
    /* The request the handler holds. */
    struct http_request *active;
};

/* Called by http_response.c when the handler ended `req`. */
void http_conn_request_done(struct http_conn *c, struct http_request *req);
/* Writes bytes (copied if they cannot go out at once). Drops the connection if the client has too
 * much unread. */
void http_conn_write(struct http_conn *c, const char *data, size_t len);
/* Sends an error answer from the HTTP layer itself and closes after it. */
void http_conn_fail(struct http_conn *c, int status, const char *code, const char *message);

/* Graceful close: flush what is queued, shut down our side, linger for the client's FIN. */
void http_conn_shutdown(struct http_conn *c);
void http_conn_resume_read(struct http_conn *c);
/* Immediate close; an active request is aborted. */
void http_conn_close(struct http_conn *c);
/* Close soon, from the loop, never from inside a call the handler made: the handler's request stays
 * valid until that call returns; on_abort comes later. */
void http_conn_kill(struct http_conn *c);

#endif
