/* tmpl_value.c — the template engine's values: the arena they live in, construction, conversion from
 * jansson, Python's truthiness / equality / ordering, UTF-8 helpers, and Python's float repr. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

struct tarena_chunk {
    struct tarena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

#define TARENA_CHUNK (64 * 1024)

/* 64 KiB chunks (bigger only for one big allocation): below glibc's mmap threshold, so a render's
 * chunks come from and go back to the heap. Memory is not zeroed. */
void *tarena_alloc_raw(struct tarena *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (a->limit && a->total + n > a->limit)
        return NULL;
    struct tarena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > TARENA_CHUNK ? n : TARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

void *tarena_alloc(struct tarena *a, size_t n)
{
    void *p = tarena_alloc_raw(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void tarena_free(struct tarena *a)
{
    struct tarena_chunk *c = a->head;
    while (c) {
        struct tarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *trt_alloc_raw(struct trt *rt, size_t n)
{
    void *p = tarena_alloc_raw(&rt->arena, n);
    if (!p)
        trt_fail(rt, 0, "the template needs more than %zu bytes of memory (max_memory)", rt->lim.max_memory);
    return p;
}

void *trt_alloc(struct trt *rt, size_t n)
{
    void *p = tarena_alloc(&rt->arena, n);
    if (!p)
        trt_fail(rt, 0, "the template needs more than %zu bytes of memory (max_memory)", rt->lim.max_memory);
    return p;
}

struct tv tv_none(void) { return (struct tv){ .t = TV_NONE }; }
struct tv tv_bool(bool b) { return (struct tv){ .t = TV_BOOL, .b = b }; }
struct tv tv_int(long long i) { return (struct tv){ .t = TV_INT, .i = i }; }
struct tv tv_float(double f) { return (struct tv){ .t = TV_FLOAT, .f = f }; }

struct tv tv_str(struct trt *rt, const char *s, size_t len)
{
    struct tstr *p = trt_alloc_raw(rt, sizeof(*p) + len + 1);
    p->len = len;
    if (len)
        memcpy(p->s, s, len);
    p->s[len] = 0;
    return (struct tv){ .t = TV_STR, .s = p };
}

struct tv tv_cstr(struct trt *rt, const char *s) { return tv_str(rt, s, strlen(s)); }

struct tv tv_str_concat(struct trt *rt, const struct tstr *a, const struct tstr *b)
{
    if (a->len + b->len > rt->lim.max_output)
        trt_fail(rt, 0, "a string would exceed %zu bytes (max_output)", rt->lim.max_output);
    struct tstr *p = trt_alloc_raw(rt, sizeof(*p) + a->len + b->len + 1);
    p->len = a->len + b->len;
    memcpy(p->s, a->s, a->len);
    memcpy(p->s + a->len, b->s, b->len);
    p->s[p->len] = 0;
    return (struct tv){ .t = TV_STR, .s = p };
}

struct tv tv_undef(struct trt *rt, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct tv v = tv_cstr(rt, msg);
    v.t = TV_UNDEF;
    return v;
}

void tv_need_defined(struct trt *rt, struct tv v, int line)
{
    if (v.t == TV_UNDEF)
        trt_fail(rt, line, "%s", v.s ? v.s->s : "undefined value");
}

struct tv tv_list(struct trt *rt, size_t cap)
{
    struct tlist *l = trt_alloc(rt, sizeof(*l));
    l->cap = cap ? cap : 4;
    l->v = trt_alloc_raw(rt, l->cap * sizeof(struct tv));
    return (struct tv){ .t = TV_LIST, .l = l };
}

struct tv tv_dict(struct trt *rt, size_t cap)
{
    struct tdict *d = trt_alloc(rt, sizeof(*d));
    d->cap = cap ? cap : 4;
    d->k = trt_alloc_raw(rt, d->cap * sizeof(*d->k));
    d->v = trt_alloc_raw(rt, d->cap * sizeof(*d->v));
    return (struct tv){ .t = TV_DICT, .d = d };
}

void tv_list_push(struct trt *rt, struct tlist *l, struct tv v)
{
    if (l->n == l->cap) {
        struct tv *nv = trt_alloc_raw(rt, 2 * l->cap * sizeof(*nv));
        memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap *= 2;
    }
    l->v[l->n++] = v;
}

struct tv *tv_dict_get(const struct tdict *d, const char *k, size_t klen)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->len == klen && memcmp(d->k[i]->s, k, klen) == 0)
            return &d->v[i];
    return NULL;
}

void tv_dict_set(struct trt *rt, struct tdict *d, const char *k, size_t klen, struct tv v)
{
    struct tv *slot = tv_dict_get(d, k, klen);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        struct tstr **nk = trt_alloc_raw(rt, 2 * d->cap * sizeof(*nk));
        struct tv *nv = trt_alloc_raw(rt, 2 * d->cap * sizeof(*nv));
        memcpy(nk, d->k, d->n * sizeof(*nk));
        memcpy(nv, d->v, d->n * sizeof(*nv));
        d->k = nk;
        d->v = nv;
        d->cap *= 2;
    }
    d->k[d->n] = tv_str(rt, k, klen).s;
    d->v[d->n++] = v;
}

struct tv tv_from_json(struct trt *rt, json_t *j, int depth)
{
    if (depth > 256)
        trt_fail(rt, 0, "the context is nested more than 256 levels deep");
    switch (json_typeof(j)) {
    case JSON_STRING: return tv_str(rt, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return tv_int(json_integer_value(j));
    case JSON_REAL: return tv_float(json_real_value(j));
    case JSON_TRUE: return tv_bool(true);
    case JSON_FALSE: return tv_bool(false);
    case JSON_NULL: return tv_none();
    case JSON_ARRAY: {
        struct tv l = tv_list(rt, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            tv_list_push(rt, l.l, tv_from_json(rt, json_array_get(j, i), depth + 1));
        return l;
    }
    case JSON_OBJECT: {
        struct tv d = tv_dict(rt, json_object_size(j));
        const char *k;
        size_t klen;
        json_t *v;
        json_object_keylen_foreach(j, k, klen, v)
            tv_dict_set(rt, d.d, k, klen, tv_from_json(rt, v, depth + 1));
        return d;
    }
    }
    return tv_none();
}

bool tv_truthy(struct tv v)
{
    switch (v.t) {
    case TV_UNDEF: case TV_NONE: return false;
    case TV_BOOL: return v.b;
    case TV_INT: return v.i != 0;
    case TV_FLOAT: return v.f != 0.0;
    case TV_STR: return v.s->len > 0;
    case TV_LIST: return v.l->n > 0;
    case TV_DICT: return v.d->n > 0;
    default: return true;
    }
}

static bool tv_is_num(struct tv v) { return v.t == TV_INT || v.t == TV_FLOAT || v.t == TV_BOOL; }
static double tv_num(struct tv v) { return v.t == TV_FLOAT ? v.f : v.t == TV_INT ? (double)v.i : v.b; }

#define TV_MAX_NESTING 256

static void check_nesting(struct trt *rt, int depth, int line)
{
    if (depth > TV_MAX_NESTING)
        trt_fail(rt, line, "values nested more than %d levels deep", TV_MAX_NESTING);
}

static bool equal_at(struct trt *rt, struct tv a, struct tv b, int depth);

static bool dict_equal(struct trt *rt, const struct tdict *a, const struct tdict *b, int depth)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        struct tv *o = tv_dict_get(b, a->k[i]->s, a->k[i]->len);
        if (!o || !equal_at(rt, a->v[i], *o, depth + 1))
            return false;
    }
    return true;
}

static bool equal_at(struct trt *rt, struct tv a, struct tv b, int depth)
{
    check_nesting(rt, depth, 0);
    if (tv_is_num(a) && tv_is_num(b)) {
        if (a.t != TV_FLOAT && b.t != TV_FLOAT)
            return (a.t == TV_INT ? a.i : a.b) == (b.t == TV_INT ? b.i : b.b);
        return tv_num(a) == tv_num(b);
    }
    if (a.t != b.t)
        return false;
    switch (a.t) {
    case TV_UNDEF: case TV_NONE: return true;
    case TV_STR: return a.s->len == b.s->len && memcmp(a.s->s, b.s->s, a.s->len) == 0;
    case TV_LIST:
        if (a.l->n != b.l->n)
            return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!equal_at(rt, a.l->v[i], b.l->v[i], depth + 1))
                return false;
        return true;
    case TV_DICT: return dict_equal(rt, a.d, b.d, depth);
    case TV_NS: return a.d == b.d;
    case TV_FUNC: return a.fn == b.fn;
    case TV_MACRO: return a.clo == b.clo;
    default: return false;
    }
}

bool tv_equal(struct trt *rt, struct tv a, struct tv b) { return equal_at(rt, a, b, 0); }

static int compare_at(struct trt *rt, struct tv a, struct tv b, int line, int depth)
{
    check_nesting(rt, depth, line);
    tv_need_defined(rt, a, line);
    tv_need_defined(rt, b, line);
    if (tv_is_num(a) && tv_is_num(b)) {
        double x = tv_num(a), y = tv_num(b);
        if (a.t == TV_INT && b.t == TV_INT)
            return (a.i > b.i) - (a.i < b.i);
        return (x > y) - (x < y);
    }
    if (a.t == TV_STR && b.t == TV_STR) {
        size_t n = a.s->len < b.s->len ? a.s->len : b.s->len;
        int c = memcmp(a.s->s, b.s->s, n); /* UTF-8 byte order is code point order */
        return c ? (c > 0) - (c < 0) : (a.s->len > b.s->len) - (a.s->len < b.s->len);
    }
    if (a.t == TV_LIST && b.t == TV_LIST) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++)
            if (!equal_at(rt, a.l->v[i], b.l->v[i], depth + 1))
                return compare_at(rt, a.l->v[i], b.l->v[i], line, depth + 1);
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    trt_fail(rt, line, "cannot order %s and %s", tv_type_name(a), tv_type_name(b));
}

