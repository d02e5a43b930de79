/* test_tok.c — the tokenizer on small hand-written tokenizer.json files (each rule checked on a case
 * small enough to work out by hand), its UTF-8 and NFC helpers, and its errors: malformed or
 * unsupported tokenizer files must be refused with a message naming the problem. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers/check.h"
#include "common/tok/tok.h"
#include "common/tok/tok_impl.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Writes tokenizer.json (and the two config files, NULL = none) and loads the folder. */
static struct tokenizer *load_json(const char *tokenizer, const char *config, const char *gen, struct error *err)
{
    write_file("tokenizer.json", tokenizer);
    write_file("tokenizer_config.json", config);
    write_file("generation_config.json", gen);
    return tok_load(dir, err);
}

static bool ids_are(const struct tokenizer *t, const char *text, bool add, bool parse, const int32_t *want, int n)
{
    struct error err = {{0}};
    int32_t *ids;
    int got;
    if (tok_encode(t, text, strlen(text), add, parse, &ids, &got, &err))
        return false;
    bool same = got == n && (n == 0 || !memcmp(ids, want, sizeof *want * (size_t)n));
    if (!same) {
        fprintf(stderr, "  \"%s\" ->", text);
        for (int i = 0; i < got; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return same;
}

static bool decodes_to(const struct tokenizer *t, const int32_t *ids, int n, bool skip, const char *want)
{
    struct error err = {{0}};
    char *text;
    size_t len;
    if (tok_decode(t, ids, n, skip, &text, &len, &err))
        return false;
    bool same = len == strlen(want) && !memcmp(text, want, len);
    if (!same)
        fprintf(stderr, "  decoded \"%s\", want \"%s\"\n", text, want);
    free(text);
    return same;
}

/* src with its first `from` replaced by `to` (malloc'd). */
static char *replaced(const char *src, const char *from, const char *to)
{
    const char *p = strstr(src, from);
    CHECK_MSG(p != NULL, "test bug: %s not in the template", from);
    if (!p)
        return strdup(src);
    size_t n = strlen(src) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(p - src), src, to, p + strlen(from));
    return s;
}

/* ---- a byte-level BPE (GPT-2 style) ---- */
static const char BYTE_LEVEL[] =
    "{\"added_tokens\": ["
    "  {\"id\": 6, \"content\": \"<|x|>\", \"special\": true},"
    "  {\"id\": 7, \"content\": \"<y>\", \"special\": false, \"lstrip\": true, \"rstrip\": true}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
    " \"post_processor\": {\"type\": \"ByteLevel\"},"
    " \"decoder\": {\"type\": \"ByteLevel\"},"
    " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"Ġ\": 2, \"ab\": 3, \"Ġa\": 4, \"aa\": 5,"
    "   \"<\": 9, \"|\": 10, \"x\": 11, \">\": 12, \"Ã\": 13, \"©\": 14},"
    "   \"merges\": [\"a a\", [\"Ġ\", \"a\"], \"a b\"]}}";

static void test_byte_level(void)
{
    struct error err = {{0}};
    struct tokenizer *t = load_json(BYTE_LEVEL, "{\"bos_token\": {\"content\": \"<|x|>\"}}",
                                    "{\"eos_token_id\": [6, 7]}", &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    CHECK_EQ_INT(tok_vocab_size(t), 15);
    CHECK(ids_are(t, "aaa", false, false, (int32_t[]){5, 0}, 2));           /* equal ranks: leftmost first */
    CHECK(ids_are(t, "ab a", false, false, (int32_t[]){3, 4}, 2));          /* "a b" and "Ġ a" as two pieces */
    CHECK(ids_are(t, "a<|x|>b", false, true, (int32_t[]){0, 6, 1}, 3));
    CHECK(ids_are(t, "a<|x|>b", false, false, (int32_t[]){0, 9, 10, 11, 10, 12, 1}, 7));
    CHECK(ids_are(t, "a  <y>  b", false, false, (int32_t[]){0, 7, 1}, 3));  /* lstrip/rstrip eat the spaces */
    CHECK(ids_are(t, "é", false, false, (int32_t[]){13, 14}, 2));
    CHECK(ids_are(t, "", true, true, NULL, 0));
    CHECK(decodes_to(t, (int32_t[]){0, 6, 1}, 3, false, "a<|x|>b"));
    CHECK(decodes_to(t, (int32_t[]){0, 6, 1}, 3, true, "ab"));
    CHECK(decodes_to(t, (int32_t[]){13}, 1, false, "\xEF\xBF\xBD"));       /* half of é */
    CHECK(decodes_to(t, (int32_t[]){-1, 99999, 8, 4}, 4, false, " a"));    /* ids naming no token: skipped */
    size_t blen;
    const char *bytes = tok_id_bytes(t, 13, &blen);
    CHECK(bytes && blen == 1 && (unsigned char)bytes[0] == 0xC3);   /* "Ã" stands for byte C3 */
    CHECK(tok_id_bytes(t, 8, &blen) == NULL && tok_id_bytes(t, -1, &blen) == NULL);
    CHECK_EQ_INT(tok_token_id(t, "Ġa"), 4);
    CHECK_EQ_INT(tok_token_id(t, "<|x|>"), 6);
    CHECK_EQ_INT(tok_token_id(t, "nope"), -1);
    CHECK(tok_is_special(t, 6) && !tok_is_special(t, 7) && !tok_is_special(t, -3));
    CHECK_EQ_INT(tok_bos_id(t), 6);
    const int32_t *eos;
    CHECK_EQ_INT(tok_eos_ids(t, &eos), 2);
    CHECK(eos[0] == 6 && eos[1] == 7);

    struct tok_stream *s = tok_stream_new(t, false);
    struct tok_buf out = {0};
    CHECK(tok_stream_push(s, 0, &out, &err) == 0 && out.len == 1);
    CHECK(tok_stream_push(s, 13, &out, &err) == 0 && out.len == 1);       /* é is held back ... */
    CHECK(tok_stream_pending(s));
    CHECK(tok_stream_push(s, 14, &out, &err) == 0 && out.len == 3);       /* ... until complete */
    CHECK(!tok_stream_pending(s) && tok_stream_carried(s) == 0); /* ByteLevel: é is the completing token's */
    CHECK(tok_stream_push(s, 13, &out, &err) == 0 && tok_stream_finish(s, &out, &err) == 0);
    CHECK(out.len == 6 && !memcmp(out.data, "a\xC3\xA9\xEF\xBF\xBD", 6));
    tok_buf_free(&out);
    tok_stream_free(s);
    tok_free(t);
}

static char *with(const char *from, const char *to) { return replaced(BYTE_LEVEL, from, to); }

/* Options of the byte-level file, one at a time: Split with a String pattern (Removed / Isolated),
 * ByteLevel add_prefix_space, ignore_merges. */
static void check_variant(const char *from, const char *to, const char *text, const int32_t *want, int n)
{
    struct error err = {{0}};
    char *js = with(from, to);
    struct tokenizer *t = load_json(js, NULL, NULL, &err);
    free(js);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t)
        CHECK_MSG(ids_are(t, text, false, false, want, n), "variant %s", to);
    tok_free(t);
}

static void test_byte_level_variants(void)
{
    const char *pre = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";
    check_variant(pre, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                  "{\"String\": \"|\"}, \"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
                  "ab|ab", (int32_t[]){3, 3}, 2);
    check_variant(pre, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                  "{\"String\": \"|\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
                  "ab|ab", (int32_t[]){3, 10, 3}, 3);
    check_variant(pre, "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", "ab", (int32_t[]){4, 1}, 2);
    check_variant(pre, "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", " ab", (int32_t[]){4, 1}, 2);
    check_variant("\"x\": 11,", "\"x\": 11, \"ba\": 15,", "ba", (int32_t[]){1, 0}, 2);
    check_variant("\"type\": \"BPE\",", "\"type\": \"BPE\", \"ignore_merges\": true,",
                  "ba", (int32_t[]){1, 0}, 2);   /* "ba" not in this vocabulary: merges as usual */
}

static void test_ignore_merges(void)
{
    struct error err = {{0}};
    char *a = with("\"x\": 11,", "\"x\": 11, \"ba\": 15,");
    char *b = replaced(a, "\"type\": \"BPE\",", "\"type\": \"BPE\", \"ignore_merges\": true,");
    struct tokenizer *t = load_json(b, NULL, NULL, &err);
    free(a);
    free(b);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        CHECK(ids_are(t, "ba", false, false, (int32_t[]){15}, 1));   /* a whole word in the vocab wins */
        CHECK(ids_are(t, "bab", false, false, (int32_t[]){1, 3}, 2));
    }
    tok_free(t);
}

