/* test_frontend_api.c — the frontend's pure parts: request validation (every field, every error
 * names its field), stop strings with hold-back, and the OpenAI response/chunk shapes. */
#include "frontend/api_req.c"
#include "frontend/api_fields.c"
#include "frontend/apierr.c"
#include "frontend/oai_resp.c"
#include "frontend/stopstr.c"
#include "frontend/toolcall.c"

#include "tests/helpers/check.h"

static int parse(enum api_kind k, const char *body, struct api_request *r, struct apierr *e)
{
    memset(e, 0, sizeof *e);
    return api_request_parse(k, body, strlen(body), r, e);
}

static void test_full_completion(void)
{
    struct api_request r;
    struct apierr e;
    int rc = parse(API_COMPLETION,
                   "{\"model\":\"m\",\"prompt\":\"hi\",\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,"
                   "\"top_k\":40,\"min_p\":0.05,\"seed\":42,\"stop\":[\"a\",\"bc\"],\"stop_token_ids\":[3,4],"
                   "\"n\":3,\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"repetition_penalty\":1.1,"
                   "\"ignore_eos\":true,\"logprobs\":1,\"echo\":false,\"best_of\":3,\"user\":\"u1\",\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true}}",
                   &r, &e);
    CHECK_MSG(rc == 0, "%s", e.message);
    CHECK_EQ_STR(r.model, "m");
    CHECK_EQ_INT(r.n_prompts, 1);
    CHECK_EQ_STR(r.prompts[0].text, "hi");
    CHECK_EQ_INT(r.sp.max_tokens, 7);
    CHECK_NEAR(r.sp.temperature, 0.5, 1e-6);
    CHECK_NEAR(r.sp.top_p, 0.9, 1e-6);
    CHECK_EQ_INT(r.sp.top_k, 40);
    CHECK_NEAR(r.sp.min_p, 0.05, 1e-6);
    CHECK_EQ_INT(r.sp.seed, 42);
    CHECK(r.seed_given);
    CHECK_EQ_INT(r.n_stop, 2);
    CHECK_EQ_STR(r.stop[1], "bc");
    CHECK_EQ_INT(r.sp.n_stop_ids, 2);
    CHECK_EQ_INT(r.sp.stop_ids[1], 4);
    CHECK_EQ_INT(r.n, 3);
    CHECK_NEAR(r.sp.frequency_penalty, -0.5, 1e-6);
    CHECK_NEAR(r.sp.repetition_penalty, 1.1, 1e-6);
    CHECK(r.sp.ignore_eos && !r.echo && r.stream && r.include_usage && r.logprobs);
    CHECK_EQ_INT(r.top_logprobs, 1);
    api_request_free(&r);
}

