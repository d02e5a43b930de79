/* cluster.h — the frontend's view of the workers: the cluster port they join through (a keyed handshake,
 * then UCX; proto/ucx.h), the registry built from REGISTER and LOAD, DistServe-style placement, and
 * failure detection.
 *
 * Placement: the prefill worker with the fewest queued prompt tokens (its last LOAD plus what we sent
 * it since), and the decode worker with the least work ahead (tokens its sequences have still to
 * generate, prompt tokens queued there) among those with room in their batch and blocks (all of
 * them if none has room: it queues the request, KV_WAIT, and never drops it). A colocated worker
 * does both; it is used when no prefill+decode pair is registered. With SLOs set
 * (cluster_set_slo) a colocated worker is also a decode worker for pairs, and each sequence takes the
 * disaggregated or the local path as route_slo.h decides.
 *
 * A worker being switched to another role (rebalance.h) is not picked; registering again ends the
 * switch. A worker is forgotten when its peer is lost or when it has not reported for stale_ms; it is
 * admitted again when it registers again (the workers reconnect by themselves). Everything here runs
 * on the loop thread. */
#ifndef PD_CLUSTER_H
#define PD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/util/error.h"
#include "common/util/idmap.h"
#include "proto/cluster_key.h"
#include "proto/ucx.h"
#include "proto/wire.h"
#include "frontend/route_slo.h"

struct cl_worker {
    uint32_t id;
    uint8_t role;              /* enum wire_role */
    struct ucx_peer *peer;
    struct wire_register reg;  /* pool.rkey is not kept */
    struct wire_load load;
    bool loaded;               /* a LOAD arrived */
    uint64_t last_seen_ms;
    uint32_t pend_tokens;      /* prompt tokens sent since its last LOAD */
    uint32_t pend_blocks;      /* KV blocks our requests will take, since its last LOAD */
    uint32_t pend_seqs;        /* sequences sent since its last LOAD */
    int inflight;              /* sequences of ours it holds now */
    uint64_t decode_left;      /* tokens our sequences decoding there have still to generate: their
                                * max_tokens less those received (the decode choice: cluster.c) */
    struct idmap keys;         /* prefix-cache keys of the blocks it holds cached (from LOAD) */
    uint64_t query_tokens, hit_tokens, kv_bytes_sent, kv_bytes_saved; /* its last LOAD's counters */
    struct slo_costs slo;      /* measured online (route_slo.h) */
    uint8_t switch_to;         /* a role switch under way (rebalance.h): routed nothing new; 0: none */
    bool switch_sent;          /* its ROLE is sent */
    uint64_t switch_ms;        /* when the switch began */
    struct cl_worker *next;
};

/* What placement needs to know of a sequence: its prompt (for the workers' prefix caches) and the KV
 * positions it will hold (prompt + max_tokens). `cached` is filled by the pick: how many blocks of
 * the prompt the chosen prefill and decode workers hold. */
struct cl_seq {
    const int32_t *prompt;
    uint32_t n_prompt, n_positions;
    uint32_t prefill_cached, decode_cached; /* blocks, out */
    uint32_t queue_ahead; /* out: prompt tokens the chosen prefill (or colocated) worker computes up to this
                           * prompt's last, this prompt's own included */
    uint32_t to_compute;  /* out: this prompt's tokens that worker computes (its cache holds the rest) */
    double slo_ttft_ms, slo_tpot_ms; /* the request's own SLOs; 0: the frontend's (--slo-ttft-ms ...) */
    uint32_t tpot_slo_ms; /* out: the TPOT SLO its decode steps keep (the request's, else the frontend's;
                           * 0: none), sent to the workers */
    uint32_t ttft_slo_ms; /* out: its TTFT SLO, likewise: a colocated worker holds its prompt no longer */
};

struct cluster_handlers {
    /* TOKENS, ERROR or KV_STATS about one of our sequences (req_id). *msg is released after the call. */
    void (*on_message)(void *user, struct cl_worker *from, struct wire_msg *msg);
    /* w is being forgotten: drop every reference to it before returning. */
    void (*on_worker_lost)(void *user, struct cl_worker *w, const char *reason);
};

struct cluster;

/* Listens for workers on host:port (the transport's control listener); a worker joins only after proving
 * `key` (empty: no key, loopback clusters). stale_ms: forget a worker that sent nothing for that long. */
struct cluster *cluster_new(uv_loop_t *loop, const char *host, int port, int stale_ms, const struct ckey *key,
                            const struct cluster_handlers *h, void *user, struct error *err);
/* Closes every peer and the transport; run the loop once more afterwards so handles close. */
void cluster_free(struct cluster *c);
/* The transport's counters (handshakes, rejected messages) for /metrics. */
const struct ucx_stats *cluster_ucx_stats(const struct cluster *c);
int cluster_port(const struct cluster *c);

/* The largest KV pool, in tokens, among the registered workers that can prefill (*max_prompt) and
 * that can decode (*max_seq); 0 where none is registered. Safe from any thread (c may be NULL). */
void cluster_limits(struct cluster *c, int *max_prompt, int *max_seq);

/* Ready to serve: a prefill and a decode worker, or a colocated one. */
bool cluster_ready(const struct cluster *c);

/* Picks the workers for a sequence: the prefill worker with the least prompt work queued, counting
 * this prompt less what its prefix cache holds; and the decode worker with batch room and free blocks
 * for all of the sequence — failing that, with batch room; failing that, any — and, among equals, the
 * least work ahead (tokens its sequences have still to generate and prompt tokens queued there, less
 * the prompt tokens its cache holds for this one), then the most blocks free or already holding the
 * prompt. *p receives the prefill (or colocated) worker, *d the decode worker (the same one when
 * colocated). Returns -1 when no suitable worker is registered. */
int cluster_pick(struct cluster *c, struct cl_seq *s, struct cl_worker **p, struct cl_worker **d);
/* The same without the worker of that role and id — one that refused the sequence because it is
 * shutting down or full — unless no other can take it. */
int cluster_pick_except(struct cluster *c, struct cl_seq *s, uint8_t role, uint32_t id, struct cl_worker **p,
                        struct cl_worker **d);

/* SLO-aware routing (route_slo.h) with these SLOs; ttft_ms 0 turns it off. */
void cluster_set_slo(struct cluster *c, double ttft_ms, double tpot_ms);
/* Its SLOs and how many sequences took each path, for /metrics. */
const struct slo_route *cluster_slo(const struct cluster *c);
/* Sends GENERATE for sequence `id` (s, as cluster_pick placed it) to p (naming d), and counts it as in
 * flight on both. */
int cluster_generate(struct cl_worker *p, struct cl_worker *d, uint64_t id, const struct sample_params *sp,
                     bool logprobs, const char *constraint, const struct cl_seq *s, struct error *err);
/* n more tokens of a sequence decoding on d arrived (d may be NULL). */
void cluster_decoded(struct cl_worker *d, uint32_t n);
/* A sequence ended (or was aborted, or left a worker): no longer in flight on p nor on d (the same
 * worker when colocated; either may be NULL), `undecoded` of its max_tokens never to come from d. */
void cluster_release(struct cl_worker *p, struct cl_worker *d, uint32_t undecoded);
/* Sends ABORT for sequence id to w (if w is still known). */
void cluster_abort(struct cl_worker *w, uint64_t id);

/* For /metrics: the workers, first to last (the list stays valid until the loop runs again). */
struct cl_worker *cluster_workers(struct cluster *c);

#endif
