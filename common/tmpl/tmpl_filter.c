/* tmpl_filter.c — Jinja's filters on single values (strings, numbers, conversions, default, tojson,
 * first/last/length) and the filter registry. Filters on sequences live in tmpl_filter_seq.c.
 * As in Jinja, string filters see Undefined as "" (soft_str), length sees it as 0. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

/* Every filter here has the signature of the filter table (runtime, value, arguments, line); the
 * simple ones need only some of them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Jinja's soft_str: Undefined is "", everything else str(). */
static struct tstr *sstr(struct trt *rt, struct tv v, int line)
{
    return v.t == TV_UNDEF ? tv_str(rt, "", 0).s : tv_to_str(rt, v, line).s;
}

static struct tv f_trim(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "chars", NULL };
    targs_check(rt, a, "trim", 1, kw, line);
    struct tv c = targ(a, 0, "chars", tv_none());
    return tstr_strip(rt, sstr(rt, v, line), c.t == TV_NONE ? NULL : targ_str(rt, c, "trim chars", line), 3);
}

static struct tv f_upper(struct trt *rt, struct tv v, struct targs *a, int line) { return tstr_case(rt, sstr(rt, v, line), TCASE_UPPER); }
static struct tv f_lower(struct trt *rt, struct tv v, struct targs *a, int line) { return tstr_case(rt, sstr(rt, v, line), TCASE_LOWER); }
static struct tv f_capitalize(struct trt *rt, struct tv v, struct targs *a, int line) { return tstr_case(rt, sstr(rt, v, line), TCASE_CAPITALIZE); }
static struct tv f_string(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return (struct tv){ .t = TV_STR, .s = sstr(rt, v, line) };
}
/* Markup(value): a string, so `2|safe` no longer compares as a number. */
static struct tv f_safe(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return (struct tv){ .t = TV_STR, .s = sstr(rt, v, line) };
}

static struct tv f_title(struct trt *rt, struct tv v, struct targs *a, int line)
{
    return tstr_case(rt, sstr(rt, v, line), TCASE_JINJA_TITLE);
}

static struct tv f_replace(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "old", "new", "count", NULL };
    targs_check(rt, a, "replace", 3, kw, line);
    struct tv cnt = targ(a, 2, "count", tv_none());
    return tstr_replace(rt, sstr(rt, v, line), targ_str(rt, targ(a, 0, "old", tv_none()), "replace old", line),
                        targ_str(rt, targ(a, 1, "new", tv_none()), "replace new", line), cnt.t == TV_INT ? cnt.i : -1);
}

static struct tv f_length(struct trt *rt, struct tv v, struct targs *a, int line)
{
    switch (v.t) {
    case TV_UNDEF: return tv_int(0);
    case TV_STR: return tv_int((long long)tv_utf8_len(v.s->s, v.s->len));
    case TV_LIST: return tv_int((long long)v.l->n);
    case TV_DICT: return tv_int((long long)v.d->n);
    default: trt_fail(rt, line, "length: a %s has no length", tv_type_name(v));
    }
}

static struct tv f_default(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "default_value", "boolean", NULL };
    targs_check(rt, a, "default", 2, kw, line);
    bool boolean = tv_truthy(targ(a, 1, "boolean", tv_bool(false)));
    if (v.t == TV_UNDEF || (boolean && !tv_truthy(v)))
        return targ(a, 0, "default_value", tv_str(rt, "", 0));
    return v;
}

static struct tv f_tojson(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "ensure_ascii", "indent", "separators", "sort_keys", NULL };
    targs_check(rt, a, "tojson", 4, kw, line);
    struct tv ind = targ(a, 1, "indent", tv_none()), seps = targ(a, 2, "separators", tv_none());
    struct tjson_opts o = { .indent = -1, .item_sep = ", ", .key_sep = ": " };
    o.ensure_ascii = tv_truthy(targ(a, 0, "ensure_ascii", tv_bool(false)));
    o.sort_keys = tv_truthy(targ(a, 3, "sort_keys", tv_bool(false)));
    if (ind.t == TV_INT) {
        if (ind.i < 0 || ind.i > 64)
            trt_fail(rt, line, "tojson: indent %lld is out of range 0..64", ind.i);
        o.indent = (int)ind.i;
        o.item_sep = ","; /* Python switches the item separator when indenting */
    } else if (ind.t != TV_NONE) {
        trt_fail(rt, line, "tojson: indent must be an integer or none");
    }
    if (seps.t == TV_LIST && seps.l->n == 2) {
        o.item_sep = targ_str(rt, seps.l->v[0], "tojson separators", line)->s;
        o.key_sep = targ_str(rt, seps.l->v[1], "tojson separators", line)->s;
    } else if (seps.t != TV_NONE) {
        trt_fail(rt, line, "tojson: separators must be a pair of strings");
    }
    struct tbuf b = { 0 };
    tv_write_json(rt, &b, v, &o, 0, line);
    return tbuf_take(rt, &b);
}

