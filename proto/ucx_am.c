/* ucx_am.c — control messages as UCX Active Messages: the receive handler (eager and rendezvous),
 * sending encoded messages, flushing, and the request bookkeeping every UCX operation shares.
 *
 * The AM header of every message is the token the receiver gave the sender in the handshake
 * (UCX_TOKEN_LEN bytes): it tells the receiver which peer sent it, and a message without the token of
 * an authenticated peer is dropped and counted. The whole wire message (header + payload) is the AM
 * data. */
#include "ucx_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

/* ---- operations ---- */

struct ucx_op *ucx_op_new(struct ucx_peer *p, ucx_done_cb cb, void *arg)
{
    struct ucx_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->peer = p;
    ucx_peer_ref(p);
    op->cb = cb;
    op->arg = arg;
    return op;
}

void ucx_op_finish(struct ucx_op *op, ucs_status_t st)
{
    struct ucx_peer *p = op->peer;
    if (op->raw_done) {
        op->raw_done(op->raw_arg, st);
    } else {
        if (st != UCS_OK && op->is_send) {
            p->u->stats.send_errors++;
            if (!op->cb)
                log_warn("ucx: send to %s failed: %s", p->name, ucs_status_string(st));
        }
        ucx_queue_done(p->u, p, op->cb, op->arg, st);
    }
    free(op->buf);
    ucx_peer_unref(p);
    free(op);
}

void ucx_op_request_cb(void *request, ucs_status_t st, void *user_data)
{
    ucp_request_free(request);
    ucx_op_finish(user_data, st);
}

void ucx_op_track(struct ucx_op *op, ucs_status_ptr_t sp)
{
    if (UCS_PTR_IS_PTR(sp))
        return; /* ucx_op_request_cb finishes it */
    ucx_op_finish(op, UCS_PTR_STATUS(sp));
}

static ucp_request_param_t op_param(struct ucx_op *op)
{
    return (ucp_request_param_t){
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.send = ucx_op_request_cb,
        .user_data = op,
    };
}

/* ---- sending ---- */

/* Open, connected or still connecting (sends are held until the endpoint exists and is proven). */
static int peer_usable(struct ucx_peer *p, struct error *err)
{
    if (p->state != UCX_PEER_OPEN)
        return error_set(err, "ucx: peer %s is gone", p->name);
    return 0;
}

static void post_send(struct ucx_op *op)
{
    ucp_request_param_t rp = op_param(op);
    ucx_op_track(op, ucp_am_send_nbx(op->peer->ep, UCX_AM_ID, op->peer->tx_hdr, UCX_TOKEN_LEN, op->buf, op->len,
                                     &rp));
}

static void post_flush(struct ucx_op *op)
{
    ucp_request_param_t rp = op_param(op);
    ucx_op_track(op, ucp_ep_flush_nbx(op->peer->ep, &rp));
}

/* Posts op now, or holds it (in order) until the peer is proven. */
static void post_or_hold(struct ucx_op *op)
{
    struct ucx_peer *p = op->peer;
    if (!p->proven) {
        if (p->held_tail)
            p->held_tail->next = op;
        else
            p->held_head = op;
        p->held_tail = op;
        return;
    }
    if (op->is_flush)
        post_flush(op);
    else
        post_send(op);
}

static struct ucx_op *take_held(struct ucx_peer *p)
{
    struct ucx_op *op = p->held_head;
    p->held_head = p->held_tail = NULL;
    return op;
}

void ucx_peer_release_held(struct ucx_peer *p)
{
    struct ucx_op *next;
    for (struct ucx_op *op = take_held(p); op; op = next) {
        next = op->next;
        op->next = NULL;
        if (p->state != UCX_PEER_OPEN || !p->ep)
            ucx_op_finish(op, UCS_ERR_CONNECTION_RESET);
        else
            post_or_hold(op);
    }
}

void ucx_peer_fail_held(struct ucx_peer *p)
{
    struct ucx_op *next;
    for (struct ucx_op *op = take_held(p); op; op = next) {
        next = op->next;
        ucx_op_finish(op, UCS_ERR_CONNECTION_RESET);
    }
}

