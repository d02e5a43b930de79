/* tmpl_exec.c — runs statements: output, if, set (names, tuples, namespace attributes, blocks), macros,
 * call, with and filter blocks (for loops are tmpl_loop.c); scopes; the step and depth limits; and
 * tmpl_render(), which owns a render's arena and is where errors unwind to.
 *
 * Scopes follow Jinja: a for loop's body gets a fresh scope every iteration (so a {% set %} inside it
 * is gone after the iteration — that is what namespace() is for); if does not open a scope; a macro
 * runs in a fresh scope under the one it was defined in (a closure), and a {% call %} block's body,
 * which the macro runs as caller(), under the scope of the call. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "tmpl_internal.h"

_Noreturn void trt_fail(struct trt *rt, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        error_set(rt->err, "template line %d: %s", line, msg);
    else
        error_set(rt->err, "template: %s", msg);
    longjmp(rt->jmp, 1);
}

void tstep(struct trt *rt, int line)
{
    if (++rt->steps > rt->lim.max_steps)
        trt_fail(rt, line, "the template ran more than %ld steps (max_steps); is a loop runaway?", rt->lim.max_steps);
}

void tcharge(struct trt *rt, size_t items, int line)
{
    rt->steps += (long)(items / 16);
    tstep(rt, line);
}

struct tv tlookup(struct trt *rt, const char *name)
{
    size_t len = strlen(name);
    for (struct tframe *f = rt->frame; f; f = f->parent) {
        struct tv *v = tv_dict_get(&f->vars, name, len);
        if (v)
            return *v;
    }
    return tv_undef(rt, "'%s' is undefined", name);
}

struct tframe *tpush_frame(struct trt *rt, struct tframe *parent)
{
    struct tframe *f = trt_alloc(rt, sizeof(*f));
    f->vars = *tv_dict(rt, 8).d;
    f->parent = parent;
    return f;
}

void tbind(struct trt *rt, const struct tnode *target, struct tv v, int line)
{
    if (target->kind == E_NAME) {
        tv_dict_set(rt, &rt->frame->vars, target->name, strlen(target->name), v);
        return;
    }
    if (target->kind != E_TUPLE)
        trt_fail(rt, line, "cannot assign to this target");
    if (v.t != TV_LIST)
        trt_fail(rt, line, "cannot unpack a %s into %d names", tv_type_name(v), target->n);
    if ((int)v.l->n != target->n)
        trt_fail(rt, line, "cannot unpack %zu values into %d names", v.l->n, target->n);
    for (int i = 0; i < target->n; i++)
        tbind(rt, target->items[i], v.l->v[i], line);
}

static void exec_set(struct trt *rt, const struct tnode *s)
{
    struct tv v = teval(rt, s->b);
    if (s->a->kind != E_ATTR) {
        tbind(rt, s->a, v, s->line);
        return;
    }
    struct tv ns = tlookup(rt, s->a->a->name);
    if (ns.t != TV_NS)
        trt_fail(rt, s->line, "cannot set attribute '%s' on '%s': only a namespace() can be assigned to",
                 s->a->name, s->a->a->name);
    tv_dict_set(rt, ns.d, s->a->name, strlen(s->a->name), v);
}

/* Runs body with output redirected, returning what it wrote. */
static struct tv capture(struct trt *rt, const struct tnode *body)
{
    struct tbuf buf = { 0 }, *saved = rt->out;
    rt->out = &buf;
    texec_list(rt, body);
    rt->out = saved;
    return tbuf_take(rt, &buf);
}

static void exec_output(struct trt *rt, const struct tnode *s)
{
    tstep(rt, s->line);
    tv_write_str(rt, rt->out, teval(rt, s->a), s->line);
}

static struct tclosure *closure(struct trt *rt, const struct tnode *m)
{
    struct tclosure *c = trt_alloc(rt, sizeof(*c));
    c->macro = m;
    c->frame = rt->frame;
    return c;
}

