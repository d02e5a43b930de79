/* tmpl.c — fuzz harness: the source of a chat template (tokenizer_config.json's chat_template or a
 * chat_template.jinja file of a downloaded model folder) through the Jinja interpreter: lexer, parser
 * (tmpl_parse), the vLLM content-loop detection (tmpl_iterates) and the evaluator (tmpl_render) over a
 * fixed, realistic context (a conversation with a system prompt, tool calls and tools), with tight
 * limits so a hostile template stops quickly.
 *
 * Asserts beyond "no crash, no leak": a refused template has a message naming its line; a render is
 * either output within max_output, NUL-terminated at out_len, or -1 with a message — never both. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tmpl/tmpl.h"

static json_t *ctx;
static const struct tmpl_limits limits = {
    .max_output = 1 << 20, .max_memory = 64 << 20, .max_steps = 200000, .max_depth = 32};

static void fail(const char *what)
{
    fprintf(stderr, "tmpl harness: %s\n", what);
    abort();
}

static const char context_json[] =
    "{\"messages\": ["
    " {\"role\": \"system\", \"content\": \"You are helpful.\"},"
    " {\"role\": \"user\", \"content\": \"Weather in Oslo? \\u00e9\\ud83d\\ude00\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\","
    "   \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": [1, 2.5, null]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"sunny\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>hm</think>It is sunny.\", \"reasoning_content\": \"hm\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"d\","
    "   \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"enable_thinking\": false,"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"n\": 3, \"big\": 9007199254740993, \"x\": -0.0}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_error_t je;
    if (!(ctx = json_loads(context_json, 0, &je)))
        fail(je.text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    /* an exact-size copy, so a read past the end is caught (the source need not be NUL-terminated) */
    char *src = malloc(size ? size : 1);
    memcpy(src, data, size);
    struct error err = {{0}};
    struct tmpl *t = tmpl_parse(src, size, &err);
    free(src);
    if (!t) {
        if (!err.msg[0] || !strstr(err.msg, "line"))
            fail("a refused template without a message naming its line");
        return 0;
    }
    tmpl_iterates(t, "messages", "content");
    char *out = NULL;
    size_t len = 0;
    int rc = tmpl_render(t, ctx, &limits, &out, &len, &err);
    if (rc == 0 && (!out || len > limits.max_output || out[len]))
        fail("a render without output, beyond max_output or not NUL-terminated at out_len");
    if (rc != 0 && (rc != -1 || out || !err.msg[0]))
        fail("a failed render without a message, or with output");
    free(out);
    tmpl_free(t);
    return 0;
}
