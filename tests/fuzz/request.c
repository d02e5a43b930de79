/* request.c — fuzz harness: the JSON body a client POSTs to /v1/completions (first byte even) or
 * /v1/chat/completions (odd), through api_request_parse; an accepted request's stop strings, with the
 * body itself as generated text, through the stop-string matcher and the SSE chunk shaper.
 *
 * Asserts beyond "no crash, no leak": a refusal carries a message and a 4xx/5xx status; an accepted
 * request respects the bounds api_req.h promises (n, prompts, stop strings, top_logprobs); the stop
 * matcher shows exactly the text before the first stop string (all of it when none matched); and when
 * that text is valid UTF-8 (as generated text is), the SSE chunk carrying it is "data: " + JSON whose
 * text (completions) or delta.content (chat) is exactly that text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/api_req.h"
#include "frontend/oai_resp.h"
#include "frontend/stopstr.h"
#include "tests/helpers/utf8.h"

static void fail(const char *what)
{
    fprintf(stderr, "request harness: %s\n", what);
    abort();
}

static void check_bounds(const struct api_request *r)
{
    if (r->n < 1 || r->n > API_MAX_N || r->n_stop < 0 || r->n_stop > API_MAX_STOP || r->top_logprobs < 0 ||
        r->top_logprobs > API_MAX_LOGPROBS)
        fail("an accepted request is outside api_req.h's bounds");
    if (r->kind == API_COMPLETION && (r->n_prompts < 1 || r->n_prompts > API_MAX_PROMPTS))
        fail("an accepted completion has no prompt or too many");
    if (r->kind == API_CHAT && !json_is_array(r->messages))
        fail("an accepted chat request has no messages array");
    for (int i = 0; i < r->n_stop; i++)
        if (!r->stop[i] || !r->stop[i][0])
            fail("an accepted stop string is empty");
}

/* What the matcher shows is the text before the first stop string: all of it when none matched. */
static void check_shown(const struct api_request *r, const char *text, size_t len, const char *out,
                        size_t out_len, bool matched)
{
    if (out_len > len || (out_len && memcmp(out, text, out_len)))
        fail("stop matcher output is not a prefix of its input");
    if (!matched && out_len != len)
        fail("stop matcher lost text without a match");
    bool at_stop = false;
    for (int i = 0; matched && i < r->n_stop; i++) {
        size_t n = strlen(r->stop[i]);
        at_stop |= out_len + n <= len && !memcmp(text + out_len, r->stop[i], n);
    }
    if (matched && !at_stop)
        fail("stop matcher stopped where no stop string starts");
}

static void check_chunk(const struct api_request *r, const char *text, size_t len)
{
    struct oai_meta m;
    oai_meta_init(&m, r->kind, "fuzz", r->include_usage);
    char *chunk = oai_sse_chunk(&m, 0, text, len, "stop", true, NULL, NULL);
    size_t n = chunk ? strlen(chunk) : 0;
    if (n < 8 || strncmp(chunk, "data: ", 6) || strcmp(chunk + n - 2, "\n\n"))
        fail("an SSE chunk that is not \"data: ...\\n\\n\"");
    json_t *o = json_loadb(chunk + 6, n - 8, JSON_ALLOW_NUL, NULL);
    json_t *c = json_array_get(json_object_get(o, "choices"), 0);
    json_t *t = r->kind == API_CHAT ? json_object_get(json_object_get(c, "delta"), "content") : json_object_get(c, "text");
    if (!json_is_string(t) || json_string_length(t) != len || memcmp(json_string_value(t), text, len))
        fail("an SSE chunk does not carry the text it was given");
    json_decref(o);
    free(chunk);
}

static void exercise_stops(const struct api_request *r, const uint8_t *data, size_t size)
{
    struct stopstr s;
    stopstr_init(&s, (const char *const *)r->stop, r->n_stop);
    char *out = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    /* the body itself as generated text, in pieces of varying size */
    for (size_t i = 0, step = 1; i < size && rc == 0; i += step, step = step % 7 + 1) {
        size_t n = i + step <= size ? step : size - i;
        rc = stopstr_feed(&s, (const char *)data + i, n, &out, &len, &cap);
    }
    if (rc < 0)
        fail("stop matcher out of memory");
    if (rc == 0)
        stopstr_flush(&s, &out, &len, &cap);
    check_shown(r, (const char *)data, size, out, len, rc == 1);
    if (valid_utf8((const uint8_t *)out, len))
        check_chunk(r, out, len);
    free(out);
    stopstr_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum api_kind kind = data[0] & 1 ? API_CHAT : API_COMPLETION;
    struct api_request r;
    struct apierr e;
    if (api_request_parse(kind, (const char *)data + 1, size - 1, &r, &e) == 0) {
        check_bounds(&r);
        exercise_stops(&r, data + 1, size - 1);
    } else {
        if (e.message[0] == 0 || e.status < 400 || e.status > 599)
            fail("a refusal without a message or an error status");
        free(apierr_json(&e));
    }
    api_request_free(&r);
    return 0;
}
