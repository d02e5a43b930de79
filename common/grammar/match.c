/* match.c — the byte matcher: a stack of open constructs (grammar_impl.h's frames), one byte at a
 * time. Each frame kind's step says what the byte does: ACCEPT it, REJECT it, or DONE (the frame is
 * complete without it: pop, and the frame below sees the same byte — how a number ends at the comma
 * after it). Everything is deterministic: a choice's alternative is picked by its first byte. */
#include "common/grammar/grammar_impl.h"

#include <stdlib.h>
#include <string.h>

enum step { REJECT, ACCEPT, DONE };

/* FK_OBJ and FK_ARR states */
enum { OPEN, KEY, AFTER_KEY, VALUE, AFTER_VALUE, NEXT };
/* FK_STR states */
enum { BODY, ESC, HEX, UTF8 };
/* FK_NUM states: those after a digit (ZERO, INT, FRAC, EXP_DIG) complete a number */
enum { SIGN, ZERO, INT, DOT, FRAC, EXP, EXP_SIGN, EXP_DIG };

#define MAX_INT_DIGITS 16
#define MAX_FRAC_DIGITS 16
#define MAX_EXP_DIGITS 2 /* 16 digits and e99 stay well inside a double: parsers refuse overflow */

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Whitespace in a frame's state that allows it, at most the grammar's max_ws in a row. */
static enum step ws(const struct gmatch *m, struct gframe *f)
{
    return ++f->ws <= m->g->max_ws ? ACCEPT : REJECT;
}

static struct gframe *push(struct gmatch *m, enum gframe_kind kind, const struct gnode *node)
{
    if (m->depth == GMATCH_FRAMES)
        return NULL;
    struct gframe *f = &m->f[m->depth++];
    *f = (struct gframe){.node = node, .kind = (uint8_t)kind};
    return f;
}

/* The top frame is complete: pop it and tell the one below. */
static void complete(struct gmatch *m)
{
    struct gframe *child = &m->f[--m->depth];
    if (m->depth == 0)
        return;
    struct gframe *f = &m->f[m->depth - 1];
    f->ws = 0;
    if (f->kind == FK_OBJ)
        f->st = f->st == KEY ? AFTER_KEY : AFTER_VALUE;
    if (f->kind == FK_OBJ && child->kind == FK_KEY) /* i: the property after the one just named */
        for (int k = 0; k < f->node->n; k++)
            if (child->live >> k & 1)
                f->i = (uint32_t)k + 1;
    if (f->kind == FK_OBJ && child->kind == FK_LIT) /* which literal (a tool call's name: its arguments) */
        f->u = (uint16_t)__builtin_ctzll(child->live);
    if (f->kind == FK_ARR) {
        f->st = AFTER_VALUE;
        f->i++;
    }
}

/* ---- values ---- */

static enum step number_byte(struct gframe *f, uint8_t c);
static enum step literal_byte(struct gmatch *m, struct gframe *f, uint8_t c);

/* The first byte of a value of node n turns frame f into what the value is. A container needs room
 * for the frames inside it (a key, a value), so nesting stops short of the stack's end. */
static enum step start_value(struct gmatch *m, struct gframe *f, const struct gnode *n, uint8_t c)
{
    while (n->kind == GK_CHOICE) {
        const struct gnode *pick = NULL;
        for (int a = 0; a < n->n && !pick; a++)
            if (gnode_starts_with(n->alts[a], c))
                pick = n->alts[a];
        if (!pick)
            return REJECT;
        n = pick;
    }
    if (n->kind == GK_ANY) {
        if (c == 't' || c == 'f' || c == 'n')
            n = m->g->constants;
        else if (c != '{' && c != '[' && c != '"' && c != '-' && !is_digit(c))
            return REJECT;
    }
    if (!gnode_starts_with(n, c))
        return REJECT;
    bool room = m->depth < GMATCH_FRAMES; /* for the one frame a container opens at a time */
    *f = (struct gframe){.node = n};
    if (n->kind == GK_LITERALS) {
        f->kind = FK_LIT;
        f->live = n->n == 64 ? ~0ull : (1ull << n->n) - 1;
        return literal_byte(m, f, c);
    }
    switch (c) {
    case '{': f->kind = FK_OBJ; return room ? ACCEPT : REJECT;
    case '[': f->kind = FK_ARR; return room ? ACCEPT : REJECT;
    case '"': f->kind = FK_STR; return ACCEPT;
    default: f->kind = FK_NUM; return number_byte(f, c);
    }
}

