/* ucx_ctl.c — the control channel: pdserve's own TCP listener on the daemon's peer port, the
 * connections to and from it, the cluster handshake they carry (handshake.h), the UCX endpoints
 * created from the worker addresses the handshake exchanges, and the liveness the connection gives
 * afterwards (its close is the peer's loss).
 *
 * Everything a stranger can send a daemon is read here: into a fixed per-connection buffer, one frame
 * at a time and never past the size its header allows, under a deadline (UCX_CTL_HANDSHAKE_MS,
 * PDSERVE_HANDSHAKE_TIMEOUT_MS), with at most UCX_CTL_MAX_PENDING unauthenticated connections per
 * daemon and UCX_CTL_MAX_PER_SOURCE per source address. A connection over a cap does not wait for a
 * slot: the oldest unauthenticated one (from that source, or at all) is closed to make room, so idle
 * connections cannot lock out a worker whose handshake takes a millisecond. Log lines about
 * unauthenticated connections are rate-limited per cause. */
#include "ucx_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/util/log.h"
#include "common/util/sha256.h"

#define UCX_CTL_HANDSHAKE_MS 5000
#define UCX_CTL_MAX_PENDING 64
#define UCX_CTL_MAX_PER_SOURCE 16
#define UCX_CTL_LOG_WINDOW_MS 10000
#define UCX_CTL_LOG_LINES 5 /* per cause and window */
#define UCX_CTL_UP_SCRATCH 64

enum ctl_state {
    CTL_CONNECTING,     /* client: TCP connect in progress */
    CTL_WAIT_HELLO,     /* server */
    CTL_WAIT_CHALLENGE, /* client */
    CTL_WAIT_AUTH,      /* server */
    CTL_WAIT_WELCOME,   /* client */
    CTL_UP,             /* authenticated; the connection now only signals liveness */
};

struct ucx_ctl {
    uv_tcp_t tcp;           /* data = this; counted in u->handles_open until closed */
    struct ucx *u;
    struct ucx_ctl *next;   /* in u->ctls */
    struct ucx_peer *peer;  /* client: from the start; server: once authenticated */
    enum ctl_state state;
    int server;             /* accepted by our listener */
    int closing;
    uint64_t deadline;      /* uv_now() by which the handshake must be done; 0 once it is */
    uint64_t since;         /* uv_now() at accept: the oldest is evicted first */
    char src[WIRE_ADDR_MAX + 8]; /* "ip:port" of the other side, for logs */
    char src_ip[INET6_ADDRSTRLEN];
    uint8_t nonce_c[HS_NONCE_LEN], nonce_s[HS_NONCE_LEN];
    uv_connect_t creq;
    size_t rlen, want;      /* bytes in rbuf; the frame's size once its header is in (else 0) */
    uint8_t rbuf[HS_FRAME_MAX];
};

struct ctl_write {
    uv_write_t req;
    struct ucx_ctl *c;      /* NULL: no close after it */
    uint8_t data[HS_FRAME_MAX];
};

/* ---- helpers ---- */

static int random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = getrandom(p, n, 0);
        if (k <= 0)
            return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

static uint64_t random_token(void)
{
    uint64_t t = 0;
    while (t == 0)
        if (random_bytes(&t, sizeof t))
            abort(); /* getrandom cannot fail on Linux >= 3.17 for 8 bytes */
    return t;
}

/* Whether a line about an unauthenticated connection may be logged now (UCX_CTL_LOG_LINES per cause
 * per window); at the start of a new window it says how many were left out. */
static int log_allowed(struct ucx *u, enum ucx_ctl_cause cause)
{
    static const char *const names[] = {"malformed handshakes", "handshake timeouts", "wrong cluster keys",
                                        "connections over the caps", "connections closed mid-handshake"};
    uint64_t now = uv_now(u->loop);
    if (now - u->log_limit[cause].window >= UCX_CTL_LOG_WINDOW_MS) {
        if (u->log_limit[cause].dropped)
            log_warn("ucx: %u more lines about %s in the last %d s were not logged", u->log_limit[cause].dropped,
                     names[cause], UCX_CTL_LOG_WINDOW_MS / 1000);
        u->log_limit[cause].window = now;
        u->log_limit[cause].lines = u->log_limit[cause].dropped = 0;
    }
    if (u->log_limit[cause].lines < UCX_CTL_LOG_LINES) {
        u->log_limit[cause].lines++;
        return 1;
    }
    u->log_limit[cause].dropped++;
    return 0;
}