/* ---- a SentencePiece-style BPE (Llama-2 style) ---- */
static char *sp_json(bool byte_fallback)
{
    static const char head[] =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
        "  {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true},"
        "  {\"id\": 266, \"content\": \"zz\", \"special\": false, \"normalized\": true}],"
        " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"▁\"},"
        "   {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]},"
        " \"pre_tokenizer\": null,"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
        "   {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}},"
        " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
        "   {\"type\": \"Replace\", \"pattern\": {\"String\": \"▁\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"},"
        "   {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": %s,"
        "   \"merges\": [\"▁ a\", \"a b\", \"▁a b\"],"
        "   \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"▁\": 259, \"a\": 260, \"b\": 261, \"▁a\": 262,"
        "     \"ab\": 263, \"▁ab\": 264, \"é\": 265, \"z\": 267";
    size_t cap = sizeof head + 256 * 16 + 64;
    char *s = malloc(cap);
    int n = snprintf(s, cap, head, byte_fallback ? "true" : "false");
    for (int b = 0; b < 256 && byte_fallback; b++)
        n += snprintf(s + n, cap - (size_t)n, ", \"<0x%02X>\": %d", b, 3 + b);
    snprintf(s + n, cap - (size_t)n, "}}}");
    return s;
}

static void test_sentencepiece(void)
{
    struct error err = {{0}};
    char *js = sp_json(true);
    struct tokenizer *t = load_json(js, NULL, NULL, &err);
    free(js);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    const int32_t E4 = 3 + 0xE4, B8 = 3 + 0xB8, AD = 3 + 0xAD;
    CHECK(ids_are(t, "ab ab", true, true, (int32_t[]){1, 264, 264}, 3));
    CHECK(ids_are(t, "ba", false, false, (int32_t[]){259, 261, 260}, 3));
    CHECK(ids_are(t, "中", false, false, (int32_t[]){259, E4, B8, AD}, 4));   /* byte fallback */
    CHECK(ids_are(t, "a zz", false, false, (int32_t[]){262, 266}, 2));       /* normalized added token */
    CHECK(ids_are(t, "azz", false, false, (int32_t[]){262, 267, 267}, 3));
    CHECK(ids_are(t, "a<s>b", false, true, (int32_t[]){262, 1, 259, 261}, 4)); /* Prepend per section */
    CHECK(decodes_to(t, (int32_t[]){259, E4, B8, AD}, 4, false, "中"));       /* Strip takes the leading space */
    /* Rust's ByteFallback: an invalid run becomes one U+FFFD per byte (not one per maximal subpart). */
    CHECK(decodes_to(t, (int32_t[]){E4, B8, 260}, 3, false, "\xEF\xBF\xBD\xEF\xBF\xBD" "a"));
    CHECK(decodes_to(t, (int32_t[]){1, 262, 2}, 3, false, "<s> a</s>"));
    size_t blen;
    const char *bytes = tok_id_bytes(t, E4, &blen);
    CHECK(bytes && blen == 1 && (unsigned char)bytes[0] == 0xE4);
    CHECK((bytes = tok_id_bytes(t, 262, &blen)) && blen == 2 && !memcmp(bytes, " a", 2));
    CHECK(decodes_to(t, (int32_t[]){1, 262, 2}, 3, true, "a"));
    struct tok_stream *s = tok_stream_new(t, true);
    struct tok_buf out = {0};
    CHECK(tok_stream_push(s, 1, &out, &err) == 0 && tok_stream_push(s, 259, &out, &err) == 0 && out.len == 0);
    CHECK(tok_stream_push(s, E4, &out, &err) == 0 && tok_stream_push(s, B8, &out, &err) == 0 && out.len == 0);
    CHECK(tok_stream_push(s, AD, &out, &err) == 0 && out.len == 0);          /* a run is held until it ends */
    CHECK(tok_stream_pending(s));
    CHECK(tok_stream_push(s, 262, &out, &err) == 0 && out.len == 5 && !strcmp(out.data, "中 a"));
    /* the run's 3 bytes are the byte tokens' text (logprobs' token strings); " a" is 262's own */
    CHECK(tok_stream_carried(s) == 3 && !tok_stream_pending(s));
    out.len = 0;
    CHECK(tok_stream_push(s, 262, &out, &err) == 0 && out.len == 2 && tok_stream_carried(s) == 0);
    CHECK(tok_stream_push(s, E4, &out, &err) == 0 && tok_stream_pending(s) && tok_stream_carried(s) == 0);
    out.len = 0;
    CHECK(tok_stream_finish(s, &out, &err) == 0 && out.len == 3 && !tok_stream_pending(s)); /* U+FFFD */
    tok_buf_free(&out);
    tok_stream_free(s);
    tok_free(t);

    /* transformers rebuilds a Llama tokenizer's post-processor from add_bos_token/add_eos_token. */
    js = sp_json(true);
    t = load_json(js, "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"add_bos_token\": false, "
                      "\"add_eos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}", NULL, &err);
    free(js);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        CHECK(ids_are(t, "a", true, true, (int32_t[]){262, 2}, 2));
        CHECK_EQ_INT(tok_bos_id(t), 1);
        tok_free(t);
    }
    /* Without byte_fallback an unknown character is unk, and fuse_unk makes a run of them one unk. */
    js = sp_json(false);
    t = load_json(js, NULL, NULL, &err);
    free(js);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        CHECK(ids_are(t, "中中a", false, false, (int32_t[]){259, 0, 260}, 3));
        tok_free(t);
    }
}

