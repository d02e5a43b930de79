/* tmpl_stmt.c — parses the statement level of a template ({% if %}, {% for %}, {% set %}, {% macro %},
 * {% call %}, {% with %}, {% filter %}, loop controls, transformers' {% generation %}) into statement
 * lists, and owns tmpl_parse() / tmpl_free(). Tags this engine does not implement are rejected by name
 * here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

struct tmpl {
    struct tarena arena;
    struct tnode *body;
};

_Noreturn void tparse_fail(struct tparse *p, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    error_set(p->err, "template line %d: %s", line, msg);
    longjmp(p->jmp, 1);
}

void *tparse_alloc(struct tparse *p, size_t n)
{
    void *m = tarena_alloc(p->arena, n);
    if (!m)
        tparse_fail(p, 0, "out of memory while parsing the template");
    return m;
}

/* Parses statements until a block tag whose keyword is in stops (NULL-ended); returns that keyword
 * (the tag's remaining tokens are left for the caller) or NULL at the end of the template. */
static const char *parse_body(struct tparse *p, const char *const *stops, struct tnode **out);

static void expect_block_end(struct tparse *p, const char *tag)
{
    struct ttok *t = tp_next(p);
    if (t->kind != TK_BLOCK_END)
        tparse_fail(p, t->line, "expected '%%}' to end '{%% %s %%}', found %s", tag, tp_describe(p, t));
}

static const char *must_close(struct tparse *p, const char *const *stops, struct tnode **out, const char *tag,
                              int line)
{
    const char *kw = parse_body(p, stops, out);
    if (!kw)
        tparse_fail(p, line, "unclosed '{%% %s %%}': no matching '{%% end%s %%}'", tag, tag);
    return kw;
}

static struct tnode *parse_if(struct tparse *p, int line)
{
    static const char *const stops[] = { "elif", "else", "endif", NULL };
    struct tnode *n = tp_node(p, N_IF, line);
    n->a = tparse_expr(p);
    expect_block_end(p, "if");
    const char *kw = must_close(p, stops, &n->body, "if", line);
    if (!strcmp(kw, "elif")) {
        struct tnode *elif = parse_if(p, tp_peek(p)->line);
        n->orelse = elif;
        return n; /* the nested if consumed the endif */
    }
    if (!strcmp(kw, "else")) {
        static const char *const end[] = { "endif", NULL };
        expect_block_end(p, "else");
        must_close(p, end, &n->orelse, "if", line);
    }
    expect_block_end(p, "endif");
    return n;
}

static struct tnode *parse_for(struct tparse *p, int line)
{
    static const char *const stops[] = { "else", "endfor", NULL };
    struct tnode *n = tp_node(p, N_FOR, line);
    n->a = tparse_tuple(p, true);
    struct ttok *t = tp_next(p);
    if (!tp_tok_is(t, TK_NAME, "in"))
        tparse_fail(p, t->line, "expected 'in' in '{%% for %%}', found %s", tp_describe(p, t));
    n->b = tparse_or(p);
    if (tp_is_name(p, "if")) {
        tp_next(p);
        n->c = tparse_or(p);
    }
    if (tp_is_name(p, "recursive"))
        tparse_fail(p, line, "recursive for loops are not supported");
    expect_block_end(p, "for");
    const char *kw = must_close(p, stops, &n->body, "for", line);
    if (!strcmp(kw, "else")) {
        static const char *const end[] = { "endfor", NULL };
        expect_block_end(p, "else");
        must_close(p, end, &n->orelse, "for", line);
    }
    expect_block_end(p, "endfor");
    return n;
}

static struct tnode *parse_set(struct tparse *p, int line)
{
    struct tnode *n = tp_node(p, N_SET, line);
    struct tnode *target = tparse_tuple(p, true);
    if (tp_is_op(p, ".")) { /* {% set ns.attr = value %} */
        tp_next(p);
        struct tnode *attr = tp_node(p, E_ATTR, line);
        attr->a = target;
        attr->name = tp_expect_name(p, "an attribute name after '.'");
        target = attr;
    }
    if (target->kind != E_NAME && target->kind != E_TUPLE && !(target->kind == E_ATTR && target->a->kind == E_NAME))
        tparse_fail(p, line, "cannot assign to this expression in '{%% set %%}'");
    n->a = target;
    if (tp_is_op(p, "=")) {
        tp_next(p);
        n->b = tparse_tuple(p, false);
        expect_block_end(p, "set");
        return n;
    }
    if (target->kind != E_NAME)
        tparse_fail(p, line, "a block '{%% set %%}' needs a single name");
    if (tp_is_op(p, "|"))
        tparse_fail(p, line, "filtered block '{%% set name | filter %%}' is not supported");
    static const char *const end[] = { "endset", NULL };
    n->kind = N_SET_BLOCK;
    expect_block_end(p, "set");
    must_close(p, end, &n->body, "set", line);
    expect_block_end(p, "endset");
    return n;
}