/* Peer-supplied text (a REFUSE reason) made safe for a log line. */
static void printable(char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            *s = '?';
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t n, char *ip, size_t iplen)
{
    uint16_t port = 0;
    snprintf(ip, iplen, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)iplen);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)iplen);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, n, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* ---- closing ---- */

static void on_ctl_closed(uv_handle_t *h)
{
    struct ucx_ctl *c = h->data;
    struct ucx *u = c->u;
    free(c);
    ucx_handle_unref(u);
}

static void ctl_close(struct ucx_ctl *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    for (struct ucx_ctl **pp = &c->u->ctls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->peer)
        c->peer->ctl = NULL;
    c->peer = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_ctl_closed);
}

void ucx_ctl_detach(struct ucx_peer *p)
{
    if (p->ctl)
        ctl_close(p->ctl);
}

/* The connection failed. With a peer, that is the peer's loss (reported with `why`); an
 * unauthenticated connection is logged (rate-limited) and closed. */
static void ctl_fail(struct ucx_ctl *c, enum ucx_ctl_cause cause, const char *why)
{
    struct ucx_peer *p = c->peer;
    if (p) {
        if (c->state == CTL_UP)
            ucx_progress_all(c->u); /* what the peer sent before it closed is delivered before the loss */
        char reason[192];
        snprintf(reason, sizeof reason, "%s (control connection)", why);
        ucx_peer_fail(p, reason);
    } else {
        c->u->stats.hs_failed += cause != UCX_CTL_KEY;
        if (log_allowed(c->u, cause))
            log_warn("ucx: closed an unauthenticated connection from %s: %s", c->src, why);
    }
    ctl_close(c);
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status)
{
    struct ctl_write *w = req->data;
    (void)status; /* a failed write shows as a failed read or the deadline */
    if (w->c)
        ctl_close(w->c);
    free(w);
}

static int ctl_send(struct ucx_ctl *c, const struct hs_msg *m, int then_close)
{
    struct error err;
    struct ctl_write *w = malloc(sizeof *w);
    size_t len;
    if (!w)
        return -1;
    if (hs_encode(m, w->data, sizeof w->data, &len, &err)) {
        log_error("ucx: %s", err.msg);
        free(w);
        return -1;
    }
    w->req.data = w;
    w->c = then_close ? c : NULL;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written)) {
        free(w);
        return -1;
    }
    return 0;
}

/* ---- the handshake, server side ---- */

static void on_hello(struct ucx_ctl *c, const struct hs_msg *m)
{
    struct hs_msg ch = {.type = HS_CHALLENGE};
    memcpy(c->nonce_c, m->nonce, HS_NONCE_LEN);
    if (random_bytes(c->nonce_s, HS_NONCE_LEN)) {
        ctl_fail(c, UCX_CTL_GARBAGE, "no random bytes for a nonce");
        return;
    }
    memcpy(ch.nonce, c->nonce_s, HS_NONCE_LEN);
    c->state = CTL_WAIT_AUTH;
    if (ctl_send(c, &ch, 0))
        ctl_fail(c, UCX_CTL_CLOSED, "cannot answer");
}

static void refuse(struct ucx_ctl *c, const char *reason)
{
    struct hs_msg r = {.type = HS_REFUSE};
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    c->u->stats.hs_refused++;
    if (log_allowed(c->u, UCX_CTL_KEY))
        log_warn("ucx: refused the peer at %s: %s", c->src, reason);
    c->state = CTL_UP;     /* reads nothing more */
    c->deadline = uv_now(c->u->loop) + 1000; /* the REFUSE gets a second to leave */
    if (ctl_send(c, &r, 1))
        ctl_close(c);
}

