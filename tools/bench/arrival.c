/* arrival.c — the arrival process: when each request of a run is sent. Gaps are gamma-distributed
 * with mean 1/rate and shape = burstiness, as vLLM's benchmark_serving: shape 1 is a Poisson
 * process, smaller shapes are burstier, larger ones more regular. */
#include "bench.h"

#include <math.h>

void bench_arrivals(double *at, int n, double rate, double burstiness, uint64_t seed)
{
    struct rng rng;
    /* A stream of its own, so changing the dataset options does not move the arrivals. */
    rng_seed(&rng, seed ^ 0xa5a5a5a5deadbeefULL);
    double t = 0.0;
    for (int i = 0; i < n; i++) {
        at[i] = t;
        if (isinf(rate) || rate <= 0.0)
            continue;
        double theta = 1.0 / (rate * burstiness);
        t += bench_rng_gamma(&rng, burstiness, theta);
    }
}
