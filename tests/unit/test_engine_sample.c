/* test_engine_sample.c — the RNG and every sampler stage, checked against distributions worked out
 * by hand. */
#include <math.h>
#include <stdlib.h>

#include "tests/helpers/check.h"
#include "common/engine/sample.h"

#define V 8

static void rng_state_travels(void)
{
    struct rng a, b;
    rng_seed(&a, 42);
    for (int i = 0; i < 10; i++)
        rng_next(&a);
    b = a; /* saved and restored, as across processes */
    for (int i = 0; i < 100; i++)
        CHECK(rng_next(&a) == rng_next(&b));
    struct rng c;
    rng_seed(&c, 43);
    rng_seed(&a, 42);
    CHECK(rng_next(&a) != rng_next(&c));
    for (int i = 0; i < 1000; i++) {
        double u = rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
    }
}

static int32_t pick(struct sampler *s, struct sample_params *p, struct rng *r, const float *src,
                    const int32_t *gen, int n_gen)
{
    float l[V];
    memcpy(l, src, sizeof l);
    return sampler_pick(s, p, r, l, NULL, NULL, 0, gen, n_gen, NULL, NULL);
}

static void greedy_and_logprob(void)
{
    struct sampler *s = sampler_new(V);
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    float l[V] = {0, 1, 5, 2, 0, 0, 0, 0}, lp;
    struct rng r;
    rng_seed(&r, 1);
    CHECK_EQ_INT(sampler_pick(s, &p, &r, l, NULL, NULL, 0, NULL, 0, &lp, NULL), 2);
    double z = 5 + exp(1) + exp(5) + exp(2); /* five zeros, then 1, 5, 2 */
    CHECK_NEAR(lp, 5 - log(z), 1e-5);
    sampler_free(s);
}

/* Issue 20: logprobs are the model's raw log_softmax by default (as vLLM's raw_logprobs), whatever the
 * temperature and penalties; processed_logprobs is the distribution after them. */
static void logprobs_modes(void)
{
    struct sampler *s = sampler_new(V);
    const float raw[V] = {0, 1, 5, 2, 0, 0, 0, 0};
    double z = 5 + exp(1) + exp(5) + exp(2);
    const int32_t seen[] = {2};
    for (int mode = 0; mode < SAMPLE_LOGPROBS_MODES; mode++) {
        struct sample_params p;
        sample_params_default(&p);
        p.temperature = 0.5f;
        p.repetition_penalty = 2.0f; /* token 2 was seen: its logit 5 becomes 2.5 */
        p.logprobs_mode = (uint8_t)mode;
        struct rng r;
        rng_seed(&r, 3);
        float l[V], lp;
        memcpy(l, raw, sizeof l);
        int32_t id = sampler_pick(s, &p, &r, l, NULL, seen, 1, NULL, 0, &lp, NULL);
        double want;
        if (mode == SAMPLE_LOGPROBS_RAW) {
            want = raw[id] - log(z);
        } else {
            double x[V], zp = 0;
            for (int i = 0; i < V; i++)
                zp += exp(x[i] = (i == 2 ? 2.5 : raw[i]) / 0.5);
            want = x[id] - log(zp);
        }
        CHECK_MSG(fabs(lp - want) < 1e-5, "%s: token %d logprob %f, want %f", sample_logprobs_mode_name(mode), id,
                  lp, want);
    }
    CHECK(sample_logprobs_mode_parse("raw_logprobs") == SAMPLE_LOGPROBS_RAW);
    CHECK(sample_logprobs_mode_parse("processed_logprobs") == SAMPLE_LOGPROBS_PROCESSED);
    CHECK(sample_logprobs_mode_parse("raw_logits") == -1 && sample_logprobs_mode_parse(NULL) == -1);
    sampler_free(s);
}

