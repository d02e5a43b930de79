/* tmpl_lex.c — splits template source into tokens: text between tags, tag delimiters and the
 * expression tokens inside tags. Whitespace control is settled here, as in Jinja's lexer, with
 * transformers' settings: trim_blocks (drop the newline after a block or comment tag), lstrip_blocks
 * (drop the whitespace before a block or comment tag that starts its line), '-' to strip all
 * whitespace on that side, '+' to opt out; and the template's one trailing newline is dropped
 * (keep_trailing_newline=False); \r\n and \r count as \n, as in Jinja. {% raw %} blocks are text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

struct lexer {
    struct tparse *p;
    const char *src, *end, *cur;
    int line;
    bool strip_next;      /* previous tag ended with '-': drop leading whitespace of the next text */
    bool trim_next;       /* previous block tag ended plainly: drop one leading newline */
    bool line_starting;   /* the next text starts at the beginning of a line */
};

static struct ttok *push(struct lexer *lx, enum ttok_kind kind, const char *s, size_t len)
{
    struct tparse *p = lx->p;
    if (p->ntok == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct ttok *t = tparse_alloc(p, cap * sizeof(*t));
        if (p->ntok)
            memcpy(t, p->toks, p->ntok * sizeof(*t));
        p->toks = t;
        p->cap = cap;
    }
    struct ttok *t = &p->toks[p->ntok++];
    *t = (struct ttok){ .kind = kind, .line = lx->line, .s = s, .len = len };
    return t;
}

