/* http_parse.h — the HTTP/1.1 request parser of the frontend's server, without any I/O: bytes in,
 * complete requests out, one at a time, the server's limits enforced (head bytes and header count →
 * 431, body bytes → 413) and malformed input refused (400). llhttp does the syntax. http.c feeds it
 * what a socket delivers; tests/fuzz/http.c feeds it from memory. Not for use outside the HTTP module. */
#ifndef PD_HTTP_PARSE_H
#define PD_HTTP_PARSE_H

#include <llhttp.h>

#include "frontend/http.h"

enum http_parse_phase {
    HTTP_PARSE_HEAD, /* the first byte of a request arrived: its head is being read */
    HTTP_PARSE_BODY  /* the head is complete: the body (if any) follows */
};

enum http_parse_result {
    HTTP_PARSE_MORE,    /* everything fed was consumed; no request is complete yet */
    HTTP_PARSE_REQUEST, /* a request is complete */
    HTTP_PARSE_ERROR    /* the input is not a request the server accepts; the parser is done */
};

/* What to answer when parsing fails (the connection closes after it). */
struct http_parse_error {
    int status;          /* 400, 413, 431 or 500 */
    const char *code;    /* "bad_http", "request_too_large", "headers_too_large", "internal_error" */
    char message[200];
};

/* Called at each phase change of the request being parsed (may be NULL). expect_continue: at
 * HTTP_PARSE_BODY, the client sent `Expect: 100-continue` (HTTP/1.1) and waits for a 100 before the
 * body. The request is the parser's; the callback may read it, not keep it. */
typedef void (*http_parse_phase_fn)(void *user, enum http_parse_phase phase, bool expect_continue);

struct http_parse {
    llhttp_t llh;                  /* http_major/http_minor: the version of the last request */
    const struct http_limits *lim; /* borrowed */
    size_t *buffered;              /* the server's count of body bytes held (lim->max_buffered); borrowed */
    http_parse_phase_fn on_phase;
    void *user;
    /* Internal: the request under construction and its head. */
    struct http_request *cur;
    size_t head_bytes;
    char *url, *hname, *hval;
    size_t url_len, url_cap, hname_len, hname_cap, hval_len, hval_cap, body_cap;
    int hdr_cap;
    int err_status;                /* set by a callback that hit a limit */
    char err_reason[160];          /* a 400 of ours: why (else llhttp's reason is given) */
    const char *feed;              /* the bytes being fed, which start at offset fed of the stream */
    uint64_t fed;
    uint64_t hval_end;             /* stream offset just past the header value's last piece */
    struct http_request *done;     /* completed by the last feed */
};

void http_parse_init(struct http_parse *p, const struct http_limits *lim, http_parse_phase_fn on_phase,
                     void *user);

/* Parses data[0..len). MORE: all of it consumed (*used = len). REQUEST: *req is the complete request,
 * now owned by the caller (its conn field unset; free with http_request_free), and *used bytes were
 * consumed; the rest belongs to the next request (pipelining) — feed it after answering this one.
 * ERROR: e says what to answer; nothing more may be fed. */
enum http_parse_result http_parse_feed(struct http_parse *p, const char *data, size_t len, size_t *used,
                                       struct http_request **req, struct http_parse_error *e);

/* Frees what the parser holds (a partly parsed request); the parser itself is the caller's. */
void http_parse_free(struct http_parse *p);

void http_request_free(struct http_request *r);

#endif
