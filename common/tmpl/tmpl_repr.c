/* tmpl_repr.c — how values print: Python's str() for {{ output }} and the string filter, and repr() for
 * the items of a printed list or dict, because transformers renders with Python's Jinja. */
#include <stdio.h>
#include <string.h>

#include "tmpl_internal.h"

static void write_repr_str(struct trt *rt, struct tbuf *b, const struct tstr *s)
{
    /* Python prefers single quotes and switches to double ones when only that avoids escaping. */
    char q = memchr(s->s, '\'', s->len) && !memchr(s->s, '"', s->len) ? '"' : '\'';
    tbuf_put(rt, b, &q, 1);
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if (c == (unsigned char)q || c == '\\') {
            char e[2] = { '\\', (char)c };
            tbuf_put(rt, b, e, 2);
        } else if (c == '\n') {
            tbuf_puts(rt, b, "\\n");
        } else if (c == '\r') {
            tbuf_puts(rt, b, "\\r");
        } else if (c == '\t') {
            tbuf_puts(rt, b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            tbuf_printf(rt, b, "\\x%02x", c);
        } else {
            tbuf_put(rt, b, (const char *)&c, 1);
        }
    }
    tbuf_put(rt, b, &q, 1);
}

static void write_at(struct trt *rt, struct tbuf *b, struct tv v, int line, int depth, bool repr);

static void write_list(struct trt *rt, struct tbuf *b, const struct tlist *l, int line, int depth)
{
    tbuf_puts(rt, b, l->tuple ? "(" : "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            tbuf_puts(rt, b, ", ");
        write_at(rt, b, l->v[i], line, depth + 1, true);
    }
    if (l->tuple && l->n == 1)
        tbuf_puts(rt, b, ",");
    tbuf_puts(rt, b, l->tuple ? ")" : "]");
}

static void write_dict(struct trt *rt, struct tbuf *b, const struct tdict *d, int line, int depth)
{
    tbuf_puts(rt, b, "{");
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            tbuf_puts(rt, b, ", ");
        write_repr_str(rt, b, d->k[i]);
        tbuf_puts(rt, b, ": ");
        write_at(rt, b, d->v[i], line, depth + 1, true);
    }
    tbuf_puts(rt, b, "}");
}

void tv_write_repr(struct trt *rt, struct tbuf *b, struct tv v, int line) { write_at(rt, b, v, line, 0, true); }
void tv_write_str(struct trt *rt, struct tbuf *b, struct tv v, int line) { write_at(rt, b, v, line, 0, false); }

static void write_at(struct trt *rt, struct tbuf *b, struct tv v, int line, int depth, bool repr)
{
    char num[40];
    tv_check_nesting(rt, depth, line);
    if (repr && v.t == TV_STR) {
        write_repr_str(rt, b, v.s);
        return;
    }
    switch (v.t) {
    case TV_UNDEF: /* Jinja's default Undefined prints as nothing, but is "Undefined" inside a list */
        if (repr)
            tbuf_puts(rt, b, "Undefined");
        return;
    case TV_NONE: tbuf_puts(rt, b, "None"); return;
    case TV_BOOL: tbuf_puts(rt, b, v.b ? "True" : "False"); return;
    case TV_INT: tbuf_printf(rt, b, "%lld", v.i); return;
    case TV_FLOAT: tv_format_float(v.f, num); tbuf_puts(rt, b, num); return;
    case TV_STR: tbuf_put(rt, b, v.s->s, v.s->len); return;
    case TV_LIST: write_list(rt, b, v.l, line, depth); return;
    case TV_DICT: write_dict(rt, b, v.d, line, depth); return;
    case TV_NS: tbuf_puts(rt, b, "<Namespace "); write_dict(rt, b, v.d, line, depth); tbuf_puts(rt, b, ">"); return;
    case TV_FUNC: tbuf_printf(rt, b, "<built-in function %s>", v.fn->name); return;
    case TV_MACRO: tbuf_printf(rt, b, "<Macro '%s'>", v.clo->macro->name); return;
    }
}

struct tv tv_to_str(struct trt *rt, struct tv v, int line)
{
    if (v.t == TV_STR)
        return v;
    struct tbuf b = { 0 };
    tv_write_str(rt, &b, v, line);
    return tbuf_take(rt, &b);
}