static enum step value_byte(struct gmatch *m, struct gframe *f, uint8_t c)
{
    if (is_ws(c))
        return ws(m, f);
    return start_value(m, f, f->node, c);
}

/* ---- objects ---- */

/* The properties that may come next from index i: optional ones, up to and including the first
 * required one. */
static uint64_t next_keys(const struct gnode *n, uint32_t i)
{
    uint64_t live = 0;
    for (int k = (int)i; k < n->n; k++) {
        live |= 1ull << k;
        if (n->props[k].required)
            break;
    }
    return live;
}

static bool may_close(const struct gnode *n, uint32_t i)
{
    for (int k = (int)i; k < n->n; k++)
        if (n->props[k].required)
            return false;
    return true;
}

static bool free_keys(const struct gnode *n)
{
    return n->kind != GK_OBJECT || n->n == 0;
}

static enum step key_start(struct gmatch *m, struct gframe *f)
{
    const struct gnode *n = f->node;
    struct gframe *k;
    if (free_keys(n)) {
        if (!(k = push(m, FK_STR, NULL)))
            return REJECT;
        k->st = BODY;
    } else {
        uint64_t live = next_keys(n, f->i);
        if (!live || !(k = push(m, FK_KEY, n)))
            return REJECT;
        k->live = live;
        k->i = 1; /* the opening quote */
    }
    f->st = KEY;
    return ACCEPT;
}

static enum step obj_byte(struct gmatch *m, struct gframe *f, uint8_t c)
{
    const struct gnode *n = f->node;
    if (is_ws(c)) /* in every state this frame sees a byte in: OPEN, NEXT, AFTER_KEY, AFTER_VALUE */
        return ws(m, f);
    f->ws = 0;
    switch (f->st) {
    case OPEN:
    case NEXT:
        if (c == '"')
            return key_start(m, f);
        if (c == '}' && f->st == OPEN && (free_keys(n) || may_close(n, 0))) {
            complete(m);
            return ACCEPT;
        }
        return REJECT;
    case AFTER_KEY: {
        if (c != ':')
            return REJECT;
        const struct gnode *value = free_keys(n) ? m->g->any
                                    : n->dispatch && f->i == 2 ? n->dispatch[f->u] : n->props[f->i - 1].value;
        if (!push(m, FK_VALUE, value))
            return REJECT;
        f->st = VALUE;
        return ACCEPT;
    }
    case AFTER_VALUE:
        if (c == ',' && (free_keys(n) || (int)f->i < n->n)) {
            f->st = NEXT;
            return ACCEPT;
        }
        if (c == '}' && (free_keys(n) || may_close(n, f->i))) {
            complete(m);
            return ACCEPT;
        }
        return REJECT;
    }
    return REJECT;
}

/* ---- arrays ---- */

static enum step arr_byte(struct gmatch *m, struct gframe *f, uint8_t c)
{
    const struct gnode *n = f->node;
    const struct gnode *items = n->kind == GK_ARRAY && n->items ? n->items : m->g->any;
    int lo = n->kind == GK_ARRAY ? n->min_items : 0, hi = n->kind == GK_ARRAY ? n->max_items : -1;
    if (is_ws(c))
        return ws(m, f);
    f->ws = 0;
    if (c == ']' && (int)f->i >= lo && (f->st == OPEN || f->st == AFTER_VALUE)) {
        complete(m);
        return ACCEPT;
    }
    if (f->st == AFTER_VALUE && c == ',' && (hi < 0 || (int)f->i < hi)) {
        f->st = NEXT;
        return ACCEPT;
    }
    if ((f->st == OPEN && hi != 0) || f->st == NEXT) { /* an item starts with this byte */
        f->st = VALUE;
        struct gframe *item = push(m, FK_VALUE, items);
        return item ? start_value(m, item, items, c) : REJECT;
    }
    return REJECT;
}

/* ---- strings ---- */