static struct tv f_int(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv dflt = targ(a, 0, "default", tv_int(0));
    tv_need_defined(rt, v, line); /* int(Undefined) raises in Jinja */
    if (v.t == TV_INT) return v;
    if (v.t == TV_BOOL) return tv_int(v.b);
    if (v.t == TV_FLOAT) return isfinite(v.f) && fabs(v.f) < 9.2e18 ? tv_int((long long)v.f) : dflt;
    if (v.t != TV_STR) return dflt;
    char *end;
    struct tstr *s = tstr_strip(rt, v.s, NULL, 3).s;
    long long i = strtoll(s->s, &end, 10);
    if (s->len && *end == 0)
        return tv_int(i);
    double f = strtod(s->s, &end); /* Jinja falls back to int(float(value)) */
    return s->len && *end == 0 && isfinite(f) && fabs(f) < 9.2e18 ? tv_int((long long)f) : dflt;
}

static struct tv f_float(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv dflt = targ(a, 0, "default", tv_float(0.0));
    tv_need_defined(rt, v, line);
    if (v.t == TV_FLOAT) return v;
    if (v.t == TV_INT) return tv_float((double)v.i);
    if (v.t == TV_BOOL) return tv_float(v.b);
    if (v.t != TV_STR) return dflt;
    char *end;
    struct tstr *s = tstr_strip(rt, v.s, NULL, 3).s;
    double f = strtod(s->s, &end);
    return s->len && *end == 0 ? tv_float(f) : dflt;
}

static struct tv f_abs(struct trt *rt, struct tv v, struct targs *a, int line)
{
    if (v.t == TV_BOOL) return tv_int(v.b);
    if (v.t == TV_INT && v.i == LLONG_MIN) trt_fail(rt, line, "abs: integer overflow");
    if (v.t == TV_INT) return tv_int(v.i < 0 ? -v.i : v.i);
    if (v.t == TV_FLOAT) return tv_float(fabs(v.f));
    trt_fail(rt, line, "abs: bad operand %s", tv_type_name(v));
}

static struct tv f_round(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv p = targ(a, 0, "precision", tv_int(0));
    struct tstr *m = targ_str(rt, targ(a, 1, "method", tv_cstr(rt, "common")), "round method", line);
    if (v.t == TV_BOOL)
        v = tv_int(v.b);
    if ((v.t != TV_INT && v.t != TV_FLOAT) || p.t != TV_INT)
        trt_fail(rt, line, "round: needs a number and an integer precision");
    bool common = strcmp(m->s, "floor") && strcmp(m->s, "ceil");
    if (v.t == TV_INT && common && p.i >= 0)
        return v; /* Python's round(int, n) is that int */
    double x = v.t == TV_INT ? (double)v.i : v.f;
    if (p.i > 300 || !isfinite(x))
        return v.t == TV_INT ? v : tv_float(x);
    if (p.i < -300)
        return v.t == TV_INT ? tv_int(0) : tv_float(copysign(0.0, x));
    double scale = pow(10, (double)p.i);
    double r = !common ? (m->s[0] == 'f' ? floor(x * scale) : ceil(x * scale)) : nearbyint(x * scale);
    if (v.t == TV_INT && common) /* round(int, -n) stays an int */
        return fabs(r / scale) < 9.2e18 ? tv_int((long long)(r / scale)) : tv_float(r / scale);
    return tv_float(r / scale);
}

static struct tv f_first_last(struct trt *rt, struct tv v, bool last, int line)
{
    struct tv items;
    if (v.t == TV_LIST)
        items = v;
    else if (v.t == TV_UNDEF)
        return tv_undef(rt, "no %s item: the sequence is undefined", last ? "last" : "first");
    else if (v.t == TV_DICT)
        items = tdict_items(rt, v.d);
    else if (v.t == TV_STR)
        return tgetitem(rt, v, tv_int(last ? -1 : 0), line);
    else
        trt_fail(rt, line, "%s: a %s is not a sequence", last ? "last" : "first", tv_type_name(v));
    if (items.l->n == 0)
        return tv_undef(rt, "no %s item, the sequence was empty", last ? "last" : "first");
    struct tv x = items.l->v[last ? items.l->n - 1 : 0];
    return v.t == TV_DICT ? x.l->v[0] : x;
}

static struct tv f_first(struct trt *rt, struct tv v, struct targs *a, int line) { return f_first_last(rt, v, false, line); }
static struct tv f_last(struct trt *rt, struct tv v, struct targs *a, int line) { return f_first_last(rt, v, true, line); }

static struct tv f_items(struct trt *rt, struct tv v, struct targs *a, int line)
{
    if (v.t == TV_UNDEF)
        return tv_list(rt, 0);
    if (v.t != TV_DICT)
        trt_fail(rt, line, "items: a %s is not a mapping", tv_type_name(v));
    return tdict_items(rt, v.d);
}