static void test_defaults_and_prompt_forms(void)
{
    struct api_request r;
    struct apierr e;
    CHECK(parse(API_COMPLETION, "{\"prompt\":\"x\"}", &r, &e) == 0);
    CHECK_EQ_INT(r.sp.max_tokens, -1);
    CHECK_NEAR(r.sp.temperature, 1.0, 1e-6);
    CHECK(!r.stream && !r.logprobs && r.skip_special_tokens && r.n == 1 && !r.seed_given);
    api_request_free(&r);
    CHECK(parse(API_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", &r, &e) == 0);
    CHECK_EQ_INT(r.n_prompts, 2);
    api_request_free(&r);
    CHECK(parse(API_COMPLETION, "{\"prompt\":[1,2,3]}", &r, &e) == 0);
    CHECK(r.n_prompts == 1 && r.prompts[0].n_ids == 3 && r.prompts[0].ids[2] == 3 && !r.prompts[0].text);
    api_request_free(&r);
    CHECK(parse(API_COMPLETION, "{\"prompt\":[[1,2],[3]],\"max_completion_tokens\":4}", &r, &e) == 0);
    CHECK(r.n_prompts == 2 && r.prompts[1].n_ids == 1 && r.sp.max_tokens == 4);
    api_request_free(&r);
    CHECK(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true,"
                          "\"top_logprobs\":1,\"chat_template_kwargs\":{\"enable_thinking\":false}}", &r, &e) == 0);
    CHECK(r.messages && json_array_size(r.messages) == 1 && r.logprobs && r.top_logprobs == 1);
    CHECK(json_is_false(json_object_get(r.chat_extra, "enable_thinking")));
    api_request_free(&r);
}

/* Each bad body must fail with status 400 and name the field. */
static void bad(enum api_kind k, const char *body, const char *param)
{
    struct api_request r;
    struct apierr e;
    int rc = parse(k, body, &r, &e);
    CHECK_MSG(rc == -1, "accepted: %s", body);
    CHECK_MSG(e.status == 400, "status %d for %s", e.status, body);
    CHECK_MSG(strcmp(e.param, param) == 0, "param \"%s\" (want \"%s\") for %s: %s", e.param, param, body, e.message);
    CHECK_MSG(e.message[0] != 0, "no message for %s", body);
    api_request_free(&r);
}

static void test_errors_name_the_field(void)
{
    bad(API_COMPLETION, "{\"prompt\":\"x\",", "");
    bad(API_COMPLETION, "[1,2]", "");
    bad(API_COMPLETION, "{}", "prompt");
    bad(API_COMPLETION, "{\"prompt\":5}", "prompt");
    bad(API_COMPLETION, "{\"prompt\":[]}", "prompt");
    bad(API_COMPLETION, "{\"prompt\":[1,-2]}", "prompt");
    bad(API_COMPLETION, "{\"prompt\":[\"a\",3]}", "prompt");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"temperature\":2.5}", "temperature");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"top_p\":0}", "top_p");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"top_p\":1.5}", "top_p");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"top_k\":1.5}", "top_k");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"min_p\":-1}", "min_p");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", "max_tokens");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"n\":0}", "n");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"n\":1000}", "n");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"seed\":\"s\"}", "seed");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}", "stop");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stop\":\"\"}", "stop");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stop\":[1]}", "stop");
    { /* a stop string longer than API_MAX_STOP_LEN: the matcher would hold and rescan that much per token */
        char body[API_MAX_STOP_LEN + 64];
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"stop\":[\"a\",\"%0*d\"]}", API_MAX_STOP_LEN + 1, 0);
        bad(API_COMPLETION, body, "stop");
        struct api_request r;
        struct apierr e;
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"stop\":\"%0*d\"}", API_MAX_STOP_LEN, 0);
        CHECK_MSG(parse(API_COMPLETION, body, &r, &e) == 0, "a %d-byte stop string is allowed", API_MAX_STOP_LEN);
        api_request_free(&r);
    }
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stop_token_ids\":[\"a\"]}", "stop_token_ids");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"presence_penalty\":3}", "presence_penalty");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"frequency_penalty\":-3}", "frequency_penalty");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"repetition_penalty\":0}", "repetition_penalty");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"ignore_eos\":1}", "ignore_eos");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":true}", "logprobs");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":50}", "logprobs");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"echo\":\"yes\"}", "echo");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stream\":\"yes\"}", "stream");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":3}}",
        "stream_options.include_usage");
    bad(API_COMPLETION, "{\"prompt\":\"x\",\"model\":3}", "model");
    bad(API_CHAT, "{\"prompt\":\"x\"}", "prompt"); /* a completions field: unrecognized here */
    bad(API_CHAT, "{}", "messages");
    bad(API_CHAT, "{\"messages\":[]}", "messages");
    bad(API_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages");
    bad(API_CHAT, "{\"messages\":[{\"role\":\"user\"}],\"top_logprobs\":2}", "top_logprobs");
    bad(API_CHAT, "{\"messages\":[{\"role\":\"user\"}],\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs");
    bad(API_CHAT, "{\"messages\":[{\"role\":\"user\"}],\"chat_template_kwargs\":[1]}", "chat_template_kwargs");
}

static void ok(enum api_kind k, const char *body)
{
    struct api_request r;
    struct apierr e;
    CHECK_MSG(parse(k, body, &r, &e) == 0, "refused %s: %s", body, e.message);
    api_request_free(&r);
}

/* No field silently ignored (api_fields.c): unknown fields and unimplemented ones that ask for
 * something get a 400 naming them; those values that ask for nothing pass. */
static void test_fields_table(void)
{
    const char *c = "{\"prompt\":\"x\",", *m = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],";
    char b[512];
