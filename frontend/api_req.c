/* api_req.c — parsing and validating OpenAI request bodies (see api_req.h). The field rules follow
 * OpenAI's API reference and vLLM's extensions (top_k, min_p, repetition_penalty, ignore_eos,
 * stop_token_ids, skip_special_tokens). A field that is absent or null takes its default. */
#include "frontend/api_req.h"

#include "common/grammar/grammar.h"
#include "frontend/api_fields.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAD(e, param, ...) apierr_set(e, 400, param, "invalid_value", __VA_ARGS__)

/* Returns the field, or NULL when absent or null. */
static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static int get_num(json_t *o, const char *key, double lo, double hi, float *out, struct apierr *e)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return BAD(e, key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return BAD(e, key, "'%s' must be between %g and %g, got %g", key, lo, hi, d);
    *out = (float)d;
    return 0;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, struct apierr *e)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return BAD(e, key, "'%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return BAD(e, key, "'%s' must be between %lld and %lld, got %lld", key, lo, hi, x);
    *out = x;
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, struct apierr *e)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return BAD(e, key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int parse_ids(json_t *arr, const char *param, struct api_prompt *p, struct apierr *e)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return BAD(e, param, "'%s' has an empty list of token ids", param);
    p->ids = malloc(n * sizeof *p->ids);
    if (!p->ids)
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return BAD(e, param, "'%s' token ids must be non-negative integers (item %zu is not)", param, i);
        p->ids[i] = (int32_t)json_integer_value(t);
    }
    p->n_ids = (int)n;
    return 0;
}

static int add_prompt(struct api_request *r, json_t *v, struct apierr *e)
{
    if (r->n_prompts == API_MAX_PROMPTS)
        return BAD(e, "prompt", "at most %d prompts per request", API_MAX_PROMPTS);
    struct api_prompt *p = &r->prompts[r->n_prompts++];
    if (json_is_string(v)) {
        p->text = strndup(json_string_value(v), json_string_length(v));
        return p->text ? 0 : apierr_set(e, 500, NULL, "internal_error", "out of memory");
    }
    if (json_is_array(v))
        return parse_ids(v, "prompt", p, e);
    return BAD(e, "prompt", "'prompt' must be a string, a list of strings, or a list of token ids");
}

/* prompt: "text" | ["a", "b"] | [1, 2, 3] | [[1, 2], [3]] */
static int parse_prompt(struct api_request *r, json_t *body, struct apierr *e)
{
    json_t *v = field(body, "prompt");
    if (!v)
        return BAD(e, "prompt", "'prompt' is required");
    r->prompts = calloc(API_MAX_PROMPTS, sizeof *r->prompts);
    if (!r->prompts)
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    if (json_is_string(v))
        return add_prompt(r, v, e);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return BAD(e, "prompt", "'prompt' must be a non-empty string, list of strings, or list of token ids");
    if (json_is_integer(json_array_get(v, 0)))
        return add_prompt(r, v, e);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (add_prompt(r, item, e))
            return -1;
    }
    return 0;
}

static int parse_messages(struct api_request *r, json_t *body, struct apierr *e)
{
    json_t *m = field(body, "messages");
    if (!m)
        return BAD(e, "messages", "'messages' is required");
    if (!json_is_array(m) || json_array_size(m) == 0)
        return BAD(e, "messages", "'messages' must be a non-empty list of messages");
    size_t i;
    json_t *msg;
    json_array_foreach(m, i, msg) {
        if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "role")))
            return BAD(e, "messages", "messages[%zu] must be an object with a string 'role'", i);
    }
    r->messages = json_incref(m);
    json_t *extra = json_object();
    const char *keys[] = {"tools", "documents"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (field(body, keys[k]))
            json_object_set(extra, keys[k], json_object_get(body, keys[k]));
    json_t *kw = field(body, "chat_template_kwargs");
    if (kw && !json_is_object(kw)) {
        json_decref(extra);
        return BAD(e, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
    }
    if (kw) /* its keys are template variables themselves (enable_thinking ...) */
        json_object_update(extra, kw);
    r->chat_extra = extra;
    return get_bool(body, "add_generation_prompt", &r->add_generation_prompt, e);
}

static int parse_stop(struct api_request *r, json_t *body, struct apierr *e)
{
    json_t *v = field(body, "stop");
    if (!v)
        return 0;
    json_t *one[1] = {v};
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > API_MAX_STOP)
        return BAD(e, "stop", "at most %d stop sequences", API_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(v) ? json_array_get(v, i) : one[0];
        if (!json_is_string(s) || json_string_length(s) == 0)
            return BAD(e, "stop", "'stop' must be a non-empty string or a list of non-empty strings");
        if (json_string_length(s) > API_MAX_STOP_LEN)
            return BAD(e, "stop", "a stop string is at most %d bytes long", API_MAX_STOP_LEN);
        r->stop[r->n_stop] = strdup(json_string_value(s));
        if (!r->stop[r->n_stop++])
            return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    }
    return 0;
}