/* Metaspace instead of the Prepend/Replace normalizer: "▁" prepended only at the start of the input
 * (prepend_scheme first), the text split before each "▁" (split: true). */
static void test_metaspace(void)
{
    struct error err = {{0}};
    char *base = sp_json(true);
    char *a = replaced(base, "\"pre_tokenizer\": null", "\"pre_tokenizer\": {\"type\": \"Metaspace\", "
                       "\"replacement\": \"▁\", \"prepend_scheme\": \"first\", \"split\": true}");
    char *b = replaced(a, "\"normalizer\": {\"type\": \"Sequence\"", "\"normalizer\": null, \"x\": {\"type\": \"Sequence\"");
    char *c = replaced(b, "{\"type\": \"Sequence\", \"decoders\"", "{\"type\": \"Metaspace\", \"replacement\": \"▁\", "
                       "\"prepend_scheme\": \"first\", \"x\"");
    struct tokenizer *t = load_json(c, NULL, NULL, &err);
    free(base);
    free(a);
    free(b);
    free(c);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    CHECK(ids_are(t, "ab ab", false, false, (int32_t[]){264, 264}, 2));
    CHECK(ids_are(t, "a", false, false, (int32_t[]){262}, 1));
    CHECK(ids_are(t, "<s>a", false, true, (int32_t[]){1, 260}, 2));     /* not the start: no "▁" */
    CHECK(ids_are(t, " a", false, false, (int32_t[]){262}, 1));         /* already starts with "▁" */
    CHECK(decodes_to(t, (int32_t[]){262, 262}, 2, false, "a a"));
    CHECK(decodes_to(t, (int32_t[]){260, 262}, 2, false, "a a"));
    tok_free(t);
}

