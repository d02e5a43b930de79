/* ucx_peer.c — endpoints: creating them from the worker address a handshake brought (ucx_ctl.c),
 * finding a peer by the token its messages carry, PEER-mode error handling, closing, and the
 * reference count that keeps a peer alive while events or operations still point at it (ucx.h
 * describes the owner's view). */
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
    ucx_ctl_detach(p); /* the other side sees the control connection close: the peer is gone */
    free(p);
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
    if (p->closing)
        return;
    p->closing = 1;
    if (!p->ep) { /* the handshake never got as far as an endpoint */
        ucx_peer_unref(p);
        return;
    }
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

/* Closes every peer but `keep` (NULL: all of them, for ucx_destroy) and waits (at most
 * UCX_CLOSE_WAIT_MS) for UCX to finish, so no callback fires into freed memory. Open peers get a
 * flushing close, so what was sent just before (a KV_DONE, a large message still being fetched by
 * the peer) is delivered; failed peers are closed by force. */
#define UCX_CLOSE_WAIT_MS 3000
static bool others_left(const struct ucx *u, const struct ucx_peer *keep)
{
    for (const struct ucx_peer *p = u->peers; p; p = p->next)
        if (p != keep)
            return true;
    return false;
}

void ucx_peers_close_all_but(struct ucx *u, struct ucx_peer *keep)
{
    struct ucx_peer *next;
    for (struct ucx_peer *p = u->peers; p; p = next) {
        next = p->next; /* closing may free p */
        if (p != keep && p->state != UCX_PEER_CLOSED)
            ucx_peer_close_ep(p, p->state != UCX_PEER_OPEN);
    }
    uint64_t deadline = uv_hrtime() + (uint64_t)UCX_CLOSE_WAIT_MS * 1000000;
    while (others_left(u, keep) && uv_hrtime() < deadline)
        ucx_progress_once(u);
    if (others_left(u, keep))
        log_warn("ucx: endpoints still closing after %d ms; leaking them", UCX_CLOSE_WAIT_MS);
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

void ucx_peer_fail(struct ucx_peer *p, const char *reason)
{
    if (p->state != UCX_PEER_OPEN)
        return;
    p->state = UCX_PEER_FAILED;
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_LOST, p);
    if (ev) {
        snprintf(ev->reason, sizeof ev->reason, "%s", reason);
        ucx_ev_push(p->u, ev);
    }
}

/* Called by UCX inside progress: remember it and report it from the loop. */
static void on_ep_error(void *arg, ucp_ep_h ep, ucs_status_t st)
{
    (void)ep;
    ucx_peer_fail(arg, ucs_status_string(st));
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
        char why[96];
        snprintf(why, sizeof why, "nothing received for %llu ms (link cut, or the peer hangs)",
                 (unsigned long long)(now - p->last_rx));
        ucx_peer_fail(p, why);
    }
}

/* ---- creating endpoints ---- */

int ucx_peer_create_ep(struct ucx_peer *p, const uint8_t *addr, size_t len, struct error *err)
{
    (void)len; /* UCX reads the address's own length fields; the handshake bounded the bytes */
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS, .address = (const ucp_address_t *)addr};
    set_ep_common(&ep, p);
    ucs_status_t st = ucp_ep_create(p->u->worker, &ep, &p->ep);
    if (st != UCS_OK) {
        p->ep = NULL;
        return error_set(err, "ucx: endpoint to %s: ucp_ep_create: %s", p->name, ucs_status_string(st));
    }
    p->last_rx = uv_now(p->u->loop);
    if (p->heard_early) /* its heartbeat came before our endpoint existed */
        ucx_peer_heard(p);
    return 0;
}

struct ucx_peer *ucx_peer_by_header(struct ucx *u, const void *header, size_t header_length)
{
    if (header_length < UCX_TOKEN_LEN)
        return NULL;
    const uint8_t *h = header;
    uint64_t t = 0;
    for (int i = 0; i < UCX_TOKEN_LEN; i++)
        t |= (uint64_t)h[i] << (8 * i);
    for (struct ucx_peer *p = u->peers; p && t; p = p->next)
        if (p->rx_token == t && p->state == UCX_PEER_OPEN)
            return p;
    return NULL;
}