static void define_macro(struct trt *rt, const struct tnode *s)
{
    tv_dict_set(rt, &rt->frame->vars, s->name, strlen(s->name), (struct tv){ .t = TV_MACRO, .clo = closure(rt, s) });
}

static void exec_call_block(struct trt *rt, const struct tnode *s)
{
    struct tv callee = teval(rt, s->a->a);
    if (callee.t != TV_MACRO)
        trt_fail(rt, s->line, "'{%% call %%}' needs a macro, not a %s", tv_type_name(callee));
    struct targs a = teval_args(rt, s->a);
    struct tv out = tcall_macro(rt, callee.clo, &a, closure(rt, s->b), s->line);
    tbuf_put(rt, rt->out, out.s->s, out.s->len);
}

static void exec_with(struct trt *rt, const struct tnode *s)
{
    struct tv *vals = trt_alloc(rt, (size_t)(s->n + 1) * sizeof(*vals));
    for (int i = 0; i < s->n; i++)
        vals[i] = teval(rt, s->kw[i]);
    struct tframe *outer = rt->frame;
    rt->frame = tpush_frame(rt, outer);
    for (int i = 0; i < s->n; i++)
        tbind(rt, s->items[i], vals[i], s->line);
    texec_list(rt, s->body);
    rt->frame = outer;
}

static void exec_filter_block(struct trt *rt, const struct tnode *s)
{
    struct tframe *outer = rt->frame;
    struct tv body = capture(rt, s->body);
    rt->frame = tpush_frame(rt, outer);
    tv_dict_set(rt, &rt->frame->vars, tfilter_block_var, strlen(tfilter_block_var), body);
    struct tv out = tv_to_str(rt, teval(rt, s->a), s->line);
    rt->frame = outer;
    tbuf_put(rt, rt->out, out.s->s, out.s->len);
}

static void exec_one(struct trt *rt, const struct tnode *s)
{
    switch (s->kind) {
    case N_TEXT: tbuf_put(rt, rt->out, s->lit.s->s, s->lit.s->len); break;
    case N_OUTPUT: exec_output(rt, s); break;
    case N_IF: texec_list(rt, tv_truthy(teval(rt, s->a)) ? s->body : s->orelse); break;
    case N_FOR: texec_for(rt, s); break;
    case N_SET: exec_set(rt, s); break;
    case N_SET_BLOCK:
        tv_dict_set(rt, &rt->frame->vars, s->a->name, strlen(s->a->name), capture(rt, s->body));
        break;
    case N_MACRO: define_macro(rt, s); break;
    case N_CALL_BLOCK: exec_call_block(rt, s); break;
    case N_WITH: exec_with(rt, s); break;
    case N_FILTER_BLOCK: exec_filter_block(rt, s); break;
    case N_BREAK: case N_CONTINUE:
        if (!rt->loops)
            trt_fail(rt, s->line, "'{%% %s %%}' outside a for loop", s->kind == N_BREAK ? "break" : "continue");
        rt->loop_ctl = s->kind == N_BREAK ? 1 : 2;
        break;
    case N_BLOCK: texec_list(rt, s->body); break;
    default: trt_fail(rt, s->line, "internal error: statement kind %d", s->kind);
    }
}

void texec_list(struct trt *rt, const struct tnode *s)
{
    for (; s && !rt->loop_ctl; s = s->next)
        exec_one(rt, s);
}

