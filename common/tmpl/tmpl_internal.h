/* tmpl_internal.h — what the pieces of the template engine share and nobody else sees: the arena, the
 * value type, the tokens, the syntax tree and the render state. The public API is tmpl.h.
 *
 * Memory: a parsed template owns one arena (tokens, nodes, literals); a render owns another (every value
 * it makes). Nothing inside either is freed on its own, so values are plain structs passed by copy with
 * no reference counts. Errors inside the parser and the renderer unwind with longjmp to tmpl_parse() /
 * tmpl_render(), which own those arenas; that is why no internal function needs an error return. */
#ifndef PD_TMPL_INTERNAL_H
#define PD_TMPL_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/util/error.h"
#include "common/tmpl/tmpl.h"

/* ---- arena (tmpl_value.c) ---- */
struct tarena_chunk;
struct tarena {
    struct tarena_chunk *head;
    size_t total, limit; /* bytes handed out so far; 0 limit = unlimited */
};
/* Zeroed memory; NULL when the limit is reached or malloc fails. _raw: not zeroed. */
void *tarena_alloc(struct tarena *a, size_t n);
void *tarena_alloc_raw(struct tarena *a, size_t n);
void tarena_free(struct tarena *a);

/* ---- values ---- */
enum tv_type { TV_UNDEF, TV_NONE, TV_BOOL, TV_INT, TV_FLOAT, TV_STR, TV_LIST, TV_DICT, TV_NS, TV_FUNC, TV_MACRO };

struct tstr { size_t len; char s[]; }; /* UTF-8, also NUL-terminated */
struct tv;
struct tlist { size_t n, cap; struct tv *v; bool tuple; };
/* Insertion order, like Python. A for loop's `loop` is a dict with is_loop set, for loop.cycle() and
 * loop.changed() (whose last arguments are kept in changed, NULL before the first call). */
struct tdict { size_t n, cap; struct tstr **k; struct tv *v; bool is_loop; struct tv *changed; };
struct trt;
struct targs;
typedef struct tv (*tfunc_fn)(struct trt *rt, struct targs *a, int line);
struct tfunc { const char *name; tfunc_fn fn; };
struct tnode;
struct tframe;
/* A macro (or a call block's caller) and the scope it was defined in, which it sees when called. */
struct tclosure { const struct tnode *macro; struct tframe *frame; };

struct tv {
    enum tv_type t;
    union {
        bool b;
        long long i;
        double f;
        struct tstr *s;            /* TV_STR; TV_UNDEF: why it is undefined (may be NULL) */
        struct tlist *l;
        struct tdict *d;           /* TV_DICT and TV_NS */
        const struct tfunc *fn;
        const struct tclosure *clo; /* TV_MACRO */
    };
};

/* Call arguments: positional then keyword. */
struct targs {
    int n, nkw;
    struct tv *pos;
    const char **kwname;
    struct tv *kw;
};

/* ---- render state (tmpl_exec.c) ---- */
struct tbuf { char *p; size_t len, cap; };
struct tframe { struct tdict vars; struct tframe *parent; };

struct trt {
    struct tarena arena;
    jmp_buf jmp;
    struct error *err;
    struct tmpl_limits lim;
    long steps;
    int depth;                 /* macro call depth */
    struct tbuf *out;          /* where output goes now (a macro or block set redirects it) */
    struct tframe *frame;      /* innermost scope */
    struct tframe *globals;    /* the context and built-ins */
    struct tframe *top;        /* the template's top level */
    int loops;                 /* for loops open around the current statement */
    int loop_ctl;              /* 1 break, 2 continue, pending */
};

