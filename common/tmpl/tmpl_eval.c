/* tmpl_eval.c — evaluates expressions with Python's semantics, as Jinja2 does: attribute and item
 * lookup that yields Undefined when missing, and/or returning an operand, chained comparisons,
 * int/float arithmetic, string and list concatenation and repetition, slicing, calls. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

static const char *obj_name(struct tv v)
{
    switch (v.t) {
    case TV_DICT: return "dict object";
    case TV_LIST: return v.l->tuple ? "tuple object" : "list object";
    case TV_STR: return "str object";
    case TV_NONE: return "None";
    case TV_NS: return "namespace object";
    default: return tv_type_name(v);
    }
}

static bool parse_index(const char *s, long long *out)
{
    char *end;
    if (!*s)
        return false;
    *out = strtoll(s, &end, 10);
    return *end == 0;
}

static struct tv index_seq(struct trt *rt, struct tv obj, long long i)
{
    size_t n = obj.t == TV_LIST ? obj.l->n : tv_utf8_len(obj.s->s, obj.s->len);
    long long k = i < 0 ? i + (long long)n : i;
    if (k < 0 || k >= (long long)n)
        return tv_undef(rt, "%s has no element %lld", obj_name(obj), i);
    if (obj.t == TV_LIST)
        return obj.l->v[k];
    size_t a = tv_utf8_offset(obj.s->s, obj.s->len, (size_t)k);
    size_t b = tv_utf8_offset(obj.s->s, obj.s->len, (size_t)k + 1);
    return tv_str(rt, obj.s->s + a, b - a);
}

struct tv tgetattr(struct trt *rt, struct tv obj, const char *name, int line)
{
    long long idx;
    tv_need_defined(rt, obj, line);
    if (obj.t == TV_DICT || obj.t == TV_NS) {
        struct tv *v = tv_dict_get(obj.d, name, strlen(name));
        if (v)
            return *v;
    } else if ((obj.t == TV_LIST || obj.t == TV_STR) && parse_index(name, &idx)) {
        return index_seq(rt, obj, idx);
    }
    return tv_undef(rt, "'%s' has no attribute '%s'", obj_name(obj), name);
}

struct tv tgetitem(struct trt *rt, struct tv obj, struct tv key, int line)
{
    tv_need_defined(rt, obj, line);
    if (key.t == TV_UNDEF)
        return tv_undef(rt, "'%s' has no item for an undefined key", obj_name(obj));
    if ((obj.t == TV_LIST || obj.t == TV_STR) && (key.t == TV_INT || key.t == TV_BOOL))
        return index_seq(rt, obj, key.t == TV_INT ? key.i : key.b);
    if (key.t == TV_STR)
        return tgetattr(rt, obj, key.s->s, line);
    if (obj.t == TV_DICT || obj.t == TV_NS)
        return tv_undef(rt, "'%s' has no key of type %s", obj_name(obj), tv_type_name(key));
    return tv_undef(rt, "'%s' cannot be indexed with a %s", obj_name(obj), tv_type_name(key));
}

/* Python's slice.indices(): clamps start/stop for a sequence of length n; false on bad indices. */
static bool slice_bounds(struct tv *parts, long long n, long long *start, long long *stop, long long *step)
{
    long long v[3];
    for (int k = 0; k < 3; k++) {
        if (parts[k].t == TV_NONE || parts[k].t == TV_UNDEF)
            v[k] = LLONG_MIN;
        else if (parts[k].t == TV_INT || parts[k].t == TV_BOOL)
            v[k] = parts[k].t == TV_INT ? parts[k].i : parts[k].b;
        else
            return false;
    }
    *step = v[2] == LLONG_MIN ? 1 : v[2];
    if (*step == 0)
        return false;
    long long lo = *step < 0 ? -1 : 0, hi = *step < 0 ? n - 1 : n;
    for (int k = 0; k < 2; k++) {
        long long x = v[k];
        if (x == LLONG_MIN)
            x = (k == 0) == (*step > 0) ? lo : hi;
        else if (x < 0)
            x = x + n < lo ? lo : x + n;
        else if (x > hi)
            x = hi;
        *(k ? stop : start) = x;
    }
    return true;
}

