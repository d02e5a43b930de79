/* grammar_impl.h — the compiled grammar and the matcher's frames, shared by schema.c, match.c and
 * mask.c (not for callers: grammar.h is the interface). */
#ifndef PD_GRAMMAR_IMPL_H
#define PD_GRAMMAR_IMPL_H

#include "common/grammar/grammar.h"

enum gkind {
    GK_ANY,      /* any JSON value */
    GK_OBJECT,   /* props in order; n == 0: any keys and values */
    GK_ARRAY,    /* items (NULL: any values), min_items..max_items */
    GK_STRING,   /* any string */
    GK_NUMBER,
    GK_INTEGER,
    GK_LITERALS, /* one of n compact JSON texts (enum, const, boolean, null) */
    GK_CHOICE,   /* one of n alternatives, told apart by their first byte */
};

struct gnode;

struct gprop {
    char *key; /* the property name as JSON text, quotes included */
    size_t key_len;
    struct gnode *value;
    bool required;
};

struct gnode {
    enum gkind kind;
    int n;               /* props, literals or alternatives */
    struct gprop *props; /* GK_OBJECT */
    char **lits;         /* GK_LITERALS */
    size_t *lit_len;
    struct gnode **alts; /* GK_CHOICE */
    struct gnode *items; /* GK_ARRAY */
    struct gnode **dispatch; /* a tool call: props[0] is "name" (literals), props[1]'s value is
                                dispatch[the name's index] */
    int min_items, max_items; /* max_items < 0: no limit */
    uint32_t first[8];   /* the bytes a value of this node can start with (a 256-bit set) */
    struct gnode *next;  /* every node of the grammar, for freeing */
};

struct grammar {
    struct gnode *root;
    struct gnode *any;       /* shared by free values */
    struct gnode *constants; /* true, false, null: what a free value starting with t, f or n is */
    struct gnode *prefix, *suffix; /* literal text around the value, or NULL */
    int max_ws;              /* whitespace bytes in a row, at most GRAMMAR_MAX_WS */
    struct gnode *nodes;     /* all of them */
};

static inline bool gnode_starts_with(const struct gnode *n, uint8_t c)
{
    return n->first[c >> 5] >> (c & 31) & 1;
}

/* ---- the matcher's state ---- */

enum gframe_kind { FK_VALUE, FK_OBJ, FK_ARR, FK_STR, FK_NUM, FK_LIT, FK_KEY };

/* One open construct. `i` is per kind: FK_OBJ the next property it may write, FK_ARR the items so
 * far, FK_LIT / FK_KEY the bytes matched, FK_NUM the digits in the current part, FK_STR the bytes
 * still owed (a \u escape's hex digits, a UTF-8 character's continuation bytes). */
struct gframe {
    const struct gnode *node;
    uint8_t kind; /* enum gframe_kind */
    uint8_t st;   /* per kind, see match.c */
    uint8_t ws;   /* whitespace bytes in a row */
    uint8_t lo, hi; /* FK_STR: the range the next UTF-8 continuation byte must be in */
    uint16_t u;   /* FK_STR: the \u escape's value so far; FK_OBJ: the literal its last value was */
    uint32_t i;
    uint64_t live; /* FK_LIT / FK_KEY: the candidates (literals, properties) still matching */
};

#define GMATCH_FRAMES (GRAMMAR_MAX_DEPTH + 1)

struct gmatch {
    const struct grammar *g;
    int depth;    /* frames open; 0 once the value is closed */
    int trail_ws; /* whitespace after it */
    struct gframe f[GMATCH_FRAMES];
};

bool gmatch_byte(struct gmatch *m, uint8_t c);
void gmatch_copy(struct gmatch *dst, const struct gmatch *src);
/* The top frame is a string's body, owing nothing: the state every string-safe token starts in. */
bool gmatch_in_plain_string(const struct gmatch *m);
/* A fresh matcher inside a string's body (what mask.c precomputes string-safe tokens with). */
void gmatch_init_string(struct gmatch *m, const struct grammar *g);

#endif