static int hex_value(uint8_t c)
{
    if (is_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* A UTF-8 lead byte: how many continuation bytes follow, and the range the first must be in (so
 * overlong forms and surrogates, which JSON parsers refuse, cannot be written). */
static int utf8_lead(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80, *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 1;
    if (c >= 0xE0 && c <= 0xEF) {
        *lo = c == 0xE0 ? 0xA0 : 0x80;
        *hi = c == 0xED ? 0x9F : 0xBF;
        return 2;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        *lo = c == 0xF0 ? 0x90 : 0x80;
        *hi = c == 0xF4 ? 0x8F : 0xBF;
        return 3;
    }
    return 0;
}

static enum step str_byte(struct gmatch *m, struct gframe *f, uint8_t c)
{
    switch (f->st) {
    case BODY:
        if (c == '"') {
            complete(m);
            return ACCEPT;
        }
        if (c == '\\')
            f->st = ESC;
        else if (c >= 0x80 && (f->i = (uint32_t)utf8_lead(c, &f->lo, &f->hi)))
            f->st = UTF8;
        else if (c < 0x20 || c >= 0x80) /* control characters and stray bytes */
            return REJECT;
        return ACCEPT;
    case ESC:
        if (c == 'u') {
            f->st = HEX, f->i = 4, f->u = 0;
            return ACCEPT;
        }
        f->st = BODY;
        return strchr("\"\\/bfnrt", c) && c ? ACCEPT : REJECT;
    case HEX: {
        int h = hex_value(c);
        if (h < 0)
            return REJECT;
        f->u = (uint16_t)(f->u << 4 | h);
        if (--f->i > 0)
            return f->i == 2 && (f->u & 0xF8) == 0xD8 ? REJECT : ACCEPT; /* a surrogate: refused */
        f->st = BODY;
        return f->u == 0 ? REJECT : ACCEPT; /* \u0000: parsers refuse a NUL in a string */
    }
    case UTF8:
        if (c < f->lo || c > f->hi)
            return REJECT;
        f->lo = 0x80, f->hi = 0xBF;
        if (--f->i == 0)
            f->st = BODY;
        return ACCEPT;
    }
    return REJECT;
}

/* ---- numbers ---- */

static bool number_complete(const struct gframe *f)
{
    return f->st == ZERO || f->st == INT || f->st == FRAC || f->st == EXP_DIG;
}

static enum step digit(struct gframe *f, uint8_t next, uint32_t limit)
{
    if (f->st != next)
        f->i = 0;
    if (++f->i > limit)
        return REJECT;
    f->st = next;
    return ACCEPT;
}

static enum step state(struct gframe *f, uint8_t st)
{
    f->st = st;
    return ACCEPT;
}

static enum step number_byte(struct gframe *f, uint8_t c)
{
    bool real = f->node->kind != GK_INTEGER;
    switch (f->st) {
    case SIGN:
        if (c == '-' && f->i == 0) {
            f->i = 1; /* the sign is in */
            return ACCEPT;
        }
        if (c == '0')
            return state(f, ZERO);
        return c >= '1' && c <= '9' ? digit(f, INT, MAX_INT_DIGITS) : REJECT;
    case ZERO:
    case INT:
        if (f->st == INT && is_digit(c))
            return digit(f, INT, MAX_INT_DIGITS);
        if (real && c == '.')
            return state(f, DOT);
        if (real && (c == 'e' || c == 'E'))
            return state(f, EXP);
        return DONE;
    case DOT: return is_digit(c) ? digit(f, FRAC, MAX_FRAC_DIGITS) : REJECT;
    case FRAC:
        if (is_digit(c))
            return digit(f, FRAC, MAX_FRAC_DIGITS);
        return c == 'e' || c == 'E' ? state(f, EXP) : DONE;
    case EXP:
        if (c == '+' || c == '-')
            return state(f, EXP_SIGN);
        return is_digit(c) ? digit(f, EXP_DIG, MAX_EXP_DIGITS) : REJECT;
    case EXP_SIGN: return is_digit(c) ? digit(f, EXP_DIG, MAX_EXP_DIGITS) : REJECT;
    case EXP_DIG: return is_digit(c) ? digit(f, EXP_DIG, MAX_EXP_DIGITS) : DONE;
    }
    return REJECT;
}

/* ---- literals and known keys ---- */

/* Whether a live candidate of f is exactly the bytes matched so far. */
static bool literal_complete(const struct gframe *f, const struct gnode *n)
{
    for (int k = 0; k < n->n; k++)
        if ((f->live >> k & 1) && (f->kind == FK_KEY ? n->props[k].key_len : n->lit_len[k]) == f->i)
            return true;
    return false;
}

static enum step literal_byte(struct gmatch *m, struct gframe *f, uint8_t c)
{
    const struct gnode *n = f->node;
    uint64_t next = 0;
    for (int k = 0; k < n->n; k++) {
        const char *text = f->kind == FK_KEY ? n->props[k].key : n->lits[k];
        size_t len = f->kind == FK_KEY ? n->props[k].key_len : n->lit_len[k];
        if ((f->live >> k & 1) && len > f->i && (uint8_t)text[f->i] == c)
            next |= 1ull << k;
    }
    if (!next) { /* done without this byte if a candidate is whole: it is the one */
        if (!literal_complete(f, n))
            return REJECT;
        for (int k = 0; k < n->n; k++)
            if ((f->live >> k & 1) && (f->kind == FK_KEY ? n->props[k].key_len : n->lit_len[k]) != f->i)
                f->live &= ~(1ull << k);
        return DONE;
    }
    f->live = next;
    f->i++;
    /* complete with nothing longer still possible: done now (a key always ends so, at its quote) */
    bool longer = false;
    for (int k = 0; k < n->n; k++)
        if ((next >> k & 1) && (f->kind == FK_KEY ? n->props[k].key_len : n->lit_len[k]) > f->i)
            longer = true;
    if (!longer)
        complete(m);
    return ACCEPT;
}

/* ---- the matcher ---- */

static bool frame_completable(const struct gframe *f)
{
    return (f->kind == FK_NUM && number_complete(f)) || (f->kind == FK_LIT && literal_complete(f, f->node));
}

bool gmatch_byte(struct gmatch *m, uint8_t c)
{
    for (;;) {
        if (m->depth == 0) /* the value is closed: whitespace may trail it */
            return is_ws(c) && ++m->trail_ws <= m->g->max_ws;
        struct gframe *f = &m->f[m->depth - 1];
        enum step s = REJECT;
        switch (f->kind) {
        case FK_VALUE: s = value_byte(m, f, c); break;
        case FK_OBJ: s = obj_byte(m, f, c); break;
        case FK_ARR: s = arr_byte(m, f, c); break;
        case FK_STR: s = str_byte(m, f, c); break;
        case FK_NUM: s = number_byte(f, c); break;
        case FK_LIT:
        case FK_KEY: s = literal_byte(m, f, c); break;
        }
        if (s != DONE)
            return s == ACCEPT;
        complete(m); /* the byte belongs to the frame below */
    }
}

/* The stack at the start: the suffix's text (waiting under everything), the value, the prefix's text
 * on top. A literal frame above another completes into it unchanged. */
struct gmatch *gmatch_new(const struct grammar *g)
{
    struct gmatch *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->g = g;
    if (g->suffix)
        m->f[m->depth++] = (struct gframe){.node = g->suffix, .kind = FK_LIT, .live = 1};
    m->f[m->depth++] = (struct gframe){.node = g->root, .kind = FK_VALUE};
    if (g->prefix)
        m->f[m->depth++] = (struct gframe){.node = g->prefix, .kind = FK_LIT, .live = 1};
    return m;
}

void gmatch_free(struct gmatch *m)
{
    free(m);
}

void gmatch_copy(struct gmatch *dst, const struct gmatch *src)
{
    dst->g = src->g;
    dst->depth = src->depth;
    dst->trail_ws = src->trail_ws;
    memcpy(dst->f, src->f, (size_t)src->depth * sizeof *src->f);
}

bool gmatch_feed(struct gmatch *m, const uint8_t *bytes, size_t n)
{
    struct gmatch try;
    gmatch_copy(&try, m);
    for (size_t i = 0; i < n; i++)
        if (!gmatch_byte(&try, bytes[i]))
            return false;
    gmatch_copy(m, &try);
    return true;
}

bool gmatch_done(const struct gmatch *m)
{
    return m->depth == 0 || (m->depth == 1 && frame_completable(&m->f[0]) && !m->g->suffix);
}

bool gmatch_closed(const struct gmatch *m)
{
    return m->depth == 0;
}

bool gmatch_in_plain_string(const struct gmatch *m)
{
    return m->depth > 0 && m->f[m->depth - 1].kind == FK_STR && m->f[m->depth - 1].st == BODY;
}

void gmatch_init_string(struct gmatch *m, const struct grammar *g)
{
    memset(m, 0, sizeof *m);
    m->g = g;
    m->depth = 2; /* a string under a value that completes with it */
    m->f[0] = (struct gframe){.node = g->any, .kind = FK_ARR, .st = VALUE};
    m->f[1] = (struct gframe){.kind = FK_STR, .st = BODY};
}
