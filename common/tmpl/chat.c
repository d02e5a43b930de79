/* chat.c — the chat layer over the template engine: loading a model folder's chat template and special
 * tokens, choosing among named templates, normalising messages (vLLM's string content format), and
 * assembling the render context the way transformers' apply_chat_template does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tmpl/chat.h"
#include "common/util/log.h"
#include "common/util/modelfile.h"
#include "common/engine/gguf_hf.h"
#include "common/tmpl/tmpl.h"

#define CHAT_MAX_TEMPLATES 16

struct chat_template {
    int n;
    char *names[CHAT_MAX_TEMPLATES];
    struct tmpl *tmpls[CHAT_MAX_TEMPLATES];
    bool parts[CHAT_MAX_TEMPLATES]; /* the template loops over message content: pass it as parts */
    char *src[CHAT_MAX_TEMPLATES];  /* the template's text (chat_mentions) */
    int chosen;          /* index used by default; -1: "default" or "tool_use" by the request */
    json_t *special;     /* bos_token, eos_token, ... as strings */
};

static const char *const special_names[] = { "bos_token", "eos_token", "unk_token", "pad_token", NULL };

/* A special token is either "text" or an AddedToken {"content": "text", ...}. */
static const char *token_text(json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int add_template(struct chat_template *c, const char *name, const char *src, size_t len, struct error *err)
{
    if (c->n == CHAT_MAX_TEMPLATES)
        return error_set(err, "chat_template: more than %d named templates", CHAT_MAX_TEMPLATES);
    c->tmpls[c->n] = tmpl_parse(src, len, err);
    if (!c->tmpls[c->n])
        return error_wrap(err, "chat template '%s'", name);
    c->parts[c->n] = tmpl_iterates(c->tmpls[c->n], "messages", "content");
    c->names[c->n] = strdup(name);
    c->src[c->n] = strndup(src, len);
    if (!c->names[c->n] || !c->src[c->n]) {
        tmpl_free(c->tmpls[c->n]);
        free(c->names[c->n]);
        free(c->src[c->n]);
        return error_set(err, "out of memory");
    }
    c->n++;
    return 0;
}

static int add_template_list(struct chat_template *c, json_t *list, struct error *err)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *name = json_object_get(item, "name"), *src = json_object_get(item, "template");
        if (!json_is_string(name) || !json_is_string(src))
            return error_set(err, "chat_template[%zu]: expected {\"name\": string, \"template\": string}", i);
        if (add_template(c, json_string_value(name), json_string_value(src), json_string_length(src), err))
            return -1;
    }
    return 0;
}

static int find_template(const struct chat_template *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name))
            return i;
    return -1;
}

static int choose(struct chat_template *c, const char *name, struct error *err)
{
    c->chosen = -1;
    if (!name)
        return c->n == 1 || find_template(c, "default") >= 0 ? 0
               : error_set(err, "chat_template has no template named 'default'; pick one by name");
    c->chosen = find_template(c, name);
    if (c->chosen >= 0)
        return 0;
    char names[256] = "";
    for (int i = 0; i < c->n; i++)
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "", c->names[i]);
    return error_set(err, "no chat template named '%s' (available: %s)", name, names);
}

static struct chat_template *chat_new(json_t *config)
{
    struct chat_template *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->special = json_object();
    for (int i = 0; special_names[i]; i++) {
        const char *tok = token_text(json_object_get(config, special_names[i]));
        if (tok)
            json_object_set_new(c->special, special_names[i], json_string(tok));
    }
    return c;
}

static struct chat_template *finish(struct chat_template *c, int rc, const char *template_name, struct error *err)
{
    if (rc == 0 && c->n == 0)
        rc = error_set(err, "tokenizer_config.json has no chat_template (and there is no chat_template.jinja or "
                            "chat_template.json)");
    if (rc == 0)
        rc = choose(c, template_name, err);
    if (rc) {
        chat_free(c);
        return NULL;
    }
    return c;
}

