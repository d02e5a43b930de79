/* http_parse.c — HTTP/1.1 requests from bytes: llhttp callbacks building a struct http_request,
 * the head, header-count and body limits, and the pause after each complete request that gives the
 * server its one-request-at-a-time pipelining. No I/O, no timers: see http_parse.h. */
#include "frontend/http_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/strbuf.h"

static llhttp_settings_t settings;

void http_request_release_body(struct http_request *r)
{
    free(r->body);
    r->body = NULL;
    if (r->held_total)
        *r->held_total -= r->held;
    r->held = 0;
}

char *http_request_take_body(struct http_request *r)
{
    char *b = r->body;
    r->body = NULL;
    return b;
}

void http_request_free(struct http_request *r)
{
    if (!r)
        return;
    http_request_release_body(r);
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->path);
    free(r);
}

const char *http_header(const struct http_request *req, const char *name)
{
    for (int i = 0; i < req->n_headers; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static void phase(struct http_parse *p, enum http_parse_phase ph, bool expect_continue)
{
    if (p->on_phase)
        p->on_phase(p->user, ph, expect_continue);
}

static int limit(struct http_parse *p, int status)
{
    p->err_status = status;
    return -1;
}

/* A request llhttp 8 lets through but RFC 9112 rejects: 400 with why. */
static int reject(struct http_parse *p, const char *fmt, const char *name)
{
    snprintf(p->err_reason, sizeof p->err_reason, fmt, name);
    return limit(p, 400);
}

/* RFC 9110 §5.6.2: a field name is a token. llhttp 8 passes trailing whitespace ("Host : x") on to
 * the name, which a lenient proxy in front might have read as "Host". */
static bool is_token(const char *s, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !(s[i] && strchr(tchar, s[i])))
            return false;
    return n > 0;
}

/* RFC 9112 §5.2: obsolete line folding (CRLF then a space or tab) is rejected, as is any control
 * character but HTAB in a value. llhttp 8 accepts the folding and passes its CRLF on. */
static bool value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return false;
    return true;
}

static int head_add(struct http_parse *p, char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    p->head_bytes += n;
    if (p->head_bytes > p->lim->max_head)
        return limit(p, 431);
    return strbuf_append(buf, len, cap, at, n) ? limit(p, 500) : 0;
}

/* Counts n more body bytes of r against the budget of all connections, or refuses (503). */
static int hold(struct http_parse *p, struct http_request *r, size_t n)
{
    if (!p->buffered)
        return 0;
    if (*p->buffered + n > p->lim->max_buffered)
        return limit(p, 503);
    *p->buffered += n;
    r->held += n;
    r->held_total = p->buffered;
    return 0;
}

static int on_message_begin(llhttp_t *l)
{
    struct http_parse *p = l->data;
    http_request_free(p->cur);
    p->cur = calloc(1, sizeof *p->cur);
    if (!p->cur)
        return limit(p, 500);
    p->head_bytes = 0;
    p->url_len = p->hname_len = p->hval_len = 0;
    p->body_cap = 0;
    p->hdr_cap = 0;
    phase(p, HTTP_PARSE_HEAD, false);
    return 0;
}

static int on_url(llhttp_t *l, const char *at, size_t n)
{
    struct http_parse *p = l->data;
    return head_add(p, &p->url, &p->url_len, &p->url_cap, at, n);
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    struct http_parse *p = l->data;
    return head_add(p, &p->hname, &p->hname_len, &p->hname_cap, at, n);
}

/* A value arrives in pieces where the bytes fed were cut, and where llhttp 8 joined an obsolete
 * folded line (CRLF then a space or tab) to it, which RFC 9112 §5.2 says to reject: a piece that
 * does not start where the last one ended in the stream is such a fold. */
static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    struct http_parse *p = l->data;
    uint64_t start = p->fed + (uint64_t)(at - p->feed);
    if (p->hval_len > 0 && start != p->hval_end)
        return reject(p, "header %s uses obsolete line folding", p->hname ? p->hname : "?");
    p->hval_end = start + n;
    return head_add(p, &p->hval, &p->hval_len, &p->hval_cap, at, n);
}

/* Chunk extensions (";name=value" after a chunk size) are parsed and dropped, but a client could send
 * them without end: they count towards the head limit, as trailers do. */
static int on_chunk_extension(llhttp_t *l, const char *at, size_t n)
{
    (void)at;
    struct http_parse *p = l->data;
    p->head_bytes += n;
    return p->head_bytes > p->lim->max_head ? limit(p, 431) : 0;
}

static int header_push(struct http_request *r, int *cap, struct http_header **h)
{
    if (r->n_headers == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        struct http_header *nh = realloc(r->headers, (size_t)ncap * sizeof *nh);
        if (!nh)
            return -1;
        r->headers = nh;
        *cap = ncap;
    }
    *h = &r->headers[r->n_headers];
    return 0;
}

