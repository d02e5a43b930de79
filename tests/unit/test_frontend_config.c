/* test_frontend_config.c — the frontend's flags as far as secrets go: API keys from --api-key,
 * --api-key-file and PDSERVE_API_KEY are read whole (a long line is one key, not two), trimmed,
 * refused when empty or unprintable (failing closed, never "no authentication"), matched exactly,
 * overwritten in argv, and never quoted in an error message. */
#include "frontend/config.c"
#include "frontend/apierr.c"
#include "frontend/toolcall.c"
#include "frontend/rebalance_policy.c"

#include <unistd.h>

#include "tests/helpers/check.h"

/* config.c's only use of the HTTP server; its limits are not under test here. */
void http_limits_default(struct http_limits *l)
{
    memset(l, 0, sizeof *l);
}

static char dir[] = "/tmp/pdserve-config-XXXXXX";

/* Parses a NULL-terminated list of flags (copied, since parsing overwrites keys in argv). The copies
 * are returned in argv_out so a test can look at what `ps` would show. */
static int parse(struct fe_config *c, struct error *err, char **argv_out, const char *first, ...)
{
    static char store[16][8192];
    const char *args[16] = {"pdserve-frontend", "--model", "m", first};
    int n = first ? 4 : 3;
    va_list ap;
    va_start(ap, first);
    for (const char *a; first && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    static char *argv[17];
    for (int i = 0; i < n; i++) {
        snprintf(store[i], sizeof store[i], "%s", args[i]);
        argv[i] = store[i];
    }
    argv[n] = NULL;
    optind = 0;
    memset(err, 0, sizeof *err);
    int rc = fe_parse_args(n, argv, c, err);
    for (int i = 0; i < n; i++)
        argv_out[i] = argv[i];
    argv_out[n] = NULL;
    return rc;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    chmod(p, 0600);
    return p;
}

static bool argv_has(char **argv, const char *s)
{
    for (int i = 0; argv[i]; i++)
        if (strstr(argv[i], s))
            return true;
    return false;
}

static void test_match(void)
{
    struct fe_config c;
    struct error err;
    char *argv[17];
    unsetenv("PDSERVE_API_KEY");
    CHECK(parse(&c, &err, argv, "--api-key", "sk-first", "--api-key=sk-second", NULL) == 0);
    CHECK_EQ_INT(c.n_keys, 2);
    CHECK(fe_config_key_ok(&c, "sk-first"));
    CHECK(fe_config_key_ok(&c, "sk-second"));
    const char *wrong[] = {"", "sk-firs", "sk-first ", "sk-firstt", "SK-FIRST", "sk-", "x", "sk-secon", "sk-second2"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        CHECK_MSG(!fe_config_key_ok(&c, wrong[i]), "\"%s\" must not match", wrong[i]);
    CHECK_MSG(!argv_has(argv, "sk-first") && !argv_has(argv, "sk-second"), "a key is still visible in argv");
    CHECK(argv_has(argv, "--api-key=xxxxxxxxx"));
    fe_config_free(&c);
    CHECK_EQ_INT(c.n_keys, 0);
}

static void test_key_file(void)
{
    struct fe_config c;
    struct error err;
    char *argv[17];
    unsetenv("PDSERVE_API_KEY");
    char long_key[700];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    memcpy(long_key + 600, "TAILofTheKey", 12); /* an old 512-byte reader made this tail a key of its own */
    char text[1024];
    snprintf(text, sizeof text, "# keys\n\n  spaced-key \t\r\n%s\nlast-without-newline", long_key);
    const char *f = write_file("keys", text);
    CHECK_MSG(parse(&c, &err, argv, "--api-key-file", f, NULL) == 0, "%s", err.msg);
    CHECK_EQ_INT(c.n_keys, 3);
    CHECK(fe_config_key_ok(&c, "spaced-key"));
    CHECK(fe_config_key_ok(&c, long_key));
    CHECK(fe_config_key_ok(&c, "last-without-newline"));
    CHECK(!fe_config_key_ok(&c, long_key + 511));
    CHECK(!fe_config_key_ok(&c, "TAILofTheKey"));
    CHECK(!fe_config_key_ok(&c, " spaced-key"));
    CHECK(!fe_config_key_ok(&c, "# keys"));
    fe_config_free(&c);
}

/* Every way to ask for keys and get none, or a broken one, is an error that does not quote the key. */
static void test_fail_closed(void)
{
    struct fe_config c;
    struct error err;
    char *argv[17];
    unsetenv("PDSERVE_API_KEY");
    CHECK(parse(&c, &err, argv, "--api-key-file", write_file("empty", "# only a comment\n\n   \n"), NULL) < 0);
    CHECK_MSG(strstr(err.msg, "holds no key"), "%s", err.msg);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key-file", write_file("bad", "good-one\nSECRET with space\n"), NULL) < 0);
    CHECK_MSG(strstr(err.msg, "line 2") && !strstr(err.msg, "SECRET"), "%s", err.msg);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key-file", write_file("ctl", "SECRET\001x\n"), NULL) < 0);
    CHECK_MSG(!strstr(err.msg, "SECRET"), "%s", err.msg);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key-file", "/nonexistent/keys", NULL) < 0);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key", "", NULL) < 0);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key", "SECRET two", NULL) < 0);
    CHECK_MSG(!strstr(err.msg, "SECRET"), "%s", err.msg);
    fe_config_free(&c);
    setenv("PDSERVE_API_KEY", "", 1);
    CHECK(parse(&c, &err, argv, NULL) < 0);
    fe_config_free(&c);
    setenv("PDSERVE_API_KEY", "  \n", 1);
    CHECK(parse(&c, &err, argv, NULL) < 0);
    fe_config_free(&c);
    setenv("PDSERVE_API_KEY", "SECRET\tx", 1);
    CHECK(parse(&c, &err, argv, NULL) < 0);
    CHECK_MSG(strstr(err.msg, "PDSERVE_API_KEY") && !strstr(err.msg, "SECRET"), "%s", err.msg);
    fe_config_free(&c);
    setenv("PDSERVE_API_KEY", "env-key\n", 1);
    CHECK(parse(&c, &err, argv, NULL) == 0 && c.n_keys == 1 && fe_config_key_ok(&c, "env-key"));
    fe_config_free(&c);
    unsetenv("PDSERVE_API_KEY");
}

