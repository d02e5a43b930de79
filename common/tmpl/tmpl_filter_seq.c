/* tmpl_filter_seq.c — Jinja's filters over sequences: join, list, map, select/reject,
 * selectattr/rejectattr, sort, unique, reverse, dictsort, sum, min, max. Attribute arguments accept
 * dotted paths ("function.name", "0"), as Jinja's attrgetter does. Sorting is stable and, as in Jinja,
 * case-insensitive for strings unless case_sensitive=true. */
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

/* Every filter here has the signature of the filter table (runtime, value, arguments, line); the
 * simple ones need only some of them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static struct tv attr_path(struct trt *rt, struct tv item, const struct tstr *path, int line)
{
    const char *p = path->s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char part[128];
        if (n >= sizeof(part))
            trt_fail(rt, line, "attribute name too long");
        memcpy(part, p, n);
        part[n] = 0;
        char *end;
        long long idx = strtoll(part, &end, 10);
        item = n && *end == 0 ? tgetitem(rt, item, tv_int(idx), line) : tgetattr(rt, item, part, line);
        if (!dot || item.t == TV_UNDEF)
            return item;
        p = dot + 1;
    }
}

/* The arguments after the first `skip` positional ones, for a test or filter named by the caller. */
static struct targs rest_args(struct targs *a, int skip)
{
    struct targs r = *a;
    r.n = a->n > skip ? a->n - skip : 0;
    r.pos = a->pos + (a->n > skip ? skip : a->n);
    return r;
}

static struct tv f_list(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv items = titer(rt, v, line), out = tv_list(rt, items.l->n);
    for (size_t i = 0; i < items.l->n; i++)
        tv_list_push(rt, out.l, items.l->v[i]);
    return out;
}

static struct tv f_join(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "d", "attribute", NULL };
    targs_check(rt, a, "join", 2, kw, line);
    struct tstr *sep = targ_str(rt, targ(a, 0, "d", tv_str(rt, "", 0)), "join separator", line);
    struct tv attr = targ(a, 1, "attribute", tv_none());
    struct tv items = titer(rt, v, line);
    struct tbuf b = { 0 };
    for (size_t i = 0; i < items.l->n; i++) {
        if (i)
            tbuf_put(rt, &b, sep->s, sep->len);
        struct tv x = attr.t == TV_NONE ? items.l->v[i] : attr_path(rt, items.l->v[i], targ_str(rt, attr, "attribute", line), line);
        tv_write_str(rt, &b, x, line);
    }
    return tbuf_take(rt, &b);
}

static struct tv f_map(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv items = tv_truthy(v) ? titer(rt, v, line) : tv_list(rt, 0), out = tv_list(rt, items.l->n);
    struct tv attr = targ(a, -1, "attribute", tv_none());
    if (attr.t == TV_NONE && a->n == 0)
        trt_fail(rt, line, "map: needs a filter name or attribute=");
    struct tstr *name = targ_str(rt, attr.t == TV_NONE ? a->pos[0] : attr, "map argument", line);
    struct targs fargs = rest_args(a, 1);
    fargs.nkw = 0;
    for (size_t i = 0; i < items.l->n; i++) {
        struct tv x = items.l->v[i];
        if (attr.t != TV_NONE) {
            x = attr_path(rt, x, name, line);
            if (x.t == TV_UNDEF)
                x = targ(a, -1, "default", x);
        } else {
            x = tfilter_apply(rt, name->s, x, &fargs, line);
        }
        tv_list_push(rt, out.l, x);
    }
    return out;
}

/* select/reject (by_attr false) and selectattr/rejectattr (by_attr true). */
static struct tv select_items(struct trt *rt, struct tv v, struct targs *a, bool by_attr, bool keep, int line)
{
    /* Jinja guards these with `if value:`, so a false value of any type gives nothing */
    struct tv items = tv_truthy(v) ? titer(rt, v, line) : tv_list(rt, 0), out = tv_list(rt, items.l->n);
    int skip = by_attr ? 1 : 0;
    struct tstr *attr = by_attr ? targ_str(rt, targ(a, 0, NULL, tv_none()), "selectattr attribute", line) : NULL;
    struct tv test = targ(a, skip, NULL, tv_none());
    struct targs targs = rest_args(a, skip + 1);
    for (size_t i = 0; i < items.l->n; i++) {
        tstep(rt, line);
        struct tv x = by_attr ? attr_path(rt, items.l->v[i], attr, line) : items.l->v[i];
        bool pass = test.t == TV_NONE ? tv_truthy(x)
                                      : ttest_apply(rt, targ_str(rt, test, "test name", line)->s, x, &targs, line);
        if (pass == keep)
            tv_list_push(rt, out.l, items.l->v[i]);
    }
    return out;
}

