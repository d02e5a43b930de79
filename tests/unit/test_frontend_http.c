/* test_frontend_http.c — the frontend's HTTP/1.1 server over real loopback sockets: keep-alive,
 * pipelining, chunked bodies both ways, limits (413, 431, connection count, bodies held: 503), slow
 * clients (408),
 * idle close, malformed input (400), Expect: 100-continue, HTTP/1.0, and abort on disconnect.
 * The server runs its own libuv loop on a thread; the test is a plain blocking-socket client. */
#include "frontend/apierr.c"
#include "frontend/http.c"
#include "frontend/http_parse.c"
#include "frontend/http_response.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/helpers/check.h"

static uv_loop_t loop;
static uv_async_t stop_async;
static struct http_server *server;
static int port;
static atomic_int aborts;

struct streamer {
    uv_timer_t t;
    struct http_request *req;
    int sent;
};

static void streamer_closed(uv_handle_t *h) { free(h->data); }

static void stream_tick(uv_timer_t *t)
{
    struct streamer *s = t->data;
    char line[32];
    int n = snprintf(line, sizeof line, "part%d;", s->sent++);
    http_stream_write(s->req, line, (size_t)n);
    if (s->sent == 3) {
        http_stream_end(s->req);
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, streamer_closed);
    }
}

static void on_hang_abort(struct http_request *req, void *user) { (void)req, (void)user; atomic_fetch_add(&aborts, 1); }

static void handler(struct http_request *req, void *ctx)
{
    (void)ctx;
    if (strcmp(req->path, "/hello") == 0) {
        http_respond(req, 200, "text/plain", "hello", 5, NULL);
    } else if (strcmp(req->path, "/echo") == 0) {
        http_respond(req, 200, "text/plain", req->body, req->body_len, NULL);
    } else if (strcmp(req->path, "/stream") == 0) {
        struct streamer *s = calloc(1, sizeof *s);
        s->req = req;
        uv_timer_init(&loop, &s->t);
        s->t.data = s;
        http_stream_begin(req, 200, "text/event-stream", NULL);
        uv_timer_start(&s->t, stream_tick, 5, 5);
    } else if (strcmp(req->path, "/hang") == 0) {
        req->on_abort = on_hang_abort;
    } else {
        http_respond(req, 404, "text/plain", "no", 2, NULL);
    }
}

