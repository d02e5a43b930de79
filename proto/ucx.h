/* ucx.h — the pdserve transport: one UCP context and worker per process, driven from the process's
 * libuv loop; a control listener on host:port; endpoints ("peers") to other pdserve processes; wire.h
 * messages sent and received as UCX Active Messages; peer failure reported through a callback.
 * KV block transfer by RMA over the same peers is in kv_xfer.h.
 *
 * Joining: UCX's own connection manager is not used (its listener aborted the process on a crafted
 * packet). The listening port is pdserve's TCP control listener; a connection there must pass the
 * cluster handshake (handshake.h: challenge-response over the cluster key) within 5 s before the two
 * sides swap UCX worker addresses and create endpoints from them. Unauthenticated connections are
 * capped (ucx_ctl.c), and every UCX message must carry the token the handshake gave its sender. The
 * control connection stays open while the peer lives: its close is the peer's loss.
 *
 * Threads: everything here runs on the loop thread, including every callback. An engine thread
 * that wants something sent hands it to the loop (a queue + uv_async_send) and the loop calls in.
 *
 * Callbacks are never called from inside UCX (ucp_worker_progress): the transport queues what
 * happened and delivers it from the loop afterwards, in order, so a callback may send, connect or
 * close peers freely. It must not call ucx_destroy (stop the loop and destroy after uv_run returns).
 *
 * Failure: endpoints use UCP_ERR_HANDLING_MODE_PEER, so a peer that dies or closes is reported by
 * UCX at once; on top, every peer gets a heartbeat each second, and one silent for 6 s
 * (PDSERVE_PEER_TIMEOUT_MS) is declared lost — TCP alone retransmits into a cut link for minutes.
 * Either way on_peer_lost fires once, and every send, put and flush still in flight to the peer
 * completes with an error. */
#ifndef PD_UCX_H
#define PD_UCX_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <uv.h>

#include "common/util/error.h"
#include "proto/wire.h"

struct ucx;      /* context + worker + loop integration; owned by whoever called ucx_create */
struct ucx_peer; /* one endpoint; owned by the transport, valid until closed or reported lost */

/* Counters a daemon can export (monotonic since ucx_create). */
struct ucx_stats {
    uint64_t msgs_rx, msgs_tx;   /* messages received (valid) and sent */
    uint64_t bytes_rx, bytes_tx; /* their sizes including the wire header */
    uint64_t rejected;           /* received messages that failed wire_decode (bad magic/version/type/length) */
    uint64_t send_errors;        /* sends that failed: refused at once (ucx_send's -1) or completed with an error */
    uint64_t peers_accepted, peers_connected, peers_lost;
    uint64_t puts, put_bytes, put_errors; /* KV runs sent by kv_xfer (puts or messages), bytes, failures */
    uint64_t kv_rx, kv_rx_bytes, kv_rejected; /* KV runs received as messages, their bytes, refused ones */
    uint64_t hs_ok;        /* handshakes completed (either side) */
    uint64_t hs_refused;   /* peers refused: their MAC did not match our cluster key */
    uint64_t hs_failed;    /* unauthenticated connections ended otherwise: garbage, timeout, closed */
    uint64_t hs_evicted;   /* unauthenticated connections closed to make room (caps in ucx_ctl.c) */
};

#define UCX_KEY_MAX 256 /* cluster key bytes */

/* Completion of a send, put or flush: status 0 on success, -1 on failure with a reason (a UCX status
 * string, valid only during the call). Called on the loop thread, once. */
typedef void (*ucx_done_cb)(void *arg, int status, const char *reason);

struct ucx_handlers {
    /* A peer connected to our listener; it can be sent to at once. Optional. */
    void (*on_accept)(struct ucx *u, struct ucx_peer *peer, void *user);
    /* A message arrived and passed wire_decode. The transport releases *msg after the call; to keep
     * an array, take it (copy the pointer, set the field to NULL). */
    void (*on_message)(struct ucx *u, struct ucx_peer *peer, struct wire_msg *msg, void *user);
    /* The peer is gone (closed by the other side, died, unreachable, or cut off): reason says how.
     * After this returns the peer pointer is invalid; drop every reference to it. Not called for
     * a peer the owner closed with ucx_peer_close. */
    void (*on_peer_lost)(struct ucx *u, struct ucx_peer *peer, const char *reason, void *user);
};

/* Creates the UCP context and worker and hooks the worker's event fd into `loop`. Before reading
 * UCX's configuration it sets pdserve's defaults for UCX_* variables the user did not set (see
 * docs/transport.md). `h` is copied; `user` is passed to every handler. */