int tv_compare(struct trt *rt, struct tv a, struct tv b, int line) { return compare_at(rt, a, b, line, 0); }

void tv_check_nesting(struct trt *rt, int depth, int line) { check_nesting(rt, depth, line); }

const char *tv_type_name(struct tv v)
{
    static const char *const names[] = { "undefined", "none", "bool", "int", "float", "string",
                                         "list", "dict", "namespace", "function", "macro" };
    if (v.t == TV_LIST && v.l->tuple)
        return "tuple";
    return names[v.t];
}

size_t tv_utf8_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

size_t tv_utf8_offset(const char *s, size_t len, size_t cp)
{
    size_t i = 0;
    while (i < len && cp > 0) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

/* Python's str.isspace() set. */
bool tv_is_space(uint32_t cp)
{
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F))
        return true;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

void tbuf_put(struct trt *rt, struct tbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > rt->lim.max_output * 2 + 1024 && b->len + n > rt->lim.max_output)
            trt_fail(rt, 0, "the output would exceed %zu bytes (max_output)", rt->lim.max_output);
        char *p = trt_alloc_raw(rt, cap);
        if (b->len)
            memcpy(p, b->p, b->len);
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    if (b->len > rt->lim.max_output)
        trt_fail(rt, 0, "the output would exceed %zu bytes (max_output)", rt->lim.max_output);
}

