/* sample.h — choosing the next token from logits: logit bias, repetition/presence/frequency
 * penalties, greedy, temperature, top-k, top-p, min-p, the per-request RNG, and the logprobs of the
 * chosen token and of the most likely alternatives.
 *
 * The RNG state is plain data (struct rng) so it can travel between processes with the request: a
 * token sampled on a decode worker after the prefill worker sampled the first one is the same token
 * a single process would have sampled. */
#ifndef PD_SAMPLE_H
#define PD_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#define SAMPLE_MAX_STOP_IDS 16
#define SAMPLE_MAX_LOGIT_BIAS 300  /* entries of OpenAI's logit_bias map */
#define SAMPLE_MAX_TOP_LOGPROBS 20 /* alternatives reported with a token (OpenAI's top_logprobs limit) */

/* xoshiro256** — seeded through splitmix64; all-zero state is impossible after rng_seed. */
struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_uniform(struct rng *r); /* in [0, 1) */

/* Which distribution a reported logprob is taken from (vLLM's logprobs-mode). RAW, the default: the
 * model's own log_softmax(logits), before any penalty or temperature. PROCESSED: after the penalties
 * and temperature, i.e. the distribution top-k/top-p/min-p then truncate (that truncation is not
 * applied to the logprob). */
enum sample_logprobs_mode { SAMPLE_LOGPROBS_RAW = 0, SAMPLE_LOGPROBS_PROCESSED = 1, SAMPLE_LOGPROBS_MODES };
/* "raw_logprobs" / "processed_logprobs", as vLLM spells them; NULL for an unknown mode. */
const char *sample_logprobs_mode_name(int mode);
/* The mode spelled `name`, or -1. */
int sample_logprobs_mode_parse(const char *name);

/* What a request asks of the sampler. Neutral values switch a stage off. */
struct sample_params {
    float temperature;        /* 0: greedy (argmax) */
    float top_p;              /* 1: off */
    int32_t top_k;            /* <= 0: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off; over prompt and generated tokens (as in HF and vLLM) */
    float presence_penalty;   /* 0: off; over generated tokens (OpenAI) */
    float frequency_penalty;  /* 0: off; over generated tokens (OpenAI) */
    uint64_t seed;
    int32_t max_tokens;  /* generated tokens, counting the first one the prefill samples */
    bool ignore_eos;     /* keep going past the model's EOS tokens */
    int32_t n_stop_ids;  /* extra token ids that end the sequence */
    int32_t stop_ids[SAMPLE_MAX_STOP_IDS];
    uint8_t logprobs_mode; /* enum sample_logprobs_mode: what *logprob of sampler_pick means */
    uint8_t top_logprobs;  /* how many most likely alternatives sampler_pick reports, <= SAMPLE_MAX_TOP_LOGPROBS */
    bool prompt_logprobs;  /* also score every prompt token given those before it (echo with logprobs) */
    int32_t n_logit_bias;  /* added to the logits before anything else (OpenAI's logit_bias, -100..100) */
    int32_t bias_ids[SAMPLE_MAX_LOGIT_BIAS];
    float bias_values[SAMPLE_MAX_LOGIT_BIAS];
};

/* The most likely tokens under the distribution the logprobs mode names, best first (ties by id). */
struct sample_top {
    int n;
    int32_t ids[SAMPLE_MAX_TOP_LOGPROBS];
    float logprobs[SAMPLE_MAX_TOP_LOGPROBS];
};

void sample_params_default(struct sample_params *p);

/* Scratch memory for sampling over a vocabulary; one per thread. */
struct sampler;
struct sampler *sampler_new(int vocab_size);
void sampler_free(struct sampler *s);

/* Picks the next token. `logits` (vocab_size floats) is modified in place. `allowed` (a bitset of
 * vocab_size bits, or NULL for all) is what a constraint lets through: the others are never picked.
 * `prompt` and `generated` are the sequence so far (for penalties). Returns the token id; *logprob
 * (if non-NULL) receives the log-probability of the chosen token under the distribution
 * p->logprobs_mode names, and *top (if non-NULL) its p->top_logprobs most likely tokens. */
int32_t sampler_pick(struct sampler *s, const struct sample_params *p, struct rng *rng, float *logits,
                     const uint32_t *allowed, const int32_t *prompt, int n_prompt, const int32_t *generated,
                     int n_generated, float *logprob, struct sample_top *top);

/* How likely token `id` is under a row of logits (its log_softmax), and the k most likely tokens
 * (k is capped at SAMPLE_MAX_TOP_LOGPROBS; top may be NULL when k is 0). logits is not changed.
 * sampler_pick reports through it; the engine scores prompt tokens (echo) with it. */
void sampler_score(const struct sampler *s, const float *logits, int32_t id, int k, float *logprob,
                   struct sample_top *top);

#endif