/* Code point offsets computed once, so slicing a long string stays linear. */
static struct tv slice_str(struct trt *rt, const struct tstr *s, long long start, long long stop, long long step,
                           long long n)
{
    size_t *off = trt_alloc_raw(rt, (size_t)(n + 1) * sizeof(*off)), i = 0;
    for (long long k = 0; k <= n; k++) {
        off[k] = i;
        if (i < s->len)
            tv_utf8_next(s->s, s->len, &i);
    }
    struct tbuf b = { 0 };
    tbuf_put(rt, &b, "", 0);
    for (long long k = start; step > 0 ? k < stop : k > stop; k += step)
        tbuf_put(rt, &b, s->s + off[k], off[k + 1] - off[k]);
    return tbuf_take(rt, &b);
}

static struct tv eval_slice(struct trt *rt, const struct tnode *e)
{
    struct tv obj = teval(rt, e->a), parts[3];
    for (int k = 0; k < 3; k++)
        parts[k] = e->items[k] ? teval(rt, e->items[k]) : tv_none();
    tv_need_defined(rt, obj, e->line);
    if (obj.t != TV_LIST && obj.t != TV_STR) /* Jinja slices with Python's [] directly: a TypeError */
        trt_fail(rt, e->line, "a %s cannot be sliced", tv_type_name(obj));
    long long n = obj.t == TV_LIST ? (long long)obj.l->n : (long long)tv_utf8_len(obj.s->s, obj.s->len);
    long long start, stop, step;
    if (!slice_bounds(parts, n, &start, &stop, &step))
        trt_fail(rt, e->line, "slice indices must be integers or none, and the step not zero");
    if (obj.t == TV_STR)
        return slice_str(rt, obj.s, start, stop, step, n);
    struct tv out = tv_list(rt, 0);
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step)
        tv_list_push(rt, out.l, obj.l->v[i]);
    out.l->tuple = obj.l->tuple;
    return out;
}

/* Positional arguments, with *list spread in place. */
static void eval_positional(struct trt *rt, const struct tnode *e, struct targs *a)
{
    struct tv *vals = trt_alloc(rt, (e->n + 1) * sizeof(*vals));
    size_t total = 0;
    for (int i = 0; i < e->n; i++) {
        vals[i] = teval(rt, e->items[i]->kind == E_SPREAD ? e->items[i]->a : e->items[i]);
        if (e->items[i]->kind == E_SPREAD && vals[i].t != TV_LIST)
            trt_fail(rt, e->line, "cannot unpack a %s with *", tv_type_name(vals[i]));
        total += e->items[i]->kind == E_SPREAD ? vals[i].l->n : 1;
    }
    if (total > 4096)
        trt_fail(rt, e->line, "more than 4096 call arguments");
    a->pos = trt_alloc(rt, (total + 1) * sizeof(*a->pos));
    for (int i = 0; i < e->n; i++) {
        if (e->items[i]->kind != E_SPREAD)
            a->pos[a->n++] = vals[i];
        else
            for (size_t k = 0; k < vals[i].l->n; k++)
                a->pos[a->n++] = vals[i].l->v[k];
    }
}

static void add_keyword(struct trt *rt, struct targs *a, const char *name, struct tv v, int line)
{
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->kwname[i], name))
            trt_fail(rt, line, "got multiple values for keyword argument '%s'", name);
    a->kwname[a->nkw] = name;
    a->kw[a->nkw++] = v;
}