struct chat_template *chat_from_config(json_t *config, const char *template_name, struct error *err)
{
    if (!json_is_object(config)) {
        error_set(err, "tokenizer_config is not a JSON object");
        return NULL;
    }
    struct chat_template *c = chat_new(config);
    if (!c) {
        error_set(err, "out of memory");
        return NULL;
    }
    json_t *t = json_object_get(config, "chat_template");
    int rc = 0;
    if (json_is_string(t))
        rc = add_template(c, "default", json_string_value(t), json_string_length(t), err);
    else if (json_is_array(t))
        rc = add_template_list(c, t, err);
    else if (t && !json_is_null(t))
        rc = error_set(err, "chat_template must be a string or a list of {name, template}");
    return finish(c, rc, template_name, err);
}

/* NULL with errno ENOENT when absent; other failures fill err. */
static char *read_file(const char *path, size_t *len, struct error *err)
{
    const char *why;
    FILE *f = mf_fopen(path, MF_MAX_TEXT, &why);
    if (!f) {
        int e = errno;
        if (e != ENOENT)
            error_set(err, "%s: %s", path, why);
        errno = e;
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* chat_template.jinja replaces the config's template, as in transformers; a processor's
 * chat_template.json ({"chat_template": "..."}) is used when nothing else has one. */
static int template_files(json_t *config, const char *model_dir, struct error *err)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof(path), "%s/chat_template.jinja", model_dir);
    errno = 0;
    char *jinja = read_file(path, &len, err);
    if (!jinja && errno != ENOENT)
        return -1;
    if (jinja) {
        json_object_set_new(config, "chat_template", json_stringn(jinja, len));
        free(jinja);
        return json_is_string(json_object_get(config, "chat_template")) ? 0
                                                                        : error_set(err, "%s is not valid UTF-8", path);
    }
    json_t *t = json_object_get(config, "chat_template");
    if (t && !json_is_null(t))
        return 0;
    snprintf(path, sizeof(path), "%s/chat_template.json", model_dir);
    json_error_t je;
    json_t *j = mf_load_json(path, 0, &je);
    if (!j && errno == ENOENT)
        return 0; /* absent: chat_from_config reports the missing template */
    if (!j)
        return error_set(err, "%s: %s", path, je.text);
    json_t *src = json_object_get(j, "chat_template");
    int rc = json_is_string(src) ? json_object_set(config, "chat_template", src)
                                 : error_set(err, "%s: \"chat_template\" is not a string", path);
    json_decref(j);
    return rc;
}

struct chat_template *chat_load(const char *model_dir, const char *template_name, struct error *err)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", model_dir);
    /* INT_AS_REAL: configs carry integers like model_max_length = 1e30 that overflow jansson's int;
     * only strings are read from this file. */
    bool gguf = gguf_is_file(model_dir), absent;
    json_t *config = gguf ? gguf_hf_file(model_dir, "tokenizer_config.json", &absent, err)
                          : mf_load_json(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!config) {
        if (!gguf)
            error_set(err, "%s: %s (line %d); the model folder needs its tokenizer_config.json", path, je.text, je.line);
        return NULL;
    }
    if (!gguf && template_files(config, model_dir, err)) {
        json_decref(config);
        return NULL;
    }
    struct chat_template *c = chat_from_config(config, template_name, err);
    json_decref(config);
    if (!c)
        error_wrap(err, "%s", model_dir);
    else
        log_debug("chat: %s: %d template(s) loaded", model_dir, c->n);
    return c;
}

void chat_free(struct chat_template *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        tmpl_free(c->tmpls[i]);
        free(c->names[i]);
        free(c->src[i]);
    }
    json_decref(c->special);
    free(c);
}

bool chat_mentions(const struct chat_template *c, const char *text)
{
    for (int i = 0; c && i < c->n; i++)
        if (strstr(c->src[i], text))
            return true;
    return false;
}

const char *chat_bos_token(const struct chat_template *c)
{
    return json_string_value(json_object_get(c->special, "bos_token"));
}

const char *chat_eos_token(const struct chat_template *c)
{
    return json_string_value(json_object_get(c->special, "eos_token"));
}

/* Only text parts are supported; returns the texts' total length, or -1 with err set. */
static long text_parts_len(json_t *content, size_t idx, struct error *err)
{
    size_t i;
    json_t *part;
    long total = 0;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type || strcmp(type, "text") || !json_is_string(json_object_get(part, "text")))
            return error_set(err, "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} parts are "
                                  "supported%s%s", idx, i, type ? ", not type " : "", type ? type : "");
        total += (long)json_string_length(json_object_get(part, "text")) + 1;
    }
    return total;
}

