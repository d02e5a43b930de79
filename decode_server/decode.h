/* decode.h — the decode worker's two halves and the mail between them.
 *
 * Loop thread (decode.c): grants KV blocks to prefill workers (KV_RESERVE → KV_GRANT or KV_WAIT,
 * FCFS), admits sequences on KV_DONE, accepts GENERATE itself in colocated mode, streams TOKENS to
 * the frontend (coalescing what piled up), aborts.
 * Engine thread (decode_engine.c): continuous batching — sequences join and leave between
 * iterations, one forward pass per iteration for all of them (plus prompt chunks in colocated mode,
 * under the token budget); when the pool runs out, the newest sequence is preempted and later
 * recomputed rather than failed. */
#ifndef PD_DECODE_H
#define PD_DECODE_H

#include "common/engine/engine.h"
#include "common/util/mailbox.h"
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

struct dc_token {
    uint64_t req_id;
    int32_t token; /* -1: no token, only a finish (abort, error) */
    float logprob;
    enum finish finish;
};

struct dc_tokens {
    struct mail mail;
    int n;
    struct dc_token t[];
};

void decode_engine_main(struct worker *w);
extern const struct worker_role decode_role;

struct dc_load {
    _Atomic uint32_t running, waiting;
};
extern struct dc_load decode_load;

#endif
