/* tmpl_inspect.c — questions about a parsed template that callers ask before rendering it. Today one:
 * does it loop over some `x.content` / `x['content']`? vLLM asks the same to decide whether a template
 * wants message content as a list of parts ("openai" format) or as one string, because a template that
 * loops over a string walks its characters and prints nothing useful. */
#include <string.h>

#include "tmpl_internal.h"

/* x.attr or x['attr'] */
static bool is_access(const struct tnode *e, const char *attr)
{
    if (!e)
        return false;
    if (e->kind == E_ATTR)
        return !strcmp(e->name, attr);
    return e->kind == E_INDEX && e->b->kind == E_LIT && e->b->lit.t == TV_STR && !strcmp(e->b->lit.s->s, attr);
}

struct walk {
    const char *attr;
    const char *aliases[16]; /* names set from x.attr, e.g. {% set content = message['content'] %} */
    int naliases;
};

static bool is_source(const struct walk *w, const struct tnode *e)
{
    if (is_access(e, w->attr))
        return true;
    for (int i = 0; e && e->kind == E_NAME && i < w->naliases; i++)
        if (!strcmp(w->aliases[i], e->name))
            return true;
    return false;
}

static bool walk_list(struct walk *w, const struct tnode *s, int depth);

static bool walk_one(struct walk *w, const struct tnode *s, int depth)
{
    if (s->kind == N_SET && s->a->kind == E_NAME && is_source(w, s->b) && w->naliases < 16)
        w->aliases[w->naliases++] = s->a->name;
    if (s->kind == N_FOR && is_source(w, s->b))
        return true;
    if (s->kind == N_CALL_BLOCK && walk_list(w, s->b->body, depth + 1))
        return true;
    return walk_list(w, s->body, depth + 1) || walk_list(w, s->orelse, depth + 1);
}

static bool walk_list(struct walk *w, const struct tnode *s, int depth)
{
    for (; s && depth < 256; s = s->next)
        if (walk_one(w, s, depth))
            return true;
    return false;
}

bool tmpl_iterates(const struct tmpl *t, const char *attr)
{
    struct walk w = { .attr = attr };
    return walk_list(&w, tmpl_body(t), 0);
}
