/* test_tmpl_engine.c — the Jinja interpreter on small templates: every case in
 * tests/tmpl/engine_cases.json (each construct, whitespace control, filters, tests, methods, and the
 * error paths; expectations checked against Python's Jinja2 by tests/tmpl/check_engine_cases.py), then
 * the API directly: resource limits, hostile input, strftime_now, and reuse of one parsed template. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/helpers/check.h"
#include "common/tmpl/tmpl.h"

static int render(const char *src, const char *ctx_json, const struct tmpl_limits *lim, char **out, struct error *err)
{
    *out = NULL;
    struct tmpl *t = tmpl_parse(src, strlen(src), err);
    if (!t)
        return -2;
    json_t *ctx = ctx_json ? json_loads(ctx_json, 0, NULL) : NULL;
    int rc = tmpl_render(t, ctx, lim, out, NULL, err);
    json_decref(ctx);
    tmpl_free(t);
    return rc;
}

static void run_case(json_t *c, int *oks, int *errs)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *src = json_string_value(json_object_get(c, "template"));
    const char *expected = json_string_value(json_object_get(c, "expected"));
    const char *why = json_string_value(json_object_get(c, "error"));
    struct error err = { 0 };
    struct tmpl *t = tmpl_parse(src, strlen(src), &err);
    char *out = NULL;
    int rc = t ? tmpl_render(t, json_object_get(c, "context"), NULL, &out, NULL, &err) : -1;
    if (expected) {
        CHECK_MSG(rc == 0, "%s: failed: %s", name, err.msg);
        if (rc == 0)
            CHECK_MSG(!strcmp(out, expected), "%s:\n  got:      [%s]\n  expected: [%s]", name, out, expected);
        (*oks)++;
    } else {
        CHECK_MSG(rc == -1, "%s: rendered [%s], expected an error containing \"%s\"", name, out ? out : "", why);
        if (rc == -1)
            CHECK_MSG(strstr(err.msg, why) != NULL, "%s: error \"%s\" lacks \"%s\"", name, err.msg, why);
        (*errs)++;
    }
    free(out);
    tmpl_free(t);
}

static void test_cases(void)
{
    json_error_t je;
    json_t *cases = json_load_file("tests/tmpl/engine_cases.json", 0, &je);
    CHECK_MSG(cases != NULL, "tests/tmpl/engine_cases.json: %s", je.text);
    int oks = 0, errs = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
        run_case(c, &oks, &errs);
    fprintf(stderr, "   %d renders, %d error cases\n", oks, errs);
    CHECK(oks >= 70 && errs >= 20);
    json_decref(cases);
}

static void test_limits(void)
{
    struct error err = { 0 };
    char *out;
    struct tmpl_limits lim = { .max_steps = 1000 };
    CHECK(render("{% for i in range(100) %}{% for j in range(100) %}x{% endfor %}{% endfor %}", NULL, &lim, &out, &err) == -1);
    CHECK(strstr(err.msg, "max_steps") != NULL);
    lim = (struct tmpl_limits){ .max_output = 1000 };
    CHECK(render("{{ 'x' * 5000 }}", NULL, &lim, &out, &err) == -1 && strstr(err.msg, "max_output"));
    CHECK(render("{% for i in range(5000) %}ab{% endfor %}", NULL, &lim, &out, &err) == -1 && strstr(err.msg, "max_output"));
    CHECK(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, &out, &err) == -1);
    CHECK(strstr(err.msg, "max_depth") != NULL);
    lim = (struct tmpl_limits){ .max_memory = 1 << 20 };
    CHECK(render("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL,
                 &lim, &out, &err) == -1);
    CHECK(render("{{ range(100000000000) }}", NULL, NULL, &out, &err) == -1 && strstr(err.msg, "max_steps"));
    CHECK(render("{{ 9223372036854775807 + 1 }}", NULL, NULL, &out, &err) == -1 && strstr(err.msg, "overflow"));
    CHECK(render("{{ 2 ** 64 }}", NULL, NULL, &out, &err) == -1 && strstr(err.msg, "overflow"));
    /* quadratic work inside a loop is counted, not only the loop's iterations */
    static const char *const quadratic[] = {
        "{% set big = range(100000)|list %}{% for i in big %}{{ i in big }}{% endfor %}",
        "{% set big = range(100000)|list %}{{ big|unique|list|length }}",
        "{% set s = 'ab' * 500000 %}{% for i in range(100000) %}{{ 'x' in s }}{{ s.count('z') }}{% endfor %}",
        "{% set big = range(100000)|list %}{% for i in big %}{{ big|sum }}{% endfor %}", NULL };
    lim = (struct tmpl_limits){ .max_steps = 200000 };
    for (int i = 0; quadratic[i]; i++) {
        int rc = render(quadratic[i], NULL, &lim, &out, &err);
        CHECK_MSG(rc == -1 && strstr(err.msg, "max_steps"), "%s: %s", quadratic[i], rc ? err.msg : "rendered");
        if (rc == 0)
            free(out);
    }
    CHECK(render("{{ '' * 9223372036854775807 }}{{ [] * 9223372036854775807 }}", NULL, NULL, &out, &err) == 0 &&
          !strcmp(out, "[]"));
    free(out);
}

