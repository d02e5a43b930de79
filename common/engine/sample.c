/* sample.c — the sampler and RNG declared in sample.h.
 *
 * Order of stages (as vLLM): logit bias and the constraint's mask on the raw logits, penalties, then
 * temperature, then top-k, top-p and min-p truncation, then one draw from what is left. Everything is deterministic given the logits and
 * the RNG state, so the same request sampled in two processes gives the same tokens. */
#include "common/engine/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

void sample_params_default(struct sample_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
    p->max_tokens = 16;
}

struct cand {
    float logit;
    int32_t id;
};

struct sampler {
    int vocab;
    struct cand *cands; /* [vocab] */
    int32_t *counts;    /* [vocab] occurrences in the generated tokens, zeroed after use */
    float *raw;         /* [vocab] the logits as the model gave them, for raw logprobs */
    double *weights;    /* [vocab] exp(logit - max) for one draw */
};

const char *sample_logprobs_mode_name(int mode)
{
    switch (mode) {
    case SAMPLE_LOGPROBS_RAW: return "raw_logprobs";
    case SAMPLE_LOGPROBS_PROCESSED: return "processed_logprobs";
    default: return NULL;
    }
}

int sample_logprobs_mode_parse(const char *name)
{
    for (int m = 0; m < SAMPLE_LOGPROBS_MODES; m++)
        if (name && strcmp(name, sample_logprobs_mode_name(m)) == 0)
            return m;
    return -1;
}

struct sampler *sampler_new(int vocab_size)
{
    struct sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->vocab = vocab_size;
    s->cands = malloc((size_t)vocab_size * sizeof *s->cands);
    s->counts = calloc((size_t)vocab_size, sizeof *s->counts);
    s->raw = malloc((size_t)vocab_size * sizeof *s->raw);
    s->weights = malloc((size_t)vocab_size * sizeof *s->weights);
    if (!s->cands || !s->counts || !s->raw || !s->weights) {
        sampler_free(s);
        return NULL;
    }
    return s;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    free(s->cands);
    free(s->counts);
    free(s->raw);
    free(s->weights);
    free(s);
}

static bool in_vocab(const struct sampler *s, int32_t id)
{
    return id >= 0 && id < s->vocab;
}

/* HF's repetition penalty over prompt and generated tokens: a seen token's logit is divided by the
 * penalty if positive, multiplied if negative, once however often it was seen. counts[] (all zero
 * between calls) marks the tokens already done. */
static void penalize_seen(struct sampler *s, float pen, float *logits, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        int32_t t = ids[i];
        if (!in_vocab(s, t) || s->counts[t])
            continue;
        logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
        s->counts[t] = 1;
    }
}

static void clear_counts(struct sampler *s, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (in_vocab(s, ids[i]))
            s->counts[ids[i]] = 0;
}

static void apply_bias_and_mask(struct sampler *s, const struct sample_params *p, float *logits, const uint32_t *allowed)
{
    for (int i = 0; i < p->n_logit_bias; i++)
        if (in_vocab(s, p->bias_ids[i]))
            logits[p->bias_ids[i]] += p->bias_values[i];
    for (int w = 0; allowed && w < (s->vocab + 31) / 32; w++) { /* a word at a time: most are all or nothing */
        if (allowed[w] == 0xFFFFFFFFu)
            continue;
        int end = 32 * w + 32 < s->vocab ? 32 * w + 32 : s->vocab;
        for (int i = 32 * w; i < end; i++)
            if (!(allowed[w] >> (i & 31) & 1))
                logits[i] = -INFINITY;
    }
}

static void apply_penalties(struct sampler *s, const struct sample_params *p, float *logits,
                            const int32_t *prompt, int n_prompt, const int32_t *gen, int n_gen)
{
    if (p->repetition_penalty != 1.0f && p->repetition_penalty > 0) {
        penalize_seen(s, p->repetition_penalty, logits, prompt, n_prompt);
        penalize_seen(s, p->repetition_penalty, logits, gen, n_gen);
        clear_counts(s, prompt, n_prompt);
        clear_counts(s, gen, n_gen);
    }
    if (p->presence_penalty == 0 && p->frequency_penalty == 0)
        return;
    for (int i = 0; i < n_gen; i++)
        if (in_vocab(s, gen[i]))
            s->counts[gen[i]]++;
    for (int i = 0; i < n_gen; i++) {
        int32_t t = gen[i];
        if (!in_vocab(s, t) || s->counts[t] == 0)
            continue;
        logits[t] -= p->frequency_penalty * s->counts[t] + p->presence_penalty;
        s->counts[t] = 0;
    }
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* log(sum(exp(x))) over the vocabulary, stable. */
static double log_sum_exp(const float *x, int n)
{
    float max = x[argmax(x, n)];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)(x[i] - max));
    return max + log(sum);
}

/* Whether token a ranks above token b in x: higher value, ties to the lower id. */
static bool ranks_above(const float *x, int32_t a, int32_t b)
{
    return x[a] > x[b] || (x[a] == x[b] && a < b);
}

/* The k most likely tokens of x as logprobs (lse = log_sum_exp(x)); tokens a mask or bias ruled out
 * (-inf) are not listed. One pass, each token compared with the k-th best so far. */