/* ---- refusals ---- */
static void expect_error(const char *tokenizer, const char *config, const char *needle)
{
    struct error err = {{0}};
    struct tokenizer *t = load_json(tokenizer, config, NULL, &err);
    CHECK_MSG(t == NULL, "loaded a tokenizer that should be refused (%s)", needle);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "error \"%s\" does not mention \"%s\"", err.msg, needle);
    tok_free(t);
}

static void test_errors(void)
{
    static const struct { const char *from, *to, *needle; } cases[] = {
        {"\"type\": \"BPE\"", "\"type\": \"WordPiece\"", "WordPiece"},
        {"\"type\": \"BPE\"", "\"type\": \"Unigram\"", "Unigram"},
        {"\"normalizer\": null", "\"normalizer\": {\"type\": \"NFKC\"}", "NFKC"},
        {"\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}", "Lowercase"},
        {"{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
         "{\"type\": \"Whitespace\"}", "Whitespace"},
        {"{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Metaspace\", "
         "\"replacement\": \"_\"}]}", "Metaspace is supported only"},
        {"{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, "
         "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}", "does not compile"},
        {"\"decoder\": {\"type\": \"ByteLevel\"}", "\"decoder\": null", "decoder"},
        {"\"decoder\": {\"type\": \"ByteLevel\"}", "\"decoder\": {\"type\": \"WordPiece\"}", "WordPiece"},
        {"\"post_processor\": {\"type\": \"ByteLevel\"}", "\"post_processor\": {\"type\": \"RobertaProcessing\"}",
         "RobertaProcessing"},
        {"\"a b\"]", "\"a q\"]", "merge 2"},
        {"\"merges\": [", "\"merges\": [7, ", "merge 0"},
        {"\"ab\": 3", "\"ab\": -3", "\"ab\""},
        {"\"ab\": 3", "\"ab\": \"3\"", "\"ab\""},
        {"\"special\": false, \"lstrip\"", "\"special\": false, \"single_word\": true, \"lstrip\"", "single_word"},
        {"{\"type\": \"BPE\",", "{\"type\": \"BPE\", \"dropout\": 0.1,", "dropout"},
        {"\"vocab\": {", "\"vocab\": [", "tokenizer.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *js = with(cases[i].from, cases[i].to);
        expect_error(js, NULL, cases[i].needle);
        free(js);
    }
    char truncated[100];
    snprintf(truncated, sizeof truncated, "%.60s", BYTE_LEVEL);
    expect_error(truncated, NULL, "tokenizer.json: line");
    expect_error("[1, 2]", NULL, "not a JSON object");
    expect_error(BYTE_LEVEL, "{\"bos_token\": ", "tokenizer_config.json");
    struct error err = {{0}};
    CHECK(tok_load("/nonexistent/model", &err) == NULL && strstr(err.msg, "/nonexistent/model/tokenizer.json"));
}

/* Thousands of corrupted variants of the two hand-made files (bytes flipped, dropped, duplicated): each
 * must load or be refused cleanly, and whatever loads must encode and decode without a memory error
 * (this test is meant to be run under ASan: make asan). */
static int fuzz_loaded, fuzz_refused;
static const char ALPHABET[] = "{}[]\",:0129 -ab\\";

static void fuzz_one(const char *src, unsigned *seed)
{
    size_t n = strlen(src);
    char *m = malloc(n + 16);
    memcpy(m, src, n + 1);
    int edits = 1 + (int)(rand_r(seed) % 4);
    for (int e = 0; e < edits; e++) {
        size_t at = (size_t)rand_r(seed) % n;
        int kind = rand_r(seed) % 3;
        if (kind == 0)
            m[at] = ALPHABET[(size_t)rand_r(seed) % (sizeof ALPHABET - 1)];
        else if (kind == 1 && n > 2)
            memmove(m + at, m + at + 1, n-- - at);
        else if (n + 1 < strlen(src) + 15) {
            memmove(m + at + 1, m + at, n++ - at + 1);
        }
    }
    m[n] = 0;
    struct error err = {{0}};
    struct tokenizer *t = load_json(m, NULL, NULL, &err);
    fuzz_loaded += t != NULL;
    fuzz_refused += t == NULL;
    if (t) {
        static const char *texts[] = {"ab ab", "a<|x|>b<s>", "\xE4\xB8\xAD\xff zz  <y> é", ""};
        for (int i = 0; i < 4; i++) {
            int32_t *ids;
            int k;
            if (tok_encode(t, texts[i], strlen(texts[i]), true, i % 2, &ids, &k, &err) == 0) {
                char *text;
                size_t len;
                if (tok_decode(t, ids, k, i % 2, &text, &len, &err) == 0)
                    free(text);
                free(ids);
            }
        }
        tok_free(t);
    } else {
        CHECK_MSG(err.msg[0] != 0, "refused without a message");
    }
    free(m);
}

static void test_fuzz(void)
{
    unsigned seed = 12345;
    char *sp = sp_json(true);
    for (int i = 0; i < 1500; i++)
        fuzz_one(i % 2 ? BYTE_LEVEL : sp, &seed);
    free(sp);
    fprintf(stderr, "fuzz: %d corrupted files loaded, %d refused\n", fuzz_loaded, fuzz_refused);
    CHECK(fuzz_loaded > 100 && fuzz_refused > 100);   /* both paths really exercised */
}

/* ---- helpers ---- */
static bool lossy_is(const char *in, size_t n, bool final, const char *want, long consumed)
{
    struct tok_buf out = {0};
    long used = tok_utf8_lossy(&out, (const unsigned char *)in, n, final);
    bool ok = used == consumed && out.len == strlen(want) && (out.len == 0 || !memcmp(out.data, want, out.len));
    tok_buf_free(&out);
    return ok;
}

#define FFFD "\xEF\xBF\xBD"
static void test_utf8(void)
{
    CHECK(lossy_is("a\xE4\xB8", 3, false, "a", 1));          /* unfinished: held */
    CHECK(lossy_is("a\xE4\xB8", 3, true, "a" FFFD, 3));      /* at the end: one U+FFFD */
    CHECK(lossy_is("\xC0\xAF", 2, true, FFFD FFFD, 2));      /* overlong: each byte */
    CHECK(lossy_is("\xED\xA0\x80", 3, true, FFFD FFFD FFFD, 3));   /* surrogate */
    CHECK(lossy_is("\xF4\x90\x80\x80", 4, true, FFFD FFFD FFFD FFFD, 4));
    CHECK(lossy_is("\xE4\xB8x", 3, false, FFFD "x", 3));     /* broken by x: one U+FFFD */
    CHECK(lossy_is("\xF0\x9F\x98\x80", 4, false, "\xF0\x9F\x98\x80", 4));
    for (int b = 0; b < 256; b++)
        CHECK_EQ_INT(tok_char_to_byte(tok_byte_to_char((unsigned char)b)), b);
    CHECK_EQ_INT(tok_byte_to_char(' '), 0x120);   /* Ġ */
    CHECK_EQ_INT(tok_byte_to_char('\n'), 0x10A);  /* Ċ */
}

static bool nfc_is(const char *in, const char *want)
{
    struct tok_str out = {0};
    bool ok = tok_nfc(in, strlen(in), &out) == 0 && out.len == strlen(want) && !memcmp(out.s, want, out.len);
    if (!ok)
        fprintf(stderr, "  nfc(\"%s\") = \"%s\"\n", in, out.s ? out.s : "");
    free(out.s);
    return ok;
}

static void test_nfc(void)
{
    CHECK(nfc_is("plain ascii", "plain ascii"));
    CHECK(nfc_is("cafe\xCC\x81", "caf\xC3\xA9"));                    /* e + U+0301 → é */
    CHECK(nfc_is("\xE2\x84\xAB", "\xC3\x85"));                        /* Å (U+212B) → U+00C5 */
    CHECK(nfc_is("o\xCC\x82\xCC\xA3", "\xE1\xBB\x99"));               /* o + ^ + dot below → ộ (reordered) */
    CHECK(nfc_is("q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"));          /* no composite: only reordered */
    CHECK(nfc_is("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81")); /* jamo ᄀ ᅡ ᆨ → 각 */
    CHECK(nfc_is("\xE1\xBA\x9B\xCC\xA3", "\xE1\xBA\x9B\xCC\xA3"));     /* ẛ̣ stays (UAX #15 example) */
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pdserve-tok-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_utf8);
    RUN(test_nfc);
    RUN(test_byte_level);
    RUN(test_byte_level_variants);
    RUN(test_ignore_merges);
    RUN(test_sentencepiece);
    RUN(test_metaspace);
    RUN(test_errors);
    RUN(test_fuzz);
    write_file("tokenizer.json", NULL);
    write_file("tokenizer_config.json", NULL);
    write_file("generation_config.json", NULL);
    rmdir(dir);
    return check_report();
}