/* The client proved it holds the key: it becomes a peer with an endpoint to its worker address. */
static void on_auth(struct ucx_ctl *c, const struct hs_msg *m)
{
    struct ucx *u = c->u;
    uint8_t want[HS_MAC_LEN];
    hs_mac(u->key, u->key_len, 0, c->nonce_c, c->nonce_s, m->token, m->addr, m->addr_len, want);
    if (!sha256_equal(want, m->mac, HS_MAC_LEN)) {
        refuse(c, "its handshake does not match this cluster's key (start it with the same --cluster-key-file)");
        return;
    }
    struct error err = {"cannot send WELCOME"};
    struct ucx_peer *p = ucx_peer_new(u, c->src);
    if (!p) {
        ctl_fail(c, UCX_CTL_GARBAGE, "out of memory");
        return;
    }
    p->rx_token = random_token();
    for (int i = 0; i < UCX_TOKEN_LEN; i++)
        p->tx_hdr[i] = (uint8_t)(m->token >> (8 * i));
    p->ctl = c;
    c->peer = p;
    struct hs_msg w = {.type = HS_WELCOME, .token = p->rx_token, .addr_len = (uint32_t)u->addr_len};
    memcpy(w.addr, u->addr, u->addr_len);
    hs_mac(u->key, u->key_len, 1, c->nonce_c, c->nonce_s, w.token, w.addr, w.addr_len, w.mac);
    if (ucx_peer_create_ep(p, m->addr, m->addr_len, &err) || ctl_send(c, &w, 0)) {
        log_warn("ucx: accepting %s: %s", c->src, err.msg);
        p->ctl = NULL;
        c->peer = NULL;
        ucx_peer_close(p);
        ctl_close(c);
        return;
    }
    c->state = CTL_UP;
    c->deadline = 0;
    u->stats.hs_ok++;
    u->stats.peers_accepted++;
    log_debug("ucx: accepted %s", c->src);
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_ACCEPT, p);
    if (ev)
        ucx_ev_push(u, ev);
}

/* ---- the handshake, client side ---- */

static void send_hello(struct ucx_ctl *c)
{
    struct hs_msg h = {.type = HS_HELLO};
    if (random_bytes(c->nonce_c, HS_NONCE_LEN)) {
        ctl_fail(c, UCX_CTL_GARBAGE, "no random bytes for a nonce");
        return;
    }
    memcpy(h.nonce, c->nonce_c, HS_NONCE_LEN);
    c->state = CTL_WAIT_CHALLENGE;
    if (ctl_send(c, &h, 0))
        ctl_fail(c, UCX_CTL_CLOSED, "cannot send");
}

static void on_challenge(struct ucx_ctl *c, const struct hs_msg *m)
{
    struct ucx *u = c->u;
    struct hs_msg a = {.type = HS_AUTH, .addr_len = (uint32_t)u->addr_len};
    memcpy(c->nonce_s, m->nonce, HS_NONCE_LEN);
    c->peer->rx_token = random_token();
    a.token = c->peer->rx_token;
    memcpy(a.addr, u->addr, u->addr_len);
    hs_mac(u->key, u->key_len, 0, c->nonce_c, c->nonce_s, a.token, a.addr, a.addr_len, a.mac);
    c->state = CTL_WAIT_WELCOME;
    if (ctl_send(c, &a, 0))
        ctl_fail(c, UCX_CTL_CLOSED, "cannot send");
}

static void on_welcome(struct ucx_ctl *c, const struct hs_msg *m)
{
    struct ucx *u = c->u;
    struct ucx_peer *p = c->peer;
    uint8_t want[HS_MAC_LEN];
    struct error err;
    hs_mac(u->key, u->key_len, 1, c->nonce_c, c->nonce_s, m->token, m->addr, m->addr_len, want);
    if (!sha256_equal(want, m->mac, HS_MAC_LEN)) {
        ctl_fail(c, UCX_CTL_KEY, "its answer does not match this cluster's key (not a pdserve daemon with the same "
                                 "--cluster-key-file)");
        return;
    }
    for (int i = 0; i < UCX_TOKEN_LEN; i++)
        p->tx_hdr[i] = (uint8_t)(m->token >> (8 * i));
    if (ucx_peer_create_ep(p, m->addr, m->addr_len, &err)) {
        ctl_fail(c, UCX_CTL_GARBAGE, err.msg);
        return;
    }
    c->state = CTL_UP;
    c->deadline = 0;
    u->stats.hs_ok++;
    ucx_send_heartbeat(p); /* proves our endpoint to the server at once */
}

/* ---- reading ---- */

