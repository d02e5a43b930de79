/* ucx_peer.c — endpoints: the listener and accepted connections, outgoing connections by host:port,
 * PEER-mode error handling, closing, and the reference count that keeps a peer alive while events
 * or operations still point at it (ucx.h describes the owner's view). */
#include "ucx_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

/* ---- lifetime ---- */

struct ucx_peer *ucx_peer_new(struct ucx *u, const char *name)
{
    struct ucx_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->u = u;
    p->refs = 1; /* the endpoint; dropped when its close completes */
    p->last_rx = uv_now(u->loop);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->next = u->peers;
    u->peers = p;
    return p;
}

void ucx_peer_ref(struct ucx_peer *p)
{
    p->refs++;
}

void ucx_peer_unref(struct ucx_peer *p)
{
    if (--p->refs > 0)
        return;
    struct ucx_peer **pp = &p->u->peers;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    if (p->ext_free)
        p->ext_free(p->ext);
    free(p);
}

struct ucx_peer *ucx_peer_by_ep(struct ucx *u, ucp_ep_h ep)
{
    for (struct ucx_peer *p = u->peers; p; p = p->next)
        if (p->ep == ep && ep)
            return p;
    return NULL;
}

static void on_close_done(void *request, ucs_status_t st, void *user_data)
{
    (void)st;
    struct ucx_peer *p = user_data;
    ucp_request_free(request);
    p->ep = NULL;
    ucx_peer_unref(p);
}

/* Starts closing the endpoint (once); the peer's endpoint reference is dropped when UCX is done. */
static void close_ep(struct ucx_peer *p, int force)
{
    if (!p->ep || p->closing)
        return;
    p->closing = 1;
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                        (force ? UCP_OP_ATTR_FIELD_FLAGS : 0),
        .cb.send = on_close_done,
        .user_data = p,
        .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t sp = ucp_ep_close_nbx(p->ep, &rp);
    if (UCS_PTR_IS_PTR(sp))
        return; /* on_close_done finishes */
    p->ep = NULL;
    ucx_peer_unref(p);
}

/* A forced close (after an error) does not try to flush to a peer that is gone. */
void ucx_peer_close_ep(struct ucx_peer *p, int force)
{
    p->state = UCX_PEER_CLOSED;
    ucx_peer_fail_held(p);
    close_ep(p, force);
}

void ucx_peer_close(struct ucx_peer *p)
{
    if (p->state == UCX_PEER_CLOSED)
        return;
    ucx_peer_close_ep(p, p->state == UCX_PEER_FAILED);
}

/* Closes everything for ucx_destroy and waits (at most UCX_CLOSE_WAIT_MS) for UCX to finish, so no
 * callback fires into freed memory. Open peers get a flushing close, so what was sent just before
 * shutdown (a KV_DONE, a large message still being fetched by the peer) is delivered; failed
 * peers are closed by force. */
#define UCX_CLOSE_WAIT_MS 3000
void ucx_peers_close_all(struct ucx *u)
{
    struct ucx_peer *next;
    for (struct ucx_peer *p = u->peers; p; p = next) {
        next = p->next; /* closing may free p */
        if (p->state != UCX_PEER_CLOSED)
            ucx_peer_close_ep(p, p->state != UCX_PEER_OPEN);
    }
    uint64_t deadline = uv_hrtime() + (uint64_t)UCX_CLOSE_WAIT_MS * 1000000;
    while (u->peers && uv_hrtime() < deadline)
        ucx_progress_once(u);
    if (u->peers)
        log_warn("ucx: endpoints still closing after %d ms at shutdown; leaking them", UCX_CLOSE_WAIT_MS);
}

void ucx_peer_set_user(struct ucx_peer *p, void *user) { p->user = user; }
void *ucx_peer_user(const struct ucx_peer *p) { return p->user; }
const char *ucx_peer_name(const struct ucx_peer *p) { return p->name; }
struct ucx *ucx_peer_ucx(const struct ucx_peer *p) { return p->u; }

void ucx_peer_print_info(const struct ucx_peer *p, FILE *f)
{
    if (p->ep && p->state == UCX_PEER_OPEN)
        ucp_ep_print_info(p->ep, f);
}

/* ---- failure ---- */

/* Called by UCX inside progress: remember it and report it from the loop. */
static void on_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)ep;
    struct ucx_peer *p = arg;
    if (p->state != UCX_PEER_OPEN)
        return;
    p->state = UCX_PEER_FAILED;
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_LOST, p);
    if (ev) {
        snprintf(ev->reason, sizeof ev->reason, "%s", ucs_status_string(st));
        ucx_ev_push(p->u, ev);
    }
    /* The endpoint is closed by deliver(), after this progress call. Closing it from here made
     * things worse with UCX 1.13: a put from the dead peer still queued is then handled on the
     * closed endpoint, and UCX aborts the process when it cannot acknowledge it (see
     * docs/transport.md, "UCX 1.13 problems"). */
}

static void set_ep_common(ucp_ep_params_t *ep, struct ucx_peer *p)
{
    ep->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep->err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep->err_handler.cb = on_ep_error;
    ep->err_handler.arg = p;
}

