/* rng.c — seeded random numbers for pdserve-bench on the engine's generator (struct rng in
 * common/engine/sample.h): uniform ints and gamma variates (Marsaglia–Tsang). Not rand(), so a seed gives
 * the same workload on every machine and libc. */
#include "bench.h"

#include <math.h>

int bench_rng_int(struct rng *r, int lo, int hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)((int64_t)hi - lo + 1);
    return lo + (int)(rng_next(r) % span);
}

static double normal(struct rng *r)
{
    /* Box–Muller; 1 - u keeps the log's argument in (0, 1]. */
    double u = 1.0 - rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

double bench_rng_gamma(struct rng *r, double shape, double scale)
{
    if (shape < 1.0) {
        /* Boost a shape < 1 to shape + 1 and scale back by U^(1/shape). */
        double u = 1.0 - rng_uniform(r);
        return bench_rng_gamma(r, shape + 1.0, scale) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = 1.0 - rng_uniform(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v * scale;
    }
}
