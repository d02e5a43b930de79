/* tmpl_method.c — methods templates call on values: Python's str methods (strip, split, startswith,
 * replace, format, find, isdigit, ...), dict's get/items/keys/values and list's count/index. Mutating
 * methods (list.append, dict.update) are refused, as transformers' immutable sandbox refuses them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

static bool in_chars(uint32_t cp, const struct tstr *chars)
{
    if (!chars)
        return tv_is_space(cp);
    size_t i = 0;
    while (i < chars->len)
        if (tv_utf8_next(chars->s, chars->len, &i) == cp)
            return true;
    return false;
}

/* str.strip/lstrip/rstrip: which = 1 left, 2 right, 3 both. chars NULL = whitespace. */
struct tv tstr_strip(struct trt *rt, const struct tstr *s, const struct tstr *chars, int which)
{
    size_t a = 0, b = s->len;
    while ((which & 1) && a < b) {
        size_t i = a;
        if (!in_chars(tv_utf8_next(s->s, s->len, &i), chars))
            break;
        a = i;
    }
    while ((which & 2) && b > a) {
        size_t start = b - 1;
        while (start > a && ((unsigned char)s->s[start] & 0xC0) == 0x80)
            start--;
        size_t i = start;
        if (!in_chars(tv_utf8_next(s->s, s->len, &i), chars))
            break;
        b = start;
    }
    return tv_str(rt, s->s + a, b - a);
}

struct tv tstr_replace(struct trt *rt, const struct tstr *s, const struct tstr *old, const struct tstr *new,
                       long long count)
{
    struct tbuf b = { 0 };
    size_t i = 0;
    long long done = 0;
    if (old->len == 0) { /* Python inserts new between every character, and at both ends */
        while (count < 0 || done < count) {
            tbuf_put(rt, &b, new->s, new->len);
            done++;
            if (i >= s->len)
                break;
            size_t start = i;
            tv_utf8_next(s->s, s->len, &i);
            tbuf_put(rt, &b, s->s + start, i - start);
        }
        tbuf_put(rt, &b, s->s + i, s->len - i);
        return tbuf_take(rt, &b);
    }
    while (count < 0 || done < count) {
        const char *hit = memmem(s->s + i, s->len - i, old->s, old->len);
        if (!hit)
            break;
        tbuf_put(rt, &b, s->s + i, hit - (s->s + i));
        tbuf_put(rt, &b, new->s, new->len);
        i = hit - s->s + old->len;
        done++;
    }
    tbuf_put(rt, &b, s->s + i, s->len - i);
    return tbuf_take(rt, &b);
}

static struct tv str_split(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    struct tv sep = targ(a, 0, "sep", tv_none());
    struct tv maxv = targ(a, 1, "maxsplit", tv_int(-1));
    long long max = maxv.t == TV_INT ? maxv.i : -1;
    struct tv out = tv_list(rt, 4);
    size_t i = 0;
    if (sep.t == TV_NONE) { /* runs of whitespace, no empty strings */
        for (;;) {
            size_t j = i;
            while (j < s->len) { size_t k = j; if (!tv_is_space(tv_utf8_next(s->s, s->len, &k))) break; j = k; }
            if (j >= s->len)
                return out;
            if (max >= 0 && (long long)out.l->n >= max) {
                tv_list_push(rt, out.l, tv_str(rt, s->s + j, s->len - j)); /* the rest, as is */
                return out;
            }
            size_t k = j;
            while (k < s->len) { size_t m = k; if (tv_is_space(tv_utf8_next(s->s, s->len, &m))) break; k = m; }
            tv_list_push(rt, out.l, tv_str(rt, s->s + j, k - j));
            i = k;
        }
    }
    struct tstr *sp = targ_str(rt, sep, "split() separator", line);
    if (sp->len == 0)
        trt_fail(rt, line, "split(): empty separator");
    for (;;) {
        const char *hit = max >= 0 && (long long)out.l->n >= max ? NULL : memmem(s->s + i, s->len - i, sp->s, sp->len);
        if (!hit) {
            tv_list_push(rt, out.l, tv_str(rt, s->s + i, s->len - i));
            return out;
        }
        tv_list_push(rt, out.l, tv_str(rt, s->s + i, hit - (s->s + i)));
        i = hit - s->s + sp->len;
    }
}

