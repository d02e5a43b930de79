/* oai_resp.c — OpenAI-shaped response bodies and SSE chunks (see oai_resp.h). */
#include "frontend/oai_resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

void oai_meta_init(struct oai_meta *m, enum api_kind kind, const char *model, bool usage_null)
{
    static uint64_t counter;
    /* Unique within the process and unlikely to repeat across restarts: time, pid and a counter. */
    uint64_t x = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 40) ^ (++counter * 0x9e3779b97f4a7c15ull);
    snprintf(m->id, sizeof m->id, "%s-%016llx%04llx", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)x, (unsigned long long)(counter & 0xffff));
    m->kind = kind;
    m->created = (long long)time(NULL);
    m->model = model;
    m->fingerprint = NULL;
    m->usage_null = usage_null;
}

size_t oai_text_chars(const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)text[i] & 0xC0) != 0x80; /* count every byte that starts a character */
    return n;
}

static json_t *byte_array(const char *bytes, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)bytes[i]));
    return a;
}

static json_t *bytes_of(const struct oai_lp *t)
{
    return t->bytes ? byte_array(t->bytes, t->n_bytes) : byte_array(t->text, t->len);
}

/* Alternative a of token t as chat shows it: {"token", "logprob", "bytes"}. */
static json_t *chat_alt(const struct oai_lp *t, const struct oai_alt *a)
{
    if (!a->text) /* the chosen token */
        return json_pack("{s:s%, s:f, s:o}", "token", t->text, t->len, "logprob", (double)a->logprob, "bytes",
                         bytes_of(t));
    return json_pack("{s:s%, s:f, s:o}", "token", a->text, a->len, "logprob", (double)a->logprob, "bytes",
                     a->bytes ? byte_array(a->bytes, a->n_bytes) : byte_array(a->text, a->len));
}

static json_t *chat_logprobs(const struct oai_lp *toks, int n, bool want_top)
{
    json_t *content = json_array();
    for (int i = 0; i < n; i++) {
        const struct oai_lp *t = &toks[i];
        json_t *top = json_array();
        for (int j = 0; want_top && j < t->n_top; j++)
            json_array_append_new(top, chat_alt(t, &t->top[j]));
        json_array_append_new(content, json_pack("{s:s%, s:f, s:o, s:o}", "token", t->text, t->len, "logprob",
                                                 (double)t->logprob, "bytes", bytes_of(t), "top_logprobs", top));
    }
    return json_pack("{s:o}", "content", content);
}

/* Completions' {"text": logprob} of token t: its alternatives, then itself if it was not one. Two
 * alternatives with the same text keep the likelier one's logprob. */
static json_t *completion_top(const struct oai_lp *t)
{
    json_t *one = json_object();
    for (int j = 0; j < t->n_top; j++) {
        const struct oai_alt *a = &t->top[j];
        const char *text = a->text ? a->text : t->text;
        size_t len = a->text ? a->len : t->len;
        if (!json_object_getn(one, text, len))
            json_object_setn_new(one, text, len, json_real(a->logprob));
    }
    if (!json_object_getn(one, t->text, t->len))
        json_object_setn_new(one, t->text, t->len, json_real(t->logprob));
    return one;
}

json_t *oai_logprobs(enum api_kind kind, const struct oai_lp *toks, int n, bool want_top)
{
    if (kind == API_CHAT)
        return chat_logprobs(toks, n, want_top);
    json_t *tokens = json_array(), *tlp = json_array(), *top = json_array(), *offs = json_array();
    for (int i = 0; i < n; i++) {
        const struct oai_lp *t = &toks[i];
        json_array_append_new(tokens, json_stringn(t->text, t->len));
        json_array_append_new(tlp, t->unscored ? json_null() : json_real(t->logprob));
        json_array_append_new(top, want_top && !t->unscored ? completion_top(t) : json_null());
        json_array_append_new(offs, json_integer((json_int_t)t->offset));
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", tlp, "top_logprobs", top,
                     "text_offset", offs);
}

