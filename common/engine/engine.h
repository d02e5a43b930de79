/* engine.h — sequences and the step that advances a batch of them: the one piece of scheduling
 * logic the prefill worker, the decode worker, the colocated worker and pdserve-generate share.
 *
 * A sequence is its tokens (prompt, then generated), how many of them are in the KV cache, its block
 * table, sampling parameters and RNG. engine_step() computes the uncached tokens of a list of
 * sequences in one forward pass (chunking under a token budget), then samples one new token for every
 * sequence whose tokens are now all cached. Nothing here knows about processes or the network. */
#ifndef PD_ENGINE_H
#define PD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util/error.h"
#include "common/engine/finish.h"
#include "common/engine/forward.h"
#include "common/engine/kvcache.h"
#include "common/engine/model.h"
#include "common/engine/sample.h"
#include "common/grammar/grammar.h"


/* Echo with logprobs: each prompt token's logprob given the tokens before it, and its alternatives
 * (entry 0, the first token, has nothing before it and is not scored). */
struct prompt_logprobs {
    int n;
    float *logprobs;        /* [n] */
    struct sample_top *top; /* [n] */
};
struct prompt_logprobs *prompt_logprobs_new(int n); /* zeroed; NULL when memory ran out */
void prompt_logprobs_free(struct prompt_logprobs *p);

struct seq {
    uint64_t id;
    int32_t *tokens; /* prompt then generated; owned */
    int n_tokens, cap, n_prompt;
    int n_cached;    /* tokens[0..n_cached) have K/V in the cache */
    struct kv_seq kv;
    struct sample_params params;
    struct rng rng;
    enum finish finish;
    float last_logprob; /* of the newest sampled token */
    struct sample_top last_top; /* its params.top_logprobs most likely alternatives */
    /* With params.prompt_logprobs, filled as the prompt is computed (it then skips the prefix cache,
     * whose blocks would not be scored, and runs in chunks of PROMPT_LOGPROBS_CHUNK tokens so a vocabulary's
     * worth of logits a token stays small); the caller takes it once the first token is sampled. */
    struct prompt_logprobs *prompt_lp;
    /* Structured output (engine_seq_constrain): the schema's grammar and where the answer is in it;
     * each token is sampled from those the matcher accepts, and the answer ends when it closes. */
    struct grammar *grammar;
    struct gmatch *match;
    /* Prefix caching (kvcache.h): blocks [0, n_published) are offered to the cache, chain is the key
     * of the last one; n_cache_hit is how many prompt tokens came from the cache when it started. */
    int n_published, n_cache_hit;
    uint64_t chain;
    /* Its TPOT SLO in ms (0: none). While it decodes, a step that runs it carries no more prompt tokens
     * than keep its mean time per token within it (decode_engine.c). */
    uint32_t tpot_slo_ms;
    double first_token_s; /* when its first token was sampled, or it came with one (monotonic s) */
    /* Its TTFT SLO in ms (0: none), for a prompt this worker computes: the cut above holds it back no
     * longer than that allows, from when the engine took it (ttft_deadline_s, monotonic s). */
    uint32_t ttft_slo_ms;
    double ttft_deadline_s;
};

#define PROMPT_LOGPROBS_CHUNK 64

int engine_seq_init(struct seq *s, uint64_t id, const int32_t *prompt, int n_prompt,
             const struct sample_params *params, struct error *err);
int engine_seq_append(struct seq *s, int32_t token);
/* Gives the blocks back and forgets what was cached: the tokens stay, to be computed again. */
void engine_seq_uncache(struct seq *s, struct kv_pool *kv);
/* Gives the blocks back and frees the tokens; the struct can be reused after engine_seq_init. */
void engine_seq_release(struct seq *s, struct kv_pool *kv);
static inline int engine_seq_n_generated(const struct seq *s)
{
    return s->n_tokens - s->n_prompt;
}

struct engine {
    const struct model *model;
    struct kv_pool kv;
    struct run_state *rs;
    struct sampler *sampler;
    float *logits;
    int logits_rows;
    /* the batch being built, grown on demand */
    int32_t *tok, *pos, *seq_of;
    bool *want;
    const struct kv_seq **tables;
    int cap, tables_cap;
    /* structured output: the vocabulary as token bytes (engine_set_vocab), a mask's worth of bits */
    struct gvocab *vocab;
    uint32_t *mask;
};

/* A KV pool of n_blocks × block_size positions in kv_dtype (KN_F32, KN_F16 or KN_BF16), and
 * `threads` compute threads (the caller's included) for every part of a step. The engine's threads
 * call OpenBLAS themselves, so this sets OpenBLAS's own thread count to 1 (process-wide). */
int engine_init(struct engine *e, const struct model *m, int n_blocks, int block_size, enum kn_dtype kv_dtype,
                int threads, struct error *err);
void engine_destroy(struct engine *e);

struct step_result {
    int n_scheduled; /* seqs[0..n_scheduled) took part; the next one could not get KV blocks */
    int n_tokens;    /* tokens computed */
    bool out_of_blocks;
    bool stopped;    /* on_layer stopped the pass: nothing was cached or sampled */
    double seconds;  /* the step's wall time */
    double started;  /* when it began: CLOCK_MONOTONIC, in seconds */
    /* The pass's shape, as pdserve-plan's cost model counts it (tools/plan/plan.h): attention
     * (query, key) pairs of prompt chunks and of single decoded tokens, and rows of logits. */
    double prompt_attn, decode_attn;
    int n_logits;
};

/* Advances seqs (in priority order) by one forward pass of at most token_budget tokens; a sequence
 * with more uncached tokens than the budget left gets a chunk. Sequences already finished are
 * skipped. Scheduling stops at the first sequence the KV pool cannot hold (out_of_blocks). Each
 * sequence that ends the step fully cached gets one sampled token (and maybe a finish reason).
 * With the pool's prefix cache on, a sequence with nothing cached yet starts from the longest cached
 * prefix of its tokens (all but its last token at most), and full blocks are offered to the cache
 * as they are computed.
 * on_layer (may be NULL) is forward()'s per-layer hook; when it stops the pass, res->stopped is set
 * and the sequences are as they were (but for KV blocks reserved for the step). */
int engine_step(struct engine *e, struct seq **seqs, int n, int token_budget,
                bool (*on_layer)(void *ctx, int layer), void *ctx, struct step_result *res,
                struct error *err);

/* Structured output for s: its answer follows the constraint (grammar_compile_spec's JSON: a schema,
 * and text around it), from the tokens it has generated so far on (a decode worker's sequence starts
 * after the prefill's first token). -1 with err when the schema is not supported, the engine has no
 * vocabulary, or the tokens so far do not fit. */
int engine_seq_constrain(const struct engine *e, struct seq *s, const char *constraint, struct error *err);
/* The tokenizer's bytes for every id (the engine takes v and frees it); without them no sequence can
 * be constrained. */
int engine_set_vocab(struct engine *e, struct gvocab *v, struct error *err);

/* Samples the next token of s from a row of logits and appends it, setting s->finish when the
 * token or the length ends the sequence. Exposed for callers that own their logits. */
int engine_sample(struct engine *e, struct seq *s, float *logits);

#endif
