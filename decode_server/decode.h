/* decode.h — the decode worker's two halves, the state they share and the mail between them.
 *
 * Loop thread (decode.c): grants KV blocks to prefill workers (KV_RESERVE → KV_GRANT or KV_WAIT,
 * FCFS), admits sequences on KV_DONE, accepts GENERATE itself in colocated mode, streams TOKENS to
 * the frontend (coalescing what piled up), aborts.
 * Engine thread (decode_engine.c): continuous batching — sequences join and leave between
 * iterations, one forward pass per iteration for all of them (plus prompt chunks in colocated mode,
 * under the token budget); when the pool runs out, the newest sequence is preempted and later
 * recomputed rather than failed.
 *
 * Everything the role keeps lives in one `struct dc_state`, reached as the worker's `state`: the loop
 * thread owns all of it but `load`, which the engine thread publishes. */
#ifndef PD_DECODE_H
#define PD_DECODE_H

#include <stdatomic.h>

#include "common/engine/engine.h"
#include "common/util/idmap.h"
#include "common/util/mailbox.h"
#include "proto/kv_xfer.h"
#include "worker/worker.h"

enum dc_mail_type {
    DC_WAKE = 0,
    DC_ADMIT,  /* loop → engine, dc_admit */
    DC_ABORT,  /* loop → engine, dc_abort */
    DC_TOKENS, /* engine → loop, dc_tokens */
};

struct dc_admit {
    struct mail mail;
    struct seq *seq; /* owned by the engine from here; its KV blocks too */
};

struct dc_abort {
    struct mail mail;
    uint64_t req_id;
};

/* Why the engine ended a sequence with FINISH_ERROR: the loop tells the frontend in an ERROR. */
enum dc_error {
    DC_ERR_NONE,
    DC_ERR_KV_FULL, /* it alone outgrew the whole KV pool */
    DC_ERR_STEP,    /* the forward pass failed */
    DC_ERR_NOMEM,   /* the engine thread ran out of memory taking it */
};

struct dc_token {
    uint64_t req_id;
    bool has_token; /* false: only a finish (abort, error) */
    bool sent;      /* the loop has passed it on (coalescing several mails) */
    int32_t token;
    float logprob;
    struct sample_top top; /* the token's most likely alternatives, when its request wants them */
    struct prompt_logprobs *prompt_lp; /* colocated, with a sequence's first token: echo's logprobs (owned) */
    enum finish finish;
    enum dc_error error; /* with FINISH_ERROR */
    uint32_t cached_tokens; /* colocated: prompt tokens the prefix cache held when it started */
};

struct dc_tokens {
    struct mail mail;
    int n;
    struct dc_token t[];
};

struct dreq;

/* The role's state (see the top of this file). */
struct dc_state {
    struct idmap reqs;                  /* request id → struct dreq */
    struct dreq *wait_head, *wait_tail; /* reservations waiting for blocks, oldest first */
    uint32_t n_waiting;
    uv_timer_t wait_timer;              /* refuses reservations that waited longer than --kv-wait-timeout */
    struct kvx_pool *pool;              /* the engine's KV pool, registered with UCX */
    struct mail *tokens_head, *tokens_tail; /* dc_tokens from the engine not yet passed on */
    struct {
        _Atomic uint32_t running, waiting; /* published by the engine thread each iteration */
    } load;
};

void decode_engine_main(struct worker *w);
extern const struct worker_role decode_role;

#endif
