/* tmpl_case.c — Unicode case mapping for upper/lower/title/capitalize and the `is upper` / `is lower`
 * tests, as Python's str methods do it. The mapping comes from glibc's C.UTF-8 locale, opened once and
 * used through the _l functions, so the process locale is never touched; without that locale the
 * mapping falls back to ASCII. Python's one-to-many special cases are not applied except the common
 * one, ß, which upper-cases to "SS". */
#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

#include "tmpl_internal.h"

static locale_t utf8_ctype;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void open_locale(void)
{
    utf8_ctype = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static locale_t ctype(void)
{
    pthread_once(&utf8_once, open_locale);
    return utf8_ctype;
}

static uint32_t map_cp(uint32_t cp, bool upper)
{
    locale_t l = ctype();
    if (l)
        return upper ? (uint32_t)towupper_l((wint_t)cp, l) : (uint32_t)towlower_l((wint_t)cp, l);
    if (upper)
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

static bool is_upper(uint32_t cp)
{
    locale_t l = ctype();
    return l ? iswupper_l((wint_t)cp, l) != 0 : cp >= 'A' && cp <= 'Z';
}

static bool is_lower(uint32_t cp)
{
    locale_t l = ctype();
    return l ? iswlower_l((wint_t)cp, l) != 0 : cp >= 'a' && cp <= 'z';
}

/* Python's "cased": an upper- or lower-case letter (ß is lower-case though it has no upper form). */
static bool is_cased(uint32_t cp) { return is_upper(cp) || is_lower(cp); }

/* Where the next character starts a word, for each title flavour. */
static bool starts_word(enum tcase mode, uint32_t prev)
{
    if (mode == TCASE_JINJA_TITLE)
        return prev == ' ' || prev == '\t' || prev == '\n' || prev == '\r' || prev == '\f' || prev == '\v' ||
               prev == '-' || prev == '(' || prev == '[' || prev == '{' || prev == '<';
    return !is_cased(prev); /* Python's title(): after anything without case */
}

static void put_mapped(struct trt *rt, struct tbuf *b, uint32_t cp, bool upper, bool first_of_word)
{
    char enc[4];
    if (cp == 0xDF && upper) { /* ß */
        tbuf_puts(rt, b, first_of_word ? "Ss" : "SS");
        return;
    }
    tbuf_put(rt, b, enc, tv_utf8_put(enc, map_cp(cp, upper)));
}

struct tv tstr_case(struct trt *rt, const struct tstr *s, enum tcase mode)
{
    struct tbuf b = { 0 };
    tbuf_put(rt, &b, "", 0);
    bool word_start = true;
    size_t i = 0;
    while (i < s->len) {
        uint32_t cp = tv_utf8_next(s->s, s->len, &i);
        bool upper = mode == TCASE_UPPER || ((mode == TCASE_TITLE || mode == TCASE_JINJA_TITLE) && word_start) ||
                     (mode == TCASE_CAPITALIZE && b.len == 0);
        put_mapped(rt, &b, cp, upper, mode == TCASE_TITLE || mode == TCASE_CAPITALIZE);
        word_start = starts_word(mode, cp);
    }
    return tbuf_take(rt, &b);
}

/* Python's isdigit/isalpha/isalnum/isspace: every character in the class, and at least one. */
bool tstr_is_class(const struct tstr *s, const char *cls)
{
    locale_t l = ctype();
    size_t i = 0;
    while (i < s->len) {
        wint_t c = (wint_t)tv_utf8_next(s->s, s->len, &i);
        bool in = !strcmp(cls, "space") ? tv_is_space((uint32_t)c)
                  : !l                  ? (!strcmp(cls, "digit") ? c >= '0' && c <= '9' : c < 128 && ((c | 32) >= 'a' && (c | 32) <= 'z'))
                  : !strcmp(cls, "digit") ? iswdigit_l(c, l) != 0
                  : !strcmp(cls, "alpha") ? iswalpha_l(c, l) != 0
                                          : iswalnum_l(c, l) != 0;
        if (!in)
            return false;
    }
    return s->len > 0;
}

bool tstr_is_case(const struct tstr *s, bool upper)
{
    bool cased = false;
    size_t i = 0;
    while (i < s->len) {
        uint32_t cp = tv_utf8_next(s->s, s->len, &i);
        if (upper ? is_lower(cp) : is_upper(cp))
            return false;
        cased |= is_cased(cp);
    }
    return cased;
}
