/* test_bench_stats.c — pdserve-bench's pure parts: numpy-compatible percentiles and statistics,
 * the SLO verdict, SSE framing under any split of the bytes, OpenAI chunk interpretation, and the
 * seeded arrival process (mean gap 1/rate, gamma shape = burstiness), and base-URL parsing. The bench tool is a
 * program, not a library, so its modules are compiled into this test directly. */
#include "tests/helpers/check.h"

#include "tools/bench/arrival.c"
#include "tools/bench/http.c"
#include "tools/bench/metrics.c"
#include "tools/bench/rng.c"
#include "tools/bench/sse.c"
#include "tools/bench/stream.c"

static void test_percentiles(void)
{
    /* Values from numpy: np.percentile([1, 2, 3, 4, 10], [50, 90, 99]) = 3, 7.6, 9.76. */
    double x[] = {10, 2, 4, 1, 3};
    struct bench_dist d;
    bench_dist_compute(x, 5, &d);
    CHECK_NEAR(d.median, 3.0, 1e-12);
    CHECK_NEAR(d.p90, 7.6, 1e-12);
    CHECK_NEAR(d.p99, 9.76, 1e-12);
    CHECK_NEAR(d.mean, 4.0, 1e-12);
    CHECK_NEAR(d.std, sqrt(10.0), 1e-12); /* population std, numpy's default */
    double one[] = {5};
    bench_dist_compute(one, 1, &d);
    CHECK_NEAR(d.p99, 5, 0);
    bench_dist_compute(NULL, 0, &d);
    CHECK(d.mean == 0 && d.p99 == 0 && d.n == 0);
}

static void test_slo_verdict(void)
{
    struct bench_opts o = {.slo_ttft_ms = 100, .slo_tpot_ms = 20};
    struct bench_record r = {.ok = 1, .ttft_ms = 100, .tpot_ms = 20, .e2el_ms = 500};
    CHECK(bench_record_good(&o, &r)); /* an SLO is met at equality, as vLLM */
    r.tpot_ms = 20.01;
    CHECK(!bench_record_good(&o, &r));
    r.tpot_ms = NAN; /* one output token: no TPOT, so it cannot miss */
    CHECK(bench_record_good(&o, &r));
    r.ok = 0;
    CHECK(!bench_record_good(&o, &r));
    o.slo_e2el_ms = 400;
    r.ok = 1;
    CHECK(!bench_record_good(&o, &r));
}

struct events {
    char got[8][64];
    int n;
};

static int collect(void *ud, const char *data, size_t len)
{
    struct events *e = ud;
    if (e->n < 8)
        snprintf(e->got[e->n++], sizeof e->got[0], "%.*s", (int)len, data);
    return 0;
}

static void test_sse_any_split(void)
{
    const char *s = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:two\ndata: lines\n\n"
                    "data: [DONE]\r\rid: 3\n\n";
    size_t n = strlen(s);
    /* Every chunk size, so every boundary (inside CRLF too) is crossed. */
    for (size_t step = 1; step <= n; step++) {
        struct sse_parser p;
        struct events e = {0};
        sse_init(&p);
        for (size_t i = 0; i < n; i += step)
            CHECK_EQ_INT(sse_feed(&p, s + i, i + step > n ? n - i : step, collect, &e), 0);
        sse_free(&p);
        CHECK_EQ_INT(e.n, 3);
        CHECK_EQ_STR(e.got[0], "{\"a\":1}");
        CHECK_EQ_STR(e.got[1], "two\nlines");
        CHECK_EQ_STR(e.got[2], "[DONE]");
    }
}

static struct stream_chunk parse(const char *s, int chat, int *rc)
{
    struct stream_chunk c;
    struct error err;
    *rc = stream_parse_chunk(s, strlen(s), chat, &c, &err);
    return c;
}

