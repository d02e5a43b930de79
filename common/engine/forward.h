/* forward.h — the transformer forward pass over a batch of tokens from many sequences at once.
 *
 * One call runs every layer for every token in the batch: a prompt (or a chunk of one), one new token
 * for each of many decoding sequences, or any mix. Each token's K and V are written into the paged
 * cache at its position before attention reads the cache, so prefill, chunked prefill and decode are
 * the same code. A token's result depends only on its own row and its sequence's cache, never on what
 * else shares the batch. */
#ifndef PD_FORWARD_H
#define PD_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util/error.h"
#include <stdbool.h>

#include "common/engine/kvcache.h"
#include "common/engine/model.h"

struct fwd_batch {
    int n_tokens;
    const int32_t *tokens;     /* [n_tokens] */
    const int32_t *pos;        /* [n_tokens] position of each token in its sequence */
    const int32_t *seq;        /* [n_tokens] index into seqs */
    const bool *want_logits;   /* [n_tokens] rows whose logits to compute, in batch order */
    const struct kv_seq *const *seqs; /* block tables, covering every position up to pos */
    int n_seqs;
    /* Called on the calling thread once layer `layer`'s K and V for the whole batch are in the
     * cache (before that layer's attention), so they can be shipped while the rest computes.
     * Returning false stops the pass there: nobody wants its result any more. */
    bool (*on_layer)(void *ctx, int layer);
    void *ctx;
};

/* Scratch activations, grown on demand, and the compute threads a forward pass runs on: `threads`
 * in all, the caller's included. One forward at a time per run_state. NULL when out of memory or
 * the threads cannot start. */
struct run_state;
struct run_state *run_state_new(const struct model *m, int threads);
int run_state_threads(const struct run_state *s);
void run_state_free(struct run_state *s);

/* logits receives one row of vocab_size floats per token with want_logits set. Returns 0, -1 with
 * err set, or FORWARD_STOPPED when on_layer stopped the pass (logits and later layers' K and V are
 * then not computed). */
#define FORWARD_STOPPED 1
int forward(const struct model *m, struct kv_pool *kv, struct run_state *s, const struct fwd_batch *b,
            float *logits, struct error *err);

#endif
