/* decayed.h — a ratio (time per token) averaged over recent observations: numerator and denominator
 * are summed with older observations decayed by `keep` each time a new one comes. Each observation
 * weighs as much as its denominator (a 4-token prompt counts for 4 tokens, not as much as one of 400),
 * and the first one weighs no more than any later one: an exponential average seeded by its first
 * sample took a cold worker's first request (a 4-token probe at 13 ms a token, against 0.6 for the
 * prompts after it) for ten prompts' worth of its estimate. */
#ifndef PD_DECAYED_H
#define PD_DECAYED_H

struct decayed_ratio {
    double num, den;
};

static inline void decayed_add(struct decayed_ratio *r, double num, double den, double keep)
{
    r->num = keep * r->num + num;
    r->den = keep * r->den + den;
}

/* 0 until something was observed. */
static inline double decayed_value(const struct decayed_ratio *r) { return r->den > 0 ? r->num / r->den : 0; }

#endif
