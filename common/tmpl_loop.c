/* tmpl_loop.c — the for statement: what a value iterates as (list items, dict keys, string characters,
 * Undefined as nothing), the loop filter ("for x in xs if cond"), the `loop` variable (index, index0,
 * revindex, revindex0, first, last, length, previtem, nextitem, depth, depth0), else, break and
 * continue. */
#include <string.h>

#include "tmpl_internal.h"

struct tv titer(struct trt *rt, struct tv v, int line)
{
    switch (v.t) {
    case TV_UNDEF: return tv_list(rt, 0);
    case TV_LIST: return v;
    case TV_DICT: {
        struct tv keys = tv_list(rt, v.d->n);
        for (size_t i = 0; i < v.d->n; i++)
            tv_list_push(rt, keys.l, (struct tv){ .t = TV_STR, .s = v.d->k[i] });
        return keys;
    }
    case TV_STR: {
        struct tv chars = tv_list(rt, v.s->len);
        size_t i = 0;
        while (i < v.s->len) {
            size_t start = i;
            tv_utf8_next(v.s->s, v.s->len, &i);
            tv_list_push(rt, chars.l, tv_str(rt, v.s->s + start, i - start));
        }
        return chars;
    }
    default:
        trt_fail(rt, line, "a %s is not iterable", tv_type_name(v));
    }
}

/* Items that pass the loop filter, which sees each candidate bound to the target. */
static struct tv filter_items(struct trt *rt, const struct tnode *s, struct tv items)
{
    if (!s->c)
        return items;
    struct tv kept = tv_list(rt, items.l->n);
    struct tframe *outer = rt->frame;
    for (size_t i = 0; i < items.l->n; i++) {
        tstep(rt, s->line);
        rt->frame = tpush_frame(rt, outer);
        tbind(rt, s->a, items.l->v[i], s->line);
        if (tv_truthy(teval(rt, s->c)))
            tv_list_push(rt, kept.l, items.l->v[i]);
        rt->frame = outer;
    }
    return kept;
}

static void set_loop_var(struct trt *rt, struct tdict *loop, const char *k, struct tv v)
{
    tv_dict_set(rt, loop, k, strlen(k), v);
}

static struct tv make_loop(struct trt *rt, struct tlist *items, size_t i)
{
    size_t n = items->n;
    struct tv loop = tv_dict(rt, 12);
    set_loop_var(rt, loop.d, "index", tv_int((long long)i + 1));
    set_loop_var(rt, loop.d, "index0", tv_int((long long)i));
    set_loop_var(rt, loop.d, "revindex", tv_int((long long)(n - i)));
    set_loop_var(rt, loop.d, "revindex0", tv_int((long long)(n - i - 1)));
    set_loop_var(rt, loop.d, "first", tv_bool(i == 0));
    set_loop_var(rt, loop.d, "last", tv_bool(i + 1 == n));
    set_loop_var(rt, loop.d, "length", tv_int((long long)n));
    set_loop_var(rt, loop.d, "depth", tv_int(1));
    set_loop_var(rt, loop.d, "depth0", tv_int(0));
    set_loop_var(rt, loop.d, "previtem", i ? items->v[i - 1] : tv_undef(rt, "there is no previous item"));
    set_loop_var(rt, loop.d, "nextitem", i + 1 < n ? items->v[i + 1] : tv_undef(rt, "there is no next item"));
    return loop;
}

void texec_for(struct trt *rt, const struct tnode *s)
{
    struct tv items = filter_items(rt, s, titer(rt, teval(rt, s->b), s->line));
    struct tframe *outer = rt->frame;
    rt->loops++;
    for (size_t i = 0; i < items.l->n; i++) {
        tstep(rt, s->line);
        rt->frame = tpush_frame(rt, outer);
        tbind(rt, s->a, items.l->v[i], s->line);
        tv_dict_set(rt, &rt->frame->vars, "loop", 4, make_loop(rt, items.l, i));
        texec_list(rt, s->body);
        rt->frame = outer;
        int ctl = rt->loop_ctl;
        rt->loop_ctl = 0;
        if (ctl == 1)
            break;
    }
    rt->loops--;
    if (items.l->n == 0)
        texec_list(rt, s->orelse);
}