static struct tv f_select(struct trt *rt, struct tv v, struct targs *a, int line) { return select_items(rt, v, a, false, true, line); }
static struct tv f_reject(struct trt *rt, struct tv v, struct targs *a, int line) { return select_items(rt, v, a, false, false, line); }
static struct tv f_selectattr(struct trt *rt, struct tv v, struct targs *a, int line) { return select_items(rt, v, a, true, true, line); }
static struct tv f_rejectattr(struct trt *rt, struct tv v, struct targs *a, int line) { return select_items(rt, v, a, true, false, line); }

struct sort_ctx { struct trt *rt; int line; bool case_sensitive, reverse; };

static struct tv sort_key(const struct sort_ctx *c, struct tv v)
{
    return v.t == TV_STR && !c->case_sensitive ? tstr_case(c->rt, v.s, TCASE_LOWER) : v;
}

static int sort_cmp(const struct sort_ctx *c, struct tv x, struct tv y)
{
    int r = tv_compare(c->rt, sort_key(c, x), sort_key(c, y), c->line);
    return c->reverse ? -r : r;
}

/* Stable merge sort of keys[] carrying vals[] along; tv_compare can fail, so no qsort. */
static void merge_sort(const struct sort_ctx *c, struct tv *keys, struct tv *vals, size_t n, struct tv *tk, struct tv *tvv)
{
    if (n < 2)
        return;
    size_t h = n / 2, i = 0, j = h, k = 0;
    merge_sort(c, keys, vals, h, tk, tvv);
    merge_sort(c, keys + h, vals + h, n - h, tk, tvv);
    while (i < h || j < n) {
        bool left = j >= n || (i < h && sort_cmp(c, keys[i], keys[j]) <= 0);
        tk[k] = left ? keys[i] : keys[j];
        tvv[k++] = left ? vals[i++] : vals[j++];
    }
    memcpy(keys, tk, n * sizeof(*keys));
    memcpy(vals, tvv, n * sizeof(*vals));
}

static struct tv sorted(struct trt *rt, struct tv items, struct tv *keys, bool cs, bool rev, int line)
{
    size_t n = items.l->n;
    struct tv out = tv_list(rt, n);
    memcpy(out.l->v, items.l->v, n * sizeof(struct tv));
    out.l->n = n;
    struct sort_ctx c = { rt, line, cs, rev };
    merge_sort(&c, keys, out.l->v, n, trt_alloc(rt, (n + 1) * sizeof(struct tv)), trt_alloc(rt, (n + 1) * sizeof(struct tv)));
    return out;
}

static struct tv f_sort(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "reverse", "case_sensitive", "attribute", NULL };
    targs_check(rt, a, "sort", 3, kw, line);
    struct tv items = titer(rt, v, line), attr = targ(a, 2, "attribute", tv_none());
    struct tv *keys = trt_alloc(rt, (items.l->n + 1) * sizeof(*keys));
    for (size_t i = 0; i < items.l->n; i++)
        keys[i] = attr.t == TV_NONE ? items.l->v[i] : attr_path(rt, items.l->v[i], targ_str(rt, attr, "attribute", line), line);
    return sorted(rt, items, keys, tv_truthy(targ(a, 1, "case_sensitive", tv_bool(false))),
                  tv_truthy(targ(a, 0, "reverse", tv_bool(false))), line);
}

