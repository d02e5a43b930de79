/* prefill.h — the prefill worker's two halves and the mail between them.
 *
 * Loop thread (prefill.c): requests from the frontend, connections to decode workers, KV_RESERVE /
 * GRANT / WAIT, the layer-by-layer RMA pushes, KV_DONE, KV_ACK, aborts and failures.
 * Engine thread (prefill_engine.c): an FCFS queue of prompts, batched into forward passes under the
 * token budget (long prompts chunked), first-token sampling; sequences then stay "held" with their
 * KV blocks until the loop says the decode side has them (or the request ended). */
#ifndef PD_PREFILL_H
#define PD_PREFILL_H

#include "common/engine/engine.h"
#include "common/util/mailbox.h"
#include "worker/worker.h"

enum pf_mail_type {
    PF_WAKE = 0,
    /* loop → engine */
    PF_NEW,   /* pf_new: compute this prompt */
    PF_FREE,  /* pf_id: drop the sequence (queued or held) and its blocks */
    /* engine → loop */
    PF_FINAL, /* pf_final: this step completes the prompt; its KV blocks are these */
    PF_LAYER, /* pf_layer: a layer of the current step is in the cache */
    PF_FIRST, /* pf_first: the first token was sampled */
    PF_FAILED /* pf_failed: the prompt cannot be computed here */
};

struct pf_new {
    struct mail mail;
    struct seq *seq; /* initialised by the loop, owned by the engine from here */
};

struct pf_id {
    struct mail mail;
    uint64_t req_id;
};

struct pf_final {
    struct mail mail;
    uint64_t req_id;
    uint32_t n_blocks;
    uint32_t blocks[]; /* the sequence's whole block table; unchanging from now on */
};

struct pf_layer {
    struct mail mail;
    uint32_t layer;
    uint32_t n;
    uint64_t req_ids[]; /* the sequences whose prompt this step completes */
};

struct pf_first {
    struct mail mail;
    uint64_t req_id;
    int32_t token;
    float logprob;
    struct rng rng; /* after the draw: the decode side continues from here */
    enum finish finish;
};

struct pf_failed {
    struct mail mail;
    uint64_t req_id;
    char message[256];
};

/* Engine thread body (worker_role.engine_main). */
void prefill_engine_main(struct worker *w);
extern const struct worker_role prefill_role;

/* What the engine thread publishes for load reports (read by the loop without a lock: a report
 * that is one step stale is fine). */
struct pf_load {
    _Atomic uint32_t queued_requests, queued_tokens, held;
};
extern struct pf_load prefill_load;

#endif
