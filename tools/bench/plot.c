/* plot.c — PNG plots of results with gnuplot: SLO attainment, goodput, and TTFT / TPOT
 * percentiles against request rate, one line per result file so deployments can be compared on
 * one picture (e.g. disaggregated vs colocated). We write a data file per result and one gnuplot
 * script into the output directory, then run gnuplot on it; both stay there for re-plotting. */
#include "bench.h"
#include "common/util/log.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

struct point {
    double rate, att, goodput, ttft[3], tpot[3];
};

static double get(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void read_point(json_t *run, struct point *p)
{
    /* A run at rate "inf" is placed at the rate it achieved. */
    p->rate = get(run, "request_rate");
    if (isnan(p->rate))
        p->rate = get(run, "request_throughput");
    p->att = 100.0 * get(run, "attainment");
    p->goodput = get(run, "request_goodput");
    const char *pct[3] = {"median", "p90", "p99"};
    char key[32];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s_ttft_ms", pct[i]);
        p->ttft[i] = get(run, key);
        snprintf(key, sizeof key, "%s_tpot_ms", pct[i]);
        p->tpot[i] = get(run, key);
    }
}

static int cmp_rate(const void *a, const void *b)
{
    double x = ((const struct point *)a)->rate, y = ((const struct point *)b)->rate;
    return (x > y) - (x < y);
}

/* One "rate attainment goodput ttft50 ttft90 ttft99 tpot50 tpot90 tpot99" line per run. */
static int write_data(const char *path, json_t *result, struct error *err)
{
    json_t *runs = json_object_get(result, "runs");
    size_t n = json_is_array(runs) ? json_array_size(runs) : 1;
    struct point *pts = calloc(n, sizeof *pts);
    FILE *f = fopen(path, "w");
    if (!pts || !f) {
        free(pts);
        if (f)
            fclose(f);
        return error_set(err, "writing %s: %s", path, strerror(errno));
    }
    for (size_t i = 0; i < n; i++)
        read_point(json_is_array(runs) ? json_array_get(runs, i) : result, &pts[i]);
    qsort(pts, n, sizeof *pts, cmp_rate);
    fprintf(f, "# rate attainment_pct goodput ttft_p50 ttft_p90 ttft_p99 tpot_p50 tpot_p90 tpot_p99\n");
    for (size_t i = 0; i < n; i++) {
        const double v[] = {pts[i].rate,    pts[i].att,     pts[i].goodput,
                            pts[i].ttft[0], pts[i].ttft[1], pts[i].ttft[2],
                            pts[i].tpot[0], pts[i].tpot[1], pts[i].tpot[2]};
        for (int k = 0; k < 9; k++) /* "?" is gnuplot's missing value (e.g. no goodput) */
            isnan(v[k]) ? fprintf(f, "%s?", k ? " " : "") : fprintf(f, "%s%g", k ? " " : "", v[k]);
        fputc('\n', f);
    }
    free(pts);
    return fclose(f) == 0 ? 0 : error_set(err, "writing %s: %s", path, strerror(errno));
}

/* gnuplot strings are double-quoted: keep labels from breaking out of them. */
static void clean_label(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    for (; *in && k + 1 < cap; in++)
        out[k++] = (*in == '"' || *in == '\\' || *in == '\n') ? '\'' : *in;
    out[k] = '\0';
}

/* One plot command over all results; cols are data columns, names their legend suffixes. */
static void plot_cmd(FILE *f, const char *dir, const char *const *labels, int n, const int *cols,
                     const char *const *names, int n_cols)
{
    char lab[128];
    fprintf(f, "plot ");
    for (int i = 0; i < n; i++) {
        clean_label(labels[i], lab, sizeof lab);
        for (int c = 0; c < n_cols; c++)
            fprintf(f, "%s\"%s/%d.dat\" using 1:%d with linespoints lc %d dt %d pt %d title \"%s%s\"",
                    i || c ? ", \\\n     " : "", dir, i, cols[c], i + 1, c + 1, 7 + c, lab,
                    names[c]);
    }
}

