/* profile.c — the cost of a forward pass, from a profile file:
 *
 *   {"model": "...", "kv_bytes_per_token": 32768,
 *    "passes": [{"threads": 1, "tokens": 128, "prompt_attn": 8256, "decode_attn": 0, "logits": 1,
 *                "secs": 0.31}, ...]}
 *
 * as `pdserve-bench-engine --profile` writes it (measured passes), or with
 * "cost": [{"threads": 1, "c": [c0, c1, c2, c3, c4]}] instead (a model written by hand; plan.h). Measured passes
 * are fitted per thread count (plan.h, struct cost_model) by least squares on relative error: pass
 * times span 100×. An attention weight is fitted where passes of one token count differ in it, and
 * dropped (the rest refitted) where it fits negative; knots are then made non-decreasing and positive.
 *
 * Workers' step logs (--step-log: one pass a line, in the same form) can stand in for the profile's
 * passes: they are what the daemons ran under real traffic, with everything that shares their cores. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/plan/plan.h"

struct sample {
    struct pass x;
    double secs;
};

#define MAX_UNKNOWNS (PLAN_MAX_KNOTS + 2)

/* Solve the n×n system a·x = b in place (Gaussian elimination, partial pivoting); -1 if singular. */
static int solve(double a[MAX_UNKNOWNS][MAX_UNKNOWNS], double *b, int n, double *x)
{
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int r = col + 1; r < n; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col]))
                piv = r;
        if (fabs(a[piv][col]) < 1e-300)
            return -1;
        for (int k = 0; k < n; k++) {
            double t = a[col][k];
            a[col][k] = a[piv][k], a[piv][k] = t;
        }
        double t = b[col];
        b[col] = b[piv], b[piv] = t;
        for (int r = col + 1; r < n; r++) {
            double f = a[r][col] / a[col][col];
            for (int k = col; k < n; k++)
                a[r][k] -= f * a[col][k];
            b[r] -= f * b[col];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double v = b[r];
        for (int k = r + 1; k < n; k++)
            v -= a[r][k] * x[k];
        x[r] = v / a[r][r];
    }
    return 0;
}

