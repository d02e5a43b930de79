/* stream.c — reads one chunk of an OpenAI streaming response: does it carry generated text (the
 * chunks TTFT and ITL are timed on, as vLLM's benchmark times them), a usage block, the [DONE]
 * sentinel, or an error object. A chat stream's first chunk usually carries only the role: it is
 * not a token. Text may hold U+0000 (a token can decode to it): it counts as content. */
#include "bench.h"

#include <string.h>

static int nonempty_string(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static int choice_has_content(json_t *choice, int chat)
{
    if (!chat)
        return nonempty_string(json_object_get(choice, "text"));
    json_t *delta = json_object_get(choice, "delta");
    return nonempty_string(json_object_get(delta, "content")) ||
           nonempty_string(json_object_get(delta, "reasoning_content"));
}

static void read_usage(json_t *usage, struct stream_chunk *c)
{
    json_t *p = json_object_get(usage, "prompt_tokens");
    json_t *o = json_object_get(usage, "completion_tokens");
    if (!json_is_integer(o))
        return;
    c->has_usage = 1;
    c->completion_tokens = (int)json_integer_value(o);
    c->prompt_tokens = json_is_integer(p) ? (int)json_integer_value(p) : -1;
}

static void read_error(json_t *e, struct stream_chunk *c)
{
    json_t *msg = json_is_object(e) ? json_object_get(e, "message") : e;
    snprintf(c->error, sizeof c->error, "server error in stream: %s",
             json_is_string(msg) ? json_string_value(msg) : "(no message)");
}

int stream_parse_chunk(const char *data, size_t len, int chat, struct stream_chunk *c,
                       struct error *err)
{
    memset(c, 0, sizeof *c);
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        c->done = 1;
        return 0;
    }
    json_error_t jerr;
    /* JSON_ALLOW_NUL: a token may decode to U+0000, which JSON escapes as \u0000 */
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return error_set(err, "invalid JSON in stream chunk: %s", root ? "not an object" : jerr.text);
    }
    const char *id = json_string_value(json_object_get(root, "id"));
    if (id)
        snprintf(c->id, sizeof c->id, "%s", id);
    json_t *e = json_object_get(root, "error");
    if (e && !json_is_null(e))
        read_error(e, c);
    json_t *choices = json_object_get(root, "choices");
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice)
        c->has_content |= choice_has_content(choice, chat);
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage))
        read_usage(usage, c);
    json_decref(root);
    return 0;
}