static void test_stream_chunks(void)
{
    int rc;
    struct stream_chunk c = parse("{\"choices\":[{\"index\":0,\"text\":\"Hi\"}]}", 0, &rc);
    CHECK(rc == 0 && c.has_content && !c.has_usage && !c.done);
    c = parse("{\"choices\":[{\"index\":0,\"text\":\"\"}]}", 0, &rc);
    CHECK(rc == 0 && !c.has_content); /* an empty text is not a token chunk */
    c = parse("{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}", 1, &rc);
    CHECK(rc == 0 && !c.has_content); /* a chat stream's role-only first chunk */
    c = parse("{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}", 1, &rc);
    CHECK(rc == 0 && c.has_content);
    /* a token that decodes to U+0000 is valid JSON and a token (it failed one request a run) */
    c = parse("{\"choices\":[{\"index\":0,\"text\":\"\\u0000\"}]}", 0, &rc);
    CHECK(rc == 0 && c.has_content);
    c = parse("{\"choices\":[{\"delta\":{\"content\":\"\\u0000 their\"}}]}", 1, &rc);
    CHECK(rc == 0 && c.has_content);
    c = parse("{\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}", 0, &rc);
    CHECK(rc == 0 && c.has_usage && c.prompt_tokens == 7 && c.completion_tokens == 3);
    c = parse("{\"choices\":[],\"usage\":null}", 0, &rc);
    CHECK(rc == 0 && !c.has_usage);
    c = parse("[DONE]", 0, &rc);
    CHECK(rc == 0 && c.done);
    c = parse("{\"error\":{\"message\":\"boom\"}}", 0, &rc);
    CHECK(rc == 0 && strstr(c.error, "boom"));
    c = parse("{\"choices\": [oops", 0, &rc);
    CHECK(rc < 0);
    c = parse("[1, 2]", 0, &rc);
    CHECK(rc < 0);
}

static void test_arrivals(void)
{
    enum { N = 20000 };
    static double at[N], at2[N];
    const double shapes[] = {1.0, 0.25, 4.0};
    for (int s = 0; s < 3; s++) {
        bench_arrivals(at, N, 5.0, shapes[s], 42);
        CHECK(at[0] == 0);
        double sum = 0, sq = 0;
        for (int i = 1; i < N; i++) {
            double g = at[i] - at[i - 1];
            CHECK(g >= 0);
            sum += g;
            sq += g * g;
        }
        double mean = sum / (N - 1), var = sq / (N - 1) - mean * mean;
        /* Gamma(k, 1/(rate k)): mean 1/rate, squared coefficient of variation 1/k. */
        CHECK_NEAR(mean, 0.2, 0.2 * 0.05);
        CHECK_NEAR(var / (mean * mean), 1.0 / shapes[s], 0.1 / shapes[s]);
    }
    bench_arrivals(at, N, 5.0, 1.0, 42);
    bench_arrivals(at2, N, 5.0, 1.0, 42);
    CHECK(memcmp(at, at2, sizeof at) == 0); /* the seed fixes the schedule */
    bench_arrivals(at2, N, 5.0, 1.0, 43);
    CHECK(memcmp(at, at2, sizeof at) != 0);
    bench_arrivals(at, 10, INFINITY, 1.0, 1);
    CHECK(at[9] == 0);
}

static void test_base_url(void)
{
    struct http_target t;
    struct error err;
    CHECK(http_target_resolve("http://127.0.0.1:8000", &t, &err) == 0);
    CHECK_EQ_STR(t.host, "127.0.0.1");
    CHECK_EQ_STR(t.port, "8000");
    CHECK(http_target_resolve("http://[::1]:9/", &t, &err) == 0);
    CHECK_EQ_STR(t.host, "::1");
    CHECK(t.addr.ss_family == AF_INET6);
    CHECK(http_target_resolve("http://localhost", &t, &err) == 0);
    CHECK_EQ_STR(t.port, "80");
    CHECK(http_target_resolve("http://127.0.0.1:8000/v1", &t, &err) < 0 && strstr(err.msg, "--endpoint"));
    CHECK(http_target_resolve("https://127.0.0.1", &t, &err) < 0);
    CHECK(http_target_resolve("http://:80", &t, &err) < 0);
    CHECK(http_target_resolve("http://127.0.0.1:99999999", &t, &err) < 0);
    CHECK(http_target_resolve("http://[::1", &t, &err) < 0);
}

int main(void)
{
    RUN(test_percentiles);
    RUN(test_slo_verdict);
    RUN(test_sse_any_split);
    RUN(test_stream_chunks);
    RUN(test_arrivals);
    RUN(test_base_url);
    return check_report();
}