/* A peer that sends nothing, not even heartbeats, for peer_timeout_ms is lost: TCP alone would
 * retransmit into a cut link for many minutes (keepalive only probes idle connections). */
void ucx_peers_heartbeat(struct ucx *u)
{
    uint64_t now = uv_now(u->loop);
    for (struct ucx_peer *p = u->peers; p; p = p->next) {
        if (p->state != UCX_PEER_OPEN || !p->ep)
            continue;
        if (now - p->last_rx <= u->peer_timeout_ms) {
            ucx_send_heartbeat(p);
            continue;
        }
        p->state = UCX_PEER_FAILED;
        struct ucx_ev *ev = ucx_ev_new(UCX_EV_LOST, p);
        if (!ev)
            continue;
        snprintf(ev->reason, sizeof ev->reason, "nothing received for %llu ms (link cut, or the peer hangs)",
                 (unsigned long long)(now - p->last_rx));
        ucx_ev_push(u, ev);
    }
}

/* ---- addresses ---- */

static int resolve(const char *host, uint16_t port, int passive, struct sockaddr_storage *ss, socklen_t *len,
                   struct error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0}, *res;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc)
        return error_set(err, "ucx: cannot resolve '%s': %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, n, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* ---- listening and accepting ---- */

/* Called by UCX inside progress with a new client: make its endpoint now (UCX requires an answer
 * to the request), tell the owner from the loop. */
static void on_conn_request(ucp_conn_request_h req, void *arg)
{
    struct ucx *u = arg;
    char name[WIRE_ADDR_MAX] = "?";
    ucp_conn_request_attr_t attr = {.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR};
    if (ucp_conn_request_query(req, &attr) == UCS_OK)
        format_sockaddr(&attr.client_address, name, sizeof name);
    struct ucx_peer *p = ucx_peer_new(u, name);
    if (!p) {
        log_error("ucx: out of memory accepting %s; rejecting it", name);
        ucp_listener_reject(u->listener, req);
        return;
    }
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST, .conn_request = req};
    set_ep_common(&ep, p);
    ucs_status_t st = ucp_ep_create(u->worker, &ep, &p->ep);
    if (st != UCS_OK) {
        log_error("ucx: accepting %s: ucp_ep_create: %s", name, ucs_status_string(st));
        p->ep = NULL;
        p->state = UCX_PEER_CLOSED;
        ucx_peer_unref(p);
        return;
    }
    p->proven = 1; /* we answer only what came through it; our first send is the heartbeat that proves it to the client */
    u->stats.peers_accepted++;
    log_debug("ucx: accepted %s", name);
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_ACCEPT, p);
    if (ev)
        ucx_ev_push(u, ev);
}

int ucx_listen(struct ucx *u, const char *host, uint16_t port, struct error *err)
{
    if (u->listener)
        return error_set(err, "ucx: already listening on port %u", u->port);
    struct sockaddr_storage ss;
    socklen_t len;
    if (resolve(host, port, 1, &ss, &len, err))
        return -1;
    ucp_listener_params_t lp = {
        .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
        .sockaddr = {.addr = (const struct sockaddr *)&ss, .addrlen = len},
        .conn_handler = {.cb = on_conn_request, .arg = u},
    };
    ucs_status_t st = ucp_listener_create(u->worker, &lp, &u->listener);
    if (st != UCS_OK)
        return error_set(err, "ucx: cannot listen on %s:%u: %s (port in use, or no UCX sockaddr transport: "
                              "check UCX_TLS includes tcp)", host, port, ucs_status_string(st));
    ucp_listener_attr_t la = {.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR};
    u->port = port;
    if (ucp_listener_query(u->listener, &la) == UCS_OK)
        u->port = ntohs(la.sockaddr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&la.sockaddr)->sin6_port
                                                          : ((struct sockaddr_in *)&la.sockaddr)->sin_port);
    log_info("ucx: listening on %s:%u", host, u->port);
    return 0;
}

/* ---- connecting ---- */

int ucx_connect(struct ucx *u, const char *addr, struct ucx_peer **out, struct error *err)
{
    char host[WIRE_ADDR_MAX];
    uint16_t port;
    struct sockaddr_storage ss;
    socklen_t len;
    if (ucx_parse_addr(addr, host, sizeof host, &port, err) || resolve(host, port, 0, &ss, &len, err))
        return -1;
    if (port == 0)
        return error_set(err, "ucx: cannot connect to '%s': port 0", addr);
    struct ucx_peer *p = ucx_peer_new(u, addr);
    if (!p)
        return error_set(err, "ucx: out of memory connecting to %s", addr);
    ucp_ep_params_t ep = {
        .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR,
        .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
        .sockaddr = {.addr = (const struct sockaddr *)&ss, .addrlen = len},
    };
    set_ep_common(&ep, p);
    ucs_status_t st = ucp_ep_create(u->worker, &ep, &p->ep);
    if (st != UCS_OK) {
        p->ep = NULL;
        p->state = UCX_PEER_CLOSED;
        ucx_peer_unref(p);
        return error_set(err, "ucx: connecting to %s: %s", addr, ucs_status_string(st));
    }
    u->stats.peers_connected++;
    *out = p;
    return 0;
}