/* Keyword arguments, with **mapping spread in place (its entry in kwname is NULL). */
static void eval_keywords(struct trt *rt, const struct tnode *e, struct targs *a)
{
    struct tv *vals = trt_alloc(rt, (size_t)(e->nkw + 1) * sizeof(*vals));
    size_t total = 0;
    for (int i = 0; i < e->nkw; i++) {
        vals[i] = teval(rt, e->kwname[i] ? e->kw[i] : e->kw[i]->a);
        if (!e->kwname[i] && vals[i].t != TV_DICT)
            trt_fail(rt, e->line, "the argument after ** must be a mapping, not %s", tv_type_name(vals[i]));
        total += e->kwname[i] ? 1 : vals[i].d->n;
    }
    if (total > 4096)
        trt_fail(rt, e->line, "more than 4096 keyword arguments");
    a->kwname = trt_alloc(rt, (total + 1) * sizeof(*a->kwname));
    a->kw = trt_alloc(rt, (total + 1) * sizeof(*a->kw));
    for (int i = 0; i < e->nkw; i++) {
        if (e->kwname[i])
            add_keyword(rt, a, e->kwname[i], vals[i], e->line);
        else
            for (size_t k = 0; k < vals[i].d->n; k++)
                add_keyword(rt, a, vals[i].d->k[k]->s, vals[i].d->v[k], e->line);
    }
}

struct targs teval_args(struct trt *rt, const struct tnode *e)
{
    struct targs a = { 0 };
    eval_positional(rt, e, &a);
    eval_keywords(rt, e, &a);
    return a;
}

struct tv tcall_value(struct trt *rt, struct tv callee, struct targs *a, int line)
{
    tv_need_defined(rt, callee, line);
    if (callee.t == TV_FUNC)
        return callee.fn->fn(rt, a, line);
    if (callee.t == TV_MACRO)
        return tcall_macro(rt, callee.clo, a, NULL, line);
    trt_fail(rt, line, "a %s is not callable", tv_type_name(callee));
}

static struct tv eval_call(struct trt *rt, const struct tnode *e)
{
    if (e->a->kind == E_ATTR) { /* obj.method(...) */
        struct tv obj = teval(rt, e->a->a);
        if (obj.t != TV_UNDEF && tmethod_exists(obj, e->a->name)) {
            struct targs a = teval_args(rt, e);
            struct tv out;
            tmethod_call(rt, obj, e->a->name, &a, e->line, &out);
            return out;
        }
        struct tv callee = tgetattr(rt, obj, e->a->name, e->line);
        if (callee.t == TV_UNDEF && obj.t != TV_DICT && obj.t != TV_NS)
            trt_fail(rt, e->line, "%s has no method '%s'", obj_name(obj), e->a->name);
        struct targs a = teval_args(rt, e);
        return tcall_value(rt, callee, &a, e->line);
    }
    struct tv callee = teval(rt, e->a);
    struct targs a = teval_args(rt, e);
    return tcall_value(rt, callee, &a, e->line);
}

bool tcontains(struct trt *rt, struct tv hay, struct tv needle, int line)
{
    switch (hay.t) {
    case TV_UNDEF: return false; /* Undefined iterates as empty */
    case TV_STR:
        if (needle.t != TV_STR)
            trt_fail(rt, line, "'in <string>' needs a string on the left, not a %s", tv_type_name(needle));
        tcharge(rt, hay.s->len / 16, line);
        return needle.s->len == 0 || memmem(hay.s->s, hay.s->len, needle.s->s, needle.s->len);
    case TV_LIST:
        tcharge(rt, hay.l->n, line);
        for (size_t i = 0; i < hay.l->n; i++)
            if (tv_equal(rt, hay.l->v[i], needle))
                return true;
        return false;
    case TV_DICT: case TV_NS:
        if (needle.t == TV_LIST || needle.t == TV_DICT || needle.t == TV_NS)
            trt_fail(rt, line, "'in <dict>' needs a hashable key, not a %s", tv_type_name(needle));
        return needle.t == TV_STR && tv_dict_get(hay.d, needle.s->s, needle.s->len);
    default:
        trt_fail(rt, line, "'in' needs a string, list or dict on the right, not a %s", tv_type_name(hay));
    }
}

static bool compare_one(struct trt *rt, const char *op, struct tv a, struct tv b, int line)
{
    if (!strcmp(op, "==")) return tv_equal(rt, a, b);
    if (!strcmp(op, "!=")) return !tv_equal(rt, a, b);
    if (!strcmp(op, "in")) return tcontains(rt, b, a, line);
    if (!strcmp(op, "not in")) return !tcontains(rt, b, a, line);
    int c = tv_compare(rt, a, b, line);
    if (!strcmp(op, "<")) return c < 0;
    if (!strcmp(op, ">")) return c > 0;
    if (!strcmp(op, "<=")) return c <= 0;
    return c >= 0;
}

