/* tmpl_format.c — Python's printf-style string formatting, for `'%s: %d' % (a, b)` and Jinja's format
 * filter: conversions s r a d i u f F e E g G x X o c and %%, flags - + space 0 #, width and
 * precision, and %(name)s with a mapping. Width and precision count characters, as Python does. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tmpl_internal.h"

struct spec {
    char flags[8];
    int width, prec; /* -1: not given */
    char conv;
    const char *key; size_t key_len; /* %(key)s */
};

/* Parses the spec after '%' at *p; returns false at a malformed one. */
static bool parse_spec(const char **p, const char *end, struct spec *sp)
{
    const char *s = *p;
    *sp = (struct spec){ .width = -1, .prec = -1 };
    if (s < end && *s == '(') {
        const char *close = memchr(s, ')', end - s);
        if (!close)
            return false;
        sp->key = s + 1;
        sp->key_len = close - s - 1;
        s = close + 1;
    }
    int nf = 0;
    while (s < end && strchr("-+ 0#", *s) && *s && nf < 6)
        sp->flags[nf++] = *s++;
    for (; s < end && *s >= '0' && *s <= '9' && sp->width < 10000; s++)
        sp->width = (sp->width < 0 ? 0 : sp->width * 10) + (*s - '0');
    if (s < end && *s == '.')
        for (sp->prec = 0, s++; s < end && *s >= '0' && *s <= '9' && sp->prec < 10000; s++)
            sp->prec = sp->prec * 10 + (*s - '0');
    if (s >= end || !strchr("sradiufFeEgGxXoc%", *s) || !*s)
        return false;
    sp->conv = *s++;
    *p = s;
    return true;
}

/* Pads text (counted in code points) to the width, on the left unless the '-' flag is set. */
static void put_padded(struct trt *rt, struct tbuf *b, const struct spec *sp, const char *s, size_t len, bool zero)
{
    size_t chars = tv_utf8_len(s, len);
    size_t pad = sp->width > 0 && (size_t)sp->width > chars ? (size_t)sp->width - chars : 0;
    bool left = strchr(sp->flags, '-') != NULL;
    if (zero && !left && pad && (*s == '-' || *s == '+' || *s == ' ')) { /* sign before the zeros */
        tbuf_put(rt, b, s, 1);
        s++;
        len--;
    }
    for (size_t i = 0; !left && i < pad; i++)
        tbuf_put(rt, b, zero ? "0" : " ", 1);
    tbuf_put(rt, b, s, len);
    for (size_t i = 0; left && i < pad; i++)
        tbuf_put(rt, b, " ", 1);
}

static void put_number(struct trt *rt, struct tbuf *b, const struct spec *sp, struct tv v, int line)
{
    char fmt[32], out[512];
    bool is_float = strchr("fFeEgG", sp->conv) != NULL;
    if (v.t == TV_BOOL)
        v = tv_int(v.b);
    if (v.t != TV_INT && v.t != TV_FLOAT)
        trt_fail(rt, line, "%%%c format: a number is required, not %s", sp->conv, tv_type_name(v));
    if (v.t == TV_FLOAT && strchr("xXoc", sp->conv))
        trt_fail(rt, line, "%%%c format: an integer is required, not float", sp->conv);
    if (v.t == TV_FLOAT && !is_float && !isfinite(v.f))
        trt_fail(rt, line, "%%%c format: cannot convert float %s to integer", sp->conv, isnan(v.f) ? "NaN" : "infinity");
    /* Beyond long long a float holds an integer already: printed whole, as Python prints int(f), where
     * a cast would be undefined behaviour. */
    bool big = v.t == TV_FLOAT && !is_float && fabs(v.f) >= 9.2e18;
    char conv = big ? 'f' : sp->conv == 'i' || sp->conv == 'u' ? 'd' : sp->conv;
    is_float |= big;
    snprintf(fmt, sizeof(fmt), "%%%s%s%s%s", strchr(sp->flags, '+') ? "+" : "", strchr(sp->flags, ' ') ? " " : "",
             strchr(sp->flags, '#') ? "#" : "", sp->prec >= 0 || big ? ".*" : "");
    size_t fl = strlen(fmt);
    snprintf(fmt + fl, sizeof(fmt) - fl, is_float ? "%c" : "ll%c", conv);
    int prec = sp->prec < 0 || big ? 0 : sp->prec > 100 ? 100 : sp->prec;
    int n = is_float ? (sp->prec >= 0 || big ? snprintf(out, sizeof(out), fmt, prec, v.t == TV_FLOAT ? v.f : (double)v.i)
                                      : snprintf(out, sizeof(out), fmt, v.t == TV_FLOAT ? v.f : (double)v.i))
                     : (sp->prec >= 0 ? snprintf(out, sizeof(out), fmt, prec, v.t == TV_INT ? v.i : (long long)v.f)
                                      : snprintf(out, sizeof(out), fmt, v.t == TV_INT ? v.i : (long long)v.f));
    if (strchr(sp->flags, '#') && conv == 'o' && n > 1 && out[0] == '0') { /* Python spells it 0o17 */
        memmove(out + 2, out + 1, (size_t)n);
        out[1] = 'o';
        n++;
    }
    put_padded(rt, b, sp, out, n < (int)sizeof(out) ? (size_t)n : sizeof(out) - 1, strchr(sp->flags, '0') != NULL);
}