/* Frequencies of 20000 draws against the probabilities the stage should leave. */
static void check_distribution(struct sample_params *p, const float *l, const double *want)
{
    struct sampler *s = sampler_new(V);
    struct rng r;
    rng_seed(&r, 7);
    int counts[V] = {0}, n = 20000;
    for (int i = 0; i < n; i++)
        counts[pick(s, p, &r, l, NULL, 0)]++;
    for (int i = 0; i < V; i++)
        CHECK_MSG(fabs(counts[i] / (double)n - want[i]) < 0.015, "token %d: %.3f vs %.3f", i,
                  counts[i] / (double)n, want[i]);
    sampler_free(s);
}

static void truncation_stages(void)
{
    /* probabilities 0.4, 0.3, 0.2, 0.1, then ~0 */
    float l[V] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f), -40, -40, -40, -40};
    struct sample_params p;
    sample_params_default(&p);
    check_distribution(&p, l, (double[V]){0.4, 0.3, 0.2, 0.1});
    p.top_k = 2;
    check_distribution(&p, l, (double[V]){0.4 / 0.7, 0.3 / 0.7});
    sample_params_default(&p);
    p.top_p = 0.8f; /* 0.4 + 0.3 < 0.8 <= 0.9: keeps three */
    check_distribution(&p, l, (double[V]){0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9});
    sample_params_default(&p);
    p.min_p = 0.45f; /* keeps p >= 0.18 */
    check_distribution(&p, l, (double[V]){0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9});
    sample_params_default(&p);
    p.temperature = 0.5f; /* squares the odds: 16:9:4:1 */
    check_distribution(&p, l, (double[V]){16 / 30.0, 9 / 30.0, 4 / 30.0, 1 / 30.0});
}

static void penalties(void)
{
    struct sampler *s = sampler_new(V);
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    struct rng r;
    rng_seed(&r, 1);
    float l[V] = {0, 3, 2.5f, 0, 0, 0, 0, -1};
    int32_t gen[] = {1, 1};
    p.frequency_penalty = 0.3f; /* 3 - 0.6 = 2.4 < 2.5 */
    CHECK_EQ_INT(pick(s, &p, &r, l, gen, 2), 2);
    p.frequency_penalty = 0.2f; /* 3 - 0.4 = 2.6 */
    CHECK_EQ_INT(pick(s, &p, &r, l, gen, 2), 1);
    p.frequency_penalty = 0;
    p.presence_penalty = 0.6f; /* once, however often */
    CHECK_EQ_INT(pick(s, &p, &r, l, gen, 2), 2);
    p.presence_penalty = 0.4f;
    CHECK_EQ_INT(pick(s, &p, &r, l, gen, 2), 1);
    p.presence_penalty = 0;
    p.repetition_penalty = 1.25f; /* 3 / 1.25 = 2.4 */
    CHECK_EQ_INT(pick(s, &p, &r, l, gen, 2), 2);
    float l2[V] = {-1, -1, -1, -1, -1, -1, -1, -1.1f};
    int32_t seen[] = {0, 1, 2, 3, 4, 5, 6};
    float out[V];
    memcpy(out, l2, sizeof out);
    sampler_pick(s, &p, &r, out, NULL, seen, 7, seen, 3, NULL, NULL); /* negative: multiplied, once */
    CHECK_NEAR(out[0], -1.25, 1e-6);
    CHECK_NEAR(out[6], -1.25, 1e-6);
    CHECK_EQ_INT(pick(s, &p, &r, l2, seen, 7), 7);
    sampler_free(s);
}

static void same_seed_same_tokens(void)
{
    struct sampler *s = sampler_new(V);
    struct sample_params p;
    sample_params_default(&p);
    p.top_p = 0.95f;
    float l[V] = {1, 2, 3, 1, 0.5f, 2, 1, 0};
    struct rng a, b;
    rng_seed(&a, 99);
    rng_seed(&b, 99);
    for (int i = 0; i < 200; i++)
        CHECK(pick(s, &p, &a, l, NULL, 0) == pick(s, &p, &b, l, NULL, 0));
    sampler_free(s);
}