static struct tv eval_compare(struct trt *rt, const struct tnode *e)
{
    struct tv left = teval(rt, e->items[0]);
    for (int i = 1; i < e->n; i++) {
        struct tv right = teval(rt, e->items[i]);
        if (!compare_one(rt, e->ops[i - 1], left, right, e->items[i]->line))
            return tv_bool(false);
        left = right;
    }
    return tv_bool(true);
}

static struct tv eval_seq(struct trt *rt, const struct tnode *e)
{
    if (e->kind == E_DICT) {
        struct tv d = tv_dict(rt, e->n);
        for (int i = 0; i < e->n; i++) {
            struct tv k = teval(rt, e->items[i]);
            if (k.t != TV_STR)
                trt_fail(rt, e->line, "dict literal keys must be strings here, not %s", tv_type_name(k));
            tv_dict_set(rt, d.d, k.s->s, k.s->len, teval(rt, e->kw[i]));
        }
        return d;
    }
    struct tv l = tv_list(rt, e->n);
    for (int i = 0; i < e->n; i++)
        tv_list_push(rt, l.l, teval(rt, e->items[i]));
    l.l->tuple = e->kind == E_TUPLE;
    return l;
}

static struct tv eval_unary(struct trt *rt, const struct tnode *e)
{
    struct tv v = teval(rt, e->a);
    tv_need_defined(rt, v, e->line);
    if (v.t == TV_BOOL)
        v = tv_int(v.b);
    if (v.t == TV_INT)
        return e->kind == E_NEG ? tbinop(rt, "-", tv_int(0), v, e->line) : v; /* overflow-checked */
    if (v.t == TV_FLOAT)
        return e->kind == E_NEG ? tv_float(-v.f) : v;
    trt_fail(rt, e->line, "bad operand type for unary %c: %s", e->kind == E_NEG ? '-' : '+', tv_type_name(v));
}

static struct tv eval_special(struct trt *rt, const struct tnode *e)
{
    switch (e->kind) {
    case E_FILTER: {
        struct tv v = teval(rt, e->a);
        struct targs a = teval_args(rt, e);
        return e->filter->fn(rt, v, &a, e->line);
    }
    case E_TEST: {
        struct tv v = teval(rt, e->a);
        struct targs a = teval_args(rt, e);
        return tv_bool(e->test->fn(rt, v, &a, e->line) != e->negate);
    }
    case E_COND:
        if (tv_truthy(teval(rt, e->b)))
            return teval(rt, e->a);
        return e->c ? teval(rt, e->c) : tv_undef(rt, "the conditional expression had no else branch");
    default:
        trt_fail(rt, e->line, "internal error: cannot evaluate node kind %d", e->kind);
    }
}

struct tv teval(struct trt *rt, const struct tnode *e)
{
    struct tv a;
    switch (e->kind) {
    case E_LIT: return e->lit;
    case E_NAME: return tlookup(rt, e->name);
    case E_ATTR: return tgetattr(rt, teval(rt, e->a), e->name, e->line);
    case E_INDEX: a = teval(rt, e->a); return tgetitem(rt, a, teval(rt, e->b), e->line);
    case E_SLICE: return eval_slice(rt, e);
    case E_CALL: return eval_call(rt, e);
    case E_NEG: case E_POS: return eval_unary(rt, e);
    case E_NOT: return tv_bool(!tv_truthy(teval(rt, e->a)));
    case E_AND: a = teval(rt, e->a); return tv_truthy(a) ? teval(rt, e->b) : a;
    case E_OR: a = teval(rt, e->a); return tv_truthy(a) ? a : teval(rt, e->b);
    case E_BIN: a = teval(rt, e->a); return tbinop(rt, e->op, a, teval(rt, e->b), e->line);
    case E_COMPARE: return eval_compare(rt, e);
    case E_LIST: case E_TUPLE: case E_DICT: return eval_seq(rt, e);
    default: return eval_special(rt, e);
    }
}
