/* payload.c — the JSON body of each request, shaped as vLLM's benchmark sends it: greedy
 * (temperature 0), streaming, with stream_options.include_usage so the output token count comes
 * from the server's usage block, and ignore_eos (a vLLM extension pdserve also honours) so every
 * request generates exactly max_tokens tokens. */
#include "bench.h"

#include <stdlib.h>

static json_t *prompt_json(const struct bench_prompt *p)
{
    if (!p->ids)
        return json_string(p->text ? p->text : "");
    json_t *a = json_array();
    for (int i = 0; a && i < p->n_ids; i++)
        json_array_append_new(a, json_integer(p->ids[i]));
    return a;
}

static json_t *chat_messages(const struct bench_prompt *p)
{
    return json_pack("[{s:s, s:s}]", "role", "user", "content", p->text ? p->text : "");
}

char *bench_payload(const struct bench_opts *o, const struct bench_prompt *p)
{
    json_t *body = json_pack("{s:s, s:i, s:f, s:b, s:{s:b}}", "model", o->model, "max_tokens",
                             p->output_len, "temperature", 0.0, "stream", 1, "stream_options",
                             "include_usage", 1);
    if (!body)
        return NULL;
    if (o->chat)
        json_object_set_new(body, "messages", chat_messages(p));
    else
        json_object_set_new(body, "prompt", prompt_json(p));
    if (o->ignore_eos)
        json_object_set_new(body, "ignore_eos", json_true());
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return s;
}
