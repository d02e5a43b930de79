/* tmpl_parse.c — builds expression trees from tokens, with Jinja's operator precedence (statements are
 * tmpl_stmt.c), and the token helpers both share. Filters and tests are resolved here, so an unknown
 * one is a parse error with its line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

#define MAX_NESTING 200

struct ttok *tp_peek(struct tparse *p) { return &p->toks[p->pos]; }
struct ttok *tp_peek2(struct tparse *p) { return &p->toks[p->pos + (p->toks[p->pos].kind != TK_EOF)]; }
struct ttok *tp_next(struct tparse *p)
{
    struct ttok *t = &p->toks[p->pos];
    if (t->kind != TK_EOF)
        p->pos++;
    return t;
}

bool tp_tok_is(const struct ttok *t, enum ttok_kind k, const char *s)
{
    return t->kind == k && (!s || (t->len == strlen(s) && memcmp(t->s, s, t->len) == 0));
}
bool tp_is_op(struct tparse *p, const char *s) { return tp_tok_is(tp_peek(p), TK_OP, s); }
bool tp_is_name(struct tparse *p, const char *s) { return tp_tok_is(tp_peek(p), TK_NAME, s); }

const char *tp_describe(struct tparse *p, const struct ttok *t)
{
    static const char *const kinds[] = { "text", "'{{'", "'}}'", "'{%'", "'%}'" };
    if (t->kind <= TK_BLOCK_END)
        return kinds[t->kind];
    if (t->kind == TK_EOF)
        return "end of template";
    char *s = tparse_alloc(p, t->len + 3);
    snprintf(s, t->len + 3, "'%.*s'", (int)t->len, t->s);
    return s;
}

void tp_expect_op(struct tparse *p, const char *op)
{
    struct ttok *t = tp_next(p);
    if (!tp_tok_is(t, TK_OP, op))
        tparse_fail(p, t->line, "expected '%s', found %s", op, tp_describe(p, t));
}

const char *tp_tok_cstr(struct tparse *p, const struct ttok *t)
{
    char *s = tparse_alloc(p, t->len + 1);
    memcpy(s, t->s, t->len);
    return s;
}

const char *tp_expect_name(struct tparse *p, const char *what)
{
    struct ttok *t = tp_next(p);
    if (t->kind != TK_NAME)
        tparse_fail(p, t->line, "expected %s, found %s", what, tp_describe(p, t));
    return tp_tok_cstr(p, t);
}

struct tnode *tp_node(struct tparse *p, enum tnode_kind kind, int line)
{
    struct tnode *n = tparse_alloc(p, sizeof(*n));
    n->kind = kind;
    n->line = line;
    return n;
}

/* A growable array of node pointers, copied into the arena when done. */
void tp_nodes_push(struct tparse *p, struct tnodes *a, struct tnode *n)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        struct tnode **v = tparse_alloc(p, cap * sizeof(*v));
        if (a->n)
            memcpy(v, a->v, a->n * sizeof(*v));
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = n;
}


static struct tnode *parse_unary(struct tparse *p);
static struct tnode *parse_primary(struct tparse *p);

/* ---- expressions, lowest precedence first ---- */

static void enter(struct tparse *p, int line)
{
    if (++p->depth > MAX_NESTING)
        tparse_fail(p, line, "expression nested more than %d levels deep", MAX_NESTING);
}

struct tnode *tparse_or(struct tparse *p);

/* a if cond else b */
struct tnode *tparse_expr(struct tparse *p)
{
    enter(p, tp_peek(p)->line);
    struct tnode *e = tparse_or(p);
    while (tp_is_name(p, "if")) {
        struct tnode *c = tp_node(p, E_COND, tp_next(p)->line);
        c->a = e;
        c->b = tparse_or(p);
        if (tp_is_name(p, "else")) {
            tp_next(p);
            c->c = tparse_expr(p);
        }
        e = c;
    }
    p->depth--;
    return e;
}

static struct tnode *parse_not(struct tparse *p);
static struct tnode *parse_and(struct tparse *p)
{
    struct tnode *e = parse_not(p);
    while (tp_is_name(p, "and")) {
        struct tnode *n = tp_node(p, E_AND, tp_next(p)->line);
        n->a = e;
        n->b = parse_not(p);
        e = n;
    }
    return e;
}