static bool affix_match(const struct tstr *s, const struct tstr *x, bool end)
{
    return x->len <= s->len && memcmp(s->s + (end ? s->len - x->len : 0), x->s, x->len) == 0;
}

static struct tv str_affix(struct trt *rt, const struct tstr *s, struct targs *a, bool end, int line)
{
    struct tv x = targ(a, 0, end ? "suffix" : "prefix", tv_undef(rt, "missing argument"));
    if (x.t == TV_LIST) {
        for (size_t i = 0; i < x.l->n; i++)
            if (affix_match(s, targ_str(rt, x.l->v[i], "startswith/endswith item", line), end))
                return tv_bool(true);
        return tv_bool(false);
    }
    return tv_bool(affix_match(s, targ_str(rt, x, end ? "endswith() argument" : "startswith() argument", line), end));
}

/* str.format with {} / {0} / {name} fields and {{ }} escapes; no format specs. */
static struct tv str_format(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    struct tbuf b = { 0 };
    int auto_idx = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->s[i];
        if ((c == '{' || c == '}') && i + 1 < s->len && s->s[i + 1] == c) {
            tbuf_put(rt, &b, &c, 1);
            i++;
            continue;
        }
        if (c != '{') {
            tbuf_put(rt, &b, &c, 1);
            continue;
        }
        const char *close = memchr(s->s + i, '}', s->len - i);
        if (!close)
            trt_fail(rt, line, "format(): unmatched '{'");
        char field[64];
        size_t n = close - (s->s + i + 1);
        if (n >= sizeof(field) || memchr(s->s + i + 1, ':', n) || memchr(s->s + i + 1, '!', n))
            trt_fail(rt, line, "format(): only {}, {N} and {name} fields are supported");
        memcpy(field, s->s + i + 1, n);
        field[n] = 0;
        long idx = field[0] >= '0' && field[0] <= '9' ? strtol(field, NULL, 10) : -1;
        struct tv v = n == 0    ? targ(a, auto_idx++, NULL, tv_undef(rt, "x"))
                      : idx >= 0 ? targ(a, idx < 4096 ? (int)idx : 4096, NULL, tv_undef(rt, "x"))
                                 : targ(a, -1, field, tv_undef(rt, "x"));
        if (v.t == TV_UNDEF)
            trt_fail(rt, line, "format(): no argument for field {%s}", field);
        tv_write_str(rt, &b, v, line);
        i = close - s->s;
    }
    return tbuf_take(rt, &b);
}

static const struct tstr *opt_chars(struct trt *rt, struct targs *a, int line)
{
    struct tv c = targ(a, 0, "chars", tv_none());
    return c.t == TV_NONE ? NULL : targ_str(rt, c, "strip() chars", line);
}

static long long count_of(const struct tstr *s, const struct tstr *sub)
{
    if (sub->len == 0)
        return (long long)tv_utf8_len(s->s, s->len) + 1;
    long long n = 0;
    for (const char *p = s->s; (p = memmem(p, s->len - (p - s->s), sub->s, sub->len)); p += sub->len)
        n++;
    return n;
}

static struct tv str_count(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    tcharge(rt, s->len / 16, line);
    return tv_int(count_of(s, targ_str(rt, targ(a, 0, "sub", tv_undef(rt, "x")), "count() argument", line)));
}

static struct tv str_find(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    tcharge(rt, s->len / 16, line);
    struct tstr *sub = targ_str(rt, targ(a, 0, "sub", tv_undef(rt, "x")), "find() argument", line);
    const char *hit = memmem(s->s, s->len, sub->s, sub->len);
    return tv_int(hit ? (long long)tv_utf8_len(s->s, hit - s->s) : -1);
}

