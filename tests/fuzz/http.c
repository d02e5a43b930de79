/* http.c — fuzz harness: bytes a client sends on a socket to the frontend's HTTP/1.1 server, through
 * the request parser it uses (frontend/http_parse.c: llhttp plus the server's limits), including
 * pipelined requests, chunked bodies with extensions and trailers, and Expect: 100-continue.
 *
 * Input: byte 0 picks the limits (small ones, so 413 and 431 are reachable) and how the stream is cut
 * into reads; the rest is the byte stream. The stream is parsed twice, whole and cut into reads of
 * 1-16 bytes, the way http.c does it (one request, then the rest of the buffer again).
 *
 * Asserts beyond "no crash, no leak": both runs give the same requests and the same ending, refused
 * or not (TCP may cut the stream anywhere; only the status of a refusal may differ, e.g. a URL both
 * too long and malformed is 431 when its bytes arrive in pieces — the limit is checked at each read —
 * and 400 when they arrive at once); every request respects the limits (header count, body size, head bytes),
 * has lower-case header names, a path without '?', a NUL-terminated body; the parser announces the
 * head before the body, once each per request; a refusal is 400/413/431 with a code and a message. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/http_parse.h"

#define MAX_REQS 64

struct outcome {
    int n_reqs;
    uint64_t digest[MAX_REQS]; /* of each request: method, URL, headers, body, keep-alive */
    int status;                /* 0, or the refusal's status */
    int phase;                 /* phases seen for the request being parsed: 1 head, 2 body */
};

static void fail(const char *what)
{
    fprintf(stderr, "http harness: %s\n", what);
    abort();
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return (h ^ n) * 0x100000001b3ull;
}

static void on_phase(void *user, enum http_parse_phase ph, bool expect_continue)
{
    struct outcome *o = user;
    if ((ph == HTTP_PARSE_HEAD) != (o->phase == 0) || (ph == HTTP_PARSE_BODY && o->phase != 1))
        fail("phases out of order (head, then body, once each per request)");
    o->phase = ph == HTTP_PARSE_HEAD ? 1 : 2;
}

static uint64_t check_request(const struct http_request *r, const struct http_limits *lim, struct outcome *o)
{
    if (o->phase != 2)
        fail("a request completed without its head and body phases");
    o->phase = 0;
    if (r->n_headers > lim->max_headers || r->body_len > lim->max_body || !r->body || r->body[r->body_len])
        fail("a request breaks the header-count or body limit, or its body is not NUL-terminated");
    size_t head = strlen(r->path) + 1 + strlen(r->query);
    uint64_t h = mix(0xcbf29ce484222325ull, r->method_name, strlen(r->method_name));
    h = mix(h, r->path, head);
    for (int i = 0; i < r->n_headers; i++) {
        for (const char *s = r->headers[i].name; *s; s++)
            if (tolower((unsigned char)*s) != *s)
                fail("a header name is not lower-case");
        head += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 4;
        h = mix(h, r->headers[i].name, strlen(r->headers[i].name));
        h = mix(h, r->headers[i].value, strlen(r->headers[i].value));
    }
    if (head > lim->max_head + 1 || strchr(r->path, '?'))
        fail("a request's head is larger than max_head, or its path holds the query");
    h = mix(h, r->body, r->body_len);
    return mix(h, &r->keep_alive, sizeof r->keep_alive);
}

/* Feeds the stream in reads of the given sizes (cut == NULL: whole), the way http.c does. */
static void run(const uint8_t *data, size_t size, const struct http_limits *lim, const uint8_t *cut,
                struct outcome *o)
{
    struct http_parse p;
    http_parse_init(&p, lim, on_phase, o);
    size_t avail = cut ? 0 : size, off = 0, k = 0;
    while (o->status == 0 && o->n_reqs < MAX_REQS) {
        if (off == avail) {
            if (avail == size)
                break;
            avail += 1 + cut[k++ % 8] % 16; /* the next read arrives */
            avail = avail > size ? size : avail;
        }
        size_t used = 0;
        struct http_request *r = NULL;
        struct http_parse_error e = {0};
        enum http_parse_result res = http_parse_feed(&p, (const char *)data + off, avail - off, &used, &r, &e);
        if (used > avail - off)
            fail("the parser says it used more than it was given");
        off += used;
        if (res == HTTP_PARSE_REQUEST) {
            o->digest[o->n_reqs++] = check_request(r, lim, o);
            http_request_free(r);
        } else if (res == HTTP_PARSE_ERROR) {
            if ((e.status != 400 && e.status != 413 && e.status != 431) || !e.code || !e.message[0])
                fail("a refusal without a client-error status, a code or a message");
            o->status = e.status;
        }
    }
    http_parse_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    struct http_limits lim;
    http_limits_default(&lim);
    if (data[0] & 1) {
        lim.max_body = 64;
        lim.max_head = 256;
        lim.max_headers = 4;
    }
    const uint8_t *cut = data + 1;
    data += 9;
    size -= 9;
    /* an exact-size copy, so a read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct outcome whole = {0}, pieces = {0};
    run(copy, size, &lim, NULL, &whole);
    run(copy, size, &lim, cut, &pieces);
    if (whole.n_reqs != pieces.n_reqs || !whole.status != !pieces.status ||
        memcmp(whole.digest, pieces.digest, sizeof whole.digest))
        fail("the same bytes cut into different reads parse differently");
    free(copy);
    return 0;
}