/* The weight of each knot in the value at `tokens` (hat functions; the ends extend linearly). */
static void knot_weights(const struct cost_model *m, double tokens, double *w)
{
    int k = m->n_knots, i = 0;
    memset(w, 0, sizeof *w * (size_t)k);
    if (k == 1) {
        w[0] = 1;
        return;
    }
    while (i < k - 2 && tokens > m->knot_tokens[i + 1])
        i++;
    double f = (tokens - m->knot_tokens[i]) / (m->knot_tokens[i + 1] - m->knot_tokens[i]);
    if (tokens < m->knot_tokens[0])
        f = 0; /* below the smallest pass measured: its cost */
    w[i] = 1 - f, w[i + 1] = f;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Knots at the distinct token counts measured; when there are more than PLAN_MAX_KNOTS (a worker's
 * --step-log), every count up to SMALL_PASS — where batch shapes change the kernels' speed most —
 * and the rest spread evenly in log(tokens) over the larger ones. */
#define SMALL_PASS 16
static int place_knots(const struct sample *s, int n, struct cost_model *m)
{
    double *t = malloc(sizeof *t * (size_t)(n ? n : 1));
    int d = 0;
    for (int i = 0; i < n; i++)
        t[i] = s[i].x.tokens;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    for (int i = 0; i < n; i++) /* distinct, in place */
        if (i == 0 || t[i] != t[d - 1])
            t[d++] = t[i];
    m->n_knots = 0;
    int i = 0;
    for (; i < d && (d <= PLAN_MAX_KNOTS || t[i] <= SMALL_PASS) && m->n_knots < PLAN_MAX_KNOTS; i++)
        m->knot_tokens[m->n_knots++] = t[i];
    int left = PLAN_MAX_KNOTS - m->n_knots;
    for (int k = 0; i < d && k < left; k++) { /* the next at or above an even step in log(tokens) */
        double target = t[i] * pow(t[d - 1] / t[i], left > 1 ? (double)k / (left - 1) : 1);
        while (i < d - 1 && t[i] < target)
            i++;
        if (!m->n_knots || t[i] > m->knot_tokens[m->n_knots - 1])
            m->knot_tokens[m->n_knots++] = t[i];
    }
    free(t);
    return m->n_knots >= 1 ? 0 : -1;
}

/* Relative least squares for the knot values and the attention weights that are `on`. */
static int fit_knots(const struct sample *s, int n, const bool on[2], struct cost_model *m)
{
    int k = m->n_knots, u = k;
    int col[2] = {on[0] ? u++ : -1, 0};
    col[1] = on[1] ? u++ : -1;
    double a[MAX_UNKNOWNS][MAX_UNKNOWNS] = {{0}}, b[MAX_UNKNOWNS] = {0}, x[MAX_UNKNOWNS] = {0};
    double row[MAX_UNKNOWNS];
    for (int i = 0; i < n; i++) {
        double w = 1.0 / (s[i].secs * s[i].secs);
        knot_weights(m, s[i].x.tokens, row);
        if (on[0])
            row[col[0]] = s[i].x.prompt_attn;
        if (on[1])
            row[col[1]] = s[i].x.decode_attn;
        for (int r = 0; r < u; r++) {
            for (int q = 0; q < u; q++)
                a[r][q] += w * row[r] * row[q];
            b[r] += w * row[r] * s[i].secs;
        }
    }
    if (solve(a, b, u, x))
        return -1;
    memcpy(m->knot_secs, x, sizeof *x * (size_t)k);
    memset(m->c, 0, sizeof m->c);
    m->c[2] = on[0] ? x[col[0]] : 0;
    m->c[3] = on[1] ? x[col[1]] : 0;
    return 0;
}

/* Whether two passes of one token count differ in their prompt (which 0) or decode (1) attention:
 * else the knots, one value a token count, already explain that attention and its weight cannot be
 * told from them (a short step log whose every prompt had a length of its own). */
static int cmp_point(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

static bool attention_varies(const struct sample *s, int n, int which)
{
    double (*pt)[2] = malloc(sizeof *pt * (size_t)(n ? n : 1)); /* (tokens, attention), sorted */
    for (int i = 0; i < n; i++)
        pt[i][0] = s[i].x.tokens, pt[i][1] = which ? s[i].x.decode_attn : s[i].x.prompt_attn;
    qsort(pt, (size_t)n, sizeof *pt, cmp_point);
    bool varies = false;
    for (int i = 1; i < n && !varies; i++)
        varies = pt[i][0] == pt[i - 1][0] && pt[i][1] != pt[i - 1][1];
    free(pt);
    return varies;
}

static int fit(const struct sample *s, int n, struct cost_model *m)
{
    bool on[2] = {attention_varies(s, n, 0), attention_varies(s, n, 1)};
    if (place_knots(s, n, m) || n < m->n_knots + 2)
        return -1;
    for (int round = 0; round < 3; round++) { /* a weight that fits negative is dropped */
        if (fit_knots(s, n, on, m))
            return -1;
        if (m->c[2] >= 0 && m->c[3] >= 0)
            break;
        on[m->c[2] < m->c[3] ? 0 : 1] = false;
    }
    /* Noise in tiny passes can bend the fit: a pass never costs less than a smaller one, nor nothing. */
    for (int i = 0; i < m->n_knots; i++)
        m->knot_secs[i] = fmax(m->knot_secs[i], i ? m->knot_secs[i - 1] : 1e-6);
    m->max_rel_err = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(pass_secs(m, &s[i].x) - s[i].secs) / s[i].secs;
        m->max_rel_err = e > m->max_rel_err ? e : m->max_rel_err;
    }
    m->n_samples = n;
    return 0;
}

int plan_error(char *err, int errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
    return -1;
}

double pass_secs(const struct cost_model *m, const struct pass *x)
{
    double t = m->c[0] + m->c[1] * x->tokens + m->c[2] * x->prompt_attn + m->c[3] * x->decode_attn +
               m->c[4] * x->logits, w[PLAN_MAX_KNOTS];
    if (m->n_knots) {
        knot_weights(m, x->tokens, w);
        for (int i = 0; i < m->n_knots; i++)
            t += w[i] * m->knot_secs[i];
    }
    return t;
}

const struct cost_model *profile_cost(const struct profile *p, int threads)
{
    for (int i = 0; i < p->n_models; i++)
        if (p->by_threads[i].threads == threads)
            return &p->by_threads[i];
    return NULL;
}

static struct cost_model *model_for(struct profile *p, int threads)
{
    struct cost_model *m = (struct cost_model *)profile_cost(p, threads);
    if (m || p->n_models == PLAN_MAX_THREADS)
        return m;
    m = &p->by_threads[p->n_models++];
    memset(m, 0, sizeof *m);
    m->threads = threads;
    return m;
}

static int load_costs(json_t *costs, struct profile *p, char *err, int errlen)
{
    size_t i;
    json_t *e;
    json_array_foreach(costs, i, e) {
        json_t *c = json_object_get(e, "c");
        int threads = (int)json_integer_value(json_object_get(e, "threads"));
        struct cost_model *m = threads > 0 ? model_for(p, threads) : NULL;
        if (!m || !json_is_array(c) || json_array_size(c) != 5)
            return plan_error(err, errlen, "cost[%zu]: needs \"threads\" ≥ 1 and \"c\": [5 numbers]", i);
        for (int j = 0; j < 5; j++)
            m->c[j] = json_number_value(json_array_get(c, j));
    }
    return 0;
}

/* The measured passes of one thread count, fitted. */
static int fit_passes(json_t *passes, int threads, struct profile *p, char *err, int errlen)
{
    struct sample *s = malloc(sizeof *s * (json_array_size(passes) + 1));
    int n = 0, rc = 0;
    size_t i;
    json_t *e;
    json_array_foreach(passes, i, e) {
        if (json_integer_value(json_object_get(e, "threads")) != threads)
            continue;
        s[n] = (struct sample){{json_number_value(json_object_get(e, "tokens")),
                                json_number_value(json_object_get(e, "prompt_attn")),
                                json_number_value(json_object_get(e, "decode_attn")),
                                json_number_value(json_object_get(e, "logits"))},
                               json_number_value(json_object_get(e, "secs"))};
        if (!(s[n].secs > 0)) {
            rc = plan_error(err, errlen, "passes[%zu]: \"secs\" must be > 0", i);
            break;
        }
        n++;
    }
    struct cost_model *m = rc ? NULL : model_for(p, threads);
    if (!rc && (!m || fit(s, n, m)))
        rc = plan_error(err, errlen, "%d-thread passes do not fit: need two more passes than distinct token "
                                     "counts", threads);
    free(s);
    return rc;
}

static int load_passes(json_t *passes, struct profile *p, char *err, int errlen)
{
    size_t i;
    json_t *e;
    json_array_foreach(passes, i, e) {
        int threads = (int)json_integer_value(json_object_get(e, "threads"));
        if (threads < 1)
            return plan_error(err, errlen, "passes[%zu]: needs \"threads\" ≥ 1", i);
        if (!profile_cost(p, threads) && fit_passes(passes, threads, p, err, errlen))
            return -1;
    }
    return 0;
}

/* Whether a logged pass began within the source's span (every pass when it has none). */
static bool in_span(const struct cost_source *src, json_t *pass)
{
    json_t *t = json_object_get(pass, "t");
    return src->to <= src->from || (json_is_number(t) && json_number_value(t) >= src->from &&
                                    json_number_value(t) < src->to);
}

/* Appends a worker's --step-log (a pass a line) to `into`. A last line without its newline that is
 * not a pass is one the worker is still writing: left out. */
static int read_steps(const char *path, json_t *into, char *err, int errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return plan_error(err, errlen, "--steps %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (int no = 1; rc == 0 && (len = getline(&line, &cap, f)) > 0; no++) {
        json_error_t je;
        json_t *pass = line[0] == '\n' ? NULL : json_loads(line, 0, &je);
        int threads = (int)json_integer_value(json_object_get(pass, "threads"));
        bool is_pass = pass && threads >= 1 && threads <= PLAN_MAX_THREADS, writing = line[len - 1] != '\n';
        if (is_pass)
            json_array_append(into, pass);
        else if (line[0] != '\n' && !writing)
            rc = plan_error(err, errlen, "%s:%d: not a pass (a worker's --step-log has one a line)", path, no);
        json_decref(pass);
    }
    free(line);
    fclose(f);
    return rc;
}

int cost_source_read(struct cost_source *src, const char *const *steps, int n_steps, char *err, int errlen)
{
    if (n_steps == 0)
        return 0;
    src->logged = json_array();
    for (int k = 0; k < n_steps; k++)
        if (read_steps(steps[k], src->logged, err, errlen))
            return -1;
    return 0;
}

void cost_source_free(struct cost_source *src)
{
    json_decref(src->logged);
    src->logged = NULL;
}

/* The profile's passes but those of thread counts the step logs measured (in the span), then the
 * step logs'. */
static json_t *merge_steps(json_t *passes, const struct cost_source *src, char *err, int errlen)
{
    bool seen[PLAN_MAX_THREADS + 1] = {false};
    json_t *measured = json_array(), *all = json_array(), *e;
    size_t i;
    json_array_foreach(src->logged, i, e)
        if (in_span(src, e)) {
            seen[json_integer_value(json_object_get(e, "threads"))] = true;
            json_array_append(measured, e);
        }
    if (src->to > src->from && json_array_size(measured) == 0) {
        plan_error(err, errlen, "no logged pass began within %.3f-%.3f s (monotonic clock): step logs of these "
                   "workers, written with \"t\"?", src->from, src->to);
        json_decref(measured), json_decref(all);
        return NULL;
    }
    json_array_foreach(passes, i, e) {
        int threads = (int)json_integer_value(json_object_get(e, "threads"));
        if (threads < 1 || threads > PLAN_MAX_THREADS || !seen[threads])
            json_array_append(all, e);
    }
    json_array_extend(all, measured);
    json_decref(measured);
    return all;
}

int profile_load(const struct cost_source *src, struct profile *p, char *err, int errlen)
{
    const char *path = src->profile;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return plan_error(err, errlen, "%s: %s (line %d)", path, je.text, je.line);
    memset(p, 0, sizeof *p);
    snprintf(p->model, sizeof p->model, "%s", json_string_value(json_object_get(root, "model")) ?: "");
    p->kv_bytes_per_token = json_number_value(json_object_get(root, "kv_bytes_per_token"));
    json_t *costs = json_object_get(root, "cost"), *passes = json_object_get(root, "passes");
    int rc = -1;
    if (json_is_array(costs) && src->logged)
        plan_error(err, errlen, "%s: --steps refits measured passes; this profile has a hand-written cost", path);
    else if (json_is_array(costs))
        rc = load_costs(costs, p, err, errlen);
    else if (!json_is_array(passes))
        plan_error(err, errlen, "%s: neither \"passes\" nor \"cost\"", path);
    else if ((passes = merge_steps(passes, src, err, errlen))) {
        rc = load_passes(passes, p, err, errlen);
        json_decref(passes);
    }
    json_decref(root);
    if (rc == 0 && p->n_models == 0)
        return plan_error(err, errlen, "%s: no passes", path);
    return rc;
}
