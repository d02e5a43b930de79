/* tmpl_builtin.c — the global functions a chat template can call (range, namespace, dict, and
 * transformers' raise_exception and strftime_now) and the argument helpers every built-in, filter and
 * method uses. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tmpl_internal.h"

struct tv targ(struct targs *a, int i, const char *name, struct tv dflt)
{
    if (i >= 0 && i < a->n)
        return a->pos[i];
    for (int k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kwname[k], name))
            return a->kw[k];
    return dflt;
}

void targs_check(struct trt *rt, struct targs *a, const char *what, int max, const char *const *kw, int line)
{
    if (a->n > max)
        trt_fail(rt, line, "%s takes at most %d positional arguments, %d given", what, max, a->n);
    for (int k = 0; k < a->nkw; k++) {
        bool ok = false;
        for (int j = 0; kw && kw[j]; j++)
            ok |= !strcmp(kw[j], a->kwname[k]);
        if (!ok)
            trt_fail(rt, line, "%s got an unexpected keyword argument '%s'", what, a->kwname[k]);
    }
}

struct tstr *targ_str(struct trt *rt, struct tv v, const char *what, int line)
{
    if (v.t != TV_STR)
        trt_fail(rt, line, "%s must be a string, not %s", what, tv_type_name(v));
    return v.s;
}

static long long int_arg(struct trt *rt, struct tv v, const char *what, int line)
{
    if (v.t == TV_BOOL)
        return v.b;
    if (v.t != TV_INT)
        trt_fail(rt, line, "%s must be an integer, not %s", what, tv_type_name(v));
    return v.i;
}

static struct tv fn_range(struct trt *rt, struct targs *a, int line)
{
    targs_check(rt, a, "range()", 3, NULL, line);
    if (a->n == 0)
        trt_fail(rt, line, "range() needs at least one argument");
    long long start = 0, stop, step = 1;
    if (a->n == 1) {
        stop = int_arg(rt, a->pos[0], "range() stop", line);
    } else {
        start = int_arg(rt, a->pos[0], "range() start", line);
        stop = int_arg(rt, a->pos[1], "range() stop", line);
        if (a->n == 3)
            step = int_arg(rt, a->pos[2], "range() step", line);
    }
    if (step == 0)
        trt_fail(rt, line, "range() step must not be zero");
    unsigned long long count = 0; /* unsigned: stop - start can exceed LLONG_MAX */
    if (step > 0 && stop > start)
        count = ((unsigned long long)stop - (unsigned long long)start - 1) / (unsigned long long)step + 1;
    else if (step < 0 && stop < start)
        count = ((unsigned long long)start - (unsigned long long)stop - 1) / (0ULL - (unsigned long long)step) + 1;
    if (count > (unsigned long long)rt->lim.max_steps)
        trt_fail(rt, line, "range() of %llu items exceeds max_steps", count);
    struct tv l = tv_list(rt, (size_t)count);
    for (long long i = 0; i < (long long)count; i++)
        tv_list_push(rt, l.l, tv_int(start + i * step));
    return l;
}

/* dict(**kw) and namespace(mapping?, **kw): a fresh mapping of the keyword arguments. */
static struct tv make_mapping(struct trt *rt, struct targs *a, const char *what, int line)
{
    struct tv d = tv_dict(rt, a->nkw + 1);
    if (a->n > 1)
        trt_fail(rt, line, "%s takes at most one positional argument", what);
    if (a->n == 1) {
        if (a->pos[0].t != TV_DICT)
            trt_fail(rt, line, "%s: the positional argument must be a mapping, not %s", what,
                     tv_type_name(a->pos[0]));
        for (size_t i = 0; i < a->pos[0].d->n; i++)
            tv_dict_set(rt, d.d, a->pos[0].d->k[i]->s, a->pos[0].d->k[i]->len, a->pos[0].d->v[i]);
    }
    for (int k = 0; k < a->nkw; k++)
        tv_dict_set(rt, d.d, a->kwname[k], strlen(a->kwname[k]), a->kw[k]);
    return d;
}

static struct tv fn_dict(struct trt *rt, struct targs *a, int line) { return make_mapping(rt, a, "dict()", line); }

static struct tv fn_namespace(struct trt *rt, struct targs *a, int line)
{
    struct tv ns = make_mapping(rt, a, "namespace()", line);
    ns.t = TV_NS;
    return ns;
}

static struct tv fn_raise_exception(struct trt *rt, struct targs *a, int line)
{
    struct tv msg = tv_to_str(rt, targ(a, 0, "message", tv_cstr(rt, "")), line);
    trt_fail(rt, line, "raise_exception: %s", msg.s->s);
}

static struct tv fn_strftime_now(struct trt *rt, struct targs *a, int line)
{
    struct tstr *fmt = targ_str(rt, targ(a, 0, "format", tv_undef(rt, "no format")), "strftime_now() format", line);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char out[512];
    size_t n = strftime(out, sizeof(out), fmt->s, &tm);
    if (n == 0 && fmt->len)
        trt_fail(rt, line, "strftime_now(): the format gives an empty or over-long result");
    return tv_str(rt, out, n);
}

void tbuiltins_install(struct trt *rt, struct tdict *globals)
{
    static const struct tfunc fns[] = {
        { "range", fn_range }, { "dict", fn_dict }, { "namespace", fn_namespace },
        { "raise_exception", fn_raise_exception }, { "strftime_now", fn_strftime_now },
    };
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        tv_dict_set(rt, globals, fns[i].name, strlen(fns[i].name), (struct tv){ .t = TV_FUNC, .fn = &fns[i] });
}