static struct tv str_rfind(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    struct tstr *sub = targ_str(rt, targ(a, 0, "sub", tv_undef(rt, "x")), "rfind() argument", line);
    tcharge(rt, s->len / 16, line);
    const char *last = NULL;
    for (const char *p = s->s; (p = memmem(p, s->len - (size_t)(p - s->s), sub->s, sub->len)); p++) {
        last = p;
        if (p == s->s + s->len)
            break;
    }
    return tv_int(last ? (long long)tv_utf8_len(s->s, (size_t)(last - s->s)) : -1);
}

static struct tv str_join(struct trt *rt, const struct tstr *s, struct targs *a, int line)
{
    struct tv items = targ(a, 0, "iterable", tv_undef(rt, "x"));
    if (items.t != TV_LIST)
        trt_fail(rt, line, "join() needs a list, not %s", tv_type_name(items));
    struct tbuf b = { 0 };
    for (size_t i = 0; i < items.l->n; i++) {
        if (i)
            tbuf_put(rt, &b, s->s, s->len);
        struct tstr *x = targ_str(rt, items.l->v[i], "join() item", line);
        tbuf_put(rt, &b, x->s, x->len);
    }
    return tbuf_take(rt, &b);
}

static bool str_method(struct trt *rt, const struct tstr *s, const char *name, struct targs *a, int line,
                       struct tv *out)
{
    if (!strcmp(name, "strip")) *out = tstr_strip(rt, s, opt_chars(rt, a, line), 3);
    else if (!strcmp(name, "lstrip")) *out = tstr_strip(rt, s, opt_chars(rt, a, line), 1);
    else if (!strcmp(name, "rstrip")) *out = tstr_strip(rt, s, opt_chars(rt, a, line), 2);
    else if (!strcmp(name, "upper")) *out = tstr_case(rt, s, TCASE_UPPER);
    else if (!strcmp(name, "lower")) *out = tstr_case(rt, s, TCASE_LOWER);
    else if (!strcmp(name, "title")) *out = tstr_case(rt, s, TCASE_TITLE);
    else if (!strcmp(name, "capitalize")) *out = tstr_case(rt, s, TCASE_CAPITALIZE);
    else if (!strcmp(name, "split")) *out = str_split(rt, s, a, line);
    else if (!strcmp(name, "startswith")) *out = str_affix(rt, s, a, false, line);
    else if (!strcmp(name, "endswith")) *out = str_affix(rt, s, a, true, line);
    else if (!strcmp(name, "format")) *out = str_format(rt, s, a, line);
    else if (!strcmp(name, "find")) *out = str_find(rt, s, a, line);
    else if (!strcmp(name, "rfind")) *out = str_rfind(rt, s, a, line);
    else if (!strcmp(name, "islower")) *out = tv_bool(tstr_is_case(s, false));
    else if (!strcmp(name, "isupper")) *out = tv_bool(tstr_is_case(s, true));
    else if (!strncmp(name, "is", 2)) *out = tv_bool(tstr_is_class(s, name + 2));
    else if (!strcmp(name, "join")) *out = str_join(rt, s, a, line);
    else if (!strcmp(name, "count"))
        *out = str_count(rt, s, a, line);
    else if (!strcmp(name, "replace")) {
        struct tv cnt = targ(a, 2, "count", tv_int(-1));
        *out = tstr_replace(rt, s, targ_str(rt, targ(a, 0, "old", tv_undef(rt, "x")), "replace() old", line),
                            targ_str(rt, targ(a, 1, "new", tv_undef(rt, "x")), "replace() new", line),
                            cnt.t == TV_INT ? cnt.i : -1);
    } else
        return false;
    return true;
}

