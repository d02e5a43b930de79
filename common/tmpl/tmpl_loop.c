/* tmpl_loop.c — the for statement: what a value iterates as (list items, dict keys, string characters,
 * Undefined as nothing), the loop filter ("for x in xs if cond"), the `loop` variable (index, index0,
 * revindex, revindex0, first, last, length, previtem, nextitem, depth, depth0), else, break and
 * continue. */
#include <string.h>

#include "tmpl_internal.h"

struct tv titer(struct trt *rt, struct tv v, int line)
{
    tcharge(rt, v.t == TV_LIST ? v.l->n : v.t == TV_DICT ? v.d->n : v.t == TV_STR ? v.s->len : 0, line);
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

enum { L_INDEX, L_INDEX0, L_REVINDEX, L_REVINDEX0, L_FIRST, L_LAST, L_LENGTH, L_DEPTH, L_DEPTH0, L_PREV, L_NEXT, L_N };

/* One `loop` mapping per for statement, its values updated in place each iteration. */
static struct tv make_loop(struct trt *rt)
{
    static const char *const keys[L_N] = { "index", "index0", "revindex", "revindex0", "first", "last",
                                           "length", "depth", "depth0", "previtem", "nextitem" };
    struct tv loop = tv_dict(rt, L_N);
    for (int k = 0; k < L_N; k++)
        tv_dict_set(rt, loop.d, keys[k], strlen(keys[k]), tv_int(k == L_DEPTH));
    loop.d->is_loop = true;
    return loop;
}

/* loop.cycle(a, b, ...) picks by index0; loop.changed(x, ...) is true when its arguments differ from
 * the previous call's, as in Jinja. */
bool tloop_method(struct trt *rt, struct tdict *loop, const char *name, struct targs *a, int line, struct tv *out)
{
    struct tv args = tv_list(rt, (size_t)a->n + 1);
    for (int i = 0; i < a->n; i++)
        tv_list_push(rt, args.l, a->pos[i]);
    if (!strcmp(name, "cycle")) {
        if (a->n == 0)
            trt_fail(rt, line, "loop.cycle() needs at least one item");
        *out = a->pos[loop->v[L_INDEX0].i % a->n];
        return true;
    }
    if (!strcmp(name, "changed")) {
        *out = tv_bool(!loop->changed || !tv_equal(rt, *loop->changed, args));
        loop->changed = trt_alloc(rt, sizeof(*loop->changed));
        *loop->changed = args;
        return true;
    }
    return false;
}

static void update_loop(struct tdict *loop, const struct tlist *items, size_t i, struct tv none_left)
{
    long long n = (long long)items->n, k = (long long)i;
    loop->v[L_INDEX] = tv_int(k + 1);
    loop->v[L_INDEX0] = tv_int(k);
    loop->v[L_REVINDEX] = tv_int(n - k);
    loop->v[L_REVINDEX0] = tv_int(n - k - 1);
    loop->v[L_FIRST] = tv_bool(k == 0);
    loop->v[L_LAST] = tv_bool(k + 1 == n);
    loop->v[L_LENGTH] = tv_int(n);
    loop->v[L_PREV] = k ? items->v[k - 1] : none_left;
    loop->v[L_NEXT] = k + 1 < n ? items->v[k + 1] : none_left;
}

void texec_for(struct trt *rt, const struct tnode *s)
{
    struct tv items = filter_items(rt, s, titer(rt, teval(rt, s->b), s->line));
    struct tframe *outer = rt->frame;
    struct tv loop = make_loop(rt), none_left = tv_undef(rt, "the loop has no item there");
    rt->loops++;
    for (size_t i = 0; i < items.l->n; i++) {
        tstep(rt, s->line);
        rt->frame = tpush_frame(rt, outer);
        tbind(rt, s->a, items.l->v[i], s->line);
        update_loop(loop.d, items.l, i, none_left);
        tv_dict_set(rt, &rt->frame->vars, "loop", 4, loop);
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
