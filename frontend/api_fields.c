/* api_fields.c — the table of every request field of /v1/completions and /v1/chat/completions:
 * OpenAI's, and the vLLM extensions pdserve implements. No field is silently ignored:
 *  - a field this table does not list for the endpoint gets OpenAI's 400 "Unrecognized request
 *    argument supplied";
 *  - a field pdserve does not implement is accepted only with a value that asks for nothing (null,
 *    or its default); any other value gets a 400 that names it and says why.
 * The fields that work are parsed and range-checked by api_req.c; this file only says which exist. */
#include "frontend/api_fields.h"

#include <string.h>

enum { COMPL = 1, CHAT = 2, BOTH = 3 };

/* Values that ask for nothing of an unimplemented field. */
static bool empty(json_t *v)
{
    return (json_is_string(v) && json_string_length(v) == 0) || (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}
static bool is_false(json_t *v) { return json_is_false(v); }
static bool text_modality(json_t *v)
{
    return json_is_array(v) && json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)) &&
           !strcmp(json_string_value(json_array_get(v, 0)), "text");
}
static bool default_tier(json_t *v)
{
    const char *s = json_string_value(v);
    return s && (!strcmp(s, "auto") || !strcmp(s, "default"));
}

struct api_field {
    const char *name;
    int kinds;
    bool (*asks_nothing)(json_t *v); /* NULL: implemented */
    const char *why;                 /* the 400's reason when it asks for something */
};

static const struct api_field fields[] = {
    {"model", BOTH, NULL, NULL},
    {"prompt", COMPL, NULL, NULL},
    {"messages", CHAT, NULL, NULL},
    {"max_tokens", BOTH, NULL, NULL},
    {"max_completion_tokens", BOTH, NULL, NULL},
    {"temperature", BOTH, NULL, NULL},
    {"top_p", BOTH, NULL, NULL},
    {"n", BOTH, NULL, NULL},
    {"best_of", COMPL, NULL, NULL}, /* api_req.c: best_of == n only */
    {"stream", BOTH, NULL, NULL},
    {"stream_options", BOTH, NULL, NULL},
    {"stop", BOTH, NULL, NULL},
    {"seed", BOTH, NULL, NULL},
    {"presence_penalty", BOTH, NULL, NULL},
    {"frequency_penalty", BOTH, NULL, NULL},
    {"logprobs", BOTH, NULL, NULL},
    {"top_logprobs", CHAT, NULL, NULL},
    {"echo", COMPL, NULL, NULL},
    {"user", BOTH, NULL, NULL}, /* an end-user id for the caller's records; never used */
    {"tools", CHAT, NULL, NULL}, /* rendered by the chat template; calls parsed by toolcall.c */
    {"parallel_tool_calls", CHAT, NULL, NULL},
    {"add_generation_prompt", CHAT, NULL, NULL},
    {"chat_template_kwargs", CHAT, NULL, NULL},
    {"documents", CHAT, NULL, NULL},
    {"top_k", BOTH, NULL, NULL},
    {"min_p", BOTH, NULL, NULL},
    {"repetition_penalty", BOTH, NULL, NULL},
    {"ignore_eos", BOTH, NULL, NULL},
    {"stop_token_ids", BOTH, NULL, NULL},
    {"skip_special_tokens", BOTH, NULL, NULL},
    {"logprobs_mode", BOTH, NULL, NULL},
    {"slo_ttft_ms", BOTH, NULL, NULL}, /* extension: SLO-aware routing per request */
    {"slo_tpot_ms", BOTH, NULL, NULL},
    {"suffix", COMPL, NULL, NULL}, /* prompt.c: fill in the middle, with the model's FIM tokens */
    {"logit_bias", BOTH, NULL, NULL},
    {"response_format", CHAT, NULL, NULL}, /* api_req.c: text, json_object, json_schema */
    {"tool_choice", CHAT, NULL, NULL}, /* toolcall.c */
    {"functions", CHAT, empty, "is deprecated and not supported; use 'tools'"},
    {"function_call", CHAT, empty, "is deprecated and not supported; use 'tools'"},
    {"modalities", CHAT, text_modality, "only [\"text\"] is supported"},
    {"audio", CHAT, empty, "is not supported: the model produces text only"},
    {"prediction", CHAT, empty, "is not supported (no predicted outputs)"},
    {"reasoning_effort", CHAT, empty, "is not supported by this model"},
    {"web_search_options", CHAT, empty, "is not supported (no web search)"},
    {"store", CHAT, is_false, "is not supported: pdserve stores no completions"},
    {"metadata", CHAT, empty, "is only for stored completions, which pdserve does not keep"},
    {"service_tier", BOTH, default_tier, "only \"auto\" and \"default\" are supported"},
};

static const struct api_field *find(const char *name)
{
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (!strcmp(fields[i].name, name))
            return &fields[i];
    return NULL;
}

int api_fields_check(enum api_kind kind, json_t *body, struct apierr *e)
{
    int bit = kind == API_CHAT ? CHAT : COMPL;
    const char *name;
    json_t *v;
    json_object_foreach(body, name, v) {
        const struct api_field *f = find(name);
        if (!f || !(f->kinds & bit))
            return apierr_set(e, 400, name, "invalid_value", "Unrecognized request argument supplied: %s", name);
        if (f->asks_nothing && !json_is_null(v) && !f->asks_nothing(v))
            return apierr_set(e, 400, name, "unsupported_value", "'%s' %s", name, f->why);
    }
    return 0;
}
