/* tmpl_arith.c — binary operators with Python's rules: int stays int (overflow is an error, not a wrap),
 * '/' gives a float, '//' and '%' floor, '+' joins strings and lists, '*' repeats them, '~' joins the
 * str() of both sides, and string % args formats (tmpl_format.c). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "tmpl_internal.h"

static bool is_num(struct tv v) { return v.t == TV_INT || v.t == TV_FLOAT || v.t == TV_BOOL; }
static bool is_intlike(struct tv v) { return v.t == TV_INT || v.t == TV_BOOL; }
static long long as_int(struct tv v) { return v.t == TV_INT ? v.i : v.b; }
static double as_float(struct tv v) { return v.t == TV_FLOAT ? v.f : (double)as_int(v); }

static _Noreturn void bad_operands(struct trt *rt, const char *op, struct tv a, struct tv b, int line)
{
    trt_fail(rt, line, "unsupported operand types for %s: %s and %s", op, tv_type_name(a), tv_type_name(b));
}

static struct tv int_op(struct trt *rt, char op, long long x, long long y, int line)
{
    long long r = 0;
    bool overflow = false;
    switch (op) {
    case '+': overflow = __builtin_add_overflow(x, y, &r); break;
    case '-': overflow = __builtin_sub_overflow(x, y, &r); break;
    case '*': overflow = __builtin_mul_overflow(x, y, &r); break;
    case '/': case '%':
        if (y == 0)
            trt_fail(rt, line, "integer division or modulo by zero");
        if (x == LLONG_MIN && y == -1)
            overflow = true;
        else if (op == '/')
            r = x / y - ((x % y != 0) && ((x < 0) != (y < 0))); /* floor division */
        else
            r = x % y + ((x % y != 0) && ((x < 0) != (y < 0)) ? y : 0);
        break;
    }
    if (overflow)
        trt_fail(rt, line, "integer overflow in '%c'", op);
    return tv_int(r);
}

static struct tv float_op(struct trt *rt, const char *op, double x, double y, int line)
{
    if (!strcmp(op, "+")) return tv_float(x + y);
    if (!strcmp(op, "-")) return tv_float(x - y);
    if (!strcmp(op, "*")) return tv_float(x * y);
    if (y == 0 && strcmp(op, "**"))
        trt_fail(rt, line, "float division by zero");
    if (!strcmp(op, "/")) return tv_float(x / y);
    if (!strcmp(op, "//")) return tv_float(floor(x / y));
    if (!strcmp(op, "%")) {
        double m = fmod(x, y);
        return tv_float(m != 0 && ((m < 0) != (y < 0)) ? m + y : m);
    }
    return tv_float(pow(x, y));
}

static struct tv int_pow(struct trt *rt, long long x, long long y, int line)
{
    if (y < 0)
        return tv_float(pow((double)x, (double)y));
    if (x == 0 || x == 1)
        return tv_int(y == 0 ? 1 : x);
    if (x == -1)
        return tv_int(y % 2 ? -1 : 1);
    long long r = 1; /* |x| >= 2: overflows within 63 steps */
    for (long long i = 0; i < y; i++)
        if (__builtin_mul_overflow(r, x, &r))
            trt_fail(rt, line, "integer overflow in '**'");
    return tv_int(r);
}

static struct tv numeric(struct trt *rt, const char *op, struct tv a, struct tv b, int line)
{
    if (!strcmp(op, "/"))
        return float_op(rt, op, as_float(a), as_float(b), line);
    if (is_intlike(a) && is_intlike(b)) {
        if (!strcmp(op, "**"))
            return int_pow(rt, as_int(a), as_int(b), line);
        return int_op(rt, !strcmp(op, "//") ? '/' : op[0], as_int(a), as_int(b), line);
    }
    return float_op(rt, op, as_float(a), as_float(b), line);
}

static struct tv repeat(struct trt *rt, struct tv seq, long long n, int line)
{
    if (n < 0 || (seq.t == TV_STR ? seq.s->len == 0 : seq.l->n == 0))
        n = 0; /* also what makes '' * 10**18 instant */
    size_t unit = seq.t == TV_STR ? seq.s->len : seq.l->n * sizeof(struct tv);
    if (unit && (unsigned long long)n > rt->lim.max_output / unit + 1)
        trt_fail(rt, line, "repetition by %lld would exceed max_output", n);
    if (seq.t == TV_STR) {
        struct tbuf b = { 0 };
        for (long long i = 0; i < n; i++)
            tbuf_put(rt, &b, seq.s->s, seq.s->len);
        return tbuf_take(rt, &b);
    }
    struct tv out = tv_list(rt, seq.l->n * n);
    for (long long i = 0; i < n; i++)
        for (size_t k = 0; k < seq.l->n; k++)
            tv_list_push(rt, out.l, seq.l->v[k]);
    return out;
}

static struct tv concat(struct trt *rt, struct tv a, struct tv b, int line)
{
    if (a.t == TV_STR && b.t == TV_STR)
        return tv_str_concat(rt, a.s, b.s);
    if (a.t == TV_LIST && b.t == TV_LIST) {
        struct tv out = tv_list(rt, a.l->n + b.l->n);
        for (size_t i = 0; i < a.l->n; i++)
            tv_list_push(rt, out.l, a.l->v[i]);
        for (size_t i = 0; i < b.l->n; i++)
            tv_list_push(rt, out.l, b.l->v[i]);
        out.l->tuple = a.l->tuple;
        return out;
    }
    bad_operands(rt, "+", a, b, line);
}

struct tv tbinop(struct trt *rt, const char *op, struct tv a, struct tv b, int line)
{
    if (!strcmp(op, "~")) {
        struct tv x = a.t == TV_UNDEF ? tv_str(rt, "", 0) : tv_to_str(rt, a, line);
        struct tv y = b.t == TV_UNDEF ? tv_str(rt, "", 0) : tv_to_str(rt, b, line);
        return tv_str_concat(rt, x.s, y.s);
    }
    tv_need_defined(rt, a, line);
    tv_need_defined(rt, b, line);
    if (is_num(a) && is_num(b))
        return numeric(rt, op, a, b, line);
    if (!strcmp(op, "+"))
        return concat(rt, a, b, line);
    if (!strcmp(op, "*") && (a.t == TV_STR || a.t == TV_LIST) && is_intlike(b))
        return repeat(rt, a, as_int(b), line);
    if (!strcmp(op, "*") && (b.t == TV_STR || b.t == TV_LIST) && is_intlike(a))
        return repeat(rt, b, as_int(a), line);
    if (!strcmp(op, "%") && a.t == TV_STR)
        return tformat_percent(rt, a.s, b, line);
    bad_operands(rt, op, a, b, line);
}