static struct tv dict_items(struct trt *rt, const struct tdict *d, int what)
{
    struct tv out = tv_list(rt, d->n);
    for (size_t i = 0; i < d->n; i++) {
        struct tv k = { .t = TV_STR, .s = d->k[i] };
        if (what == 0) {
            struct tv pair = tv_list(rt, 2);
            tv_list_push(rt, pair.l, k);
            tv_list_push(rt, pair.l, d->v[i]);
            pair.l->tuple = true;
            tv_list_push(rt, out.l, pair);
        } else {
            tv_list_push(rt, out.l, what == 1 ? k : d->v[i]);
        }
    }
    return out;
}

struct tv tdict_items(struct trt *rt, const struct tdict *d) { return dict_items(rt, d, 0); }

static bool dict_method(struct trt *rt, const struct tdict *d, const char *name, struct targs *a, struct tv *out)
{
    if (!strcmp(name, "items")) *out = dict_items(rt, d, 0);
    else if (!strcmp(name, "keys")) *out = dict_items(rt, d, 1);
    else if (!strcmp(name, "values")) *out = dict_items(rt, d, 2);
    else if (!strcmp(name, "get")) {
        struct tv k = targ(a, 0, "key", tv_none());
        struct tv *v = k.t == TV_STR ? tv_dict_get(d, k.s->s, k.s->len) : NULL;
        *out = v ? *v : targ(a, 1, "default", tv_none());
    } else
        return false;
    return true;
}

/* list.count(x) and list.index(x), with Python's equality; index of a missing item is an error. */
static bool list_method(struct trt *rt, const struct tlist *l, const char *name, struct targs *a, int line,
                        struct tv *out)
{
    struct tv x = targ(a, 0, "value", tv_undef(rt, "%s() needs an argument", name));
    tv_need_defined(rt, x, line);
    tcharge(rt, l->n, line);
    long long n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!tv_equal(rt, l->v[i], x))
            continue;
        if (!strcmp(name, "index")) {
            *out = tv_int((long long)i);
            return true;
        }
        n++;
    }
    if (!strcmp(name, "index"))
        trt_fail(rt, line, "list.index(x): x is not in the list");
    *out = tv_int(n);
    return true;
}

static const char *const str_methods[] = { "strip", "lstrip", "rstrip", "upper", "lower", "title", "capitalize",
                                           "split", "startswith", "endswith", "format", "find", "join", "count",
                                           "replace", "rfind", "isdigit", "isalpha", "isalnum", "isspace",
                                           "islower", "isupper", NULL };
static const char *const list_methods[] = { "count", "index", NULL };
static const char *const dict_methods[] = { "items", "keys", "values", "get", NULL };
static const char *const mutators[] = { "append", "extend", "insert", "pop", "remove", "clear", "update",
                                        "setdefault", "sort", "reverse", "popitem", NULL };

static bool listed(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

bool tmethod_exists(struct tv self, const char *name)
{
    if (self.t == TV_STR)
        return listed(str_methods, name);
    if (self.t == TV_DICT && self.d->is_loop && (!strcmp(name, "cycle") || !strcmp(name, "changed")))
        return true;
    if (self.t == TV_DICT)
        return listed(dict_methods, name) || listed(mutators, name);
    return self.t == TV_LIST && (listed(list_methods, name) || listed(mutators, name));
}

bool tmethod_call(struct trt *rt, struct tv self, const char *name, struct targs *a, int line, struct tv *out)
{
    tstep(rt, line);
    if (listed(mutators, name))
        trt_fail(rt, line, "%s.%s() modifies its object, which transformers' immutable sandbox forbids",
                 tv_type_name(self), name);
    if (self.t == TV_STR)
        return str_method(rt, self.s, name, a, line, out);
    if (self.t == TV_DICT && self.d->is_loop && tloop_method(rt, self.d, name, a, line, out))
        return true;
    if (self.t == TV_DICT)
        return dict_method(rt, self.d, name, a, out);
    if (self.t == TV_LIST)
        return list_method(rt, self.l, name, a, line, out);
    return false;
}