/* Unwinds to tmpl_render with "template line N: ..." in rt->err. */
_Noreturn void trt_fail(struct trt *rt, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Render-arena memory (zeroed; _raw: not); fails the render at max_memory. */
void *trt_alloc(struct trt *rt, size_t n);
void *trt_alloc_raw(struct trt *rt, size_t n);

/* Value helpers (tmpl_value.c). */
struct tv tv_none(void);
struct tv tv_bool(bool b);
struct tv tv_int(long long i);
struct tv tv_float(double f);
struct tv tv_undef(struct trt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct tv tv_str(struct trt *rt, const char *s, size_t len);
struct tv tv_cstr(struct trt *rt, const char *s);
struct tv tv_str_concat(struct trt *rt, const struct tstr *a, const struct tstr *b);
struct tv tv_list(struct trt *rt, size_t cap);
struct tv tv_dict(struct trt *rt, size_t cap);
void tv_list_push(struct trt *rt, struct tlist *l, struct tv v);
void tv_dict_set(struct trt *rt, struct tdict *d, const char *k, size_t klen, struct tv v);
struct tv *tv_dict_get(const struct tdict *d, const char *k, size_t klen);
struct tv tv_from_json(struct trt *rt, json_t *j, int depth);
bool tv_truthy(struct tv v);
/* Python ==; fails on values nested more than 256 deep (as do ordering and printing). */
bool tv_equal(struct trt *rt, struct tv a, struct tv b);
void tv_check_nesting(struct trt *rt, int depth, int line);
/* Python ordering for numbers, strings and lists; fails on anything else. */
int tv_compare(struct trt *rt, struct tv a, struct tv b, int line);
const char *tv_type_name(struct tv v);
/* Python str(v) / repr(v) appended to b. */
void tv_write_str(struct trt *rt, struct tbuf *b, struct tv v, int line);
void tv_write_repr(struct trt *rt, struct tbuf *b, struct tv v, int line);
struct tv tv_to_str(struct trt *rt, struct tv v, int line);
/* Code points of a UTF-8 string, and the byte offset of code point i. */
size_t tv_utf8_len(const char *s, size_t len);
size_t tv_utf8_offset(const char *s, size_t len, size_t cp);
/* Fails with "'<undefined name>' is undefined" when v is undefined. */
void tv_need_defined(struct trt *rt, struct tv v, int line);

void tbuf_put(struct trt *rt, struct tbuf *b, const char *s, size_t n);
void tbuf_puts(struct trt *rt, struct tbuf *b, const char *s);
void tbuf_printf(struct trt *rt, struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct tv tbuf_take(struct trt *rt, struct tbuf *b);

/* Python repr(float), e.g. 1.0, 1e-05, 1e+16. */
void tv_format_float(double f, char out[40]);

/* tojson with transformers' keyword arguments (tmpl_json.c). */
struct tjson_opts { int indent; bool ensure_ascii, sort_keys; const char *item_sep, *key_sep; };
void tv_write_json(struct trt *rt, struct tbuf *b, struct tv v, const struct tjson_opts *o, int depth, int line);

/* ---- tokens (tmpl_lex.c) ---- */
enum ttok_kind { TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
                 TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF };
struct ttok {
    enum ttok_kind kind;
    int line;
    const char *s; size_t len;   /* text, name, operator, or decoded string */
    long long i; double f;
};
struct tparse;
/* Splits src into tokens with Jinja's whitespace control (trim_blocks, lstrip_blocks, '-' and '+'). */
void tlex(struct tparse *p, const char *src, size_t len);

/* ---- syntax tree (tmpl_parse.c) ---- */
enum tnode_kind {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_MACRO, N_BREAK, N_CONTINUE, N_BLOCK, N_CALL_BLOCK, N_WITH, N_FILTER_BLOCK,
    /* expressions */
    E_LIT, E_NAME, E_ATTR, E_INDEX, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT, E_AND, E_OR,
    E_BIN, E_COMPARE, E_COND, E_LIST, E_TUPLE, E_DICT, E_SPREAD /* *list, or **mapping among keyword arguments */
};
struct tfilter;
struct ttest;
struct tnode {
    enum tnode_kind kind;
    int line;
    const char *name;            /* E_NAME, E_ATTR, filter/test/macro name, N_SET target name */
    const char *op;              /* E_BIN operator; E_COMPARE: ops[] below */
    struct tnode *a, *b, *c;     /* operands; N_IF cond; N_FOR target/iter/filter; N_SET target/value */
    struct tnode **items; int n; /* list/tuple items, call positional args, compare operands, dict values */
    const char **kwname; struct tnode **kw; int nkw; /* keyword args; dict keys in items, values in kw */
    const char **ops;            /* E_COMPARE operators, n - 1 of them */
    struct tv lit;               /* E_LIT; N_TEXT */
    const struct tfilter *filter;
    const struct ttest *test;
    bool negate;                 /* E_TEST: is not */
    struct tnode *body, *orelse; /* statement lists (linked by next) */
    struct tnode *next;
};

struct tparse {
    struct tarena *arena;
    jmp_buf jmp;
    struct error *err;
    struct ttok *toks; size_t ntok, cap, pos;
    int depth;
};
/* Parser helpers shared by the expression and statement parsers (tmpl_parse.c). */
struct tnodes { struct tnode **v; int n, cap; };
struct ttok *tp_peek(struct tparse *p);
struct ttok *tp_peek2(struct tparse *p);
struct ttok *tp_next(struct tparse *p);
bool tp_tok_is(const struct ttok *t, enum ttok_kind k, const char *s);
bool tp_is_op(struct tparse *p, const char *s);
bool tp_is_name(struct tparse *p, const char *s);
const char *tp_describe(struct tparse *p, const struct ttok *t);
void tp_expect_op(struct tparse *p, const char *op);
const char *tp_tok_cstr(struct tparse *p, const struct ttok *t);
const char *tp_expect_name(struct tparse *p, const char *what);
struct tnode *tp_node(struct tparse *p, enum tnode_kind kind, int line);
void tp_nodes_push(struct tparse *p, struct tnodes *a, struct tnode *n);
struct tnode *tparse_expr(struct tparse *p);
/* An expression without the trailing 'x if c else y' form (a for loop's iterable). */
struct tnode *tparse_or(struct tparse *p);
/* An expression that may be a bare tuple "a, b" (set and for); names_only for assignment targets. */
struct tnode *tparse_tuple(struct tparse *p, bool names_only);
void tparse_call_args(struct tparse *p, struct tnode *call);
_Noreturn void tparse_fail(struct tparse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *tparse_alloc(struct tparse *p, size_t n);
const struct tnode *tmpl_body(const struct tmpl *t);
extern const char tfilter_block_var[]; /* where a {% filter %} block's body output is bound */

/* ---- filters and tests (tmpl_filter.c, tmpl_tests.c, tmpl_method.c) ---- */
typedef struct tv (*tfilter_fn)(struct trt *rt, struct tv v, struct targs *a, int line);
struct tfilter { const char *name; tfilter_fn fn; };
typedef bool (*ttest_fn)(struct trt *rt, struct tv v, struct targs *a, int line);
struct ttest { const char *name; ttest_fn fn; };
const struct tfilter *tfilter_find(const char *name);
extern const struct tfilter tfilters_seq[]; /* tmpl_filter_seq.c, NULL-ended */
/* What v iterates as: list items, dict keys, string characters, nothing for Undefined. */
struct tv titer(struct trt *rt, struct tv v, int line);
/* loop.cycle(...) and loop.changed(...) (tmpl_loop.c); false when name is neither. */
bool tloop_method(struct trt *rt, struct tdict *loop, const char *name, struct targs *a, int line, struct tv *out);
const struct ttest *ttest_find(const char *name);
/* Calls method `name` of v (str, list, dict methods); false when v's type has no such method. */
bool tmethod_call(struct trt *rt, struct tv self, const char *name, struct targs *a, int line, struct tv *out);
bool tmethod_exists(struct tv self, const char *name);
/* String helpers the filters share with the methods (tmpl_method.c). which: 1 left, 2 right, 3 both;
 * chars NULL = whitespace. count < 0 = all. */
struct tv tstr_strip(struct trt *rt, const struct tstr *s, const struct tstr *chars, int which);
/* Unicode case mapping (tmpl_case.c): Python's upper(), lower(), title(), capitalize(), and Jinja's
 * title filter, which starts words after whitespace, '-' and opening brackets. */
enum tcase { TCASE_UPPER, TCASE_LOWER, TCASE_TITLE, TCASE_CAPITALIZE, TCASE_JINJA_TITLE };
struct tv tstr_case(struct trt *rt, const struct tstr *s, enum tcase mode);
/* Python's str.isupper() / islower(): some cased character, none of the other case. */
bool tstr_is_case(const struct tstr *s, bool upper);
/* Python's str.isdigit() etc.; cls is "digit", "alpha", "alnum" or "space". */
bool tstr_is_class(const struct tstr *s, const char *cls);
struct tv tstr_replace(struct trt *rt, const struct tstr *s, const struct tstr *old, const struct tstr *new_,
                       long long count);
/* dict.items(): a list of (key, value) tuples. */
struct tv tdict_items(struct trt *rt, const struct tdict *d);
/* Positional argument i, else keyword `name`, else dflt. */
struct tv targ(struct targs *a, int i, const char *name, struct tv dflt);
/* Fails when a has more positional arguments than max or a keyword not in the NULL-ended list. */
void targs_check(struct trt *rt, struct targs *a, const char *what, int max, const char *const *kw, int line);
/* The string value of a string argument, failing otherwise. */
struct tstr *targ_str(struct trt *rt, struct tv v, const char *what, int line);

/* Looks up, evaluates and calls (tmpl_eval.c / tmpl_exec.c). */
struct tv teval(struct trt *rt, const struct tnode *e);
/* A call's arguments, evaluated (*list spread). */
struct targs teval_args(struct trt *rt, const struct tnode *call);
/* Python's fmt % args: args a tuple, a mapping for %(name)s, or one value (tmpl_format.c). */
struct tv tformat_percent(struct trt *rt, const struct tstr *fmt, struct tv args, int line);
struct tv tbinop(struct trt *rt, const char *op, struct tv a, struct tv b, int line);
/* Installs range, namespace, dict, raise_exception, strftime_now (tmpl_builtin.c). */
void tbuiltins_install(struct trt *rt, struct tdict *globals);
struct tv tcall_value(struct trt *rt, struct tv callee, struct targs *a, int line);
/* Calls a macro; caller, if not NULL, is bound as `caller` inside it ({% call %} blocks). */
struct tv tcall_macro(struct trt *rt, const struct tclosure *m, struct targs *a, const struct tclosure *caller,
                      int line);
void texec_list(struct trt *rt, const struct tnode *s);
void texec_for(struct trt *rt, const struct tnode *s);
struct tframe *tpush_frame(struct trt *rt, struct tframe *parent);
/* Assigns v to a name or unpacks it into a tuple of names, in the innermost scope. */
void tbind(struct trt *rt, const struct tnode *target, struct tv v, int line);
struct tv tlookup(struct trt *rt, const char *name);
void tstep(struct trt *rt, int line);
/* Counts work that is linear in a value's size (a step per 16 items or 256 bytes searched), so an
 * operation inside a loop cannot hide quadratic time from max_steps. */
void tcharge(struct trt *rt, size_t items, int line);
/* Applies a test or filter by name at run time (select/map). */
bool ttest_apply(struct trt *rt, const char *name, struct tv v, struct targs *a, int line);
struct tv tfilter_apply(struct trt *rt, const char *name, struct tv v, struct targs *a, int line);
/* Attribute / item lookup with Jinja's rules (missing → undefined). */
struct tv tgetattr(struct trt *rt, struct tv obj, const char *name, int line);
struct tv tgetitem(struct trt *rt, struct tv obj, struct tv key, int line);
bool tv_is_space(uint32_t cp);
/* Python's `needle in hay`. */
bool tcontains(struct trt *rt, struct tv hay, struct tv needle, int line);
uint32_t tv_utf8_next(const char *s, size_t len, size_t *i);
size_t tv_utf8_put(char *o, uint32_t cp);

#endif
