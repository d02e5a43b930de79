/* ucx_internal.h — the transport core's private structures, shared by ucx.c (context, loop, events),
 * ucx_ctl.c (the control listener and connections, the handshake), ucx_peer.c (endpoints, failure)
 * and ucx_am.c (messages), and the hooks a layer on top of
 * the core uses (kv_xfer.c): a per-peer extension slot, operations whose completion that layer counts
 * itself, and Active Message ids it claims. The core never calls such a layer by name. Not for use
 * outside proto/. */
#ifndef PD_UCX_INTERNAL_H
#define PD_UCX_INTERNAL_H

#include <ucp/api/ucp.h>

#include "proto/handshake.h"
#include "proto/ucx.h"

struct ucx_ctl; /* a control connection (ucx_ctl.c) */

/* Every UCX message carries, as (the start of) its Active Message header, the token its receiver
 * chose for the sender during the handshake: the receiver finds the peer by it and drops what
 * carries no token of an authenticated peer (ucx_peer_by_header). */
#define UCX_TOKEN_LEN 8

/* Why an unauthenticated connection ended; each cause's log lines are rate-limited on their own. */
enum ucx_ctl_cause { UCX_CTL_GARBAGE, UCX_CTL_TIMEOUT, UCX_CTL_KEY, UCX_CTL_FULL, UCX_CTL_CLOSED, UCX_CTL_CAUSES };

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
    struct ucx_ctl *ctl;    /* the control connection; closed when the peer is freed */
    uint64_t rx_token;      /* what the peer puts in the headers of what it sends us (0: none yet) */
    uint8_t tx_hdr[UCX_TOKEN_LEN]; /* what we put in ours: its token, little-endian */
    int heard_early;        /* something arrived before our endpoint existed (see ucx_peer_heard) */
    uint64_t last_rx;       /* uv_now() when anything last arrived from it (liveness) */
    /* A peer is unproven until our endpoint to it exists and something arrived from it: messages
     * sent on a connection still being set up were seen to vanish (docs/transport.md), so sends
     * and flushes are held until then (ucx_am.c). */
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
    uv_tcp_t *listener;  /* the control listener (ucx_ctl.c); NULL when not listening */
    uint16_t port;
    struct ucx_ctl *ctls; /* every open control connection */
    uint8_t key[UCX_KEY_MAX]; /* the cluster key (empty: none configured) */
    size_t key_len;
    ucp_address_t *addr; /* our UCX worker address, sent in the handshake */
    size_t addr_len;
    uint64_t handshake_ms;
    struct { uint64_t window; unsigned lines, dropped; } log_limit[UCX_CTL_CAUSES];
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

/* ucx_ctl.c */
/* Closes p's control connection, if any (the peer is being freed). */
void ucx_ctl_detach(struct ucx_peer *p);
/* Ends handshakes past their deadline (from the heartbeat timer). */
void ucx_ctl_sweep(struct ucx *u);
/* Closes the listener and every control connection (ucx_destroy). */
void ucx_ctl_close_all(struct ucx *u);
/* A uv close callback for a handle counted in u->handles_open whose data is u. */
void ucx_handle_closed(uv_handle_t *h);
void ucx_handle_unref(struct ucx *u);

/* ucx_peer.c */
struct ucx_peer *ucx_peer_new(struct ucx *u, const char *name);
/* Creates p's endpoint from the UCX worker address the peer sent in the handshake. */
int ucx_peer_create_ep(struct ucx_peer *p, const uint8_t *addr, size_t len, struct error *err);
/* Marks an open peer failed and queues its loss with `reason` (once). */
void ucx_peer_fail(struct ucx_peer *p, const char *reason);
/* The open peer whose token starts `header` (UCX_TOKEN_LEN bytes), or NULL. */
struct ucx_peer *ucx_peer_by_header(struct ucx *u, const void *header, size_t header_length);
void ucx_peer_ref(struct ucx_peer *p);
void ucx_peer_unref(struct ucx_peer *p);
void ucx_peer_close_ep(struct ucx_peer *p, int force);
void ucx_peers_close_all_but(struct ucx *u, struct ucx_peer *keep);
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