void tbuf_puts(struct trt *rt, struct tbuf *b, const char *s) { tbuf_put(rt, b, s, strlen(s)); }

void tbuf_printf(struct trt *rt, struct tbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    tbuf_put(rt, b, tmp, n < (int)sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

struct tv tbuf_take(struct trt *rt, struct tbuf *b)
{
    return tv_str(rt, b->p ? b->p : "", b->len);
}

void tv_format_float(double f, char out[40])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec < 17; prec++) { /* the shortest digits that read back as f, like Python's repr */
        snprintf(e, sizeof(e), "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", prec - 1, f);
    char digits[24];
    int nd = 0, exp = atoi(strchr(e, 'e') + 1);
    for (const char *p = e; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    char *o = out;
    if (f < 0 || (f == 0 && signbit(f)))
        *o++ = '-';
    if (exp < -4 || exp >= 16) {
        o += sprintf(o, "%c", digits[0]);
        if (nd > 1)
            o += sprintf(o, ".%s", digits + 1);
        sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp < 0) {
        sprintf(o, "0.%0*d%s", -exp - 1, 0, digits);
        if (exp == -1)
            sprintf(o, "0.%s", digits);
    } else {
        for (int i = 0; i <= exp || i < nd; i++) {
            if (i == exp + 1)
                *o++ = '.';
            *o++ = i < nd ? digits[i] : '0';
        }
        if (nd <= exp + 1)
            o += sprintf(o, ".0");
        *o = 0;
    }
}

/* Decodes the code point at s[*i] and advances *i; a malformed byte decodes as itself (U+0080..U+00FF
 * never collide with what a template compares against, and the bytes pass through unchanged). */
uint32_t tv_utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[*i];
    int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (c >= 0xF8 || *i + extra >= len) {
        (*i)++;
        return c;
    }
    uint32_t cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : extra == 1 ? c & 0x1F : c;
    for (int k = 1; k <= extra; k++) {
        if ((u[*i + k] & 0xC0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = cp << 6 | (u[*i + k] & 0x3F);
    }
    *i += 1 + extra;
    return cp;
}

/* Encodes cp as UTF-8 into o (room for 4 bytes); returns the bytes written. */
size_t tv_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