/* The alternatives are the k most likely tokens of the logprobs mode's distribution, best first, ties
 * to the lower id; in the raw mode whatever the temperature, penalties or bias. */
static void top_logprobs(void)
{
    struct sampler *s = sampler_new(V);
    const float raw[V] = {0, 1, 5, 2, 0, 3, 3, 0};
    double lse = log(3 + exp(1) + exp(5) + exp(2) + 2 * exp(3));
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0.7f;
    p.top_logprobs = 4;
    p.n_logit_bias = 1;
    p.bias_ids[0] = 2;
    p.bias_values[0] = -100; /* token 2 is never chosen, but raw alternatives still list it first */
    struct rng r;
    rng_seed(&r, 9);
    float l[V], lp;
    memcpy(l, raw, sizeof l);
    struct sample_top top;
    int32_t id = sampler_pick(s, &p, &r, l, NULL, NULL, 0, NULL, 0, &lp, &top);
    CHECK(id != 2);
    CHECK_EQ_INT(top.n, 4);
    const int32_t want[4] = {2, 5, 6, 3};
    for (int j = 0; j < 4; j++) {
        CHECK_EQ_INT(top.ids[j], want[j]);
        CHECK_NEAR(top.logprobs[j], raw[want[j]] - lse, 1e-5);
    }
    CHECK_NEAR(lp, raw[id] - lse, 1e-5);
    /* processed: after the bias and the temperature; token 2 is then last, out of the top */
    p.logprobs_mode = SAMPLE_LOGPROBS_PROCESSED;
    memcpy(l, raw, sizeof l);
    sampler_pick(s, &p, &r, l, NULL, NULL, 0, NULL, 0, &lp, &top);
    CHECK_EQ_INT(top.ids[0], 5);
    CHECK_EQ_INT(top.ids[1], 6);
    CHECK_EQ_INT(top.ids[2], 3);
    CHECK_EQ_INT(top.ids[3], 1);
    sampler_free(s);
}

/* A logit bias moves the choice; a mask (a constraint) rules tokens out, and what it rules out is not
 * listed among processed alternatives. */
static void bias_and_mask(void)
{
    struct sampler *s = sampler_new(V);
    const float raw[V] = {0, 1, 5, 2, 0, 3, 3, 0};
    struct sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    p.n_logit_bias = 1;
    p.bias_ids[0] = 7;
    p.bias_values[0] = 5.5f;
    struct rng r;
    rng_seed(&r, 1);
    float l[V];
    memcpy(l, raw, sizeof l);
    CHECK_EQ_INT(sampler_pick(s, &p, &r, l, NULL, NULL, 0, NULL, 0, NULL, NULL), 7);
    p.n_logit_bias = 0;
    p.top_logprobs = 5;
    p.logprobs_mode = SAMPLE_LOGPROBS_PROCESSED;
    uint32_t allowed = 1u << 1 | 1u << 4; /* tokens 1 and 4 only */
    struct sample_top top;
    for (int seed = 0; seed < 20; seed++) {
        p.temperature = seed ? 1.0f : 0.0f;
        memcpy(l, raw, sizeof l);
        int32_t id = sampler_pick(s, &p, &r, l, &allowed, NULL, 0, NULL, 0, NULL, &top);
        CHECK(id == 1 || id == 4);
        CHECK_EQ_INT(top.n, 2);
        CHECK_EQ_INT(top.ids[0], 1);
    }
    sampler_free(s);
}

int main(void)
{
    RUN(rng_state_travels);
    RUN(greedy_and_logprob);
    RUN(logprobs_modes);
    RUN(truncation_stages);
    RUN(penalties);
    RUN(same_seed_same_tokens);
    RUN(top_logprobs);
    RUN(bias_and_mask);
    return check_report();
}
