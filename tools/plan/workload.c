/* workload.c — the requests a simulated run serves: Poisson arrivals at a given rate, prompt and
 * output lengths fixed, drawn from a range (as pdserve-bench's --range-ratio), or cycled from a dataset
 * file of "input_tokens output_tokens" lines. The same seed gives the same lengths and the same
 * arrival pattern (scaled) at every rate, so attainment changes with the rate alone. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/plan/plan.h"

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return ((next(s) >> 11) + 0.5) / 9007199254740992.0; }

static int draw(uint64_t *s, int len, double ratio)
{
    int lo = (int)(len * (1 - ratio)), hi = (int)(len * (1 + ratio));
    lo = lo < 1 ? 1 : lo;
    return hi <= lo ? lo : lo + (int)(uniform(s) * (hi - lo + 1));
}

static int read_dataset(const char *path, int (**pairs)[2], char *err, int errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return plan_error(err, errlen, "%s: cannot open", path);
    int n = 0, cap = 0, in, out, line = 0;
    char buf[256];
    *pairs = NULL;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (buf[0] == '#' || buf[0] == '\n')
            continue;
        if (sscanf(buf, "%d %d", &in, &out) != 2 || in < 1 || out < 1) {
            plan_error(err, errlen, "%s:%d: expected \"input_tokens output_tokens\", both ≥ 1", path, line);
            n = -1;
            break;
        }
        if (n == cap && !(*pairs = realloc(*pairs, sizeof **pairs * (size_t)(cap = cap ? 2 * cap : 256))))
            abort();
        (*pairs)[n][0] = in, (*pairs)[n][1] = out, n++;
    }
    fclose(f);
    if (n == 0)
        n = plan_error(err, errlen, "%s: no requests", path);
    if (n < 0)
        free(*pairs), *pairs = NULL;
    return n;
}

struct request *workload_make(const struct workload *w, double rate, char *err, int errlen)
{
    int (*pairs)[2] = NULL, n_pairs = 0;
    if (w->dataset && (n_pairs = read_dataset(w->dataset, &pairs, err, errlen)) < 0)
        return NULL;
    struct request *r = calloc((size_t)w->n, sizeof *r);
    if (!r)
        abort();
    uint64_t arrivals = w->seed * 2 + 1, lengths = w->seed * 2 + 2;
    double t = 0;
    for (int i = 0; i < w->n; i++) {
        t += -log(uniform(&arrivals)) / rate;
        r[i].arrival = t;
        if (pairs)
            r[i].in = pairs[i % n_pairs][0], r[i].out = pairs[i % n_pairs][1];
        else
            r[i].in = draw(&lengths, w->input_len, w->range_ratio),
            r[i].out = draw(&lengths, w->output_len, w->range_ratio);
    }
    free(pairs);
    return r;
}