static struct tnode *parse_macro(struct tparse *p, int line)
{
    static const char *const end[] = { "endmacro", NULL };
    struct tnode *n = tp_node(p, N_MACRO, line);
    n->name = tp_expect_name(p, "a macro name");
    tparse_call_args(p, n); /* parameters parse like call arguments: names, then name=default */
    for (int i = 0; i < n->n; i++)
        if (n->items[i]->kind != E_NAME)
            tparse_fail(p, line, "macro '%s': parameter %d is not a name", n->name, i + 1);
    expect_block_end(p, "macro");
    must_close(p, end, &n->body, "macro", line);
    expect_block_end(p, "endmacro");
    return n;
}

/* {% call macro(args) %}body{% endcall %}: the macro sees the body as caller(). */
static struct tnode *parse_call_block(struct tparse *p, int line)
{
    static const char *const end[] = { "endcall", NULL };
    struct tnode *n = tp_node(p, N_CALL_BLOCK, line), *caller = tp_node(p, N_MACRO, line);
    caller->name = "caller";
    if (tp_is_op(p, "(")) { /* {% call(item) m(x) %}: the caller's parameters */
        tparse_call_args(p, caller);
        for (int i = 0; i < caller->n; i++)
            if (caller->items[i]->kind != E_NAME)
                tparse_fail(p, line, "'{%% call(...) %%}': parameter %d is not a name", i + 1);
    }
    n->a = tparse_expr(p);
    if (n->a->kind != E_CALL)
        tparse_fail(p, line, "'{%% call %%}' needs a macro call, e.g. {%% call m(x) %%}");
    expect_block_end(p, "call");
    must_close(p, end, &caller->body, "call", line);
    expect_block_end(p, "endcall");
    n->b = caller;
    return n;
}

/* {% with a = x, b = y %}...{% endwith %}: the values are evaluated outside, the names bound inside. */
static struct tnode *parse_with(struct tparse *p, int line)
{
    static const char *const end[] = { "endwith", NULL };
    struct tnode *n = tp_node(p, N_WITH, line);
    struct tnodes names = { 0 }, values = { 0 };
    while (tp_peek(p)->kind != TK_BLOCK_END) {
        if (names.n)
            tp_expect_op(p, ",");
        struct tnode *target = tp_node(p, E_NAME, tp_peek(p)->line);
        target->name = tp_expect_name(p, "a name in '{% with %}'");
        tp_expect_op(p, "=");
        tp_nodes_push(p, &names, target);
        tp_nodes_push(p, &values, tparse_expr(p));
    }
    n->items = names.v;
    n->n = names.n;
    n->kw = values.v;
    expect_block_end(p, "with");
    must_close(p, end, &n->body, "with", line);
    expect_block_end(p, "endwith");
    return n;
}

/* The name a {% filter %} block's output is bound to; not an identifier, so no template can use it. */
const char tfilter_block_var[] = " filter block";

/* {% filter f(args) | g %}...{% endfilter %}: the filters applied to the body's output. */
static struct tnode *parse_filter_block(struct tparse *p, int line)
{
    static const char *const end[] = { "endfilter", NULL };
    struct tnode *n = tp_node(p, N_FILTER_BLOCK, line), *e = tp_node(p, E_NAME, line);
    e->name = tfilter_block_var;
    do {
        struct tnode *f = tp_node(p, E_FILTER, tp_peek(p)->line);
        f->a = e;
        f->name = tp_expect_name(p, "a filter name in '{% filter %}'");
        f->filter = tfilter_find(f->name);
        if (!f->filter)
            tparse_fail(p, f->line, "unknown filter '%s'", f->name);
        if (tp_is_op(p, "("))
            tparse_call_args(p, f);
        e = f;
    } while (tp_is_op(p, "|") && tp_next(p));
    n->a = e;
    expect_block_end(p, "filter");
    must_close(p, end, &n->body, "filter", line);
    expect_block_end(p, "endfilter");
    return n;
}