#define C(rest) (snprintf(b, sizeof b, "%s%s}", c, rest), b)
#define M(rest) (snprintf(b, sizeof b, "%s%s}", m, rest), b)
    bad(API_COMPLETION, C("\"temprature\":0.5"), "temprature");
    bad(API_CHAT, M("\"echo\":true"), "echo");
    bad(API_COMPLETION, C("\"messages\":[]"), "messages");
    ok(API_COMPLETION, C("\"logit_bias\":{\"5\":10,\"7\":-100}"));
    bad(API_COMPLETION, C("\"logit_bias\":{\"5\":101}"), "logit_bias");
    bad(API_COMPLETION, C("\"logit_bias\":{\"x\":1}"), "logit_bias");
    bad(API_COMPLETION, C("\"logit_bias\":{\"-5\":1}"), "logit_bias");
    bad(API_COMPLETION, C("\"logit_bias\":{\"5\":\"1\"}"), "logit_bias");
    bad(API_COMPLETION, C("\"logit_bias\":\"x\""), "logit_bias");
    ok(API_COMPLETION, C("\"logit_bias\":{}"));
    ok(API_COMPLETION, C("\"logit_bias\":null"));
    ok(API_COMPLETION, C("\"suffix\":\"end\"")); /* whether the model can: prompt.c */
    bad(API_COMPLETION, C("\"suffix\":3"), "suffix");
    ok(API_COMPLETION, C("\"suffix\":\"\""));
    bad(API_COMPLETION, C("\"best_of\":1,\"n\":2"), "best_of");
    ok(API_COMPLETION, C("\"best_of\":3"));
    bad(API_COMPLETION, C("\"best_of\":3,\"stream\":true"), "best_of");
    ok(API_COMPLETION, C("\"best_of\":3,\"n\":3,\"stream\":true"));
    bad(API_COMPLETION, C("\"best_of\":21,\"n\":2"), "best_of");
    ok(API_COMPLETION, C("\"best_of\":2,\"n\":2"));
    ok(API_COMPLETION, C("\"logprobs\":5"));
    bad(API_COMPLETION, C("\"logprobs\":21"), "logprobs");
    ok(API_COMPLETION, C("\"logprobs\":0,\"echo\":true"));
    ok(API_COMPLETION, C("\"echo\":true"));
    bad(API_COMPLETION, C("\"user\":5"), "user");
    ok(API_CHAT, M("\"logprobs\":true,\"top_logprobs\":20"));
    ok(API_CHAT, M("\"logprobs\":true,\"top_logprobs\":1"));
    ok(API_CHAT, M("\"response_format\":{\"type\":\"json_object\"}"));
    ok(API_CHAT, M("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{}}}"));
    bad(API_CHAT, M("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"minLength\":1}}}"),
        "response_format");
    bad(API_CHAT, M("\"response_format\":{\"type\":\"json_schema\"}"), "response_format");
    bad(API_CHAT, M("\"response_format\":\"nonsense\""), "response_format");
    ok(API_CHAT, M("\"response_format\":{\"type\":\"text\"}"));
    bad(API_CHAT, M("\"tool_choice\":\"required\""), "tool_choice");
    bad(API_CHAT, M("\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}"), "tool_choice");
    ok(API_CHAT, M("\"tool_choice\":\"none\""));
    bad(API_CHAT, M("\"functions\":[{\"name\":\"f\"}]"), "functions");
    bad(API_CHAT, M("\"modalities\":[\"text\",\"audio\"]"), "modalities");
    ok(API_CHAT, M("\"modalities\":[\"text\"]"));
    bad(API_CHAT, M("\"store\":true"), "store");
    ok(API_CHAT, M("\"store\":false"));
    bad(API_CHAT, M("\"reasoning_effort\":\"high\""), "reasoning_effort");
    bad(API_CHAT, M("\"service_tier\":\"flex\""), "service_tier");
    ok(API_CHAT, M("\"service_tier\":\"auto\",\"user\":\"u\",\"parallel_tool_calls\":true"));
