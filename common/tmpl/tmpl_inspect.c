/* tmpl_inspect.c — questions about a parsed template that callers ask before rendering it. Today one,
 * asked the way vLLM asks it: does the template loop over `message.content` (or `message['content']`)
 * where `message` is the variable of a loop over `messages` (or over a variable set from it, such as
 * `loop_messages = messages[1:]`)? Such a template wants content as a list of parts; a loop over a
 * plain string would walk its characters. Loops over other variables set from content (Mistral-Nemo's
 * `tool_calls = message.content`) do not count, as they do not for vLLM. */
#include <string.h>

#include "tmpl_internal.h"

#define MAX_NAMES 32

struct names { const char *v[MAX_NAMES]; int n; };

static bool has(const struct names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return true;
    return false;
}

static bool add(struct names *s, const char *name)
{
    if (has(s, name) || s->n == MAX_NAMES)
        return false;
    s->v[s->n++] = name;
    return true;
}

/* Looks through filters, tests and slices, as vLLM does: messages[1:]|selectattr(...) is messages. */
static const struct tnode *unwrap(const struct tnode *e)
{
    while (e && (e->kind == E_FILTER || e->kind == E_TEST || e->kind == E_SLICE))
        e = e->a;
    return e;
}

static bool is_var(const struct tnode *e, const struct names *vars)
{
    e = unwrap(e);
    return e && e->kind == E_NAME && has(vars, e->name);
}

/* x.key or x['key'] with x one of vars */
static bool is_item(const struct tnode *e, const struct names *vars, const char *key)
{
    e = unwrap(e);
    if (!e || !e->a || e->a->kind != E_NAME || !has(vars, e->a->name))
        return false;
    if (e->kind == E_ATTR)
        return !strcmp(e->name, key);
    return e->kind == E_INDEX && e->b->kind == E_LIT && e->b->lit.t == TV_STR && !strcmp(e->b->lit.s->s, key);
}

enum pass { ALIASES, LOOP_VARS, CONTENT_LOOPS };

struct walk { struct names lists, items; const char *key; bool changed, found; };

static void visit(struct walk *w, enum pass pass, const struct tnode *s, int depth)
{
    for (; s && depth < 256 && !w->found; s = s->next) {
        if (pass == ALIASES && s->kind == N_SET && s->a->kind == E_NAME && is_var(s->b, &w->lists))
            w->changed |= add(&w->lists, s->a->name);
        if (pass == LOOP_VARS && s->kind == N_FOR && s->a->kind == E_NAME && is_var(s->b, &w->lists))
            add(&w->items, s->a->name);
        if (pass == CONTENT_LOOPS && s->kind == N_FOR && is_item(s->b, &w->items, w->key))
            w->found = true;
        if (s->kind == N_CALL_BLOCK)
            visit(w, pass, s->b->body, depth + 1);
        visit(w, pass, s->body, depth + 1);
        visit(w, pass, s->orelse, depth + 1);
    }
}

bool tmpl_iterates(const struct tmpl *t, const char *list, const char *key)
{
    struct walk w = { .key = key };
    add(&w.lists, list);
    do { /* aliases of aliases, in any order */
        w.changed = false;
        visit(&w, ALIASES, tmpl_body(t), 0);
    } while (w.changed);
    visit(&w, LOOP_VARS, tmpl_body(t), 0);
    visit(&w, CONTENT_LOOPS, tmpl_body(t), 0);
    return w.found;
}