static int write_script(FILE *f, const char *dir, const char *const *labels, int n, double target)
{
    static const int att[] = {2}, gp[] = {3}, ttft[] = {4, 5, 6}, tpot[] = {7, 8, 9};
    static const char *const one[] = {""}, *const pct[] = {" p50", " p90", " p99"};
    fprintf(f, "set terminal pngcairo size 960,600 noenhanced\nset datafile missing \"?\"\n"
               "set grid\nset key top left\nset xlabel \"request rate (req/s)\"\n");
    fprintf(f, "set output \"%s/attainment.png\"\nset title \"SLO attainment\"\n"
               "set ylabel \"requests meeting every SLO (%%)\"\nset yrange [0:105]\n"
               "set key top right\n", dir);
    plot_cmd(f, dir, labels, n, att, one, 1);
    if (target > 0)
        fprintf(f, ", \\\n     %g with lines lc rgb \"gray\" dt 2 title \"target %g%%\"", 100 * target,
                100 * target);
    fprintf(f, "\nset autoscale y\nset yrange [0:*]\nset key top left\n");
    fprintf(f, "set output \"%s/goodput.png\"\nset title \"Goodput\"\nset ylabel \"req/s\"\n", dir);
    plot_cmd(f, dir, labels, n, gp, one, 1);
    fprintf(f, "\nset output \"%s/ttft.png\"\nset title \"Time to first token\"\n"
               "set ylabel \"TTFT (ms)\"\n", dir);
    plot_cmd(f, dir, labels, n, ttft, pct, 3);
    fprintf(f, "\nset output \"%s/tpot.png\"\nset title \"Time per output token\"\n"
               "set ylabel \"TPOT (ms)\"\n", dir);
    plot_cmd(f, dir, labels, n, tpot, pct, 3);
    fprintf(f, "\nset output\n");
    return ferror(f) ? -1 : 0;
}

static int run_gnuplot(const char *script, struct error *err)
{
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ), status;
    if (rc)
        return error_set(err, "cannot run gnuplot (%s): install gnuplot-nox", strerror(rc));
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return error_set(err, "gnuplot failed on %s (its messages are above)", script);
    return 0;
}

int bench_plot(const char *dir, json_t *const *results, const char *const *labels, int n,
               struct error *err)
{
    char path[4096];
    if (mkdir(dir, 0777) < 0 && errno != EEXIST)
        return error_set(err, "creating plot directory %s: %s", dir, strerror(errno));
    double target = 0;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%d.dat", dir, i);
        if (write_data(path, results[i], err) < 0)
            return -1;
        if (!(target > 0) && json_is_number(json_object_get(results[i], "attainment_target")))
            target = get(results[i], "attainment_target");
    }
    snprintf(path, sizeof path, "%s/plots.gp", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return error_set(err, "writing %s: %s", path, strerror(errno));
    int rc = write_script(f, dir, labels, n, target);
    if (fclose(f) != 0 || rc < 0)
        return error_set(err, "writing %s failed", path);
    if (run_gnuplot(path, err) < 0)
        return -1;
    log_info("plots written: %s/{attainment,goodput,ttft,tpot}.png", dir);
    return 0;
}

static const char *default_label(json_t *res, const char *file)
{
    const char *l = json_string_value(json_object_get(res, "label"));
    const char *slash = strrchr(file, '/');
    return l ? l : slash ? slash + 1 : file;
}

int bench_plot_main(int argc, char **argv)
{
    const char *out = NULL, *given[BENCH_MAX_RATES], *labels[BENCH_MAX_RATES];
    json_t *res[BENCH_MAX_RATES];
    int n_given = 0, n = 0, rc = 0;
    struct error err = {{0}};
    for (int i = 1; i < argc && rc == 0; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--label") && i + 1 < argc && n_given < BENCH_MAX_RATES)
            given[n_given++] = argv[++i];
        else if (argv[i][0] == '-' || n == BENCH_MAX_RATES)
            rc = error_set(&err, "plot: unexpected '%s' (usage: pdserve-bench plot --out DIR "
                                 "[--label NAME]... RESULT.json...)", argv[i]);
        else {
            json_error_t jerr;
            if (!(res[n] = json_load_file(argv[i], 0, &jerr)))
                rc = error_set(&err, "%s: %s (line %d)", argv[i], jerr.text, jerr.line);
            else {
                labels[n] = n < n_given ? given[n] : default_label(res[n], argv[i]);
                n++;
            }
        }
    }
    if (rc == 0 && (!out || n == 0))
        rc = error_set(&err, "plot: usage: pdserve-bench plot --out DIR [--label NAME]... "
                             "RESULT.json...");
    if (rc == 0)
        rc = bench_plot(out, res, labels, n, &err);
    for (int i = 0; i < n; i++)
        json_decref(res[i]);
    if (rc < 0)
        log_error("%s", err.msg);
    return rc < 0 ? 1 : 0;
}