static int parse_stop_ids(struct api_request *r, json_t *body, struct apierr *e)
{
    json_t *v = field(body, "stop_token_ids");
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > SAMPLE_MAX_STOP_IDS)
        return BAD(e, "stop_token_ids", "'stop_token_ids' must be a list of at most %d token ids",
                   SAMPLE_MAX_STOP_IDS);
    size_t i;
    json_t *t;
    json_array_foreach(v, i, t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return BAD(e, "stop_token_ids", "'stop_token_ids' must hold non-negative integers");
        r->sp.stop_ids[r->sp.n_stop_ids++] = (int32_t)json_integer_value(t);
    }
    return 0;
}

/* OpenAI's logit_bias: {"token id": bias from -100 to 100}. Whether each id is in the vocabulary is
 * prompt_prepare's check (it knows the model). */
static int parse_logit_bias(struct api_request *r, json_t *body, struct apierr *e)
{
    json_t *v = field(body, "logit_bias");
    if (!v)
        return 0;
    if (!json_is_object(v) || json_object_size(v) > SAMPLE_MAX_LOGIT_BIAS)
        return BAD(e, "logit_bias", "'logit_bias' must be an object mapping at most %d token ids to biases",
                   SAMPLE_MAX_LOGIT_BIAS);
    const char *key;
    json_t *bias;
    json_object_foreach(v, key, bias) {
        char *end;
        errno = 0;
        long id = strtol(key, &end, 10);
        if (!*key || *end || errno || id < 0 || id > INT32_MAX || !isdigit((unsigned char)key[0]))
            return BAD(e, "logit_bias", "Invalid key in 'logit_bias': \"%.40s\" is not a token id", key);
        double x = json_is_number(bias) ? json_number_value(bias) : NAN;
        if (!(x >= -100 && x <= 100))
            return BAD(e, "logit_bias", "'logit_bias' values must be numbers from -100 to 100 (token %ld)", id);
        r->sp.bias_ids[r->sp.n_logit_bias] = (int32_t)id;
        r->sp.bias_values[r->sp.n_logit_bias++] = (float)x;
    }
    return 0;
}

static int parse_sampling(struct api_request *r, json_t *b, struct apierr *e)
{
    struct sample_params *p = &r->sp;
    long long top_k = p->top_k, seed = 0, max_tokens = -1, n = 1;
    if (get_num(b, "temperature", 0, 2, &p->temperature, e) || get_num(b, "top_p", 0, 1, &p->top_p, e) ||
        get_num(b, "min_p", 0, 1, &p->min_p, e) ||
        get_num(b, "presence_penalty", -2, 2, &p->presence_penalty, e) ||
        get_num(b, "frequency_penalty", -2, 2, &p->frequency_penalty, e) ||
        get_num(b, "repetition_penalty", 0.01, 10, &p->repetition_penalty, e) ||
        get_int(b, "top_k", -1, 1 << 20, &top_k, e) || get_int(b, "seed", INT64_MIN, INT64_MAX, &seed, e) ||
        get_int(b, "max_tokens", 1, 1 << 24, &max_tokens, e) ||
        get_int(b, "max_completion_tokens", 1, 1 << 24, &max_tokens, e) || get_int(b, "n", 1, API_MAX_N, &n, e) ||
        get_bool(b, "ignore_eos", &p->ignore_eos, e))
        return -1;
    if (field(b, "top_p") && p->top_p == 0)
        return BAD(e, "top_p", "'top_p' must be greater than 0");
    p->top_k = (int32_t)top_k;
    p->seed = (uint64_t)seed;
    r->seed_given = field(b, "seed") != NULL;
    p->max_tokens = (int32_t)max_tokens;
    r->n = (int)n;
    long long best_of = n;
    if (r->kind == API_COMPLETION && get_int(b, "best_of", 1, 20, &best_of, e))
        return -1;
    if (best_of < n)
        return BAD(e, "best_of", "'best_of' must be at least 'n' (%lld), got %lld", n, best_of);
    r->best_of = (int)best_of;
    return parse_stop(r, b, e) || parse_stop_ids(r, b, e) || parse_logit_bias(r, b, e) ? -1 : 0;
}