static struct tv f_escape(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tstr *s = sstr(rt, v, line);
    struct tbuf b = { 0 };
    for (size_t i = 0; i < s->len; i++) {
        const char *r = s->s[i] == '&' ? "&amp;" : s->s[i] == '<' ? "&lt;" : s->s[i] == '>' ? "&gt;"
                        : s->s[i] == '"' ? "&#34;" : s->s[i] == '\'' ? "&#39;" : NULL;
        if (r)
            tbuf_puts(rt, &b, r);
        else
            tbuf_put(rt, &b, s->s + i, 1);
    }
    return tbuf_take(rt, &b);
}

/* Jinja's indent: lines after the first get the prefix (blank ones only with blank=true), the first
 * too with first=true. Jinja appends "\n" before splitting, so a trailing newline survives. */
static struct tv f_indent(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "width", "first", "blank", NULL };
    targs_check(rt, a, "indent", 3, kw, line);
    struct tv w = targ(a, 0, "width", tv_int(4));
    struct tstr *ind = w.t == TV_STR ? w.s : NULL;
    if (!ind) {
        if (w.t != TV_INT || w.i < 0 || w.i > 256)
            trt_fail(rt, line, "indent: width must be a string or an integer 0..256");
        struct tbuf sp = { 0 };
        for (long long i = 0; i < w.i; i++)
            tbuf_put(rt, &sp, " ", 1);
        ind = tbuf_take(rt, &sp).s;
    }
    bool first = tv_truthy(targ(a, 1, "first", tv_bool(false))), blank = tv_truthy(targ(a, 2, "blank", tv_bool(false)));
    tv_need_defined(rt, v, line);
    if (v.t != TV_STR) /* Jinja's indent takes a string only */
        trt_fail(rt, line, "indent: a %s is not a string", tv_type_name(v));
    struct tstr *s = v.s;
    struct tbuf b = { 0 };
    if (first)
        tbuf_put(rt, &b, ind->s, ind->len);
    /* the pieces of s + "\n" split at "\n", without the empty piece after the final one */
    for (const char *p = s->s, *end = s->s + s->len; p <= end;) {
        const char *nl = memchr(p, '\n', end - p);
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (p != s->s) {
            tbuf_put(rt, &b, "\n", 1);
            if (n || blank)
                tbuf_put(rt, &b, ind->s, ind->len);
        }
        tbuf_put(rt, &b, p, n);
        p += n + 1;
    }
    return tbuf_take(rt, &b);
}

/* Jinja's format filter: "%s, %s"|format(a, b) or "%(x)s"|format(x=1). */
static struct tv f_format(struct trt *rt, struct tv v, struct targs *a, int line)
{
    if (a->n && a->nkw)
        trt_fail(rt, line, "format: positional and keyword arguments cannot be mixed");
    struct tv args = a->nkw ? tv_dict(rt, (size_t)a->nkw) : tv_list(rt, (size_t)a->n + 1);
    for (int i = 0; i < a->nkw; i++)
        tv_dict_set(rt, args.d, a->kwname[i], strlen(a->kwname[i]), a->kw[i]);
    for (int i = 0; !a->nkw && i < a->n; i++)
        tv_list_push(rt, args.l, a->pos[i]);
    if (!a->nkw)
        args.l->tuple = true;
    return tformat_percent(rt, sstr(rt, v, line), args, line);
}

static const struct tfilter filters[] = {
    { "trim", f_trim }, { "upper", f_upper }, { "lower", f_lower }, { "capitalize", f_capitalize },
    { "title", f_title }, { "string", f_string }, { "safe", f_safe }, { "replace", f_replace },
    { "length", f_length }, { "count", f_length }, { "default", f_default }, { "d", f_default },
    { "tojson", f_tojson }, { "int", f_int }, { "float", f_float }, { "abs", f_abs }, { "round", f_round },
    { "first", f_first }, { "last", f_last }, { "items", f_items }, { "escape", f_escape }, { "e", f_escape },
    { "indent", f_indent }, { "format", f_format }, { NULL, NULL },
};

const struct tfilter *tfilter_find(const char *name)
{
    for (int i = 0; filters[i].name; i++)
        if (!strcmp(filters[i].name, name))
            return &filters[i];
    for (int i = 0; tfilters_seq[i].name; i++)
        if (!strcmp(tfilters_seq[i].name, name))
            return &tfilters_seq[i];
    return NULL;
}

struct tv tfilter_apply(struct trt *rt, const char *name, struct tv v, struct targs *a, int line)
{
    const struct tfilter *f = tfilter_find(name);
    if (!f)
        trt_fail(rt, line, "unknown filter '%s'", name);
    return f->fn(rt, v, a, line);
}