static struct tnode *parse_simple(struct tparse *p, enum tnode_kind kind, const char *tag, int line)
{
    struct tnode *n = tp_node(p, kind, line);
    expect_block_end(p, tag);
    if (kind == N_BLOCK) {
        static const char *const end[] = { "endgeneration", NULL };
        must_close(p, end, &n->body, tag, line);
        expect_block_end(p, "endgeneration");
    }
    return n;
}

static struct tnode *parse_statement_kw(struct tparse *p, const char *kw, int line);

/* Nested statements recurse, so their depth is bounded like expressions'. */
static struct tnode *parse_statement(struct tparse *p, const char *kw, int line)
{
    if (++p->depth > 200)
        tparse_fail(p, line, "statements nested more than 200 levels deep");
    struct tnode *n = parse_statement_kw(p, kw, line);
    p->depth--;
    return n;
}

static struct tnode *parse_statement_kw(struct tparse *p, const char *kw, int line)
{
    static const char *const unsupported[] = { "include", "import", "from", "extends", "block",
                                               "autoescape", "do", "trans", NULL };
    if (!strcmp(kw, "if")) return parse_if(p, line);
    if (!strcmp(kw, "for")) return parse_for(p, line);
    if (!strcmp(kw, "set")) return parse_set(p, line);
    if (!strcmp(kw, "macro")) return parse_macro(p, line);
    if (!strcmp(kw, "call")) return parse_call_block(p, line);
    if (!strcmp(kw, "with")) return parse_with(p, line);
    if (!strcmp(kw, "filter")) return parse_filter_block(p, line);
    if (!strcmp(kw, "break")) return parse_simple(p, N_BREAK, kw, line);
    if (!strcmp(kw, "continue")) return parse_simple(p, N_CONTINUE, kw, line);
    if (!strcmp(kw, "generation")) return parse_simple(p, N_BLOCK, kw, line);
    for (int i = 0; unsupported[i]; i++)
        if (!strcmp(kw, unsupported[i]))
            tparse_fail(p, line, "'{%% %s %%}' is not supported by this template engine", kw);
    tparse_fail(p, line, "unexpected tag '{%% %s %%}'", kw);
}

static struct tnode *parse_output(struct tparse *p)
{
    struct tnode *n = tp_node(p, N_OUTPUT, tp_peek(p)->line);
    n->a = tparse_tuple(p, false);
    struct ttok *t = tp_next(p);
    if (t->kind != TK_VAR_END)
        tparse_fail(p, t->line, "expected '}}', found %s", tp_describe(p, t));
    return n;
}

static const char *parse_body(struct tparse *p, const char *const *stops, struct tnode **out)
{
    struct tnode **tail = out;
    for (;;) {
        struct ttok *t = tp_next(p);
        struct tnode *n;
        if (t->kind == TK_EOF)
            return NULL;
        if (t->kind == TK_TEXT) {
            n = tp_node(p, N_TEXT, t->line);
            struct tstr *s = tparse_alloc(p, sizeof(*s) + t->len + 1);
            memcpy(s->s, t->s, t->len);
            s->len = t->len;
            n->lit = (struct tv){ .t = TV_STR, .s = s };
        } else if (t->kind == TK_VAR_BEGIN) {
            n = parse_output(p);
        } else {
            const char *kw = tp_expect_name(p, "a tag name after '{%'");
            for (int i = 0; stops && stops[i]; i++)
                if (!strcmp(kw, stops[i]))
                    return stops[i];
            n = parse_statement(p, kw, t->line);
        }
        *tail = n;
        tail = &n->next;
    }
}

struct tmpl *tmpl_parse(const char *src, size_t len, struct error *err)
{
    struct tmpl *volatile t = calloc(1, sizeof(*t)); /* volatile: read after longjmp */
    if (!t) {
        error_set(err, "out of memory");
        return NULL;
    }
    struct tparse p = { .arena = &t->arena, .err = err };
    if (setjmp(p.jmp)) {
        tmpl_free(t);
        return NULL;
    }
    tlex(&p, src, len);
    parse_body(&p, NULL, &t->body);
    return t;
}

void tmpl_free(struct tmpl *t)
{
    if (!t)
        return;
    tarena_free(&t->arena);
    free(t);
}

const struct tnode *tmpl_body(const struct tmpl *t) { return t->body; }