static void on_frame(struct ucx_ctl *c, const uint8_t *buf, size_t len)
{
    struct hs_msg m; /* 8 KiB */
    struct error err;
    if (hs_decode(buf, len, &m, &err)) {
        ctl_fail(c, UCX_CTL_GARBAGE, err.msg);
        return;
    }
    if (m.type == HS_REFUSE && !c->server) {
        char why[HS_REASON_MAX + WIRE_ADDR_MAX + 32];
        printable(m.reason);
        snprintf(why, sizeof why, "refused by %s: %s", c->src, m.reason);
        ctl_fail(c, UCX_CTL_KEY, why);
        return;
    }
    static const uint16_t expected[] = {[CTL_WAIT_HELLO] = HS_HELLO, [CTL_WAIT_CHALLENGE] = HS_CHALLENGE,
                                        [CTL_WAIT_AUTH] = HS_AUTH, [CTL_WAIT_WELCOME] = HS_WELCOME};
    if (c->state == CTL_CONNECTING || c->state == CTL_UP || m.type != expected[c->state]) {
        snprintf(err.msg, sizeof err.msg, "unexpected handshake message %s", hs_type_name(m.type));
        ctl_fail(c, UCX_CTL_GARBAGE, err.msg);
        return;
    }
    switch (c->state) {
    case CTL_WAIT_HELLO: on_hello(c, &m); break;
    case CTL_WAIT_CHALLENGE: on_challenge(c, &m); break;
    case CTL_WAIT_AUTH: on_auth(c, &m); break;
    default: on_welcome(c, &m); break;
    }
}

/* Hands libuv exactly the room up to the end of the current header or frame, so nothing past a
 * frame is read before the frame is checked. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct ucx_ctl *c = h->data;
    size_t end = c->state == CTL_UP ? UCX_CTL_UP_SCRATCH : c->want ? c->want : HS_HDR_SIZE;
    if (c->state == CTL_UP)
        c->rlen = 0;
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(end - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct ucx_ctl *c = s->data;
    struct error err;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        ctl_fail(c, UCX_CTL_CLOSED, n == UV_EOF ? "connection closed" : uv_strerror((int)n));
        return;
    }
    if (c->state == CTL_UP) {
        ctl_fail(c, UCX_CTL_GARBAGE, "bytes after the handshake");
        return;
    }
    c->rlen += (size_t)n;
    if (!c->want && c->rlen == HS_HDR_SIZE && hs_frame_size(c->rbuf, &c->want, &err)) {
        ctl_fail(c, UCX_CTL_GARBAGE, err.msg);
        return;
    }
    if (c->want && c->rlen == c->want) {
        size_t len = c->want;
        c->rlen = c->want = 0;
        on_frame(c, c->rbuf, len);
    }
}

/* ---- connections ---- */

static struct ucx_ctl *ctl_new(struct ucx *u, int server)
{
    struct ucx_ctl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->u = u;
    c->server = server;
    uv_tcp_init(u->loop, &c->tcp);
    c->tcp.data = c;
    u->handles_open++;
    c->next = u->ctls;
    u->ctls = c;
    c->since = uv_now(u->loop);
    c->deadline = c->since + u->handshake_ms;
    return c;
}

/* Makes room for one more unauthenticated connection from `ip` by closing the oldest over a cap. */
static void make_room(struct ucx *u, const char *ip)
{
    for (int per_source = 1; per_source >= 0; per_source--) {
        int limit = per_source ? UCX_CTL_MAX_PER_SOURCE : UCX_CTL_MAX_PENDING, n = 0;
        struct ucx_ctl *oldest = NULL;
        for (struct ucx_ctl *c = u->ctls; c; c = c->next) {
            if (!c->server || c->state == CTL_UP || (per_source && strcmp(c->src_ip, ip)))
                continue;
            n++;
            if (!oldest || c->since <= oldest->since)
                oldest = c;
        }
        if (n > limit && oldest) {
            u->stats.hs_evicted++;
            if (log_allowed(u, UCX_CTL_FULL))
                log_warn("ucx: %d unauthenticated connections%s%s: closing the oldest (%s) to make room", n,
                         per_source ? " from " : "", per_source ? ip : "", oldest->src);
            ctl_close(oldest);
        }
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    struct ucx *u = srv->data;
    if (status < 0) {
        if (log_allowed(u, UCX_CTL_FULL))
            log_warn("ucx: accepting a peer connection: %s", uv_strerror(status));
        return;
    }
    struct ucx_ctl *c = ctl_new(u, 1);
    if (!c)
        return; /* libuv closes what it cannot hand over when the backlog overflows */
    struct sockaddr_storage ss = {0};
    int len = sizeof ss;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len)) {
        ctl_close(c);
        return;
    }
    format_peer(&ss, c->src, sizeof c->src, c->src_ip, sizeof c->src_ip);
    c->state = CTL_WAIT_HELLO;
    make_room(u, c->src_ip);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct ucx_ctl *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        ctl_fail(c, UCX_CTL_CLOSED, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_hello(c);
}