void ucx_peer_heard(struct ucx_peer *p)
{
    p->last_rx = uv_now(p->u->loop);
    if (!p->ep) { /* the peer's endpoint was up before ours: proven once ours exists */
        p->heard_early = 1;
        return;
    }
    if (p->proven)
        return;
    p->proven = 1;
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_PROVEN, p);
    if (ev)
        ucx_ev_push(p->u, ev);
}

/* Sends an encoded message whose buffer the op then owns. */
static int send_buf(struct ucx_peer *p, uint8_t *data, size_t len, ucx_done_cb cb, void *arg, struct error *err)
{
    struct ucx_op *op = ucx_op_new(p, cb, arg);
    if (!op) {
        free(data);
        return error_set(err, "ucx: out of memory sending to %s", p->name);
    }
    op->buf = data;
    op->len = len;
    op->is_send = 1;
    p->u->stats.msgs_tx++;
    p->u->stats.bytes_tx += len;
    post_or_hold(op);
    return 0;
}

int ucx_send(struct ucx_peer *p, const struct wire_msg *m, ucx_done_cb cb, void *arg, struct error *err)
{
    struct wire_buf b = {0};
    int rc = peer_usable(p, err);
    if (rc == 0 && (rc = wire_encode(&b, m, err)) < 0)
        wire_buf_free(&b);
    if (rc == 0)
        rc = send_buf(p, b.data, b.len, cb, arg, err); /* frees the buffer when it fails */
    if (rc < 0)
        p->u->stats.send_errors++;
    return rc;
}

int ucx_send_raw(struct ucx_peer *p, const void *buf, size_t len, struct error *err)
{
    if (peer_usable(p, err))
        return -1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return error_set(err, "ucx: out of memory");
    memcpy(copy, buf, len);
    return send_buf(p, copy, len, NULL, NULL, err);
}

void ucx_send_heartbeat(struct ucx_peer *p)
{
    if (!p->ep)
        return;
    struct ucx_op *op = ucx_op_new(p, NULL, NULL);
    if (!op)
        return;
    ucp_request_param_t rp = op_param(op);
    ucx_op_track(op, ucp_am_send_nbx(p->ep, UCX_AM_HEARTBEAT, p->tx_hdr, UCX_TOKEN_LEN, NULL, 0, &rp));
}

int ucx_flush(struct ucx_peer *p, ucx_done_cb cb, void *arg, struct error *err)
{
    if (peer_usable(p, err))
        return -1;
    struct ucx_op *op = ucx_op_new(p, cb, arg);
    if (!op)
        return error_set(err, "ucx: out of memory flushing %s", p->name);
    op->is_flush = 1;
    post_or_hold(op);
    return 0;
}

/* ---- receiving ---- */

/* Decodes one whole received message and queues it for the owner, or rejects and counts it. */
static void accept_bytes(struct ucx *u, struct ucx_peer *p, const void *data, size_t len)
{
    struct error err;
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_MSG, p);
    if (!ev)
        return;
    if (wire_decode(data, len, &ev->msg, &err)) {
        u->stats.rejected++;
        /* the first ones say what is wrong; a flood of garbage must not fill the disk */
        if (u->stats.rejected <= 20 || u->stats.rejected % 1000 == 0)
            log_warn("ucx: rejected a %zu-byte message from %s (%llu rejected so far): %s", len, p->name,
                     (unsigned long long)u->stats.rejected, err.msg);
        ucx_peer_unref(p);
        free(ev);
        return;
    }
    u->stats.msgs_rx++;
    u->stats.bytes_rx += len;
    ucx_ev_push(u, ev);
}

/* A rendezvous message being received into a buffer of ours. */
struct rndv_recv {
    struct ucx_peer *peer; /* holds a reference */
    void *buf;
    size_t len;
};

static void rndv_finish(struct rndv_recv *r, ucs_status_t st)
{
    if (st == UCS_OK && r->peer->state == UCX_PEER_OPEN)
        accept_bytes(r->peer->u, r->peer, r->buf, r->len);
    else if (st != UCS_OK)
        log_warn("ucx: receiving a %zu-byte message from %s failed: %s", r->len, r->peer->name,
                 ucs_status_string(st));
    ucx_peer_unref(r->peer);
    free(r->buf);
    free(r);
}

static void on_rndv_done(void *request, ucs_status_t st, size_t length, void *user_data)
{
    (void)length;
    ucp_request_free(request);
    rndv_finish(user_data, st);
}