int ucx_create(uv_loop_t *loop, const struct ucx_handlers *h, void *user, struct ucx **out, struct error *err);

/* Closes every peer (in-flight operations complete with an error, their callbacks run now), the
 * listener, the worker and the context, and starts closing the libuv handles: run the loop once
 * more (uv_run) so their close callbacks fire and the memory is freed. Not from a ucx callback. */
void ucx_destroy(struct ucx *u);

/* Closes every peer and waits until UCX has finished with them: every operation in flight completes
 * (with an error) and its callback runs now. Use before kvx_pool_unmap at shutdown. Not from a ucx
 * callback. ucx_destroy does this too. */
void ucx_close_all(struct ucx *u);
/* The same for every peer but `keep` (a worker switching roles keeps its frontend). */
void ucx_close_all_but(struct ucx *u, struct ucx_peer *keep);

/* Sets the cluster key both sides of every handshake must share (copied; len 0: none, which only
 * matches a peer without one either). Call before listening or connecting. */
int ucx_set_cluster_key(struct ucx *u, const void *key, size_t len, struct error *err);

/* Listens for peers on host:port ("0.0.0.0" for all interfaces; port 0 picks a free port): the
 * control listener, plain TCP. One per ucx. */
int ucx_listen(struct ucx *u, const char *host, uint16_t port, struct error *err);
/* The port actually listened on (after port 0), or 0 when not listening. */
uint16_t ucx_listen_port(const struct ucx *u);

/* Starts connecting to "host:port" and returns the peer at once: sends queue until the handshake is
 * done and the connection is up. If it cannot be made (unreachable, refused, wrong cluster key),
 * on_peer_lost reports it with the reason. */
int ucx_connect(struct ucx *u, const char *addr, struct ucx_peer **out, struct error *err);

/* Encodes m and sends it. cb (optional) reports completion; without cb, a failure is counted in
 * send_errors and logged. Returns -1 (cb not called) if the peer is already lost or m does not
 * encode. */
int ucx_send(struct ucx_peer *p, const struct wire_msg *m, ucx_done_cb cb, void *arg, struct error *err);

/* Sends `len` arbitrary bytes as one message, bypassing the encoder: for tests of the receiver's
 * checks (malformed messages) only. The bytes are copied. */
int ucx_send_raw(struct ucx_peer *p, const void *buf, size_t len, struct error *err);

/* Completes (cb) once every send and put issued to this peer before the call has been delivered to
 * the peer's memory — the ordering point between RMA puts and the message that announces them. */
int ucx_flush(struct ucx_peer *p, ucx_done_cb cb, void *arg, struct error *err);

/* Closes the peer: operations in flight complete (with an error if they could not finish); no
 * on_peer_lost follows. The pointer is invalid afterwards. */
void ucx_peer_close(struct ucx_peer *p);

/* Opaque owner data on a peer (e.g. the worker record it belongs to). */
void ucx_peer_set_user(struct ucx_peer *p, void *user);
void *ucx_peer_user(const struct ucx_peer *p);
/* "host:port" of the other side, for logs. */
const char *ucx_peer_name(const struct ucx_peer *p);
struct ucx *ucx_peer_ucx(const struct ucx_peer *p);

const struct ucx_stats *ucx_stats(const struct ucx *u);

/* Writes UCX's description of the peer's endpoint (which transport carries AM and RMA: tcp, posix,
 * cma, rc_mlx5, ...) to f, for operators and tests. */
void ucx_peer_print_info(const struct ucx_peer *p, FILE *f);

/* Call before ucx_create. When every address the daemon listens on or connects to (`hosts`: names or
 * literal addresses, no ports) is a loopback one and UCX_NET_DEVICES is unset, sets it to "lo": UCX's
 * tcp transport otherwise opens listeners of its own on every interface (whatever address the
 * connection manager was given), reachable from other machines. Returns 1 when it set it. */
int ucx_loopback_only_default(const char *const *hosts, int n);

/* Whether host ("localhost", or a literal address) is a loopback one (127.0.0.0/8, ::1). */
int ucx_host_is_loopback(const char *host);

/* Splits "host:port" (host may be a name, an IPv4 address or [IPv6]) into host[hostlen] and *port
 * (0..65535; 0 means "any free port" to ucx_listen). */
int ucx_parse_addr(const char *addr, char *host, size_t hostlen, uint16_t *port, struct error *err);

#endif