struct tnode *tparse_or(struct tparse *p)
{
    struct tnode *e = parse_and(p);
    while (tp_is_name(p, "or")) {
        struct tnode *n = tp_node(p, E_OR, tp_next(p)->line);
        n->a = e;
        n->b = parse_and(p);
        e = n;
    }
    return e;
}

static struct tnode *parse_compare(struct tparse *p);
static struct tnode *parse_not(struct tparse *p)
{
    if (tp_is_name(p, "not")) {
        struct tnode *n = tp_node(p, E_NOT, tp_next(p)->line);
        enter(p, n->line);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static const char *compare_op(struct tparse *p)
{
    static const char *const cmp[] = { "==", "!=", "<", ">", "<=", ">=", NULL };
    for (int i = 0; cmp[i]; i++)
        if (tp_is_op(p, cmp[i])) {
            tp_next(p);
            return cmp[i];
        }
    if (tp_is_name(p, "in")) {
        tp_next(p);
        return "in";
    }
    if (tp_is_name(p, "not") && tp_tok_is(tp_peek2(p), TK_NAME, "in")) {
        tp_next(p);
        tp_next(p);
        return "not in";
    }
    return NULL;
}

static struct tnode *parse_math1(struct tparse *p);
static struct tnode *parse_compare(struct tparse *p)
{
    struct tnode *first = parse_math1(p);
    const char *op = compare_op(p);
    if (!op)
        return first;
    struct tnode *c = tp_node(p, E_COMPARE, first->line);
    struct tnodes operands = { 0 };
    const char *opsv[64];
    int nops = 0;
    tp_nodes_push(p, &operands, first);
    for (; op; op = compare_op(p)) {
        if (nops == 64)
            tparse_fail(p, c->line, "more than 64 chained comparisons");
        opsv[nops++] = op;
        tp_nodes_push(p, &operands, parse_math1(p));
    }
    c->items = operands.v;
    c->n = operands.n;
    c->ops = tparse_alloc(p, nops * sizeof(*c->ops));
    memcpy(c->ops, opsv, nops * sizeof(*c->ops));
    return c;
}

static struct tnode *binary(struct tparse *p, struct tnode *a, const char *op, struct tnode *b, int line)
{
    struct tnode *n = tp_node(p, E_BIN, line);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static struct tnode *parse_concat(struct tparse *p);
static struct tnode *parse_math1(struct tparse *p)
{
    struct tnode *e = parse_concat(p);
    while (tp_is_op(p, "+") || tp_is_op(p, "-")) {
        struct ttok *t = tp_next(p);
        e = binary(p, e, t->s[0] == '+' ? "+" : "-", parse_concat(p), t->line);
    }
    return e;
}

static struct tnode *parse_math2(struct tparse *p);
static struct tnode *parse_concat(struct tparse *p)
{
    struct tnode *e = parse_math2(p);
    while (tp_is_op(p, "~")) {
        int line = tp_next(p)->line;
        e = binary(p, e, "~", parse_math2(p), line);
    }
    return e;
}

static struct tnode *parse_pow(struct tparse *p);
static struct tnode *parse_math2(struct tparse *p)
{
    static const char *const m2[] = { "*", "/", "//", "%", NULL };
    struct tnode *e = parse_pow(p);
    for (;;) {
        int i = 0;
        while (m2[i] && !tp_is_op(p, m2[i]))
            i++;
        if (!m2[i])
            return e;
        int line = tp_next(p)->line;
        e = binary(p, e, m2[i], parse_pow(p), line);
    }
}

static struct tnode *parse_pow(struct tparse *p)
{
    struct tnode *e = parse_unary(p);
    while (tp_is_op(p, "**")) {
        int line = tp_next(p)->line;
        e = binary(p, e, "**", parse_unary(p), line);
    }
    return e;
}

static struct tnode *parse_postfix(struct tparse *p, struct tnode *e);
static struct tnode *parse_filters(struct tparse *p, struct tnode *e);

/* Jinja binds a filter after unary minus to the negation: -x|abs is (-x)|abs. */
static struct tnode *parse_unary_filtered(struct tparse *p, bool with_filter)
{
    struct tnode *e;
    if (tp_is_op(p, "-") || tp_is_op(p, "+")) {
        struct ttok *t = tp_next(p);
        e = tp_node(p, t->s[0] == '-' ? E_NEG : E_POS, t->line);
        enter(p, t->line);
        e->a = parse_unary_filtered(p, false);
        p->depth--;
    } else {
        e = parse_postfix(p, parse_primary(p));
    }
    return with_filter ? parse_filters(p, e) : e;
}

static struct tnode *parse_unary(struct tparse *p) { return parse_unary_filtered(p, true); }

/* ---- call arguments, postfix, filters, tests ---- */

void tparse_call_args(struct tparse *p, struct tnode *call)
{
    struct tnodes pos = { 0 }, kw = { 0 };
    const char *names[64];
    tp_expect_op(p, "(");
    while (!tp_is_op(p, ")")) {
        if (pos.n || kw.n)
            tp_expect_op(p, ",");
        if (tp_is_op(p, ")"))
            break; /* trailing comma */
        if (tp_peek(p)->kind == TK_NAME && tp_tok_is(tp_peek2(p), TK_OP, "=")) {
            if (kw.n == 64)
                tparse_fail(p, tp_peek(p)->line, "more than 64 keyword arguments");
            names[kw.n] = tp_tok_cstr(p, tp_next(p));
            tp_next(p);
            tp_nodes_push(p, &kw, tparse_expr(p));
        } else if (tp_is_op(p, "**")) { /* **mapping: a NULL name marks it */
            if (kw.n == 64)
                tparse_fail(p, tp_peek(p)->line, "more than 64 keyword arguments");
            struct tnode *s = tp_node(p, E_SPREAD, tp_next(p)->line);
            s->a = tparse_expr(p);
            names[kw.n] = NULL;
            tp_nodes_push(p, &kw, s);
        } else if (tp_is_op(p, "*")) {
            struct tnode *s = tp_node(p, E_SPREAD, tp_next(p)->line);
            if (kw.n)
                tparse_fail(p, s->line, "*args after a keyword argument");
            s->a = tparse_expr(p);
            tp_nodes_push(p, &pos, s);
        } else {
            if (kw.n)
                tparse_fail(p, tp_peek(p)->line, "positional argument after a keyword argument");
            tp_nodes_push(p, &pos, tparse_expr(p));
        }
    }
    tp_next(p);
    call->items = pos.v;
    call->n = pos.n;
    call->kw = kw.v;
    call->nkw = kw.n;
    call->kwname = tparse_alloc(p, (kw.n + 1) * sizeof(*call->kwname));
    memcpy(call->kwname, names, kw.n * sizeof(*names));
}

static struct tnode *parse_subscript(struct tparse *p, struct tnode *obj, int line)
{
    struct tnode *parts[3] = { 0 };
    int k = 0;
    for (;;) {
        if (!tp_is_op(p, ":") && !tp_is_op(p, "]"))
            parts[k] = tparse_expr(p);
        if (tp_is_op(p, ":") && k < 2) {
            tp_next(p);
            k++;
            continue;
        }
        break;
    }
    tp_expect_op(p, "]");
    struct tnode *n = tp_node(p, k ? E_SLICE : E_INDEX, line);
    n->a = obj;
    if (!k && !parts[0])
        tparse_fail(p, line, "empty subscript []");
    if (k) {
        n->items = tparse_alloc(p, 3 * sizeof(*n->items));
        memcpy(n->items, parts, sizeof(parts));
    } else {
        n->b = parts[0];
    }
    return n;
}

static struct tnode *parse_postfix(struct tparse *p, struct tnode *e)
{
    for (;;) {
        int line = tp_peek(p)->line;
        if (tp_is_op(p, ".")) {
            tp_next(p);
            struct tnode *n = tp_node(p, E_ATTR, line);
            n->a = e;
            if (tp_peek(p)->kind == TK_INT) /* foo.0 is foo[0] in Jinja */
                n->name = tp_tok_cstr(p, tp_next(p));
            else
                n->name = tp_expect_name(p, "an attribute name after '.'");
            e = n;
        } else if (tp_is_op(p, "[")) {
            tp_next(p);
            e = parse_subscript(p, e, line);
        } else if (tp_is_op(p, "(")) {
            struct tnode *n = tp_node(p, E_CALL, line);
            n->a = e;
            tparse_call_args(p, n);
            e = n;
        } else {
            return e;
        }
    }
}

/* As in Jinja, any name but else/or/and after a test is its argument: `x is divisibleby 3`, and so
 * `x is number if c else d` is an error there too. */
static bool starts_test_arg(struct tparse *p)
{
    struct ttok *t = tp_peek(p);
    if (tp_tok_is(t, TK_NAME, "is"))
        tparse_fail(p, t->line, "you cannot chain multiple tests with 'is'");
    if (t->kind == TK_NAME)
        return !tp_tok_is(t, TK_NAME, "else") && !tp_tok_is(t, TK_NAME, "or") && !tp_tok_is(t, TK_NAME, "and");
    return t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT || tp_is_op(p, "[") || tp_is_op(p, "{");
}

static struct tnode *parse_test(struct tparse *p, struct tnode *e, int line)
{
    struct tnode *n = tp_node(p, E_TEST, line);
    n->a = e;
    if (tp_is_name(p, "not")) {
        tp_next(p);
        n->negate = true;
    }
    struct ttok *t = tp_next(p);
    if (t->kind != TK_NAME && !tp_tok_is(t, TK_OP, "==") && !tp_tok_is(t, TK_OP, "!=") && !tp_tok_is(t, TK_OP, "<") &&
        !tp_tok_is(t, TK_OP, ">") && !tp_tok_is(t, TK_OP, "<=") && !tp_tok_is(t, TK_OP, ">="))
        tparse_fail(p, t->line, "expected a test name after 'is', found %s", tp_describe(p, t));
    n->name = tp_tok_cstr(p, t);
    n->test = ttest_find(n->name);
    if (!n->test)
        tparse_fail(p, t->line, "unknown test '%s' (after 'is')", n->name);
    if (tp_is_op(p, "(")) {
        tparse_call_args(p, n);
    } else if (starts_test_arg(p)) {
        struct tnode *arg = parse_postfix(p, parse_primary(p));
        n->items = tparse_alloc(p, sizeof(*n->items));
        n->items[0] = arg;
        n->n = 1;
    }
    return n;
}

static struct tnode *parse_filters(struct tparse *p, struct tnode *e)
{
    for (;;) {
        int line = tp_peek(p)->line;
        if (tp_is_op(p, "|")) {
            tp_next(p);
            struct tnode *n = tp_node(p, E_FILTER, line);
            n->a = e;
            n->name = tp_expect_name(p, "a filter name after '|'");
            n->filter = tfilter_find(n->name);
            if (!n->filter)
                tparse_fail(p, line, "unknown filter '%s'", n->name);
            if (tp_is_op(p, "("))
                tparse_call_args(p, n);
            e = n;
        } else if (tp_is_name(p, "is")) {
            tp_next(p);
            e = parse_test(p, e, line);
        } else {
            return e;
        }
    }
}

/* ---- primaries ---- */

static struct tnode *literal(struct tparse *p, struct tv v, int line)
{
    struct tnode *n = tp_node(p, E_LIT, line);
    n->lit = v;
    return n;
}

static struct tnode *parse_string_lit(struct tparse *p)
{
    struct ttok *t = tp_next(p);
    size_t len = t->len;
    /* adjacent literals concatenate, as in Python */
    size_t start = p->pos;
    while (tp_peek(p)->kind == TK_STRING)
        len += tp_next(p)->len;
    struct tstr *s = tparse_alloc(p, sizeof(*s) + len + 1);
    memcpy(s->s, t->s, t->len);
    s->len = t->len;
    for (size_t i = start; i < p->pos; i++) {
        memcpy(s->s + s->len, p->toks[i].s, p->toks[i].len);
        s->len += p->toks[i].len;
    }
    return literal(p, (struct tv){ .t = TV_STR, .s = s }, t->line);
}

static struct tnode *parse_seq(struct tparse *p, enum tnode_kind kind, const char *close, int line)
{
    struct tnode *n = tp_node(p, kind, line);
    struct tnodes items = { 0 }, vals = { 0 };
    while (!tp_is_op(p, close)) {
        if (items.n)
            tp_expect_op(p, ",");
        if (tp_is_op(p, close))
            break;
        tp_nodes_push(p, &items, tparse_expr(p));
        if (kind == E_DICT) {
            tp_expect_op(p, ":");
            tp_nodes_push(p, &vals, tparse_expr(p));
        }
    }
    tp_next(p);
    n->items = items.v;
    n->n = items.n;
    n->kw = vals.v;
    return n;
}

static struct tnode *parse_paren(struct tparse *p, int line)
{
    if (tp_is_op(p, ")")) {
        tp_next(p);
        return tp_node(p, E_TUPLE, line);
    }
    struct tnode *e = tparse_expr(p);
    if (tp_is_op(p, ")")) {
        tp_next(p);
        return e;
    }
    struct tnode *t = tp_node(p, E_TUPLE, line);
    struct tnodes items = { 0 };
    tp_nodes_push(p, &items, e);
    while (tp_is_op(p, ",")) {
        tp_next(p);
        if (tp_is_op(p, ")"))
            break;
        tp_nodes_push(p, &items, tparse_expr(p));
    }
    tp_expect_op(p, ")");
    t->items = items.v;
    t->n = items.n;
    return t;
}

static struct tnode *parse_name_primary(struct tparse *p, struct ttok *t)
{
    if (tp_tok_is(t, TK_NAME, "true") || tp_tok_is(t, TK_NAME, "True"))
        return literal(p, tv_bool(true), t->line);
    if (tp_tok_is(t, TK_NAME, "false") || tp_tok_is(t, TK_NAME, "False"))
        return literal(p, tv_bool(false), t->line);
    if (tp_tok_is(t, TK_NAME, "none") || tp_tok_is(t, TK_NAME, "None"))
        return literal(p, tv_none(), t->line);
    struct tnode *n = tp_node(p, E_NAME, t->line);
    n->name = tp_tok_cstr(p, t);
    return n;
}

static struct tnode *parse_primary(struct tparse *p)
{
    struct ttok *t = tp_peek(p);
    enter(p, t->line);
    struct tnode *e;
    if (t->kind == TK_STRING) {
        e = parse_string_lit(p);
    } else {
        tp_next(p);
        if (t->kind == TK_NAME)
            e = parse_name_primary(p, t);
        else if (t->kind == TK_INT)
            e = literal(p, tv_int(t->i), t->line);
        else if (t->kind == TK_FLOAT)
            e = literal(p, tv_float(t->f), t->line);
        else if (tp_tok_is(t, TK_OP, "("))
            e = parse_paren(p, t->line);
        else if (tp_tok_is(t, TK_OP, "["))
            e = parse_seq(p, E_LIST, "]", t->line);
        else if (tp_tok_is(t, TK_OP, "{"))
            e = parse_seq(p, E_DICT, "}", t->line);
        else
            tparse_fail(p, t->line, "expected an expression, found %s", tp_describe(p, t));
    }
    p->depth--;
    return e;
}

/* An expression that may be a bare tuple (a, b), as in set and for. */
struct tnode *tparse_tuple(struct tparse *p, bool names_only)
{
    int line = tp_peek(p)->line;
    struct tnode *e = names_only ? parse_primary(p) : tparse_expr(p);
    if (!tp_is_op(p, ","))
        return e;
    struct tnode *t = tp_node(p, E_TUPLE, line);
    struct tnodes items = { 0 };
    tp_nodes_push(p, &items, e);
    while (tp_is_op(p, ",")) {
        tp_next(p);
        tp_nodes_push(p, &items, names_only ? parse_primary(p) : tparse_expr(p));
    }
    t->items = items.v;
    t->n = items.n;
    return t;
}
