/* ucx_internal.h — the transport core's private structures, shared by ucx.c (context, loop, events),
 * ucx_peer.c (listener, endpoints, failure) and ucx_am.c (messages), and the hooks a layer on top of
 * the core uses (kv_xfer.c): a per-peer extension slot, operations whose completion that layer counts
 * itself, and Active Message ids it claims. The core never calls such a layer by name. Not for use
 * outside proto/. */
#ifndef PD_UCX_INTERNAL_H
#define PD_UCX_INTERNAL_H

#include <ucp/api/ucp.h>

#include "proto/ucx.h"

/* Something that happened inside ucp_worker_progress, delivered afterwards (see ucx.h). */
enum ucx_ev_kind { UCX_EV_ACCEPT, UCX_EV_MSG, UCX_EV_LOST, UCX_EV_DONE, UCX_EV_PROVEN };

struct ucx_ev {
    struct ucx_ev *next;
    enum ucx_ev_kind kind;
    struct ucx_peer *peer; /* holds a reference; NULL for DONE events without a peer */
    struct wire_msg msg;   /* MSG */
    ucx_done_cb cb;        /* DONE */
    void *arg;
    int status;
    char reason[128]; /* LOST, DONE */
};

enum ucx_peer_state {
    UCX_PEER_OPEN,
    UCX_PEER_FAILED, /* UCX reported an error; on_peer_lost is queued */
    UCX_PEER_CLOSED, /* closed by the owner, or lost and reported; the endpoint is closing */
};

struct ucx_peer {
    struct ucx_peer *next; /* in ucx.peers */
    struct ucx *u;
    ucp_ep_h ep;            /* NULL once its close completed */
    int closing;            /* ucp_ep_close_nbx was called */
    enum ucx_peer_state state;
    int refs;               /* the open endpoint, each queued event, each operation in flight */
    char name[WIRE_ADDR_MAX + 8];
    void *user;
    uint64_t last_rx;       /* uv_now() when anything last arrived from it (liveness) */
    /* A peer we connected to is unproven until something arrives from it: messages sent on a
     * connection still being set up were seen to vanish (docs/transport.md), so sends and flushes
     * are held until then (ucx_am.c). Accepted peers are proven from the start. */
    int proven;
    struct ucx_op *held_head, *held_tail;
    /* What a layer on top keeps per peer (kv_xfer.c: the remote pool); ext_free(ext) runs when the
     * peer is freed. */
    void *ext;
    void (*ext_free)(void *ext);
};

struct ucx {
    uv_loop_t *loop;
    struct ucx_handlers h;
    void *user;
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_listener_h listener;
    uint16_t port;
    uv_poll_t poll;      /* the worker's event fd */
    uv_prepare_t prepare; /* progress before the loop sleeps: sends issued by callbacks go out */
    uv_timer_t timer;    /* safety net against a missed wake-up */
    uv_timer_t heartbeat; /* liveness: heartbeats out, silent peers declared lost */
    uint64_t peer_timeout_ms;
    int handles_open;
    int pumping;         /* re-entrancy guard */
    int in_progress;     /* inside ucp_worker_progress (UCX callbacks may be running) */
    int fast_poll;       /* the worker could not be armed: the timer polls every 1 ms */
    struct ucx_peer *peers;
    struct ucx_ev *ev_head, *ev_tail;
    struct ucx_stats stats;
    int rma;                        /* UCP_FEATURE_RMA is on (ucx.c: only with RDMA, or asked for) */
};

/* One UCX request's context: which peer, whose callback, what to free. */
struct ucx_op {
    struct ucx_peer *peer; /* holds a reference */
    ucx_done_cb cb;
    void *arg;
    void *buf;            /* freed on completion (an encoded message) */
    /* Set by a layer that counts completions itself (kv_xfer.c's runs): called inside progress with
     * the UCX status instead of queueing cb as a DONE event. */
    void (*raw_done)(void *raw_arg, ucs_status_t st);
    void *raw_arg;
    int is_send;             /* counts in stats.send_errors when it fails */
    int is_flush;            /* a held flush (else a held send of buf[len]) */
    size_t len;
    struct ucx_op *next;     /* in the peer's held list */
};

