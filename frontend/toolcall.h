/* toolcall.h — tool calls: the format a model writes them in (its chat template says which, or
 * --tool-call-parser), a forced call's constraint (tool_choice "required" or a named function, enforced
 * by constrained decoding), and finding the calls in an answer, whole or streamed.
 *
 *   hermes       <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one block a call, text
 *                before the first block is content (Qwen 2.5/3, Hermes, and templates like theirs)
 *   llama3_json  {"name": ..., "parameters": {...}} as the whole answer, calls separated by ";", an
 *                optional <|python_tag|> first (Llama 3.1–3.3) */
#ifndef PD_TOOLCALL_H
#define PD_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/tmpl/chat.h"
#include "frontend/apierr.h"

enum tc_format { TC_NONE, TC_HERMES, TC_LLAMA3_JSON, TC_AUTO };

/* "none", "hermes", "llama3_json", "auto"; NULL for another value. */
const char *tc_format_name(enum tc_format f);
/* The format spelled `name`, or -1. */
int tc_format_parse(const char *name);
/* What the chat template's text shows: <tool_call> → hermes, <|python_tag|> → llama3_json, else none. */
enum tc_format tc_detect(const struct chat_template *c);

enum tc_choice { TC_CHOICE_AUTO, TC_CHOICE_NONE, TC_CHOICE_REQUIRED, TC_CHOICE_NAMED };

/* A request's tools, as parsed from its body. */
struct tc_request {
    json_t *tools;       /* the validated list (a reference; NULL: none) */
    enum tc_choice choice;
    char name[128];      /* TC_CHOICE_NAMED's function */
};

/* Checks `tools` and `tool_choice` (a 400 naming the field for what is malformed). */
int tc_parse_request(json_t *body, struct tc_request *t, struct apierr *e);
void tc_request_free(struct tc_request *t);
/* A forced call's constraint for the format (grammar_compile_spec's JSON, malloc'd), NULL when the
 * choice forces nothing; -1 with e when the model has no known format or a function's parameters
 * are not a schema pdserve can enforce. */
int tc_constraint(const struct tc_request *t, enum tc_format f, char **constraint, struct apierr *e);

/* The calls in a whole answer: a new JSON array of OpenAI tool_calls, with *content_len set to the
 * bytes of text that are content (a prefix of it); NULL when text holds no well-formed call (all of it
 * is content). */
json_t *tc_parse(enum tc_format f, const char *text, size_t len, size_t *content_len);

/* A streamed answer: text is passed on until a call may have begun, then held to the end. */
struct tc_stream {
    enum tc_format format;
    bool holding;  /* a call began (or may have: llama3_json's leading '{'): the rest is held */
    char *held;    /* text not yet passed on */
    size_t len, cap;
};
/* Takes new text; returns a malloc'd copy of what may be streamed now (*n bytes) or NULL for none. */
char *tc_stream_feed(struct tc_stream *s, const char *text, size_t len, size_t *n);
void tc_stream_free(struct tc_stream *s);

#endif