static void top_of(const float *x, int n, double lse, int k, struct sample_top *top)
{
    int m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (x[i] == -INFINITY || (m == k && !ranks_above(x, i, top->ids[m - 1])))
            continue;
        int at = m < k ? m++ : k - 1;
        while (at > 0 && ranks_above(x, i, top->ids[at - 1])) {
            top->ids[at] = top->ids[at - 1];
            at--;
        }
        top->ids[at] = i;
    }
    top->n = m;
    for (int j = 0; j < m; j++)
        top->logprobs[j] = (float)((double)x[top->ids[j]] - lse);
}

static int cmp_cand_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id - y->id; /* ties broken by id: deterministic everywhere */
}

/* Moves the k best candidates to the front, sorted best first (quickselect, then sort k). */
static void select_top(struct cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        struct cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cmp_cand_desc(&c[i], &pivot) < 0)
                i++;
            while (cmp_cand_desc(&c[j], &pivot) > 0)
                j--;
            if (i <= j) {
                struct cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
    qsort(c, (size_t)k, sizeof *c, cmp_cand_desc);
}

/* How many of the sorted candidates survive top-p and min-p, given their probabilities. */
static int truncate_sorted(const struct cand *c, int k, double total, const struct sample_params *p,
                           bool *need_more)
{
    double max = c[0].logit, cum = 0;
    *need_more = false;
    for (int i = 0; i < k; i++) {
        double prob = exp(c[i].logit - max) / total;
        if (p->min_p > 0 && prob < p->min_p * (1.0 / total))
            return i > 0 ? i : 1;
        cum += prob;
        if (p->top_p < 1.0f && cum >= p->top_p)
            return i + 1;
    }
    *need_more = true; /* every candidate so far survives: more might */
    return k;
}

static int32_t draw(const struct cand *c, int k, double max, struct rng *rng)
{
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp(c[i].logit - max);
    double u = rng_uniform(rng) * sum;
    for (int i = 0; i < k; i++) {
        u -= exp(c[i].logit - max);
        if (u < 0)
            return c[i].id;
    }
    return c[k - 1].id;
}

/* One draw from the whole distribution: each weight computed once (the same numbers draw() sums).
 * Tokens a mask ruled out (-inf) weigh nothing and are skipped. */
static int32_t draw_all(struct sampler *s, const float *logits, double max, struct rng *rng)
{
    double sum = 0;
    int32_t last = 0;
    for (int i = 0; i < s->vocab; i++) {
        s->weights[i] = logits[i] == -INFINITY ? 0 : exp(logits[i] - max);
        sum += s->weights[i];
    }
    double u = rng_uniform(rng) * sum;
    for (int i = 0; i < s->vocab; i++) {
        if (s->weights[i] == 0)
            continue;
        last = i;
        u -= s->weights[i];
        if (u < 0)
            return i;
    }
    return last;
}

static int32_t sample_truncated(struct sampler *s, const struct sample_params *p, struct rng *rng,
                                const float *logits)
{
    int n = s->vocab;
    float max = logits[argmax(logits, n)];
    int limit = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (limit == n && p->top_p >= 1.0f && p->min_p <= 0.0f)
        return draw_all(s, logits, max, rng);
    double total = 0;
    int live = 0; /* candidates a mask left */
    for (int i = 0; i < n; i++) {
        if (logits[i] == -INFINITY)
            continue;
        s->cands[live++] = (struct cand){logits[i], i};
        total += exp((double)(logits[i] - max));
    }
    limit = limit < live ? limit : live;
    int k = limit < 64 ? limit : 64;
    for (;;) {
        select_top(s->cands, live, k);
        bool need_more;
        int keep = truncate_sorted(s->cands, k, total, p, &need_more);
        if (!need_more || k == limit)
            return draw(s->cands, keep, max, rng);
        k = k * 4 < limit ? k * 4 : limit;
    }
}

void sampler_score(const struct sampler *s, const float *logits, int32_t id, int k, float *logprob,
                   struct sample_top *top)
{
    double lse = log_sum_exp(logits, s->vocab);
    *logprob = in_vocab(s, id) ? (float)((double)logits[id] - lse) : -INFINITY;
    if (top && k > 0)
        top_of(logits, s->vocab, lse, k < SAMPLE_MAX_TOP_LOGPROBS ? k : SAMPLE_MAX_TOP_LOGPROBS, top);
}

int32_t sampler_pick(struct sampler *s, const struct sample_params *p, struct rng *rng, float *logits,
                     const uint32_t *allowed, const int32_t *prompt, int n_prompt, const int32_t *generated,
                     int n_generated, float *logprob, struct sample_top *top)
{
    /* the stages below change logits in place: keep the model's own for raw logprobs */
    bool report = logprob || (top && p->top_logprobs > 0);
    bool raw = report && p->logprobs_mode == SAMPLE_LOGPROBS_RAW;
    if (raw)
        memcpy(s->raw, logits, (size_t)s->vocab * sizeof *logits);
    apply_bias_and_mask(s, p, logits, allowed);
    apply_penalties(s, p, logits, prompt, n_prompt, generated, n_generated);
    int32_t id;
    if (p->temperature <= 0.0f) {
        id = argmax(logits, s->vocab);
    } else {
        for (int i = 0; i < s->vocab; i++)
            logits[i] /= p->temperature;
        id = sample_truncated(s, p, rng, logits);
    }
    if (top)
        top->n = 0;
    float unused;
    if (report)
        sampler_score(s, raw ? s->raw : logits, id, top ? p->top_logprobs : 0, logprob ? logprob : &unused, top);
    return id;
}
