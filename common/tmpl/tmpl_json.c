/* tmpl_json.c — the tojson filter as transformers defines it: Python's json.dumps with
 * ensure_ascii=False by default, indent, separators and sort_keys. Not Jinja's own tojson, which
 * HTML-escapes; chat templates are rendered by transformers' override. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

static void write_json_str(struct trt *rt, struct tbuf *b, const char *s, size_t len, bool ascii)
{
    tbuf_puts(rt, b, "\"");
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        uint32_t c = tv_utf8_next(s, len, &i);
        switch (c) {
        case '"': tbuf_puts(rt, b, "\\\""); continue;
        case '\\': tbuf_puts(rt, b, "\\\\"); continue;
        case '\n': tbuf_puts(rt, b, "\\n"); continue;
        case '\r': tbuf_puts(rt, b, "\\r"); continue;
        case '\t': tbuf_puts(rt, b, "\\t"); continue;
        case '\b': tbuf_puts(rt, b, "\\b"); continue;
        case '\f': tbuf_puts(rt, b, "\\f"); continue;
        }
        if (c < 0x20 || (ascii && c >= 0x7f && c < 0x10000)) {
            tbuf_printf(rt, b, "\\u%04x", c);
        } else if (ascii && c >= 0x10000) {
            c -= 0x10000;
            tbuf_printf(rt, b, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
        } else {
            tbuf_put(rt, b, s + start, i - start);
        }
    }
    tbuf_puts(rt, b, "\"");
}

static void newline_indent(struct trt *rt, struct tbuf *b, const struct tjson_opts *o, int depth)
{
    if (o->indent < 0)
        return;
    tbuf_puts(rt, b, "\n");
    for (int i = 0; i < o->indent * depth; i++)
        tbuf_puts(rt, b, " ");
}

static void write_json_list(struct trt *rt, struct tbuf *b, const struct tlist *l,
                            const struct tjson_opts *o, int depth, int line)
{
    if (l->n == 0) {
        tbuf_puts(rt, b, "[]");
        return;
    }
    tbuf_puts(rt, b, "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            tbuf_puts(rt, b, o->item_sep);
        newline_indent(rt, b, o, depth + 1);
        tv_write_json(rt, b, l->v[i], o, depth + 1, line);
    }
    newline_indent(rt, b, o, depth);
    tbuf_puts(rt, b, "]");
}

static int key_cmp(const void *x, const void *y)
{
    const struct tstr *a = *(struct tstr *const *)x, *b = *(struct tstr *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void write_json_dict(struct trt *rt, struct tbuf *b, const struct tdict *d,
                            const struct tjson_opts *o, int depth, int line)
{
    if (d->n == 0) {
        tbuf_puts(rt, b, "{}");
        return;
    }
    struct tstr **keys = trt_alloc(rt, d->n * sizeof(*keys));
    memcpy(keys, d->k, d->n * sizeof(*keys));
    if (o->sort_keys)
        qsort(keys, d->n, sizeof(*keys), key_cmp);
    tbuf_puts(rt, b, "{");
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            tbuf_puts(rt, b, o->item_sep);
        newline_indent(rt, b, o, depth + 1);
        write_json_str(rt, b, keys[i]->s, keys[i]->len, o->ensure_ascii);
        tbuf_puts(rt, b, o->key_sep);
        tv_write_json(rt, b, *tv_dict_get(d, keys[i]->s, keys[i]->len), o, depth + 1, line);
    }
    newline_indent(rt, b, o, depth);
    tbuf_puts(rt, b, "}");
}

void tv_write_json(struct trt *rt, struct tbuf *b, struct tv v, const struct tjson_opts *o, int depth, int line)
{
    char num[40];
    if (depth > 256)
        trt_fail(rt, line, "tojson: value nested more than 256 levels deep");
    switch (v.t) {
    case TV_NONE: tbuf_puts(rt, b, "null"); return;
    case TV_BOOL: tbuf_puts(rt, b, v.b ? "true" : "false"); return;
    case TV_INT: tbuf_printf(rt, b, "%lld", v.i); return;
    case TV_FLOAT:
        if (isnan(v.f))
            tbuf_puts(rt, b, "NaN");
        else if (isinf(v.f))
            tbuf_puts(rt, b, v.f < 0 ? "-Infinity" : "Infinity");
        else {
            tv_format_float(v.f, num);
            tbuf_puts(rt, b, num);
        }
        return;
    case TV_STR: write_json_str(rt, b, v.s->s, v.s->len, o->ensure_ascii); return;
    case TV_LIST: write_json_list(rt, b, v.l, o, depth, line); return;
    case TV_DICT: write_json_dict(rt, b, v.d, o, depth, line); return;
    case TV_UNDEF:
        tv_need_defined(rt, v, line);
        return;
    default:
        trt_fail(rt, line, "tojson: a %s is not JSON serializable", tv_type_name(v));
    }
}