/* ucx.c */
/* PDSERVE_KV_TRANSFER: put (RMA on, puts wherever a peer offers a key), am (messages only), or
 * anything else / unset: auto (RMA only with an RDMA device; docs/transport.md). */
enum ucx_kv_mode { UCX_KV_AUTO, UCX_KV_PUT, UCX_KV_AM };
enum ucx_kv_mode ucx_kv_mode(void);
struct ucx_ev *ucx_ev_new(enum ucx_ev_kind kind, struct ucx_peer *peer);
void ucx_ev_push(struct ucx *u, struct ucx_ev *ev);
void ucx_queue_done(struct ucx *u, struct ucx_peer *peer, ucx_done_cb cb, void *arg, ucs_status_t st);
/* Drains ucp_worker_progress with in_progress set. */
void ucx_progress_all(struct ucx *u);
/* Progresses the worker and delivers events, without re-arming (for teardown). */
void ucx_progress_once(struct ucx *u);

/* ucx_peer.c */
struct ucx_peer *ucx_peer_new(struct ucx *u, const char *name);
void ucx_peer_ref(struct ucx_peer *p);
void ucx_peer_unref(struct ucx_peer *p);
struct ucx_peer *ucx_peer_by_ep(struct ucx *u, ucp_ep_h ep);
void ucx_peer_close_ep(struct ucx_peer *p, int force);
void ucx_peers_close_all(struct ucx *u);
/* Sends a heartbeat to every open peer and declares lost those silent for peer_timeout_ms. */
void ucx_peers_heartbeat(struct ucx *u);

/* ucx_am.c */
#define UCX_AM_ID 7
#define UCX_AM_HEARTBEAT 8 /* no data; sent with REPLY every UCX_HEARTBEAT_MS */
#define UCX_HEARTBEAT_MS 1000
#define UCX_AM_KV 9 /* a run of KV blocks: wire_kv_run as the AM header, the blocks as data (kv_xfer.c) */
void ucx_send_heartbeat(struct ucx_peer *p);
/* Something arrived from p (inside progress): liveness, and the first time, proof that the
 * connection carries messages (an UCX_EV_PROVEN event then posts what was held). */
void ucx_peer_heard(struct ucx_peer *p);
/* From the loop: posts the held sends and flushes in order / fails them (the peer closes). */
void ucx_peer_release_held(struct ucx_peer *p);
void ucx_peer_fail_held(struct ucx_peer *p);
int ucx_am_init(struct ucx *u, struct error *err);
/* Hands Active Message id `id` to a layer on top: cb(arg, ...) receives what arrives with it from now
 * on (UCP_AM_FLAG_WHOLE_MSG). Until an id the core reserved for such a layer (UCX_AM_KV) is claimed,
 * the core refuses and counts what arrives with it. */
int ucx_am_claim(struct ucx *u, unsigned id, ucp_am_recv_callback_t cb, void *arg, struct error *err);
/* Gives a claimed id back to the core, which refuses what arrives with it again. */
void ucx_am_release(struct ucx *u, unsigned id);

/* A UCX request callback for every op: frees the request, queues the op's DONE, frees the op. */
struct ucx_op *ucx_op_new(struct ucx_peer *p, ucx_done_cb cb, void *arg);
void ucx_op_finish(struct ucx_op *op, ucs_status_t st);
void ucx_op_request_cb(void *request, ucs_status_t st, void *user_data);
/* Handles the return value of a *_nbx call whose user_data is op: an immediate completion or error
 * finishes the op now (its callback is still delivered later, from the loop); otherwise the request
 * callback will. */
void ucx_op_track(struct ucx_op *op, ucs_status_ptr_t sp);

#endif
