/* toolcall.c — tool calls (see toolcall.h). */
#include "frontend/toolcall.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/grammar/grammar.h"

#define BAD(e, param, ...) apierr_set(e, 400, param, "invalid_value", __VA_ARGS__)

static const char *const names[] = {"none", "hermes", "llama3_json", "auto"};
static const char open_tag[] = "<tool_call>", close_tag[] = "</tool_call>", python_tag[] = "<|python_tag|>";

const char *tc_format_name(enum tc_format f)
{
    return f >= TC_NONE && f <= TC_AUTO ? names[f] : NULL;
}

int tc_format_parse(const char *name)
{
    for (int f = TC_NONE; f <= TC_AUTO; f++)
        if (name && !strcmp(name, names[f]))
            return f;
    return -1;
}

enum tc_format tc_detect(const struct chat_template *c)
{
    if (chat_mentions(c, open_tag))
        return TC_HERMES;
    return chat_mentions(c, python_tag) ? TC_LLAMA3_JSON : TC_NONE;
}

/* ---- the request ---- */

static int check_tools(json_t *tools, struct apierr *e)
{
    if (!json_is_array(tools) || json_array_size(tools) > 128)
        return BAD(e, "tools", "'tools' must be a list of at most 128 tools");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *f = json_object_get(t, "function"), *params = json_object_get(f, "parameters");
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!type || strcmp(type, "function") || !name || !*name || strlen(name) >= 128)
            return BAD(e, "tools", "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\": ...}} "
                                   "with a name of 1 to 127 bytes", i);
        if (params && !json_is_object(params))
            return BAD(e, "tools", "tools[%zu].function.parameters must be a JSON Schema object", i);
    }
    return 0;
}

static json_t *find_tool(json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        if (!strcmp(json_string_value(json_object_get(json_object_get(t, "function"), "name")), name))
            return t;
    }
    return NULL;
}

int tc_parse_request(json_t *body, struct tc_request *t, struct apierr *e)
{
    memset(t, 0, sizeof *t);
    json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
    if (tools && !json_is_null(tools)) {
        if (check_tools(tools, e))
            return -1;
        t->tools = json_array_size(tools) ? json_incref(tools) : NULL;
    }
    t->choice = t->tools ? TC_CHOICE_AUTO : TC_CHOICE_NONE;
    if (!choice || json_is_null(choice))
        return 0;
    const char *s = json_string_value(choice);
    const char *name = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    if (s && !strcmp(s, "none")) {
        t->choice = TC_CHOICE_NONE;
        return 0;
    }
    if (!t->tools)
        return BAD(e, "tool_choice", "'tool_choice' needs 'tools'");
    if (s && !strcmp(s, "auto"))
        return 0;
    if (s && !strcmp(s, "required")) {
        t->choice = TC_CHOICE_REQUIRED;
        return 0;
    }
    if (!name || !find_tool(t->tools, name))
        return BAD(e, "tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": "
                                     "\"function\", \"function\": {\"name\": NAME}} naming one of 'tools'");
    t->choice = TC_CHOICE_NAMED;
    snprintf(t->name, sizeof t->name, "%s", name);
    return 0;
}

void tc_request_free(struct tc_request *t)
{
    json_decref(t->tools);
    t->tools = NULL;
}

/* The functions a forced call may be: the named one, or any of them ("required"). */
static json_t *callable(const struct tc_request *t)
{
    json_t *list = json_array();
    size_t i;
    json_t *tool;
    json_array_foreach(t->tools, i, tool) {
        json_t *f = json_object_get(tool, "function");
        const char *name = json_string_value(json_object_get(f, "name"));
        if (t->choice == TC_CHOICE_REQUIRED || !strcmp(name, t->name))
            json_array_append_new(list, json_pack("{s:s, s:O?}", "name", name, "parameters",
                                                  json_object_get(f, "parameters")));
    }
    return list;
}

int tc_constraint(const struct tc_request *t, enum tc_format f, char **constraint, struct apierr *e)
{
    *constraint = NULL;
    if (t->choice != TC_CHOICE_REQUIRED && t->choice != TC_CHOICE_NAMED)
        return 0;
    if (f != TC_HERMES && f != TC_LLAMA3_JSON)
        return BAD(e, "tool_choice", "this model's chat template shows no tool-call format pdserve knows, so a "
                                     "call cannot be forced (see pdserve-frontend --tool-call-parser)");
    /* one space at most between JSON tokens, as models write their calls */
    json_t *call = json_pack("{s:o, s:s}", "tools", callable(t), "arguments_key",
                             f == TC_HERMES ? "arguments" : "parameters");
    json_t *spec = f == TC_HERMES ? json_pack("{s:o, s:s, s:s, s:i}", "call", call, "prefix", "<tool_call>\n",
                                              "suffix", "\n</tool_call>", "max_whitespace", 1)
                                  : json_pack("{s:o, s:i}", "call", call, "max_whitespace", 1);
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    struct error err;
    struct grammar *g = text ? grammar_compile_spec(text, &err) : NULL;
    if (!g) {
        free(text);
        return text ? BAD(e, "tools", "a function's parameters: %s", err.msg)
                    : apierr_set(e, 500, NULL, "internal_error", "out of memory");
    }
    grammar_free(g);
    *constraint = text;
    return 0;
}

