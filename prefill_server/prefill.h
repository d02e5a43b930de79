/* prefill.h — the prefill worker's two halves, the state they share and the mail between them.
 *
 * Loop thread (prefill.c): requests from the frontend, connections to decode workers, KV_RESERVE /
 * GRANT / WAIT, the layer-by-layer RMA pushes, KV_DONE, KV_ACK, aborts and failures.
 * Engine thread (prefill_engine.c): an FCFS queue of prompts, batched into forward passes under the
 * token budget (long prompts chunked), first-token sampling; sequences then stay "held" with their
 * KV blocks until the loop says the decode side has them (or the request ended).
 *
 * Everything the role keeps lives in one `struct pf_state`, reached as the worker's `state`: the loop
 * thread owns all of it but `load`, which the engine thread publishes. */
#ifndef PD_PREFILL_H
#define PD_PREFILL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/engine/engine.h"
#include "common/util/idmap.h"
#include "common/util/mailbox.h"
#include "proto/kv_xfer.h"
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

struct pf_failed;

/* A prompt as the engine holds it: the sequence, and the mail that reports its failure — allocated
 * by the loop with the request, so that failing a prompt on the engine thread needs no allocation. */
struct pf_seq {
    struct seq seq;           /* first: the engine's lists hold &ps->seq */
    struct pf_failed *failed; /* the engine's until posted */
    bool doomed;              /* an announcement of it could not be made: fail it after this step */
};

struct pf_new {
    struct mail mail;
    struct pf_seq *ps; /* initialised by the loop, owned by the engine from here */
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
    struct sample_top top; /* its most likely alternatives, when the request wants them */
    struct prompt_logprobs *prompt_lp; /* echo with logprobs: the prompt's, taken from the sequence */
    struct rng rng; /* after the draw: the decode side continues from here */
    enum finish finish;
    uint32_t cached_tokens; /* prompt tokens the prefix cache held */
};

struct pf_failed {
    struct mail mail;
    uint64_t req_id;
    char message[ERROR_MSG_MAX];
};

/* Requests the loop has ended whose PF_FREE the engine has not taken yet (cancel.c). */
#define PF_CANCEL_MAX 256
struct pf_cancel {
    pthread_mutex_t lock;
    uint64_t ids[PF_CANCEL_MAX];
    int n;
};
void pf_cancel_init(struct pf_cancel *c);
void pf_cancel_destroy(struct pf_cancel *c);
void pf_cancel_add(struct pf_cancel *c, uint64_t id);    /* loop thread, when it ends a request */
void pf_cancel_remove(struct pf_cancel *c, uint64_t id); /* engine thread, taking its PF_FREE */
/* Engine thread: whether every one of seqs[0..n) is listed (n > 0). */
bool pf_cancel_all(struct pf_cancel *c, struct seq *const *seqs, int n);

/* The role's state (see the top of this file). */
struct pf_state {
    struct idmap reqs;    /* request id → struct preq (prefill.c) */
    struct idmap dpeers;  /* decode worker id → struct dpeer (prefill.c) */
    struct kvx_pool *pool; /* the engine's KV pool, registered with UCX (puts read from it) */
    uv_timer_t hello_timer; /* repeats our REGISTER to decode workers that have not answered */
    struct pf_cancel cancel;  /* shared with the engine thread */
    uint64_t kv_bytes_sent, kv_bytes_saved; /* pushed to decode workers, and not pushed: they had it */
    /* What the engine thread publishes for load reports (read by the loop without a lock: a report
     * that is one step stale is fine). */
    struct {
        _Atomic uint32_t queued_requests, queued_tokens, held;
    } load;
};

/* Engine thread body (worker_role.engine_main). */
void prefill_engine_main(struct worker *w);
extern const struct worker_role prefill_role;

#endif