static void on_stop(uv_async_t *a)
{
    http_server_close(server);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* --- client side ------------------------------------------------------------------------------ */

static int connect_srv(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_str(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* Buffered reader so pipelined answers can be taken apart one by one. */
struct rd {
    int fd;
    char buf[1 << 16];
    size_t len;
};

static int rd_fill(struct rd *r)
{
    ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len - 1);
    if (n <= 0)
        return -1;
    r->len += (size_t)n;
    r->buf[r->len] = 0;
    return 0;
}

static void rd_take(struct rd *r, size_t n)
{
    if (n > r->len)
        n = r->len;
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
    r->buf[r->len] = 0;
}

/* Reads one response; returns its status (or -1 on EOF/timeout) and its body (decoded) in body. */
static int read_response(struct rd *r, char *body, size_t cap)
{
    char *end;
    while (!(end = strstr(r->buf, "\r\n\r\n")))
        if (rd_fill(r))
            return -1;
    int status = atoi(r->buf + 9);
    size_t head = (size_t)(end + 4 - r->buf);
    char *cl = strcasestr(r->buf, "content-length:");
    bool chunked = strcasestr(r->buf, "transfer-encoding: chunked") && strcasestr(r->buf, "chunked") < end;
    long len = cl && cl < end ? atol(cl + 15) : -1;
    rd_take(r, head);
    size_t out = 0;
    if (status < 200) {
        /* interim answer: no body */
    } else if (len >= 0) {
        while (r->len < (size_t)len)
            if (rd_fill(r))
                return -1;
        out = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
        memcpy(body, r->buf, out);
        rd_take(r, (size_t)len);
    } else if (chunked) {
        for (;;) {
            char *nl;
            while (!(nl = strstr(r->buf, "\r\n")))
                if (rd_fill(r))
                    return -1;
            size_t sz = strtoul(r->buf, NULL, 16);
            size_t hl = (size_t)(nl + 2 - r->buf);
            while (r->len < hl + sz + 2)
                if (rd_fill(r))
                    return -1;
            if (out + sz < cap)
                memcpy(body + out, r->buf + hl, sz), out += sz;
            rd_take(r, hl + sz + 2);
            if (sz == 0)
                break;
        }
    } else {
        while (rd_fill(r) == 0) {
        }
        out = r->len < cap - 1 ? r->len : cap - 1;
        memcpy(body, r->buf, out);
        r->len = 0;
    }
    body[out] = 0;
    return status;
}

static int request(const char *raw, char *body, size_t cap)
{
    int fd = connect_srv();
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    send_str(fd, raw);
    int st = read_response(r, body, cap);
    free(r);
    close(fd);
    return st;
}

/* True when the server has closed the connection (read gives EOF or reset). */
static bool closed_by_server(int fd)
{
    char b[256];
    for (;;) {
        ssize_t n = read(fd, b, sizeof b);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (n < 0)
            return false;
    }
}

/* --- cases ------------------------------------------------------------------------------------ */

static void test_keep_alive_and_pipelining(void)
{
    int fd = connect_srv();
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    char body[256];
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    CHECK_EQ_STR(body, "hello");
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /stream HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    CHECK_EQ_STR(body, "hello");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    CHECK_EQ_STR(body, "abc");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    CHECK_EQ_STR(body, "part0;part1;part2;");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 404);
    free(r);
    close(fd);
}

static void test_chunked_request(void)
{
    char body[256];
    int st = request("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", body, sizeof body);
    CHECK_EQ_INT(st, 200);
    CHECK_EQ_STR(body, "hello, world");
}

static void test_limits(void)
{
    char body[512];
    CHECK_EQ_INT(request("POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", body, sizeof body), 413);
    CHECK(strstr(body, "\"error\"") && strstr(body, "\"message\""));
    /* Chunked bodies have no length up front: the limit applies as they arrive. */
    char big[3000];
    memset(big, 'x', sizeof big);
    int n = snprintf(body, sizeof body, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                     (unsigned)sizeof big);
    int fd = connect_srv();
    (void)!write(fd, body, (size_t)n);
    (void)!write(fd, big, sizeof big);
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    CHECK_EQ_INT(read_response(r, body, sizeof body), 413);
    free(r);
    close(fd);
    char hdr[3000];
    snprintf(hdr, sizeof hdr, "GET /hello HTTP/1.1\r\nX-Big: %02000d\r\n\r\n", 0);
    CHECK_EQ_INT(request(hdr, body, sizeof body), 431);
}

/* Bodies held across connections are capped (max_buffered 3000 here): a body announced that does not
 * fit gets 503 before it is read; one that fits is served; the budget comes back when a request ends. */
static void test_buffered_budget(void)
{
    char body[512], big[2000], mid[1500];
    memset(big, 'a', sizeof big);
    memset(mid, 'b', sizeof mid);
    int fd = connect_srv(); /* holds 2000 bytes of the budget, its body half sent */
    send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 2000\r\n\r\n");
    (void)!write(fd, big, 1000);
    usleep(20000);
    CHECK_EQ_INT(request("POST /echo HTTP/1.1\r\nContent-Length: 1500\r\n\r\n", body, sizeof body), 503);
    CHECK(strstr(body, "server_busy") != NULL);
    CHECK_EQ_INT(request("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", body, sizeof body), 200);
    CHECK_EQ_STR(body, "abc");
    (void)!write(fd, big + 1000, 1000);
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    free(r);
    close(fd);
    char raw[2100];
    int n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nContent-Length: 1500\r\n\r\n");
    memcpy(raw + n, mid, sizeof mid);
    raw[n + (int)sizeof mid] = 0;
    CHECK_EQ_INT(request(raw, body, sizeof body), 200); /* the 2000 bytes were given back */
}

static void test_malformed(void)
{
    char body[256];
    CHECK_EQ_INT(request("GARBAGE\r\n\r\n", body, sizeof body), 400);
    CHECK_EQ_INT(request("POST /echo HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", body,
                         sizeof body), 400);
}

/* Feeds raw to a parser a byte at a time: the status of the error, or 0 with *value the header
 * x-a's value. */
static int parse_bytewise(const char *raw, char *value, size_t cap)
{
    struct http_limits lim = {.max_body = 1000, .max_head = 1000, .max_headers = 10};
    struct http_parse p;
    http_parse_init(&p, &lim, NULL, NULL);
    int status = -1;
    for (size_t i = 0, n = strlen(raw); i < n && status < 0;) {
        size_t used;
        struct http_request *req = NULL;
        struct http_parse_error e;
        enum http_parse_result r = http_parse_feed(&p, raw + i, 1, &used, &req, &e);
        if (r == HTTP_PARSE_ERROR)
            status = e.status;
        if (r == HTTP_PARSE_REQUEST) {
            snprintf(value, cap, "%s", http_header(req, "x-a") ? http_header(req, "x-a") : "");
            http_request_free(req);
            status = 0;
        }
        i += r == HTTP_PARSE_REQUEST ? used : 1;
    }
    http_parse_free(&p);
    return status;
}

/* What a lenient proxy in front could read differently (request smuggling): RFC 9112 says 400. */
static void test_strict_headers(void)
{
    char body[512];
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", body, sizeof body), 400);
    CHECK(strstr(body, "Host ") != NULL);
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nHost\t: x\r\n\r\n", body, sizeof body), 400);
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", body, sizeof body), 400);
    CHECK(strstr(body, "folding") != NULL);
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n\tb\r\n\r\n", body, sizeof body), 400);
    CHECK_EQ_INT(request("POST /echo HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc", body, sizeof body), 400);
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nX-Ok: a\tb\r\n\r\n", body, sizeof body), 200);
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\nX-Ctl: a\x01b\r\n\r\n", body, sizeof body), 400);
    /* the same a byte at a time: values cut anywhere are whole again, folds are still refused */
    char v[64];
    CHECK_EQ_INT(parse_bytewise("GET / HTTP/1.1\r\nX-A: hello world\r\n\r\n", v, sizeof v), 0);
    CHECK_EQ_STR(v, "hello world");
    CHECK_EQ_INT(parse_bytewise("GET / HTTP/1.1\r\nX-A: hello\r\n world\r\n\r\n", v, sizeof v), 400);
    CHECK_EQ_INT(parse_bytewise("GET / HTTP/1.1\r\nHost : x\r\n\r\n", v, sizeof v), 400);
}

static void test_slowloris(void)
{
    int fd = connect_srv();
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    /* keep dripping header bytes: the head deadline (300 ms) is total, not per byte */
    for (int i = 0; i < 8; i++) {
        usleep(60000);
        send_str(fd, "X-A: b\r\n");
    }
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    char body[256];
    CHECK_EQ_INT(read_response(r, body, sizeof body), 408);
    CHECK(closed_by_server(fd));
    free(r);
    close(fd);
}

static void test_idle_close(void)
{
    int fd = connect_srv();
    uint64_t t0 = uv_hrtime();
    CHECK(closed_by_server(fd));
    CHECK((uv_hrtime() - t0) / 1000000 < 3000);
    close(fd);
}

static void test_max_conns(void)
{
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = connect_srv();
    usleep(50000);
    char body[256];
    CHECK_EQ_INT(request("GET /hello HTTP/1.1\r\n\r\n", body, sizeof body), 503);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    /* the server sees the three closes soon, not at once: retry for up to 5 s on a busy machine */
    int st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        usleep(50000);
        st = request("GET /hello HTTP/1.1\r\n\r\n", body, sizeof body);
    }
    CHECK_EQ_INT(st, 200);
}