#undef C
#undef M
    /* a long non-ASCII field name is cut on a character boundary: the error body stays valid JSON */
    struct api_request r;
    struct apierr e;
    char body[600] = "{\"prompt\":\"x\",\"";
    for (int i = 0; i < 100; i++)
        strcat(body, "\u00e9");
    strcat(body, "\":1}");
    CHECK(parse(API_COMPLETION, body, &r, &e) == -1 && e.status == 400);
    char *j = apierr_json(&e);
    CHECK_MSG(j != NULL, "no JSON for a cut UTF-8 field name");
    free(j);
    api_request_free(&r);
}

/* Feeds pieces and returns everything released (flush at the end unless a stop matched). */
static char *run_stop(const char *const *stops, int n, const char *const *pieces, int np, int *matched)
{
    struct stopstr s;
    stopstr_init(&s, stops, n);
    char *out = NULL;
    size_t len = 0, cap = 0;
    *matched = 0;
    for (int i = 0; i < np && !*matched; i++)
        *matched = stopstr_feed(&s, pieces[i], strlen(pieces[i]), &out, &len, &cap) == 1;
    if (!*matched)
        stopstr_flush(&s, &out, &len, &cap);
    stopstr_free(&s);
    return out;
}

static void test_stop_strings(void)
{
    int m;
    const char *st1[] = {"wor"};
    const char *p1[] = {"H", "ello ", "w", "o", "rld"};
    char *o = run_stop(st1, 1, p1, 5, &m);
    CHECK(m);
    CHECK_EQ_STR(o, "Hello ");
    free(o);
    /* held back while it could still become a stop string, released when it cannot */
    struct stopstr s;
    const char *st2[] = {"abc"};
    stopstr_init(&s, st2, 1);
    char *out = NULL;
    size_t len = 0, cap = 0;
    CHECK_EQ_INT(stopstr_feed(&s, "xab", 3, &out, &len, &cap), 0);
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_INT(stopstr_feed(&s, "d", 1, &out, &len, &cap), 0);
    CHECK_EQ_STR(out, "xabd");
    stopstr_free(&s);
    free(out);
    const char *st3[] = {"<|end|>", "zz"};
    const char *p3[] = {"xx<|", "en", "d|>yy"};
    o = run_stop(st3, 2, p3, 3, &m);
    CHECK(m);
    CHECK_EQ_STR(o, "xx");
    free(o);
    const char *p4[] = {"ab<|en"};
    o = run_stop(st3, 2, p4, 1, &m);
    CHECK(!m);
    CHECK_EQ_STR(o, "ab<|en");
    free(o);
    const char *st5[] = {"é", "lait"};
    const char *p5[] = {"caf\xc3\xa9 au lait"};
    o = run_stop(st5, 2, p5, 1, &m);
    CHECK(m);
    CHECK_EQ_STR(o, "caf");
    free(o);
}

static void test_shapes(void)
{
    struct oai_meta m;
    oai_meta_init(&m, API_CHAT, "tiny", true);
    CHECK(strncmp(m.id, "chatcmpl-", 9) == 0);
    char *c = oai_sse_chunk(&m, 2, "h\xc3\xa9", 3, NULL, true, NULL, NULL);
    CHECK(strncmp(c, "data: {", 7) == 0 && strcmp(c + strlen(c) - 2, "\n\n") == 0);
    json_t *j = json_loads(c + 6, 0, NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(ch, "index")), 2);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")), "assistant");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")), "h\xc3\xa9");
    CHECK(json_is_null(json_object_get(ch, "finish_reason")) && json_is_null(json_object_get(j, "usage")));
    json_decref(j);
    free(c);
    oai_meta_init(&m, API_COMPLETION, "tiny", false);
    CHECK(strncmp(m.id, "cmpl-", 5) == 0);
    struct oai_lp lt[] = {{.text = "a", .len = 1, .logprob = -0.5f}, {.text = "bc", .len = 2, .logprob = -1.5f, .offset = 1}};
    json_t *choices = json_array();
    json_array_append_new(choices, oai_choice(&m, 0, "abc", 3, "length", oai_logprobs(API_COMPLETION, lt, 2, 1), NULL));
    char *body = oai_response(&m, choices, 5, 2, 4);
    j = json_loads(body, 0, NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(j, "object")), "text_completion");
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(ch, "text")), "abc");
    CHECK_EQ_STR(json_string_value(json_object_get(ch, "finish_reason")), "length");
    json_t *offs = json_object_get(json_object_get(ch, "logprobs"), "text_offset");
    CHECK_EQ_INT(json_integer_value(json_array_get(offs, 1)), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")), 7);
    json_t *details = json_object_get(json_object_get(j, "usage"), "prompt_tokens_details");
    CHECK_EQ_INT(json_integer_value(json_object_get(details, "cached_tokens")), 4);
    json_decref(j);
    free(body);
    char *err = apierr_json_simple(413, "request_too_large", "too big");
    j = json_loads(err, 0, NULL);
    json_t *eo = json_object_get(j, "error");
    CHECK_EQ_STR(json_string_value(json_object_get(eo, "type")), "invalid_request_error");
    CHECK(json_is_null(json_object_get(eo, "param")) && json_is_string(json_object_get(eo, "code")));
    json_decref(j);
    free(err);
}