static int resolve(const char *host, uint16_t port, int passive, struct sockaddr_storage *ss, struct error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0}, *res;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc)
        return error_set(err, "ucx: cannot resolve '%s': %s", host, gai_strerror(rc));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int ctl_connect(struct ucx *u, struct ucx_peer *p, const struct sockaddr *sa, struct error *err)
{
    struct ucx_ctl *c = ctl_new(u, 0);
    if (!c)
        return error_set(err, "ucx: out of memory connecting to %s", p->name);
    snprintf(c->src, sizeof c->src, "%s", p->name);
    c->peer = p;
    p->ctl = c;
    c->state = CTL_CONNECTING;
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connected);
    if (rc) {
        ctl_close(c);
        return error_set(err, "ucx: connecting to %s: %s", p->name, uv_strerror(rc));
    }
    return 0;
}

int ucx_connect(struct ucx *u, const char *addr, struct ucx_peer **out, struct error *err)
{
    char host[WIRE_ADDR_MAX];
    uint16_t port;
    struct sockaddr_storage ss;
    if (ucx_parse_addr(addr, host, sizeof host, &port, err) || resolve(host, port, 0, &ss, err))
        return -1;
    if (port == 0)
        return error_set(err, "ucx: cannot connect to '%s': port 0", addr);
    struct ucx_peer *p = ucx_peer_new(u, addr);
    if (!p)
        return error_set(err, "ucx: out of memory connecting to %s", addr);
    if (ctl_connect(u, p, (const struct sockaddr *)&ss, err)) {
        p->state = UCX_PEER_CLOSED;
        ucx_peer_unref(p);
        return -1;
    }
    u->stats.peers_connected++;
    *out = p;
    return 0;
}

void ucx_ctl_sweep(struct ucx *u)
{
    uint64_t now = uv_now(u->loop);
    struct ucx_ctl *next;
    for (struct ucx_ctl *c = u->ctls; c; c = next) {
        next = c->next; /* failing may close c (never another connection) */
        if (!c->deadline || now < c->deadline || c->closing)
            continue;
        if (c->state == CTL_UP) /* refused: its REFUSE had its time to leave */
            ctl_close(c);
        else
            ctl_fail(c, UCX_CTL_TIMEOUT, "no complete handshake within the deadline");
    }
}

/* ---- the listener ---- */

int ucx_listen(struct ucx *u, const char *host, uint16_t port, struct error *err)
{
    struct sockaddr_storage ss;
    if (u->listener)
        return error_set(err, "ucx: already listening on port %u", u->port);
    if (resolve(host, port, 1, &ss, err))
        return -1;
    uv_tcp_t *l = calloc(1, sizeof *l);
    if (!l)
        return error_set(err, "ucx: out of memory");
    uv_tcp_init(u->loop, l);
    l->data = u;
    u->handles_open++;
    u->listener = l;
    int rc = uv_tcp_bind(l, (const struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)l, SOMAXCONN, on_connection);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (!rc)
        rc = uv_tcp_getsockname(l, (struct sockaddr *)&bound, &len);
    if (rc) {
        ucx_ctl_close_all(u);
        return error_set(err, "ucx: cannot listen on %s:%u: %s (port in use?)", host, port, uv_strerror(rc));
    }
    u->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    log_info("ucx: listening on %s:%u", host, u->port);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct ucx *u = h->data;
    free(h);
    ucx_handle_unref(u);
}

void ucx_ctl_close_all(struct ucx *u)
{
    if (u->listener)
        uv_close((uv_handle_t *)u->listener, on_listener_closed);
    u->listener = NULL;
    while (u->ctls)
        ctl_close(u->ctls);
}

int ucx_set_cluster_key(struct ucx *u, const void *key, size_t len, struct error *err)
{
    if (len > sizeof u->key)
        return error_set(err, "cluster key of %zu bytes: at most %zu", len, sizeof u->key);
    memcpy(u->key, key, len);
    u->key_len = len;
    return 0;
}