static void put_one(struct trt *rt, struct tbuf *b, const struct spec *sp, struct tv v, int line)
{
    if (strchr("diuxXofFeEgG", sp->conv)) {
        put_number(rt, b, sp, v, line);
        return;
    }
    struct tbuf t = { 0 };
    if (sp->conv == 'c') {
        char enc[4];
        if (v.t == TV_INT && v.i >= 0 && v.i <= 0x10FFFF)
            tbuf_put(rt, &t, enc, tv_utf8_put(enc, (uint32_t)v.i));
        else if (v.t == TV_STR && tv_utf8_len(v.s->s, v.s->len) == 1)
            tbuf_put(rt, &t, v.s->s, v.s->len);
        else
            trt_fail(rt, line, "%%c requires an int or a single character");
    } else if (sp->conv == 's') {
        tv_write_str(rt, &t, v, line);
    } else {
        tv_write_repr(rt, &t, v, line);
    }
    size_t len = t.len;
    if (sp->prec >= 0) /* precision truncates to that many characters */
        len = tv_utf8_offset(t.p ? t.p : "", t.len, (size_t)sp->prec);
    put_padded(rt, b, sp, t.p ? t.p : "", len, false);
}

struct tv tformat_percent(struct trt *rt, const struct tstr *fmt, struct tv args, int line)
{
    bool tuple = args.t == TV_LIST && args.l->tuple;
    size_t next = 0, nargs = tuple ? args.l->n : 1;
    struct tbuf b = { 0 };
    tbuf_put(rt, &b, "", 0);
    const char *p = fmt->s, *end = fmt->s + fmt->len;
    while (p < end) {
        const char *pct = memchr(p, '%', end - p);
        tbuf_put(rt, &b, p, (pct ? pct : end) - p);
        if (!pct)
            break;
        p = pct + 1;
        struct spec sp;
        if (!parse_spec(&p, end, &sp))
            trt_fail(rt, line, "unsupported or malformed format specifier at position %zu", (size_t)(pct - fmt->s));
        if (sp.conv == '%') {
            tbuf_put(rt, &b, "%", 1);
            continue;
        }
        struct tv v;
        if (sp.key) {
            struct tv *hit = args.t == TV_DICT ? tv_dict_get(args.d, sp.key, sp.key_len) : NULL;
            if (!hit)
                trt_fail(rt, line, "format: no key '%.*s' in the mapping", (int)sp.key_len, sp.key);
            v = *hit;
        } else {
            if (next >= nargs)
                trt_fail(rt, line, "not enough arguments for format string");
            v = tuple ? args.l->v[next] : args;
            next++;
        }
        put_one(rt, &b, &sp, v, line);
    }
    if (next < nargs && args.t != TV_DICT)
        trt_fail(rt, line, "not all arguments converted during string formatting");
    return tbuf_take(rt, &b);
}
