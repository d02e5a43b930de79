/* tmpl_tests.c — Jinja's tests, the right-hand side of `x is name` / `x is not name(args)`: defined,
 * undefined, none, boolean, true, false, string, number, integer, float, mapping, iterable, sequence,
 * callable, odd, even, divisibleby, eq/equalto/==, ne/!=, lt/<, le/<=, gt/>, ge/>=, in, lower, upper. */
#include <string.h>

#include "tmpl_internal.h"

/* Every test here has the signature of the test table (runtime, value, arguments, line); the
 * simple ones need only some of them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static bool t_defined(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t != TV_UNDEF; }
static bool t_undefined(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_UNDEF; }
static bool t_none(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_NONE; }
static bool t_boolean(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_BOOL; }
static bool t_true(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_BOOL && v.b; }
static bool t_false(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_BOOL && !v.b; }
static bool t_string(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_STR; }
/* Python's bool is a Number, so `true is number` (but not `is integer`). */
static bool t_number(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return v.t == TV_INT || v.t == TV_FLOAT || v.t == TV_BOOL;
}
static bool t_integer(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_INT; }
static bool t_float(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_FLOAT; }
static bool t_mapping(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_DICT; }
static bool t_callable(struct trt *rt, struct tv v, struct targs *a, int line) { return v.t == TV_FUNC || v.t == TV_MACRO; }
/* Undefined iterates (as nothing) in Jinja, so it counts as iterable. */
static bool t_iterable(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return v.t == TV_LIST || v.t == TV_DICT || v.t == TV_STR || v.t == TV_UNDEF;
}
/* Jinja's test: has a length and item access, which Undefined has too. */
static bool t_sequence(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return v.t == TV_LIST || v.t == TV_DICT || v.t == TV_STR || v.t == TV_UNDEF;
}

/* Jinja's odd, even and divisibleby are `value % n == r`, so floats work and strings fail. */
static bool mod_is(struct trt *rt, struct tv v, struct tv n, long long r, int line)
{
    return tv_equal(rt, tbinop(rt, "%", v, n, line), tv_int(r));
}

static bool t_odd(struct trt *rt, struct tv v, struct targs *a, int line) { return mod_is(rt, v, tv_int(2), 1, line); }
static bool t_even(struct trt *rt, struct tv v, struct targs *a, int line) { return mod_is(rt, v, tv_int(2), 0, line); }
static bool t_divisibleby(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return mod_is(rt, v, targ(a, 0, "num", tv_undef(rt, "divisibleby needs a number")), 0, line);
}

static struct tv other(struct trt *rt, struct targs *a, const char *test, int line)
{
    if (a->n < 1)
        trt_fail(rt, line, "'is %s' needs a value to compare with", test);
    return a->pos[0];
}

static bool t_eq(struct trt *rt, struct tv v, struct targs *a, int line) { return tv_equal(rt, v, other(rt, a, "eq", line)); }
static bool t_ne(struct trt *rt, struct tv v, struct targs *a, int line) { return !tv_equal(rt, v, other(rt, a, "ne", line)); }
static bool t_lt(struct trt *rt, struct tv v, struct targs *a, int line) { return tv_compare(rt, v, other(rt, a, "lt", line), line) < 0; }
static bool t_le(struct trt *rt, struct tv v, struct targs *a, int line) { return tv_compare(rt, v, other(rt, a, "le", line), line) <= 0; }
static bool t_gt(struct trt *rt, struct tv v, struct targs *a, int line) { return tv_compare(rt, v, other(rt, a, "gt", line), line) > 0; }
static bool t_ge(struct trt *rt, struct tv v, struct targs *a, int line) { return tv_compare(rt, v, other(rt, a, "ge", line), line) >= 0; }

static bool t_in(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return tcontains(rt, other(rt, a, "in", line), v, line);
}

static bool case_test(struct tv v, bool upper) { return v.t == TV_STR && tstr_is_case(v.s, upper); }
static bool t_lower(struct trt *rt, struct tv v, struct targs *a, int line) { return case_test(v, false); }
static bool t_upper(struct trt *rt, struct tv v, struct targs *a, int line) { return case_test(v, true); }

static const struct ttest tests[] = {
    { "defined", t_defined }, { "undefined", t_undefined }, { "none", t_none }, { "boolean", t_boolean },
    { "true", t_true }, { "false", t_false }, { "string", t_string }, { "number", t_number },
    { "integer", t_integer }, { "float", t_float }, { "mapping", t_mapping }, { "iterable", t_iterable },
    { "sequence", t_sequence }, { "callable", t_callable }, { "odd", t_odd }, { "even", t_even },
    { "divisibleby", t_divisibleby }, { "eq", t_eq }, { "equalto", t_eq }, { "==", t_eq }, { "ne", t_ne },
    { "!=", t_ne }, { "lt", t_lt }, { "lessthan", t_lt }, { "<", t_lt }, { "le", t_le }, { "<=", t_le },
    { "gt", t_gt }, { "greaterthan", t_gt }, { ">", t_gt }, { "ge", t_ge }, { ">=", t_ge }, { "in", t_in },
    { "lower", t_lower }, { "upper", t_upper }, { NULL, NULL },
};

const struct ttest *ttest_find(const char *name)
{
    for (int i = 0; tests[i].name; i++)
        if (!strcmp(tests[i].name, name))
            return &tests[i];
    return NULL;
}

bool ttest_apply(struct trt *rt, const char *name, struct tv v, struct targs *a, int line)
{
    const struct ttest *t = ttest_find(name);
    if (!t)
        trt_fail(rt, line, "unknown test '%s'", name);
    return t->fn(rt, v, a, line);
}