/* vLLM's "openai" content format, for templates that loop over content: a list of text parts. */
static json_t *content_parts(json_t *content, size_t idx, struct error *err)
{
    if (!content || json_is_null(content))
        return json_array();
    if (json_is_string(content))
        return json_pack("[{s:s,s:O}]", "type", "text", "text", content);
    return text_parts_len(content, idx, err) < 0 ? NULL : json_incref(content);
}

/* vLLM's "string" content format: text parts joined by newlines; null is "". With parts, its "openai"
 * format instead (content_parts). */
static json_t *normalise_content(json_t *content, size_t idx, bool parts, struct error *err)
{
    if (content && !json_is_null(content) && !json_is_string(content) && !json_is_array(content)) {
        error_set(err, "messages[%zu].content must be a string, null or a list of parts", idx);
        return NULL;
    }
    if (parts)
        return content_parts(content, idx, err);
    if (!content || json_is_null(content))
        return json_string("");
    if (json_is_string(content))
        return json_incref(content);
    long total = text_parts_len(content, idx, err);
    if (total < 0)
        return NULL;
    size_t i;
    json_t *part;
    char *buf = malloc((size_t)total + 1), *p = buf;
    if (!buf) {
        error_set(err, "out of memory");
        return NULL;
    }
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        if (i)
            *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    json_t *s = json_stringn(buf, p - buf);
    free(buf);
    return s;
}

/* Tool-call arguments arrive as a JSON string; templates expect the object (vLLM parses it too). */
static void parse_tool_arguments(json_t *msg)
{
    json_t *calls = json_object_get(msg, "tool_calls"), *call;
    size_t i;
    if (!json_is_array(calls))
        return;
    calls = json_deep_copy(calls);
    json_array_foreach(calls, i, call) {
        json_t *fn = json_object_get(call, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *parsed = args ? json_loads(args, JSON_DECODE_ANY, NULL) : NULL;
        if (json_is_object(parsed))
            json_object_set(fn, "arguments", parsed);
        json_decref(parsed);
    }
    json_object_set_new(msg, "tool_calls", calls);
}

static json_t *normalise_messages(json_t *messages, bool parts, struct error *err)
{
    if (!json_is_array(messages)) {
        error_set(err, "messages must be a JSON array");
        return NULL;
    }
    json_t *out = json_array(), *m;
    size_t i;
    json_array_foreach(messages, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            json_decref(out);
            error_set(err, "messages[%zu] must be an object with a string \"role\"", i);
            return NULL;
        }
        json_t *content = normalise_content(json_object_get(m, "content"), i, parts, err);
        if (!content) {
            json_decref(out);
            return NULL;
        }
        json_t *copy = json_copy(m);
        json_object_set_new(copy, "content", content);
        parse_tool_arguments(copy);
        json_array_append_new(out, copy);
    }
    return out;
}

/* The explicit name, else "tool_use" when tools are passed and it exists (transformers), else "default". */
static int pick(const struct chat_template *c, json_t *extra)
{
    if (c->chosen >= 0)
        return c->chosen;
    json_t *tools = json_object_get(extra, "tools");
    int i = json_array_size(tools) > 0 ? find_template(c, "tool_use") : -1;
    if (i < 0)
        i = find_template(c, "default");
    return i < 0 ? 0 : i;
}

int chat_render(const struct chat_template *c, json_t *messages, bool add_generation_prompt, json_t *extra,
                char **out, struct error *err)
{
    if (extra && !json_is_object(extra))
        return error_set(err, "chat template arguments must be a JSON object");
    int which = pick(c, extra);
    json_t *msgs = normalise_messages(messages, c->parts[which], err);
    if (!msgs)
        return -1;
    json_t *ctx = json_object();
    json_object_set_new(ctx, "tools", json_null());
    json_object_set_new(ctx, "documents", json_null());
    json_object_update(ctx, c->special);
    if (extra)
        json_object_update(ctx, extra);
    json_object_set_new(ctx, "messages", msgs);
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    int rc = tmpl_render(c->tmpls[which], ctx, NULL, out, NULL, err);
    json_decref(ctx);
    return rc;
}