static int count_lines(const char *s, const char *e)
{
    int n = 0;
    for (; s < e; s++)
        n += *s == '\n';
    return n;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* '-' strips what Python's \s matches: Unicode whitespace too, not only ASCII. */
static const char *skip_space(const char *s, const char *e)
{
    while (s < e) {
        size_t i = 0;
        if (!tv_is_space(tv_utf8_next(s, (size_t)(e - s), &i)))
            break;
        s += i;
    }
    return s;
}

static const char *skip_space_back(const char *s, const char *e)
{
    while (e > s) {
        const char *c = e - 1;
        while (c > s && ((unsigned char)*c & 0xC0) == 0x80)
            c--;
        size_t i = 0;
        if (!tv_is_space(tv_utf8_next(c, (size_t)(e - c), &i)))
            break;
        e = c;
    }
    return e;
}

/* Emits the text s..e after applying the strip rules of the tags on either side. */
static void emit_text(struct lexer *lx, const char *s, const char *e, char open, char mod)
{
    int line = lx->line;
    lx->line += count_lines(s, e);
    if (lx->strip_next)
        s = skip_space(s, e);
    else if (lx->trim_next && s < e && *s == '\n')
        s++;
    if (mod == '-') {
        e = skip_space_back(s, e);
    } else if (mod != '+' && (open == '%' || open == '#')) {
        const char *b = e; /* lstrip_blocks: drop the line's whitespace before the tag */
        while (b > s && b[-1] != '\n')
            b--;
        if ((b > s || lx->line_starting) && skip_space(b, e) == e)
            e = b;
    }
    if (e > s) {
        struct ttok *t = push(lx, TK_TEXT, s, e - s);
        t->line = line;
    }
}

/* After a tag: '-' strips all following whitespace; a plain block/comment end drops one newline. */
static void after_tag(struct lexer *lx, char open, char mod)
{
    lx->strip_next = mod == '-';
    lx->trim_next = mod != '+' && open != '{';
    const char *c = lx->cur;
    if (lx->strip_next) {
        c = skip_space(c, lx->end);
    } else if (lx->trim_next && c < lx->end && *c == '\n') {
        c++;
    }
    lx->line_starting = c > lx->cur && c[-1] == '\n';
}

static void lex_comment(struct lexer *lx, int line)
{
    const char *e = strstr(lx->cur, "#}");
    if (!e || e >= lx->end)
        tparse_fail(lx->p, line, "unclosed comment: '{#' has no matching '#}'");
    char mod = e > lx->cur && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
    lx->line += count_lines(lx->cur, e);
    lx->cur = e + 2;
    after_tag(lx, '#', mod);
}

void tlex_expr(struct lexer *lx, char open, int line);

/* Matches the rest of a tag " word [-+]%}" at s (after "{%" and its modifier): returns the end of the
 * tag and sets *mod to its closing modifier, or NULL. */
static const char *match_tag(const char *s, const char *end, const char *word, char *mod)
{
    size_t n = strlen(word);
    while (s < end && is_ws(*s))
        s++;
    if ((size_t)(end - s) < n || memcmp(s, word, n))
        return NULL;
    s += n;
    if (s < end && (*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return NULL; /* a longer name, e.g. "rawtext" */
    while (s < end && is_ws(*s))
        s++;
    *mod = s < end && (*s == '-' || *s == '+') ? *s++ : 0;
    return end - s >= 2 && s[0] == '%' && s[1] == '}' ? s + 2 : NULL;
}

/* {% raw %}...{% endraw %}: the body is text. As in Jinja, '-' on either inner side strips, the endraw
 * tag is lstripped, and trim_blocks applies after endraw but not after raw. */
static bool lex_raw(struct lexer *lx, int line)
{
    char mod, emod = 0, cmod = 0;
    const char *body = match_tag(lx->cur, lx->end, "raw", &mod), *o = NULL, *after = NULL;
    if (!body)
        return false;
    for (const char *s = body; !after; s = o + 2) {
        o = s < lx->end ? memmem(s, lx->end - s, "{%", 2) : NULL;
        if (!o)
            tparse_fail(lx->p, line, "unclosed '{%% raw %%}': no matching '{%% endraw %%}'");
        emod = o + 2 < lx->end && (o[2] == '-' || o[2] == '+') ? o[2] : 0;
        after = match_tag(o + 2 + (emod != 0), lx->end, "endraw", &cmod);
    }
    const char *cs = mod == '-' ? skip_space(body, o) : body, *ce = o;
    if (emod == '-') {
        ce = skip_space_back(cs, ce);
    } else if (emod != '+') {
        const char *b = ce;
        while (b > cs && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > cs && b[-1] == '\n')
            ce = b;
    }
    int text_line = lx->line + count_lines(lx->cur, cs);
    if (ce > cs)
        push(lx, TK_TEXT, cs, ce - cs)->line = text_line;
    lx->line += count_lines(lx->cur, after);
    lx->cur = after;
    after_tag(lx, '%', cmod);
    return true;
}

/* Finds the next tag opener at or after s; NULL when none. */
static const char *find_open(const char *s, const char *end)
{
    for (; s + 1 < end; s++)
        if (s[0] == '{' && (s[1] == '{' || s[1] == '%' || s[1] == '#'))
            return s;
    return NULL;
}

/* Jinja reads \r\n and \r in the template source as \n before anything else. */
static size_t normalise_newlines(char *dst, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            dst[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            dst[n++] = src[i];
        }
    }
    return n;
}

void tlex(struct tparse *p, const char *raw, size_t raw_len)
{
    char *src = tparse_alloc(p, raw_len + 1);
    size_t len = normalise_newlines(src, raw, raw_len);
    struct lexer lx = { .p = p, .src = src, .end = src + len, .cur = src, .line = 1, .line_starting = true };
    if (len && src[len - 1] == '\n')
        lx.end--; /* keep_trailing_newline=False */
    if (memchr(src, 0, len))
        tparse_fail(p, 1, "the template contains a NUL byte");
    while (lx.cur < lx.end) {
        const char *o = find_open(lx.cur, lx.end);
        if (!o) {
            emit_text(&lx, lx.cur, lx.end, 0, 0);
            break;
        }
        char open = o[1], mod = o + 2 < lx.end && (o[2] == '-' || o[2] == '+') ? o[2] : 0;
        emit_text(&lx, lx.cur, o, open, mod);
        int line = lx.line;
        lx.cur = o + 2 + (mod != 0);
        lx.strip_next = lx.trim_next = false;
        if (open == '#')
            lex_comment(&lx, line);
        else if (open != '%' || !lex_raw(&lx, line))
            tlex_expr(&lx, open, line);
    }
    push(&lx, TK_EOF, "", 0);
}

/* ---- inside a tag ---- */

static const char *const ops[] = { "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(",
                                   ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">", NULL };

static void lex_number(struct lexer *lx)
{
    const char *s = lx->cur;
    char buf[64];
    size_t n = 0;
    bool is_float = false;
    while (lx->cur < lx->end && n < sizeof(buf) - 1) {
        char c = *lx->cur;
        bool exp_sign = (c == '+' || c == '-') && n && (buf[n - 1] == 'e' || buf[n - 1] == 'E');
        if (c == '.' && !is_float && lx->cur + 1 < lx->end && lx->cur[1] >= '0' && lx->cur[1] <= '9')
            is_float = true;
        else if ((c == 'e' || c == 'E') && n)
            is_float = true;
        else if (c == '_')
            { lx->cur++; continue; }
        else if (!(c >= '0' && c <= '9') && !exp_sign)
            break;
        buf[n++] = c;
        lx->cur++;
    }
    buf[n] = 0;
    struct ttok *t = push(lx, is_float ? TK_FLOAT : TK_INT, s, lx->cur - s);
    if (is_float)
        t->f = strtod(buf, NULL);
    else {
        errno = 0;
        t->i = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            tparse_fail(lx->p, lx->line, "integer literal %s does not fit in 64 bits", buf);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes one backslash escape at s (after the backslash) into o; returns bytes consumed. */
static size_t lex_escape(struct lexer *lx, const char *s, char *o, size_t *olen)
{
    static const char simple[] = "n\nt\tr\r\\\\'\'\"\"a\ab\bf\fv\v0\0";
    for (const char *q = simple; *q || q < simple + sizeof(simple) - 1; q += 2)
        if (*s == q[0]) {
            o[(*olen)++] = q[1];
            return 1;
        }
    int digits = *s == 'x' ? 2 : *s == 'u' ? 4 : *s == 'U' ? 8 : 0;
    if (digits && s + digits < lx->end) {
        uint32_t cp = 0;
        for (int k = 1; k <= digits; k++) {
            int h = hexval(s[k]);
            if (h < 0)
                tparse_fail(lx->p, lx->line, "bad \\%c escape in a string literal", *s);
            cp = cp << 4 | (uint32_t)h;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            tparse_fail(lx->p, lx->line, "string literal escape U+%X is not a valid character", cp);
        *olen += tv_utf8_put(o + *olen, cp);
        return 1 + digits;
    }
    o[(*olen)++] = '\\'; /* Python keeps unknown escapes as written */
    o[(*olen)++] = *s;
    return 1;
}

static void lex_string(struct lexer *lx)
{
    char q = *lx->cur++;
    int line = lx->line;
    const char *s = lx->cur, *e = s;
    while (e < lx->end && *e != q)
        e += *e == '\\' ? 2 : 1;
    char *o = tparse_alloc(lx->p, 4 * (size_t)(e - s) + 1); /* an escape never grows more than 4x */
    size_t olen = 0;
    while (s < lx->end && *s != q) {
        if (*s == '\\' && s + 1 < lx->end) {
            s += 1 + lex_escape(lx, s + 1, o, &olen);
            continue;
        }
        lx->line += *s == '\n';
        o[olen++] = *s++;
    }
    if (s >= lx->end)
        tparse_fail(lx->p, line, "unterminated string literal");
    lx->cur = s + 1;
    struct ttok *t = push(lx, TK_STRING, o, olen);
    t->line = line;
}

static bool at_close(struct lexer *lx, char open, char *mod)
{
    const char *c = lx->cur;
    char want = open == '{' ? '}' : '%';
    *mod = 0;
    if ((*c == '-' || *c == '+') && c + 2 < lx->end && c[1] == want && c[2] == '}') {
        *mod = *c;
        return true;
    }
    return c + 1 < lx->end && c[0] == want && c[1] == '}';
}

static void lex_op(struct lexer *lx, int *depth)
{
    for (int k = 0; ops[k]; k++) {
        size_t n = strlen(ops[k]);
        if ((size_t)(lx->end - lx->cur) >= n && memcmp(lx->cur, ops[k], n) == 0) {
            push(lx, TK_OP, ops[k], n);
            lx->cur += n;
            if (n == 1 && strchr("([{", ops[k][0]))
                (*depth)++;
            else if (n == 1 && strchr(")]}", ops[k][0]) && *depth > 0)
                (*depth)--;
            return;
        }
    }
    tparse_fail(lx->p, lx->line, "unexpected character '%c' inside a tag", *lx->cur);
}

void tlex_expr(struct lexer *lx, char open, int line)
{
    push(lx, open == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, "", 0)->line = line;
    int depth = 0;
    char mod;
    for (;;) {
        while (lx->cur < lx->end && is_ws(*lx->cur))
            lx->line += *lx->cur++ == '\n';
        if (lx->cur >= lx->end)
            tparse_fail(lx->p, line, "unclosed tag: '%s' has no matching '%s'", open == '{' ? "{{" : "{%",
                        open == '{' ? "}}" : "%}");
        if (depth == 0 && at_close(lx, open, &mod))
            break;
        char c = *lx->cur;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            const char *s = lx->cur;
            while (lx->cur < lx->end && ((*lx->cur >= 'a' && *lx->cur <= 'z') || (*lx->cur >= 'A' && *lx->cur <= 'Z') ||
                                         (*lx->cur >= '0' && *lx->cur <= '9') || *lx->cur == '_'))
                lx->cur++;
            push(lx, TK_NAME, s, lx->cur - s);
        } else if (c >= '0' && c <= '9') {
            lex_number(lx);
        } else if (c == '\'' || c == '"') {
            lex_string(lx);
        } else {
            lex_op(lx, &depth);
        }
    }
    push(lx, open == '{' ? TK_VAR_END : TK_BLOCK_END, "", 0);
    lx->cur += 2 + (mod != 0);
    after_tag(lx, open, mod);
}