static int parse_logprobs(struct api_request *r, json_t *b, struct apierr *e)
{
    json_t *lp = field(b, "logprobs");
    if (r->kind == API_COMPLETION) {
        long long k = -1;
        if (lp && json_is_boolean(lp))
            return BAD(e, "logprobs", "'logprobs' for completions is an integer (0 to %d)", API_MAX_LOGPROBS);
        if (get_int(b, "logprobs", 0, API_MAX_LOGPROBS, &k, e))
            return -1;
        r->logprobs = k >= 0;
        r->top_logprobs = k > 0 ? (int)k : 0;
        r->sp.top_logprobs = (uint8_t)r->top_logprobs;
        if (get_bool(b, "echo", &r->echo, e))
            return -1;
        r->sp.prompt_logprobs = r->echo && r->logprobs; /* the prompt's tokens are scored too */
        json_t *suffix = field(b, "suffix");
        if (suffix && !json_is_string(suffix))
            return BAD(e, "suffix", "'suffix' must be a string");
        if (suffix && json_string_length(suffix) && !(r->suffix = strdup(json_string_value(suffix))))
            return apierr_set(e, 500, NULL, "internal_error", "out of memory");
        return 0;
    }
    long long k = 0;
    if (get_bool(b, "logprobs", &r->logprobs, e) || get_int(b, "top_logprobs", 0, API_MAX_LOGPROBS, &k, e))
        return -1;
    if (field(b, "top_logprobs") && !r->logprobs)
        return BAD(e, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    r->top_logprobs = (int)k;
    r->sp.top_logprobs = (uint8_t)k;
    return 0;
}

/* Extension (vLLM's logprobs-mode, per request): which distribution logprobs come from. */
static int parse_logprobs_mode(struct api_request *r, json_t *b, struct apierr *e)
{
    json_t *m = field(b, "logprobs_mode");
    r->logprobs_mode = -1;
    if (!m)
        return 0;
    r->logprobs_mode = sample_logprobs_mode_parse(json_string_value(m));
    if (r->logprobs_mode < 0)
        return BAD(e, "logprobs_mode", "'logprobs_mode' must be \"raw_logprobs\" or \"processed_logprobs\"");
    return 0;
}

static int parse_stream(struct api_request *r, json_t *b, struct apierr *e)
{
    if (get_bool(b, "stream", &r->stream, e))
        return -1;
    json_t *so = field(b, "stream_options");
    if (!so)
        return 0;
    if (!r->stream)
        return BAD(e, "stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (!json_is_object(so))
        return BAD(e, "stream_options", "'stream_options' must be an object");
    if (get_bool(so, "include_usage", &r->include_usage, e)) {
        snprintf(e->param, sizeof e->param, "stream_options.include_usage");
        return -1;
    }
    return 0;
}

/* Structured output: response_format {"type": "json_object"} (any JSON object) or {"type":
 * "json_schema", "json_schema": {"name", "schema", "strict"}}; the schema is compiled here so one
 * pdserve cannot enforce is a 400 naming the keyword. */
static int parse_response_format(struct api_request *r, json_t *b, struct apierr *e)
{
    json_t *f = field(b, "response_format");
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!f || (type && !strcmp(type, "text")))
        return 0;
    if (!json_is_object(f) || !type || (strcmp(type, "json_object") && strcmp(type, "json_schema")))
        return BAD(e, "response_format", "'response_format' must be {\"type\": \"text\"}, {\"type\": "
                                         "\"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": {...}}");
    json_t *js = json_object_get(f, "json_schema"), *schema = json_object_get(js, "schema");
    if (!strcmp(type, "json_schema") && (!json_is_object(js) || (schema && !json_is_object(schema) &&
                                                                 !json_is_boolean(schema))))
        return BAD(e, "response_format", "'response_format.json_schema' must be an object with a 'schema' object");
    json_t *made = NULL, *use = schema; /* json_object: any object; json_schema without one: any value */
    if (!strcmp(type, "json_object"))
        use = made = json_pack("{s:s}", "type", "object");
    else if (!schema)
        use = made = json_object();
    struct error err;
    struct grammar *g = use ? grammar_compile(use, &err) : NULL;
    json_t *spec = g ? json_pack("{s:O}", "schema", use) : NULL;
    r->constraint = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    grammar_free(g);
    json_decref(made);
    if (use && !g)
        return BAD(e, "response_format", "response_format: %s", err.msg);
    return r->constraint ? 0 : apierr_set(e, 500, NULL, "internal_error", "out of memory");
}

/* best_of > n picks among candidates once they have all finished: nothing can be streamed before. */
static int check_best_of(struct api_request *r, struct apierr *e)
{
    if (r->best_of > r->n && r->stream)
        return BAD(e, "best_of", "'best_of' above 'n' cannot be streamed: the best are known only at the end");
    return 0;
}

static int parse_body(enum api_kind kind, json_t *b, struct api_request *r, struct apierr *e)
{
    if (api_fields_check(kind, b, e))
        return -1;
    json_t *model = field(b, "model");
    json_t *user = field(b, "user");
    if (user && !json_is_string(user))
        return BAD(e, "user", "'user' must be a string");
    if (model && !json_is_string(model))
        return BAD(e, "model", "'model' must be a string");
    if (model && !(r->model = strdup(json_string_value(model))))
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    if (kind == API_COMPLETION ? parse_prompt(r, b, e) : parse_messages(r, b, e))
        return -1;
    if (parse_sampling(r, b, e) || parse_logprobs(r, b, e) || parse_logprobs_mode(r, b, e) ||
        parse_stream(r, b, e) || get_bool(b, "skip_special_tokens", &r->skip_special_tokens, e) ||
        check_best_of(r, e) || parse_response_format(r, b, e) ||
        get_num(b, "slo_ttft_ms", 1, 3.6e6, &r->slo_ttft_ms, e) || get_num(b, "slo_tpot_ms", 1, 3.6e6, &r->slo_tpot_ms, e) ||
        (kind == API_CHAT && tc_parse_request(b, &r->tools, e)))
        return -1;
    return 0;
}

int api_request_parse(enum api_kind kind, const char *body, size_t len, struct api_request *r, struct apierr *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->n = 1;
    r->add_generation_prompt = true;
    r->skip_special_tokens = true;
    sample_params_default(&r->sp);
    r->sp.temperature = 1.0f; /* OpenAI's default; 0 means greedy */
    json_error_t jerr;
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!b && json_error_code(&jerr) == json_error_null_character)
        return apierr_set(e, 400, NULL, "invalid_value", "strings containing \\u0000 are not supported (line %d, "
                          "column %d)", jerr.line, jerr.column);
    if (!b)
        return apierr_set(e, 400, NULL, "invalid_json", "the request body is not valid JSON: %s (line %d, column %d)",
                          jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(b))
        rc = apierr_set(e, 400, NULL, "invalid_json", "the request body must be a JSON object");
    else
        rc = parse_body(kind, b, r, e);
    json_decref(b);
    if (rc) {
        api_request_free(r);
        r->kind = kind;
    }
    return rc;
}

void api_request_free(struct api_request *r)
{
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].ids);
    }
    free(r->prompts);
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    json_decref(r->messages);
    json_decref(r->chat_extra);
    free(r->constraint);
    free(r->suffix);
    tc_request_free(&r->tools);
    free(r->model);
    memset(r, 0, sizeof *r);
}