static void recv_rndv(struct ucx *u, struct ucx_peer *p, void *desc, size_t len)
{
    struct rndv_recv *r = calloc(1, sizeof *r);
    void *buf = malloc(len);
    if (!r || !buf) {
        free(r);
        free(buf);
        log_error("ucx: out of memory receiving a %zu-byte message from %s; dropped", len, p->name);
        ucp_am_data_release(u->worker, desc);
        return;
    }
    r->peer = p;
    ucx_peer_ref(p);
    r->buf = buf;
    r->len = len;
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
        .cb.recv_am = on_rndv_done,
        .user_data = r,
    };
    ucs_status_ptr_t sp = ucp_am_recv_data_nbx(u->worker, desc, buf, len, &rp);
    if (!UCS_PTR_IS_PTR(sp))
        rndv_finish(r, UCS_PTR_STATUS(sp));
}

static ucs_status_t on_am(void *arg, const void *header, size_t header_length, void *data, size_t length,
                          const ucp_am_recv_param_t *param)
{
    struct ucx *u = arg;
    int rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    struct ucx_peer *p = ucx_peer_by_header(u, header, header_length);
    if (!p || header_length != UCX_TOKEN_LEN || length > WIRE_HDR_SIZE + (size_t)WIRE_MAX_PAYLOAD) {
        u->stats.rejected++;
        if (u->stats.rejected <= 20 || u->stats.rejected % 1000 == 0)
            log_warn("ucx: rejected a message from %s: %zu header bytes, %zu data bytes%s", p ? p->name : "?",
                     header_length, length, p ? "" : " (no token of an authenticated peer)");
        if (rndv)
            ucp_am_data_release(u->worker, data);
        return UCS_OK;
    }
    ucx_peer_heard(p);
    if (rndv)
        recv_rndv(u, p, data, length);
    else
        accept_bytes(u, p, data, length);
    return UCS_OK;
}

static ucs_status_t on_heartbeat(void *arg, const void *header, size_t header_length, void *data, size_t length,
                                 const ucp_am_recv_param_t *param)
{
    (void)length;
    struct ucx *u = arg;
    struct ucx_peer *p = ucx_peer_by_header(u, header, header_length);
    if (p && header_length == UCX_TOKEN_LEN)
        ucx_peer_heard(p);
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
        ucp_am_data_release(u->worker, data);
    return UCS_OK;
}

/* What arrives with an id reserved for a layer on top that has not claimed it (a process that
 * offered no KV pool receiving KV runs): refused and counted, never read. */
static ucs_status_t on_unclaimed(void *arg, const void *header, size_t header_length, void *data, size_t length,
                                 const ucp_am_recv_param_t *param)
{
    struct ucx *u = arg;
    (void)header, (void)header_length;
    u->stats.rejected++;
    if (u->stats.rejected <= 20 || u->stats.rejected % 1000 == 0)
        log_warn("ucx: refused a %zu-byte message on an Active Message id nothing here uses", length);
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)
        ucp_am_data_release(u->worker, data);
    return UCS_OK;
}

int ucx_am_claim(struct ucx *u, unsigned id, ucp_am_recv_callback_t cb, void *arg, struct error *err)
{
    ucp_am_handler_param_t hp = {
        .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
        .id = id,
        .flags = UCP_AM_FLAG_WHOLE_MSG,
        .cb = cb,
        .arg = arg,
    };
    ucs_status_t st = ucp_worker_set_am_recv_handler(u->worker, &hp);
    if (st != UCS_OK)
        return error_set(err, "ucx: registering a message handler: %s", ucs_status_string(st));
    return 0;
}

void ucx_am_release(struct ucx *u, unsigned id)
{
    struct error err;
    if (ucx_am_claim(u, id, on_unclaimed, u, &err) < 0)
        log_warn("%s", err.msg);
}

int ucx_am_init(struct ucx *u, struct error *err)
{
    return ucx_am_claim(u, UCX_AM_ID, on_am, u, err) || ucx_am_claim(u, UCX_AM_HEARTBEAT, on_heartbeat, u, err) ||
                   ucx_am_claim(u, UCX_AM_KV, on_unclaimed, u, err)
               ? -1
               : 0;
}