/* A mistyped flag or a stray argument may carry a key: errors name neither's value. */
static void test_errors_do_not_quote(void)
{
    struct fe_config c;
    struct error err;
    char *argv[17];
    CHECK(parse(&c, &err, argv, "--api-kye=SECRET1", NULL) < 0);
    CHECK_MSG(strstr(err.msg, "--api-kye") && !strstr(err.msg, "SECRET1"), "%s", err.msg);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api-key", "k1", "SECRET2", NULL) < 0);
    CHECK_MSG(!strstr(err.msg, "SECRET2"), "%s", err.msg);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--api", "SECRET3", NULL) < 0); /* an ambiguous abbreviation */
    CHECK_MSG(!strstr(err.msg, "SECRET3"), "%s", err.msg);
    fe_config_free(&c);
}

/* One unit with the workers: --drain-timeout in seconds; --drain-timeout-ms still works. And the SLO flags. */
static void test_drain_and_slo_flags(void)
{
    struct fe_config c;
    struct error err;
    char *argv[17];
    CHECK(parse(&c, &err, argv, "--drain-timeout", "5", NULL) == 0 && c.drain_ms == 5000);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--drain-timeout-ms", "1500", NULL) == 0 && c.drain_ms == 1500);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, NULL) == 0 && c.drain_ms == 30000 && c.slo_ttft_ms == 0);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--drain-timeout", "-1", NULL) == -1 && strstr(err.msg, "--drain-timeout"));
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--slo-ttft-ms", "800", "--slo-tpot-ms", "40", NULL) == 0 && c.slo_ttft_ms == 800 &&
          c.slo_tpot_ms == 40);
    fe_config_free(&c);
    /* the rebalancer's band: the SLOs reach its policy; --rebalance-max above --rebalance-high, or 0 */
    CHECK(parse(&c, &err, argv, "--slo-ttft-ms", "800", "--slo-tpot-ms", "40", "--rebalance", NULL) == 0 &&
          c.rb.ttft_slo_ms == 800 && c.rb.tpot_slo_ms == 40 && c.rb.max_busy == 0.8);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--slo-ttft-ms", "800", "--rebalance", "--rebalance-max", "0", NULL) == 0 &&
          c.rb.max_busy == 0);
    fe_config_free(&c);
    CHECK(parse(&c, &err, argv, "--slo-ttft-ms", "800", "--rebalance", "--rebalance-max", "0.5", NULL) == -1 &&
          strstr(err.msg, "--rebalance-max (0.5) must be above --rebalance-high (0.6)"));
    fe_config_free(&c);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the world-readable-file warning is not under test here */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_match);
    RUN(test_key_file);
    RUN(test_fail_closed);
    RUN(test_errors_do_not_quote);
    RUN(test_drain_and_slo_flags);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