/* Tool calls found in answers (toolcall.c): both formats, content before a hermes block, several
 * calls, a malformed one leaving everything as content; a stream holds text from the tag on. */
static void test_tool_calls(void)
{
    const char *h = "Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n"
                    "<tool_call>\n{\"name\": \"g\", \"arguments\": \"{}\"}\n</tool_call>";
    size_t content;
    json_t *calls = tc_parse(TC_HERMES, h, strlen(h), &content);
    CHECK(calls && json_array_size(calls) == 2 && content == strlen("Let me look."));
    json_t *f0 = json_object_get(json_array_get(calls, 0), "function");
    CHECK(f0 && !strcmp(json_string_value(json_object_get(f0, "name")), "f") &&
          !strcmp(json_string_value(json_object_get(f0, "arguments")), "{\"a\":1}"));
    CHECK(!strncmp(json_string_value(json_object_get(json_array_get(calls, 1), "id")), "call_", 5));
    json_decref(calls);
    const char *bad = "text <tool_call>{\"name\": 3}</tool_call>";
    CHECK(!tc_parse(TC_HERMES, bad, strlen(bad), &content) && content == strlen(bad));
    const char *l = "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": \"y\"}}; {\"name\": \"g\", \"parameters\": {}}";
    calls = tc_parse(TC_LLAMA3_JSON, l, strlen(l), &content);
    CHECK(calls && json_array_size(calls) == 2 && content == 0);
    json_decref(calls);
    CHECK(!tc_parse(TC_LLAMA3_JSON, "Hello {", 7, &content) && content == 7);
    CHECK(!tc_parse(TC_NONE, h, strlen(h), &content));

    struct tc_stream st = {.format = TC_HERMES};
    size_t n;
    char *out = tc_stream_feed(&st, "Sure <tool", 10, &n);
    CHECK(n == 5 && out && !memcmp(out, "Sure ", 5) && !st.holding); /* "<tool" may begin the tag */
    free(out);
    out = tc_stream_feed(&st, "bar> x", 6, &n);
    CHECK(n == 11 && out && !memcmp(out, "<toolbar> x", 11) && st.len == 0); /* it did not */
    free(out);
    out = tc_stream_feed(&st, " <tool_call>{", 13, &n);
    CHECK(st.holding && n == 1 && out && st.len == 12); /* " " out, the tag on held */
    free(out);
    CHECK(!tc_stream_feed(&st, "more", 4, &n) && n == 0);
    tc_stream_free(&st);
    struct tc_stream lj = {.format = TC_LLAMA3_JSON};
    CHECK(!tc_stream_feed(&lj, "  ", 2, &n) && n == 0 && !lj.holding);
    CHECK(!tc_stream_feed(&lj, "{\"na", 5, &n) && lj.holding);
    tc_stream_free(&lj);
    lj.format = TC_LLAMA3_JSON;
    out = tc_stream_feed(&lj, " Hi", 3, &n);
    CHECK(n == 3 && out && lj.format == TC_NONE);
    free(out);
    tc_stream_free(&lj);
}

int main(void)
{
    RUN(test_full_completion);
    RUN(test_defaults_and_prompt_forms);
    RUN(test_errors_name_the_field);
    RUN(test_fields_table);
    RUN(test_stop_strings);
    RUN(test_shapes);
    RUN(test_tool_calls);
    return check_report();
}
