/* fuzz_request.c — libFuzzer harness for what a client controls in a generation request: the JSON
 * body through api_request_parse (both endpoints), and the stop strings and text it carries through
 * the stop-string matcher and the chunk shaper. Built and run by tests/frontend/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/api_req.h"
#include "frontend/oai_resp.h"
#include "frontend/stopstr.h"

static void exercise_stops(const struct api_request *r, const uint8_t *data, size_t size)
{
    struct stopstr s;
    stopstr_init(&s, (const char *const *)r->stop, r->n_stop);
    char *out = NULL;
    size_t len = 0, cap = 0;
    /* the body itself as generated text, in pieces of varying size */
    for (size_t i = 0, step = 1; i < size; i += step, step = step % 7 + 1) {
        size_t n = i + step <= size ? step : size - i;
        if (stopstr_feed(&s, (const char *)data + i, n, &out, &len, &cap) != 0)
            break;
    }
    stopstr_flush(&s, &out, &len, &cap);
    struct oai_meta m;
    oai_meta_init(&m, r->kind, "fuzz", r->include_usage);
    char *chunk = oai_sse_chunk(&m, 0, out, len, "stop", true, NULL);
    free(chunk);
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
        exercise_stops(&r, data + 1, size - 1);
    } else {
        /* a refusal must say why, with a client error status */
        if (e.message[0] == 0 || e.status < 400 || e.status > 599)
            abort();
        free(apierr_json(&e));
    }
    api_request_free(&r);
    return 0;
}