static void bind_params(struct trt *rt, const struct tnode *m, struct targs *a, int line)
{
    if (a->n > m->n + m->nkw)
        trt_fail(rt, line, "macro '%s' takes %d arguments, %d given", m->name, m->n + m->nkw, a->n);
    for (int i = 0; i < m->n; i++)
        tv_dict_set(rt, &rt->frame->vars, m->items[i]->name, strlen(m->items[i]->name),
                    i < a->n ? a->pos[i] : tv_undef(rt, "macro '%s': '%s' was not given", m->name, m->items[i]->name));
    for (int k = 0; k < m->nkw; k++) /* name=default parameters come after the plain ones */
        tv_dict_set(rt, &rt->frame->vars, m->kwname[k], strlen(m->kwname[k]),
                    m->n + k < a->n ? a->pos[m->n + k] : teval(rt, m->kw[k]));
    for (int i = 0; i < a->nkw; i++) {
        bool known = false;
        for (int k = 0; k < m->n; k++)
            known |= !strcmp(m->items[k]->name, a->kwname[i]);
        for (int k = 0; k < m->nkw; k++)
            known |= !strcmp(m->kwname[k], a->kwname[i]);
        if (!known)
            trt_fail(rt, line, "macro '%s' has no parameter '%s'", m->name, a->kwname[i]);
        tv_dict_set(rt, &rt->frame->vars, a->kwname[i], strlen(a->kwname[i]), a->kw[i]);
    }
}

struct tv tcall_macro(struct trt *rt, const struct tclosure *clo, struct targs *a, const struct tclosure *caller,
                      int line)
{
    const struct tnode *m = clo->macro;
    tstep(rt, line);
    if (rt->depth >= rt->lim.max_depth)
        trt_fail(rt, line, "macro '%s': calls nested more than %d deep (max_depth)", m->name, rt->lim.max_depth);
    struct tframe *saved = rt->frame;
    int loops = rt->loops;
    rt->depth++;
    rt->frame = tpush_frame(rt, clo->frame);
    rt->loops = 0;
    bind_params(rt, m, a, line);
    if (caller)
        tv_dict_set(rt, &rt->frame->vars, "caller", 6, (struct tv){ .t = TV_MACRO, .clo = caller });
    struct tv out = capture(rt, m->body);
    rt->frame = saved;
    rt->loops = loops;
    rt->depth--;
    return out;
}

static void set_defaults(struct tmpl_limits *l)
{
    if (!l->max_output) l->max_output = 16u << 20;
    if (!l->max_memory) l->max_memory = 256u << 20;
    if (!l->max_steps) l->max_steps = 10 * 1000 * 1000;
    if (!l->max_depth) l->max_depth = 64;
}

static void setup_scopes(struct trt *rt, json_t *ctx)
{
    rt->globals = tpush_frame(rt, NULL);
    tbuiltins_install(rt, &rt->globals->vars);
    if (ctx && !json_is_object(ctx))
        trt_fail(rt, 0, "the render context must be a JSON object");
    const char *k;
    size_t klen;
    json_t *v;
    if (ctx)
        json_object_keylen_foreach(ctx, k, klen, v)
            tv_dict_set(rt, &rt->globals->vars, k, klen, tv_from_json(rt, v, 0));
    rt->top = rt->frame = tpush_frame(rt, rt->globals);
}

int tmpl_render(const struct tmpl *t, json_t *ctx, const struct tmpl_limits *limits, char **out,
                size_t *out_len, struct error *err)
{
    struct trt *rt = calloc(1, sizeof(*rt)); /* on the heap: it is read after longjmp */
    if (!rt)
        return error_set(err, "out of memory");
    rt->err = err;
    if (limits)
        rt->lim = *limits;
    set_defaults(&rt->lim);
    rt->arena.limit = rt->lim.max_memory;
    struct tbuf buf = { 0 };
    int rc = -1;
    if (setjmp(rt->jmp) == 0) {
        rt->out = &buf;
        setup_scopes(rt, ctx);
        texec_list(rt, tmpl_body(t));
        *out = malloc(rt->out->len + 1);
        if (*out) {
            memcpy(*out, rt->out->p ? rt->out->p : "", rt->out->len);
            (*out)[rt->out->len] = 0;
            if (out_len)
                *out_len = rt->out->len;
            rc = 0;
            log_debug("template: %zu bytes out, %zu bytes of working memory, %ld steps", rt->out->len,
                      rt->arena.total, rt->steps);
        } else {
            error_set(err, "out of memory");
        }
    }
    tarena_free(&rt->arena);
    free(rt);
    return rc;
}