static struct tv f_dictsort(struct trt *rt, struct tv v, struct targs *a, int line)
{
    static const char *const kw[] = { "case_sensitive", "by", "reverse", NULL };
    targs_check(rt, a, "dictsort", 3, kw, line);
    if (v.t != TV_DICT)
        trt_fail(rt, line, "dictsort: a %s is not a mapping", tv_type_name(v));
    struct tstr *by = targ_str(rt, targ(a, 1, "by", tv_cstr(rt, "key")), "dictsort by", line);
    struct tv items = tdict_items(rt, v.d);
    struct tv *keys = trt_alloc(rt, (items.l->n + 1) * sizeof(*keys));
    for (size_t i = 0; i < items.l->n; i++)
        keys[i] = items.l->v[i].l->v[strcmp(by->s, "value") == 0];
    return sorted(rt, items, keys, tv_truthy(targ(a, 0, "case_sensitive", tv_bool(false))),
                  tv_truthy(targ(a, 2, "reverse", tv_bool(false))), line);
}

static struct tv f_unique(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv items = titer(rt, v, line), out = tv_list(rt, items.l->n), seen = tv_list(rt, items.l->n);
    struct sort_ctx c = { rt, line, tv_truthy(targ(a, 0, "case_sensitive", tv_bool(false))), false };
    struct tv attr = targ(a, 1, "attribute", tv_none());
    for (size_t i = 0; i < items.l->n; i++) {
        struct tv x = attr.t == TV_NONE ? items.l->v[i] : attr_path(rt, items.l->v[i], targ_str(rt, attr, "attribute", line), line);
        struct tv k = sort_key(&c, x);
        bool dup = false;
        tcharge(rt, seen.l->n, line);
        for (size_t j = 0; j < seen.l->n && !dup; j++)
            dup = tv_equal(rt, seen.l->v[j], k);
        if (!dup) {
            tv_list_push(rt, seen.l, k);
            tv_list_push(rt, out.l, items.l->v[i]);
        }
    }
    return out;
}

static struct tv f_reverse(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv items = titer(rt, v, line), out = tv_list(rt, items.l->n);
    for (size_t i = items.l->n; i > 0; i--)
        tv_list_push(rt, out.l, items.l->v[i - 1]);
    if (v.t != TV_STR)
        return out;
    struct tbuf b = { 0 };
    for (size_t i = 0; i < out.l->n; i++)
        tbuf_put(rt, &b, out.l->v[i].s->s, out.l->v[i].s->len);
    return tbuf_take(rt, &b);
}

static struct tv f_sum(struct trt *rt, struct tv v, struct targs *a, int line)
{
    struct tv items = titer(rt, v, line), attr = targ(a, 0, "attribute", tv_none());
    struct tv total = targ(a, 1, "start", tv_int(0));
    for (size_t i = 0; i < items.l->n; i++)
        total = tbinop(rt, "+", total, attr.t == TV_NONE ? items.l->v[i] : attr_path(rt, items.l->v[i], targ_str(rt, attr, "attribute", line), line), line);
    return total;
}

static struct tv min_max(struct trt *rt, struct tv v, struct targs *a, bool max, int line)
{
    struct tv items = titer(rt, v, line), attr = targ(a, 1, "attribute", tv_none());
    struct sort_ctx c = { rt, line, tv_truthy(targ(a, 0, "case_sensitive", tv_bool(false))), false };
    if (items.l->n == 0)
        return tv_undef(rt, "no %s item, the sequence was empty", max ? "largest" : "smallest");
    size_t best = 0;
    for (size_t i = 1; i < items.l->n; i++) {
        struct tv x = items.l->v[i], y = items.l->v[best];
        if (attr.t != TV_NONE) {
            x = attr_path(rt, x, targ_str(rt, attr, "attribute", line), line);
            y = attr_path(rt, y, targ_str(rt, attr, "attribute", line), line);
        }
        int r = sort_cmp(&c, x, y);
        if (max ? r > 0 : r < 0)
            best = i;
    }
    return items.l->v[best];
}

static struct tv f_min(struct trt *rt, struct tv v, struct targs *a, int line) { return min_max(rt, v, a, false, line); }
static struct tv f_max(struct trt *rt, struct tv v, struct targs *a, int line) { return min_max(rt, v, a, true, line); }

const struct tfilter tfilters_seq[] = {
    { "list", f_list }, { "join", f_join }, { "map", f_map }, { "select", f_select }, { "reject", f_reject },
    { "selectattr", f_selectattr }, { "rejectattr", f_rejectattr }, { "sort", f_sort },
    { "dictsort", f_dictsort }, { "unique", f_unique }, { "reverse", f_reverse }, { "sum", f_sum },
    { "min", f_min }, { "max", f_max }, { NULL, NULL },
};
