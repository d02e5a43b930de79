/* grammar.c — fuzz harness: a client's response_format schema (structured output) into the grammar
 * compiler, and bytes into the matcher and the mask (common/grammar/). The input is a JSON schema, a
 * NUL byte, then bytes to feed.
 *
 * Asserts beyond "no crash, no leak, no hang": a refused schema says why; a feed that is refused
 * leaves the matcher as it was (the same mask after); every byte string the matcher accepts in one
 * feed it also accepts byte by byte; a mask never allows a token whose bytes the matcher refuses, and
 * allows the end token exactly when the value is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grammar/grammar_impl.h"

#define VOCAB 160
static char tokens[VOCAB][4];

static const char *bytes_of(void *ctx, int32_t id, size_t *len)
{
    (void)ctx;
    *len = id > 0 ? strlen(tokens[id]) : 0;
    return *len ? tokens[id] : NULL;
}

static struct gvocab *vocab(void)
{
    static struct gvocab *v;
    if (v)
        return v;
    static const char *pieces[] = {"{\"", "\":", "\",", "\"}", "tru", "e", "nul", "l", "12", "\\u", "\\n", "},", "]}", "[{", "\xc3\xa9", "-0"};
    int id = 1;
    for (int c = 0x20; c < 0x7f && id < VOCAB; c++)
        tokens[id++][0] = (char)c;
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces && id < VOCAB; i++)
        strcpy(tokens[id++], pieces[i]);
    struct error err;
    int32_t end = 0;
    v = gvocab_new(VOCAB, bytes_of, NULL, &end, 1, &err);
    if (!v)
        abort();
    return v;
}

static void fail(const char *what)
{
    fprintf(stderr, "grammar harness: %s\n", what);
    abort();
}

/* The mask is exactly the tokens (with bytes) the matcher accepts, with the end token when done. */
static void check_mask(const struct gmatch *m)
{
    uint32_t allowed[(VOCAB + 31) / 32];
    gmatch_mask(m, vocab(), allowed);
    if (((allowed[0] & 1) != 0) != gmatch_done(m))
        fail("the end token's bit is not gmatch_done");
    struct gmatch copy;
    for (int id = 1; id < VOCAB; id++) {
        size_t len;
        const char *b = bytes_of(NULL, id, &len);
        if (!b) /* an unused id: never allowed */
            continue;
        gmatch_copy(&copy, m);
        if (gmatch_feed(&copy, (const uint8_t *)b, len) != (bool)(allowed[id >> 5] >> (id & 31) & 1))
            fail("the mask and the matcher disagree on a token");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t schema_len = nul ? (size_t)(nul - data) : size;
    char *schema = malloc(schema_len + 1);
    if (!schema)
        return 0;
    memcpy(schema, data, schema_len);
    schema[schema_len] = '\0';
    struct error err = {{0}};
    struct grammar *g = grammar_compile_text(schema, &err);
    free(schema);
    if (!g) {
        if (!err.msg[0])
            fail("refused without a message");
        return 0;
    }
    const uint8_t *bytes = nul ? nul + 1 : data + size;
    size_t n = (size_t)(data + size - bytes);
    struct gmatch *whole = gmatch_new(g), *one = gmatch_new(g);
    if (whole && one) {
        bool all = gmatch_feed(whole, bytes, n);
        size_t fed = 0;
        while (fed < n && gmatch_feed(one, bytes + fed, 1))
            fed++;
        if (all != (fed == n))
            fail("a feed at once and byte by byte disagree");
        if (gmatch_done(whole) != gmatch_done(one) && all)
            fail("the same bytes, two states");
        check_mask(one);
    }
    gmatch_free(whole);
    gmatch_free(one);
    grammar_free(g);
    return 0;
}