/* ---- the answer ---- */

static void call_id(char out[32])
{
    static uint64_t counter;
    uint64_t x = uv_hrtime() * 0x9e3779b97f4a7c15ull ^ ++counter * 0xbf58476d1ce4e5b9ull;
    snprintf(out, 32, "call_%016llx%08llx", (unsigned long long)x, (unsigned long long)(counter & 0xffffffff));
}

/* One call from its JSON object: {"name", ARGS} where ARGS is an object (or a JSON string of one). */
static int add_call(json_t *calls, const char *text, size_t len, const char *args_key)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *args = json_object_get(o, args_key) ? json_object_get(o, args_key) : json_object_get(o, "arguments");
    char *args_text = json_is_object(args) ? json_dumps(args, JSON_COMPACT)
                      : json_is_string(args) ? strdup(json_string_value(args)) : NULL;
    char id[32];
    call_id(id);
    int rc = name && args_text ? json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
                                                                        "function", "function", "name", name,
                                                                        "arguments", args_text))
                               : -1;
    free(args_text);
    json_decref(o);
    return rc;
}

/* JSON's whitespace (never a NUL, which strchr(" \n\t\r", c) would also find). */
static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

static const char *find_text(const char *text, size_t len, const char *needle)
{
    return memmem(text, len, needle, strlen(needle));
}

static json_t *parse_hermes(const char *text, size_t len, size_t *content_len)
{
    const char *at = find_text(text, len, open_tag), *end = text + len;
    if (!at)
        return NULL;
    json_t *calls = json_array();
    size_t content = (size_t)(at - text);
    while (content && is_space(text[content - 1]))
        content--;
    while (at) {
        const char *body = at + strlen(open_tag), *close = find_text(body, (size_t)(end - body), close_tag);
        const char *stop = close ? close : end;
        if (add_call(calls, body, (size_t)(stop - body), "arguments") < 0) {
            json_decref(calls);
            return NULL;
        }
        at = close ? find_text(close, (size_t)(end - close), open_tag) : NULL;
    }
    *content_len = content;
    return calls;
}

static json_t *parse_llama3(const char *text, size_t len, size_t *content_len)
{
    const char *end = text + len, *p = skip_space(text, end);
    if ((size_t)(end - p) >= strlen(python_tag) && !memcmp(p, python_tag, strlen(python_tag)))
        p += strlen(python_tag);
    p = skip_space(p, end);
    if (p == end || *p != '{')
        return NULL;
    json_t *calls = json_array();
    while (p < end) {
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK, &je);
        size_t used = o ? (size_t)je.position : 0;
        json_decref(o);
        if (!o || add_call(calls, p, used, "parameters") < 0) {
            json_decref(calls);
            return NULL;
        }
        p += used;
        while (p < end && (is_space(*p) || *p == ';'))
            p++;
    }
    *content_len = 0;
    return calls;
}

json_t *tc_parse(enum tc_format f, const char *text, size_t len, size_t *content_len)
{
    *content_len = len;
    if (!text)
        return NULL;
    return f == TC_HERMES ? parse_hermes(text, len, content_len)
           : f == TC_LLAMA3_JSON ? parse_llama3(text, len, content_len) : NULL;
}

/* ---- streaming ---- */

static int hold(struct tc_stream *s, const char *text, size_t len)
{
    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->len + len + 1) * 2;
        char *h = realloc(s->held, cap);
        if (!h)
            return -1;
        s->held = h;
        s->cap = cap;
    }
    memcpy(s->held + s->len, text, len);
    s->len += len;
    s->held[s->len] = '\0';
    return 0;
}

/* How many bytes at the end of text could begin the opening tag: they wait for the next text. */
static size_t tag_start(const char *text, size_t len)
{
    for (size_t k = strlen(open_tag) - 1; k > 0; k--)
        if (k <= len && !memcmp(text + len - k, open_tag, k))
            return k;
    return 0;
}

char *tc_stream_feed(struct tc_stream *s, const char *text, size_t len, size_t *n)
{
    *n = 0;
    if (hold(s, text, len) < 0 || s->holding)
        return NULL;
    size_t out = s->len;
    if (s->format == TC_HERMES) {
        const char *at = find_text(s->held, s->len, open_tag);
        s->holding = at != NULL;
        out = at ? (size_t)(at - s->held) : s->len - tag_start(s->held, s->len);
    } else if (s->format == TC_LLAMA3_JSON) {
        size_t i = (size_t)(skip_space(s->held, s->held + s->len) - s->held);
        if (i == s->len || s->held[i] == '{' || s->held[i] == '<') { /* whitespace so far, or a call */
            s->holding = i < s->len;
            return NULL;
        }
        s->format = TC_NONE; /* plain text: no call can follow */
    }
    char *copy = malloc(out + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s->held, out);
    memmove(s->held, s->held + out, s->len - out);
    s->len -= out;
    *n = out;
    return copy;
}

void tc_stream_free(struct tc_stream *s)
{
    free(s->held);
    memset(s, 0, sizeof *s);
}
