/* tmpl.h — a small Jinja interpreter for chat templates: the subset of Jinja2 that real Hugging Face
 * chat templates use, configured the way transformers configures it (trim_blocks, lstrip_blocks,
 * loop controls, raise_exception, strftime_now, transformers' tojson). docs/chat-templates.md lists
 * what is supported; anything else is an error naming the construct and its line, never a wrong
 * render.
 *
 * The render context is a jansson object (messages, tools, bos_token, ...): the frontend already holds
 * requests as json_t, so there is no second conversion layer. Inside a render the engine converts it to
 * its own values, which can also express what JSON cannot (undefined, tuples, namespaces, macros). */
#ifndef PD_TMPL_H
#define PD_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/util/error.h"

struct tmpl;

/* Bounds on one render, so a hostile or broken template cannot run away. 0 in a field = the default. */
struct tmpl_limits {
    size_t max_output;   /* bytes of output (default 16 MiB) */
    size_t max_memory;   /* bytes of working memory (default 256 MiB) */
    long max_steps;      /* loop iterations + macro calls + output statements (default 10 million) */
    int max_depth;       /* macro recursion depth (default 64) */
};

/* Parses a template. src need not be NUL-terminated. Returns NULL and fills err (with the line) on a
 * syntax error or an unsupported construct. The caller owns the result; free it with tmpl_free(). */
struct tmpl *tmpl_parse(const char *src, size_t len, struct error *err);
void tmpl_free(struct tmpl *t);

/* True when t loops over `item.key` / `item['key']` where item is the variable of a loop over `list`
 * (or over a variable set from it, through slices and filters). The chat layer asks this for
 * ("messages", "content"), as vLLM does, to pass content as a list of parts to templates that loop
 * over it. */
bool tmpl_iterates(const struct tmpl *t, const char *list, const char *key);

/* Renders t with the variables of the JSON object ctx (borrowed; may be NULL). limits may be NULL.
 * On success *out is a malloc'd NUL-terminated string owned by the caller (and *out_len its length, if
 * out_len is not NULL). On failure (raise_exception, a type error, a limit) returns -1 with err set.
 * A template may be rendered by several threads at once. */
int tmpl_render(const struct tmpl *t, json_t *ctx, const struct tmpl_limits *limits, char **out,
                size_t *out_len, struct error *err);

#endif