static void test_hostile_input(void)
{
    struct error err = { 0 };
    char *out;
    char deep[2048];
    memset(deep, '(', 1000);
    strcpy(deep + 1000, "1");
    memset(deep + 1001, ')', 1000);
    deep[2001] = 0;
    char src[2100];
    snprintf(src, sizeof(src), "{{ %s }}", deep);
    CHECK(render(src, NULL, NULL, &out, &err) == -2 && strstr(err.msg, "nested"));
    const char nul[] = "a\0{{ x }}";
    struct tmpl *t = tmpl_parse(nul, sizeof(nul) - 1, &err);
    CHECK(t == NULL && strstr(err.msg, "NUL"));
    static const char *const broken[] = { "{{", "{%", "{#", "{{ }}", "{% %}", "{% if %}", "{% for %}{% endfor %}",
                                          "{% for x in %}", "{{ a[ }}", "{{ a. }}", "{{ 'x' | }}", "{% set %}",
                                          "{% macro %}", "{{ (1, }}", "{{ {1: } }}", "{% endfor %}", "{{ x is }}",
                                          "{% if x %}{% else %}{% else %}{% endif %}", "}}{{", "{{ 1 2 }}", NULL };
    for (int i = 0; broken[i]; i++) {
        int rc = render(broken[i], NULL, NULL, &out, &err);
        CHECK_MSG(rc != 0, "broken template \"%s\" rendered", broken[i]);
        if (rc == 0)
            free(out);
        else
            CHECK_MSG(strstr(err.msg, "template line 1") != NULL, "\"%s\": error without line: %s", broken[i], err.msg);
    }
    /* "}}{{" is text then an unclosed tag; plain text with braces renders as is */
    CHECK(render("a } b %} c #}", NULL, NULL, &out, &err) == 0 && !strcmp(out, "a } b %} c #}"));
    free(out);
    CHECK(render("{{ x }}", "[1, 2]", NULL, &out, &err) == -1 && strstr(err.msg, "object"));
    /* values nested by a loop, then printed, compared, serialised: an error, not a stack overflow */
    const char *nest = "{% set ns = namespace(x=[], y=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
                       "{% set ns.y = [ns.y] %}{% endfor %}";
    static const char *const uses[] = { "{{ ns.x }}", "{{ ns.x == ns.y }}", "{{ ns.x < ns.y }}", "{{ ns.x|tojson }}",
                                        "{{ ns.x in [ns.y] }}", "{{ [ns.x, ns.y]|unique|list }}", NULL };
    for (int i = 0; uses[i]; i++) {
        snprintf(src, sizeof(src), "%s%s", nest, uses[i]);
        CHECK_MSG(render(src, NULL, NULL, &out, &err) == -1 && strstr(err.msg, "nested"), "%s: %s", uses[i], err.msg);
    }
    /* statements nested 1000 deep */
    char *deep_if = malloc(20000);
    deep_if[0] = 0;
    for (int i = 0; i < 1000; i++)
        strcat(deep_if, "{% if 1 %}");
    CHECK(render(deep_if, NULL, NULL, &out, &err) == -2 && strstr(err.msg, "nested"));
    free(deep_if);
}

static void test_strftime_now(void)
{
    struct error err = { 0 };
    char *out, want[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(want, sizeof(want), "%Y", &tm);
    CHECK(render("{{ strftime_now('%Y') }}", NULL, NULL, &out, &err) == 0 && !strcmp(out, want));
    free(out);
    CHECK(render("{{ strftime_now(3) }}", NULL, NULL, &out, &err) == -1 && strstr(err.msg, "format"));
}

static void test_reuse(void)
{
    struct error err = { 0 };
    const char *src = "{% for m in messages %}{{ m }}{% endfor %}";
    struct tmpl *t = tmpl_parse(src, strlen(src), &err);
    for (int i = 0; i < 3; i++) {
        json_t *ctx = json_pack("{s:[i,i]}", "messages", i, i + 1);
        char *out = NULL, want[16];
        size_t len = 0;
        snprintf(want, sizeof(want), "%d%d", i, i + 1);
        CHECK(tmpl_render(t, ctx, NULL, &out, &len, &err) == 0 && !strcmp(out, want) && len == strlen(want));
        free(out);
        json_decref(ctx);
    }
    tmpl_free(t);
}

int main(void)
{
    RUN(test_cases);
    RUN(test_limits);
    RUN(test_hostile_input);
    RUN(test_strftime_now);
    RUN(test_reuse);
    return check_report();
}
