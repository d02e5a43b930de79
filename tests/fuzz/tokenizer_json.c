/* tokenizer_json.c — fuzz harness: the tokenizer files of a model folder someone downloaded (or
 * crafted) through tok_load: tokenizer.json, tokenizer_config.json and generation_config.json.
 * Input: the three documents separated by NUL bytes (JSON text never holds a raw NUL); a missing one
 * is an absent file. They are written into a scratch folder and loaded the way the daemons load them
 * (the files are read through common/util/modelfile.c's checks, so this is the real path, not a copy).
 *
 * The tokenizer_config.json part also goes through chat_from_config (the chat template and special
 * tokens it names; chat_load reads the same file), and an accepted template renders a short
 * conversation.
 *
 * Asserts beyond "no crash, no leak": a refusal has a message; an accepted tokenizer encodes and
 * decodes a few fixed texts (ASCII, specials, invalid UTF-8, CJK) without error, every id it gives is
 * in the vocabulary, its BOS and EOS ids are in the vocabulary, and its stream decoder agrees with the
 * one-shot decode; a chat render is a string or an error with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tmpl/chat.h"
#include "common/util/log.h"
#include "common/tok/tok.h"

static char scratch[256];
static const char *const files[3] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};

static void fail(const char *what)
{
    fprintf(stderr, "tokenizer_json harness: %s\n", what);
    abort();
}

static void put_file(const char *name, const uint8_t *p, size_t n, bool present)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    if (!present) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f))
        fail("cannot write into the scratch folder");
}

static void exercise(const struct tokenizer *t)
{
    static const char *const texts[] = {"Hello world, ab ab", "a<|x|>b<s></s><|im_end|>", "\xE4\xB8\xAD\xff zz  <y> \xC3\xA9", ""};
    int v = tok_vocab_size(t);
    const int32_t *eos;
    int n_eos = tok_eos_ids(t, &eos);
    if (v <= 0 || tok_bos_id(t) >= v || tok_bos_id(t) < -1)
        fail("vocabulary size or BOS id out of range");
    for (int i = 0; i < n_eos; i++)
        if (eos[i] < 0 || eos[i] >= v)
            fail("an EOS id outside the vocabulary");
    for (int i = 0; i < 4; i++) {
        int32_t *ids;
        int n;
        char *text;
        size_t len;
        struct error err;
        if (tok_encode(t, texts[i], strlen(texts[i]), true, i % 2, &ids, &n, &err) != 0)
            fail(err.msg);
        for (int j = 0; j < n; j++)
            if (ids[j] < 0 || ids[j] >= v)
                fail("an id outside the vocabulary");
        if (tok_decode(t, ids, n, i % 2, &text, &len, &err) != 0)
            fail(err.msg);
        struct tok_stream *s = tok_stream_new(t, i % 2);
        struct tok_buf out = {0};
        for (int j = 0; j < n; j++)
            if (tok_stream_push(s, ids[j], &out, &err) != 0)
                fail(err.msg);
        if (tok_stream_finish(s, &out, &err) != 0)
            fail(err.msg);
        if (out.len != len || (len && memcmp(out.data, text, len)))
            fail("the stream decoder disagrees with the one-shot decode");
        tok_buf_free(&out);
        tok_stream_free(s);
        free(text);
        free(ids);
    }
}

static void chat_config(const uint8_t *p, size_t n)
{
    json_t *cfg = json_loadb((const char *)p, n, JSON_DECODE_INT_AS_REAL, NULL);
    if (!cfg)
        return;
    struct error err = {{0}};
    struct chat_template *c = chat_from_config(cfg, NULL, &err);
    if (!c && !err.msg[0])
        fail("a chat template refused without a message");
    json_t *msgs = json_loads("[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"hi\"},"
                              "{\"role\":\"assistant\",\"content\":\"yo\"},{\"role\":\"user\",\"content\":\"?\"}]",
                              0, NULL);
    char *out = NULL;
    if (c && chat_render(c, msgs, true, NULL, &out, &err) == 0 ? !out : c && (out || !err.msg[0]))
        fail("a chat render neither a string nor an error with a message");
    free(out);
    json_decref(msgs);
    chat_free(c);
    json_decref(cfg);
}

static void remove_scratch(void)
{
    for (int i = 0; i < 3; i++)
        put_file(files[i], NULL, 0, false);
    rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/pdserve-fuzz-tok.XXXXXX", tmp);
    if (!mkdtemp(scratch))
        fail("cannot make a scratch folder");
    atexit(remove_scratch);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    for (int i = 0; i < 3; i++) {
        const uint8_t *nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
        const uint8_t *stop = nul ? nul : end;
        put_file(files[i], p, (size_t)(stop - p), p < end || i == 0);
        if (i == 1 && p < end)
            chat_config(p, (size_t)(stop - p));
        p = nul ? nul + 1 : end + 1;
    }
    struct error err = {{0}};
    struct tokenizer *t = tok_load(scratch, &err);
    if (t) {
        exercise(t);
        tok_free(t);
    } else if (!err.msg[0]) {
        fail("refused without a message");
    }
    return 0;
}