static void test_abort_on_disconnect(void)
{
    int before = atomic_load(&aborts);
    int fd = connect_srv();
    send_str(fd, "GET /hang HTTP/1.1\r\n\r\n");
    usleep(50000);
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&aborts) == before; i++)
        usleep(10000);
    CHECK_EQ_INT(atomic_load(&aborts), before + 1);
}

static void test_expect_and_http10(void)
{
    int fd = connect_srv();
    struct rd *r = calloc(1, sizeof *r);
    r->fd = fd;
    send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    char body[256];
    CHECK_EQ_INT(read_response(r, body, sizeof body), 100);
    send_str(fd, "hi");
    CHECK_EQ_INT(read_response(r, body, sizeof body), 200);
    CHECK_EQ_STR(body, "hi");
    free(r);
    close(fd);
    CHECK_EQ_INT(request("GET /stream HTTP/1.0\r\n\r\n", body, sizeof body), 200);
    CHECK_EQ_STR(body, "part0;part1;part2;");
}

int main(void)
{
    uv_loop_init(&loop);
    struct http_limits lim;
    http_limits_default(&lim);
    lim.max_body = 2048;
    lim.max_head = 1024;
    lim.max_conns = 3;
    lim.head_timeout_ms = 300;
    lim.body_timeout_ms = 300;
    lim.idle_timeout_ms = 1000;
    lim.max_buffered = 3000;
    struct error err;
    server = http_server_new(&loop, "127.0.0.1", 0, &lim, handler, NULL, &err);
    CHECK_MSG(server, "%s", err.msg);
    if (!server)
        return check_report();
    port = http_server_port(server);
    uv_async_init(&loop, &stop_async, on_stop);
    pthread_t th;
    pthread_create(&th, NULL, server_main, NULL);

    RUN(test_keep_alive_and_pipelining);
    RUN(test_chunked_request);
    RUN(test_limits);
    RUN(test_buffered_budget);
    RUN(test_malformed);
    RUN(test_strict_headers);
    RUN(test_slowloris);
    RUN(test_idle_close);
    RUN(test_max_conns);
    RUN(test_abort_on_disconnect);
    RUN(test_expect_and_http10);

    uv_async_send(&stop_async);
    pthread_join(th, NULL);
    uv_loop_close(&loop);
    return check_report();
}