static json_t *envelope(const struct oai_meta *m, bool chunk)
{
    const char *object = m->kind == API_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                             : "text_completion";
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "id", m->id, "object", object, "created", (json_int_t)m->created,
                          "model", m->model);
    if (o && m->fingerprint)
        json_object_set_new(o, "system_fingerprint", json_string(m->fingerprint));
    return o;
}

static char *dump_sse(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = malloc(n + 9);
    if (out) {
        memcpy(out, "data: ", 6);
        memcpy(out + 6, s, n);
        memcpy(out + 6 + n, "\n\n", 3);
    }
    free(s);
    return out;
}

char *oai_sse_chunk(const struct oai_meta *m, int index, const char *text, size_t len, const char *finish,
                    bool role_first, json_t *logprobs, json_t *tool_calls)
{
    json_t *c = json_pack("{s:i}", "index", index);
    json_t *t = json_stringn(text ? text : "", len);
    if (m->kind == API_CHAT) {
        json_t *delta = json_object();
        if (role_first)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (role_first || len || (!finish && !tool_calls))
            json_object_set(delta, "content", t);
        size_t i;
        json_t *call;
        json_array_foreach(tool_calls, i, call) {
            json_object_set_new(call, "index", json_integer((json_int_t)i));
        }
        if (tool_calls)
            json_object_set_new(delta, "tool_calls", tool_calls);
        json_object_set_new(c, "delta", delta);
    } else {
        json_object_set(c, "text", t);
    }
    json_decref(t);
    json_object_set_new(c, "logprobs", logprobs ? logprobs : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *o = envelope(m, true);
    json_object_set_new(o, "choices", json_pack("[o]", c));
    if (m->usage_null)
        json_object_set_new(o, "usage", json_null());
    return dump_sse(o);
}

/* OpenAI's usage, with prompt_tokens_details.cached_tokens (prompt tokens served from the prefix cache)
 * and completion_tokens_details (no reasoning tokens are told apart). */
static json_t *usage(long p, long c, long cached)
{
    return json_pack("{s:I, s:I, s:I, s:{s:I}, s:{s:i}}", "prompt_tokens", (json_int_t)p, "completion_tokens",
                     (json_int_t)c, "total_tokens", (json_int_t)(p + c), "prompt_tokens_details", "cached_tokens",
                     (json_int_t)cached, "completion_tokens_details", "reasoning_tokens", 0);
}

char *oai_sse_usage(const struct oai_meta *m, long prompt_tokens, long completion_tokens, long cached_tokens)
{
    json_t *o = envelope(m, true);
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage(prompt_tokens, completion_tokens, cached_tokens));
    return dump_sse(o);
}

json_t *oai_choice(const struct oai_meta *m, int index, const char *text, size_t len, const char *finish,
                   json_t *logprobs, json_t *tool_calls)
{
    json_t *c = json_pack("{s:i}", "index", index);
    json_t *t = tool_calls && !len ? json_null() : json_stringn(text ? text : "", len);
    if (m->kind == API_CHAT) {
        json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content", t);
        if (tool_calls)
            json_object_set_new(msg, "tool_calls", tool_calls);
        json_object_set_new(c, "message", msg);
    } else
        json_object_set_new(c, "text", t);
    json_object_set_new(c, "logprobs", logprobs ? logprobs : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    return c;
}

char *oai_response(const struct oai_meta *m, json_t *choices, long prompt_tokens, long completion_tokens,
                   long cached_tokens)
{
    json_t *o = envelope(m, false);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage(prompt_tokens, completion_tokens, cached_tokens));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

char *oai_sse_error(int status, const char *message)
{
    char *body = apierr_json_simple(status, NULL, message);
    if (!body)
        return NULL;
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    return o ? dump_sse(o) : NULL;
}
