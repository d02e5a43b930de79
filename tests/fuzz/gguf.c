/* gguf.c — fuzz harness: a .gguf file someone downloaded (or crafted), whole, through
 * gguf_open_buffer (the parser gguf_open uses on the mapping: metadata, tensor infos, Q8_0 widening,
 * llama.cpp's q/k un-permutation), then what the metadata becomes: the model config (gguf_model_config)
 * and the tokenizer.json / tokenizer_config.json rebuilt from tokenizer.ggml.* (gguf_tok.c).
 *
 * Asserts beyond "no crash, no leak": a refusal has a message; an accepted file hands out tensors
 * whose element count matches their shape, that gguf_find finds by name, and whose every byte can be
 * read (ASan checks that the bytes lie inside the input or an owned buffer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/engine/gguf.h"
#include "common/engine/gguf_hf.h"

static void fail(const char *what)
{
    fprintf(stderr, "gguf harness: %s\n", what);
    abort();
}

static volatile uint8_t sink;

static void check_tensors(const struct gguf_file *g)
{
    static const char *const names[] = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                                        "model.layers.0.self_attn.q_proj.weight",
                                        "model.layers.0.self_attn.k_proj.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const struct st_tensor *t = gguf_find(g, names[i]);
        if (!t)
            continue;
        int64_t n = 1;
        for (int d = 0; d < t->n_dims; d++)
            n *= t->shape[d];
        if (t->n_dims < 1 || t->n_dims > ST_MAX_DIMS || n != t->n_elems || strcmp(t->name, names[i]))
            fail("a tensor's shape, element count or name is inconsistent");
        const uint8_t *p = t->data;
        size_t bytes = (size_t)t->n_elems * st_dtype_size(t->dtype);
        uint8_t x = 0;
        for (size_t b = 0; b < bytes && b < (1u << 20); b += 1 + b / 8)
            x ^= p[b];
        if (bytes)
            x ^= p[bytes - 1];
        sink = x;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so a read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct error err = {{0}};
    struct gguf_file *g = gguf_open_buffer(copy, size, "fuzz.gguf", &err);
    if (!g) {
        if (!err.msg[0])
            fail("refused without a message");
        free(copy);
        return 0;
    }
    check_tensors(g);
    struct model_config c;
    err.msg[0] = 0;
    if (gguf_model_config(g, &c, &err) < 0 && !err.msg[0])
        fail("config refused without a message");
    err.msg[0] = 0;
    json_t *tok = gguf_hf_tokenizer(g, &err);
    if (!tok && !err.msg[0])
        fail("tokenizer refused without a message");
    json_decref(tok);
    json_decref(gguf_hf_tokenizer_config(g, &err));
    gguf_close(g);
    free(copy);
    return 0;
}
