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
    return sampler_pick(s, p, r, l, NULL, 0, gen, n_gen, NULL);
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
    CHECK_EQ_INT(sampler_pick(s, &p, &r, l, NULL, 0, NULL, 0, &lp), 2);
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
        int32_t id = sampler_pick(s, &p, &r, l, seen, 1, NULL, 0, &lp);
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
    sampler_pick(s, &p, &r, out, seen, 7, seen, 3, NULL); /* negative: multiplied, once */
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

int main(void)
{
    RUN(rng_state_travels);
    RUN(greedy_and_logprob);
    RUN(logprobs_modes);
    RUN(truncation_stages);
    RUN(penalties);
    RUN(same_seed_same_tokens);
    return check_report();
}