static int on_header_value_complete(llhttp_t *l)
{
    struct http_parse *p = l->data;
    struct http_request *r = p->cur;
    struct http_header *h;
    p->head_bytes += 4; /* ": " and CRLF count towards the head limit too */
    if (r->n_headers >= p->lim->max_headers || p->head_bytes > p->lim->max_head)
        return limit(p, 431);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(p->hname_len < 48 ? p->hname_len : 48), p->hname ? p->hname : "");
    if (!is_token(p->hname, p->hname_len))
        return reject(p, "header name \"%s\" is not a token (no whitespace before the colon)", name);
    if (!value_ok(p->hval, p->hval_len))
        return reject(p, "header %s has a control character or obsolete line folding", name);
    if (header_push(r, &p->hdr_cap, &h))
        return limit(p, 500);
    h->name = strndup(p->hname ? p->hname : "", p->hname_len);
    h->value = strndup(p->hval ? p->hval : "", p->hval_len);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return limit(p, 500);
    }
    r->n_headers++;
    for (char *s = h->name; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    p->hname_len = p->hval_len = 0;
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

static int on_headers_complete(llhttp_t *l)
{
    struct http_parse *p = l->data;
    struct http_request *r = p->cur;
    r->method = llhttp_get_method(l);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    if (split_url(r, p->url, p->url_len))
        return limit(p, 500);
    if ((l->flags & F_CONTENT_LENGTH) && l->content_length > p->lim->max_body)
        return limit(p, 413);
    /* The announced body is reserved whole and allocated once: no doubling while it arrives. */
    if ((l->flags & F_CONTENT_LENGTH) && l->content_length > 0) {
        if (hold(p, r, (size_t)l->content_length))
            return -1;
        r->body = malloc((size_t)l->content_length + 1);
        if (!r->body)
            return limit(p, 500);
        p->body_cap = (size_t)l->content_length + 1;
    }
    const char *expect = http_header(r, "expect");
    phase(p, HTTP_PARSE_BODY, expect && strcasecmp(expect, "100-continue") == 0 && l->http_minor >= 1);
    return 0;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    struct http_parse *p = l->data;
    struct http_request *r = p->cur;
    if (r->body_len + n > p->lim->max_body)
        return limit(p, 413);
    if (r->body_len + n > r->held && hold(p, r, r->body_len + n - r->held)) /* chunked: as it comes */
        return -1;
    return strbuf_append(&r->body, &r->body_len, &p->body_cap, at, n) ? limit(p, 500) : 0;
}

static int on_message_complete(llhttp_t *l)
{
    struct http_parse *p = l->data;
    struct http_request *r = p->cur;
    if (!r->body && strbuf_append(&r->body, &r->body_len, &p->body_cap, "", 0))
        return limit(p, 500);
    r->keep_alive = llhttp_should_keep_alive(l);
    r->received_ns = uv_hrtime();
    p->done = r;
    p->cur = NULL;
    /* One request at a time: stop here; the caller answers it and feeds what follows afterwards. */
    return HPE_PAUSED;
}

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_chunk_extension_name = on_chunk_extension;
    settings.on_chunk_extension_value = on_chunk_extension;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

void http_parse_init(struct http_parse *p, const struct http_limits *lim, http_parse_phase_fn on_phase,
                     void *user)
{
    if (!settings.on_message_begin)
        settings_init();
    memset(p, 0, sizeof *p);
    llhttp_init(&p->llh, HTTP_REQUEST, &settings);
    p->llh.data = p;
    p->lim = lim;
    p->on_phase = on_phase;
    p->user = user;
}

static void set_error(struct http_parse *p, struct http_parse_error *e)
{
    e->status = p->err_status ? p->err_status : 400;
    if (e->status == 413) {
        e->code = "request_too_large";
        snprintf(e->message, sizeof e->message, "request body is larger than the server accepts");
    } else if (e->status == 503) {
        e->code = "server_busy";
        snprintf(e->message, sizeof e->message, "the server holds as many request bodies as it may "
                 "(--max-buffered-bytes %zu); retry later", p->lim->max_buffered);
    } else if (e->status == 431) {
        e->code = "headers_too_large";
        snprintf(e->message, sizeof e->message, "request headers are larger than the server accepts");
    } else if (e->status != 400) {
        e->status = 500;
        e->code = "internal_error";
        snprintf(e->message, sizeof e->message, "out of memory while reading the request");
    } else {
        e->code = "bad_http";
        snprintf(e->message, sizeof e->message, "malformed HTTP request: %s",
                 p->err_reason[0] ? p->err_reason : llhttp_get_error_reason(&p->llh));
    }
}

enum http_parse_result http_parse_feed(struct http_parse *p, const char *data, size_t len, size_t *used,
                                       struct http_request **req, struct http_parse_error *e)
{
    p->feed = data;
    llhttp_errno_t rc = llhttp_execute(&p->llh, data, len);
    if (rc == HPE_OK) {
        *used = len;
        p->fed += len;
        return HTTP_PARSE_MORE;
    }
    if (rc == HPE_PAUSED) {
        *used = (size_t)(llhttp_get_error_pos(&p->llh) - data);
        p->fed += *used;
        llhttp_resume(&p->llh);
        *req = p->done;
        p->done = NULL;
        return HTTP_PARSE_REQUEST;
    }
    set_error(p, e);
    return HTTP_PARSE_ERROR;
}

void http_parse_free(struct http_parse *p)
{
    http_request_free(p->cur);
    http_request_free(p->done);
    free(p->url);
    free(p->hname);
    free(p->hval);
    p->cur = p->done = NULL;
    p->url = p->hname = p->hval = NULL;
}
