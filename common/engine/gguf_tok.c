/* gguf_tok.c — a GGUF file's tokenizer.ggml.* metadata as the tokenizer.json and
 * tokenizer_config.json Hugging Face would ship, so common/tok loads a GGUF vocabulary with the same
 * code (and the same tests) as a folder's tokenizer.json.
 *
 *   "gpt2" (byte-level BPE): tokens and merges as stored; the pre-tokenizer regex chosen by
 *      tokenizer.ggml.pre as llama.cpp does (llama-bpe: Llama 3's, with ignore_merges; qwen2: Qwen's
 *      with NFC; gpt-2/default: GPT-2's); others are refused by name.
 *   "llama" (SentencePiece): byte-fallback BPE with ▁ for spaces; SentencePiece stores scores, not
 *      merges, so the merges are rebuilt as transformers' SentencePieceExtractor builds them: every
 *      split of a token into two tokens, ordered by the token's score (then the halves' ids).
 * Control tokens (type 3) become special added tokens, user-defined ones (type 4) plain added tokens;
 * BOS is added by a TemplateProcessing post-processor when tokenizer.ggml.add_bos_token says so. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/engine/gguf_hf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static const char *const re_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const re_qwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const re_gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct vocab {
    const struct gguf_kv *tokens;
    const char **text;
    size_t *len;
    int *type;
    double *score;
    uint64_t n;
};

static void vocab_free(struct vocab *v)
{
    free(v->text);
    free(v->len);
    free(v->type);
    free(v->score);
}

static int vocab_read(const struct gguf_file *g, struct vocab *v, struct error *err)
{
    const struct gguf_kv *types = gguf_get(g, "tokenizer.ggml.token_type"),
                         *scores = gguf_get(g, "tokenizer.ggml.scores");
    v->tokens = gguf_get(g, "tokenizer.ggml.tokens");
    if (!v->tokens || v->tokens->type != GGUF_ARRAY || v->tokens->elem != GGUF_STRING || v->tokens->n == 0 ||
        v->tokens->n > (1u << 21))
        return error_set(err, "%s: tokenizer.ggml.tokens is missing or not a list of strings", gguf_name(g));
    v->n = v->tokens->n;
    if (types && (types->type != GGUF_ARRAY || types->n != v->n || types->elem == GGUF_STRING))
        return error_set(err, "%s: tokenizer.ggml.token_type does not have one number per token", gguf_name(g));
    if (scores && (scores->type != GGUF_ARRAY || scores->n != v->n || scores->elem == GGUF_STRING))
        return error_set(err, "%s: tokenizer.ggml.scores does not have one number per token", gguf_name(g));
    v->text = calloc(v->n, sizeof *v->text);
    v->len = calloc(v->n, sizeof *v->len);
    v->type = calloc(v->n, sizeof *v->type);
    v->score = calloc(v->n, sizeof *v->score);
    if (!v->text || !v->len || !v->type || !v->score)
        return error_set(err, "out of memory");
    const uint8_t *cur = v->tokens->p;
    for (uint64_t i = 0; i < v->n; i++) {
        v->text[i] = gguf_str_next(&cur, &v->len[i]);
        json_t *utf8 = memchr(v->text[i], 0, v->len[i]) ? NULL : json_stringn(v->text[i], v->len[i]);
        if (!utf8) /* a NUL inside, or not UTF-8 */
            return error_set(err, "%s: token %llu is not a valid UTF-8 string", gguf_name(g), (unsigned long long)i);
        json_decref(utf8);
        double ty = types ? gguf_array_num(types, i) : TT_NORMAL;
        v->type[i] = ty >= 0 && ty <= 16 ? (int)ty : 0; /* an unknown type is no known kind */
        v->score[i] = scores ? gguf_array_num(scores, i) : -(double)i;
        if (!isfinite(v->score[i]))
            return error_set(err, "%s: tokenizer.ggml.scores[%llu] is not a finite number", gguf_name(g),
                             (unsigned long long)i);
    }
    return 0;
}

static json_t *str(const char *s, size_t n)
{
    return json_stringn_nocheck(s, n);
}

static bool is_added(int type)
{
    return type == TT_CONTROL || type == TT_USER || type == TT_UNKNOWN;
}

/* model.vocab; for byte-level BPE the added tokens are left out of it, as tokenizer.json has them. */
static json_t *vocab_json(const struct vocab *v, bool include_added)
{
    json_t *o = json_object();
    for (uint64_t i = 0; o && i < v->n; i++)
        if (v->type[i] != TT_UNUSED && (include_added || !is_added(v->type[i]))) {
            char *key = strndup(v->text[i], v->len[i]);
            if (key && !json_object_get(o, key))
                json_object_set_new_nocheck(o, key, json_integer((json_int_t)i));
            free(key);
        }
    return o;
}

static json_t *added_json(const struct vocab *v)
{
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < v->n; i++)
        if (is_added(v->type[i]))
            json_array_append_new(a, json_pack("{s:I,s:o,s:b,s:b,s:b,s:b,s:b}", "id", (json_int_t)i, "content",
                                               str(v->text[i], v->len[i]), "single_word", 0, "lstrip", 0,
                                               "rstrip", 0, "normalized", 0, "special",
                                               v->type[i] != TT_USER));
    return a;
}

struct merge {
    double score;
    int64_t piece, left, right;
};

static int cmp_merge(const void *a, const void *b)
{
    const struct merge *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->piece != y->piece)
        return x->piece < y->piece ? -1 : 1;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

/* transformers' SentencePieceExtractor: each normal token split at every character boundary into two
 * tokens of the vocabulary is a merge; merges ordered by the token's score, descending. */
static json_t *spm_merges(const struct vocab *v, json_t *vocab, struct error *err)
{
    struct merge *m = NULL;
    size_t n = 0, cap = 0;
    char buf[1024];
    for (uint64_t i = 0; i < v->n; i++) {
        if (v->type[i] != TT_NORMAL || v->len[i] >= sizeof buf)
            continue;
        memcpy(buf, v->text[i], v->len[i]);
        for (size_t cut = 1; cut < v->len[i]; cut++) {
            if (((unsigned char)buf[cut] & 0xc0) == 0x80)
                continue; /* inside a UTF-8 character */
            json_t *l = json_object_getn(vocab, buf, cut), *r = json_object_getn(vocab, buf + cut, v->len[i] - cut);
            if (!l || !r)
                continue;
            if (n == cap) {
                struct merge *nm = realloc(m, (cap = cap ? 2 * cap : 4096) * sizeof *m);
                if (!nm) {
                    free(m);
                    error_set(err, "out of memory");
                    return NULL;
                }
                m = nm;
            }
            m[n++] = (struct merge){v->score[i], (int64_t)i, json_integer_value(l), json_integer_value(r)};
        }
    }
    qsort(m, n, sizeof *m, cmp_merge);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("[o,o]", str(v->text[m[i].left], v->len[m[i].left]),
                                           str(v->text[m[i].right], v->len[m[i].right])));
    free(m);
    return a;
}

static json_t *gpt2_merges(const struct gguf_file *g, struct error *err)
{
    const struct gguf_kv *kv = gguf_get(g, "tokenizer.ggml.merges");
    if (!kv || kv->type != GGUF_ARRAY || kv->elem != GGUF_STRING) {
        error_set(err, "%s: tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)", gguf_name(g));
        return NULL;
    }
    json_t *a = json_array();
    const uint8_t *cur = kv->p;
    for (uint64_t i = 0; a && i < kv->n; i++) {
        size_t len;
        const char *s = gguf_str_next(&cur, &len);
        json_array_append_new(a, str(s, len));
    }
    return a;
}

static bool get_bool(const struct gguf_file *g, const char *key, bool dflt)
{
    int64_t v;
    return gguf_get_int(g, key, &v) ? v != 0 : dflt;
}

/* The template transformers' Llama/Qwen tokenizers use to add BOS, when the GGUF asks for it. */
static json_t *post_processor(const struct gguf_file *g, const struct vocab *v, bool dflt_bos)
{
    int64_t bos;
    if (!get_bool(g, "tokenizer.ggml.add_bos_token", dflt_bos) || !gguf_get_int(g, "tokenizer.ggml.bos_token_id", &bos) ||
        bos < 0 || (uint64_t)bos >= v->n)
        return json_null();
    json_t *name = str(v->text[bos], v->len[bos]);
    return json_pack("{s:s,s:[{s:{s:O,s:i}},{s:{s:s,s:i}}],s:[{s:{s:O,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}}],"
                     "s:{s:{s:O,s:[I],s:[o]}}}",
                     "type", "TemplateProcessing", "single", "SpecialToken", "id", name, "type_id", 0, "Sequence",
                     "id", "A", "type_id", 0, "pair", "SpecialToken", "id", name, "type_id", 0, "Sequence", "id",
                     "A", "type_id", 0, "Sequence", "id", "B", "type_id", 1, "special_tokens", json_string_value(name),
                     "id", name, "ids", (json_int_t)bos, "tokens", name);
}

static json_t *gpt2_tokenizer(const struct gguf_file *g, const struct vocab *v, struct error *err)
{
    size_t len = 0;
    const char *pre = gguf_get_str(g, "tokenizer.ggml.pre", &len);
    char name[64] = "default";
    if (pre && len < sizeof name) {
        memcpy(name, pre, len);
        name[len] = 0;
    }
    const char *re = !strcmp(name, "llama-bpe") || !strcmp(name, "llama3") ? re_llama3
                     : !strcmp(name, "qwen2")                               ? re_qwen2
                     : !strcmp(name, "gpt-2") || !strcmp(name, "default")   ? re_gpt2
                                                                            : NULL;
    if (!re) {
        error_set(err, "%s: tokenizer.ggml.pre \"%s\" is not supported (llama-bpe, qwen2, gpt-2 and default are)",
                  gguf_name(g), name);
        return NULL;
    }
    json_t *merges = gpt2_merges(g, err);
    if (!merges)
        return NULL;
    json_t *model = json_pack("{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", re == re_llama3, "vocab", vocab_json(v, false),
                              "merges", merges);
    json_t *pre_tok = json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]}", "type", "Sequence",
                                "pretokenizers", "type", "Split", "pattern", "Regex", re, "behavior", "Isolated",
                                "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                                "use_regex", 0);
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:{s:s,s:b,s:b,s:b},s:o}", "version", "1.0", "added_tokens",
                     added_json(v), "normalizer", re == re_qwen2 ? json_pack("{s:s}", "type", "NFC") : json_null(),
                     "pre_tokenizer", pre_tok, "post_processor", post_processor(g, v, false), "decoder", "type",
                     "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1, "model", model);
}

static json_t *spm_tokenizer(const struct gguf_file *g, const struct vocab *v, struct error *err)
{
    json_t *vocab = vocab_json(v, true), *unk = json_null();
    json_t *merges = vocab ? spm_merges(v, vocab, err) : NULL;
    if (!merges) {
        json_decref(vocab);
        return NULL;
    }
    for (uint64_t i = 0; i < v->n; i++)
        if (v->type[i] == TT_UNKNOWN) {
            json_decref(unk);
            unk = str(v->text[i], v->len[i]);
            break;
        }
    bool prefix = get_bool(g, "tokenizer.ggml.add_space_prefix", true);
    json_t *model = json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout", "unk_token", unk,
                              "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1,
                              "vocab", vocab, "merges", merges);
    json_t *norm = json_pack("{s:s,s:[]}", "type", "Sequence", "normalizers");
    json_t *dec = json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s},{s:s}]}", "type", "Sequence", "decoders", "type",
                            "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ", "type", "ByteFallback",
                            "type", "Fuse");
    if (prefix) {
        json_array_append_new(json_object_get(norm, "normalizers"),
                              json_pack("{s:s,s:s}", "type", "Prepend", "prepend", "\xe2\x96\x81"));
        json_array_append_new(json_object_get(dec, "decoders"),
                              json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    }
    json_array_append_new(json_object_get(norm, "normalizers"),
                          json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", " ", "content",
                                    "\xe2\x96\x81"));
    return json_pack("{s:s,s:o,s:o,s:n,s:o,s:o,s:o}", "version", "1.0", "added_tokens", added_json(v), "normalizer",
                     norm, "pre_tokenizer", "post_processor", post_processor(g, v, true), "decoder", dec, "model",
                     model);
}

json_t *gguf_hf_tokenizer(const struct gguf_file *g, struct error *err)
{
    size_t len = 0;
    const char *model = gguf_get_str(g, "tokenizer.ggml.model", &len);
    struct vocab v = {0};
    json_t *out = NULL;
    if (!model) {
        error_set(err, "%s: tokenizer.ggml.model is missing: the file has no tokenizer", gguf_name(g));
    } else if (vocab_read(g, &v, err) == 0) {
        if (len == 4 && !memcmp(model, "gpt2", 4))
            out = gpt2_tokenizer(g, &v, err);
        else if (len == 5 && !memcmp(model, "llama", 5))
            out = spm_tokenizer(g, &v, err);
        else
            error_set(err, "%s: tokenizer.ggml.model \"%.*s\" is not supported (gpt2 and llama are)", gguf_name(g),
                      (int)(len > 40 ? 40 : len), model);
    }
    vocab_free(&v);
    if (!out && !err->msg[0]) /* a json_pack of the pieces failed */
        error_set(err, "%s: tokenizer.ggml.* does not make a tokenizer (out of memory, or a string that is not "
                       "UTF-8)", gguf_name(g));
    return out;
}

/* A token's text by id, or null. */
static json_t *token_text(const struct gguf_file *g, const char *key)
{
    int64_t id;
    const struct gguf_kv *t = gguf_get(g, "tokenizer.ggml.tokens");
    if (!gguf_get_int(g, key, &id) || !t || t->type != GGUF_ARRAY || t->elem != GGUF_STRING || id < 0 ||
        (uint64_t)id >= t->n)
        return json_null();
    const uint8_t *cur = t->p;
    size_t len = 0;
    const char *s = NULL;
    for (int64_t i = 0; i <= id; i++)
        s = gguf_str_next(&cur, &len);
    return str(s, len);
}

json_t *gguf_hf_tokenizer_config(const struct gguf_file *g, struct error *err)
{
    (void)err;
    json_t *cfg = json_pack("{s:o,s:o}", "bos_token", token_text(g, "tokenizer.ggml.bos_token_id"), "eos_token",
                            token_text(g, "tokenizer.ggml.eos_token_id"));
    size_t len;
    const char *tmpl = gguf_get_str(g, "tokenizer.chat_template", &len);
    if (tmpl)
        json_object_set_new(cfg, "chat_template", str(tmpl, len));
    return cfg;
}

/* generation_config.json: the eos ids generation stops at (end of turn first, as in model_config). */
static json_t *generation_config(const struct gguf_file *g)
{
    json_t *ids = json_array();
    int64_t id;
    if (gguf_get_int(g, "tokenizer.ggml.eot_token_id", &id) && id >= 0)
        json_array_append_new(ids, json_integer(id));
    if (gguf_get_int(g, "tokenizer.ggml.eos_token_id", &id) && id >= 0 &&
        (json_array_size(ids) == 0 || json_integer_value(json_array_get(ids, 0)) != id))
        json_array_append_new(ids, json_integer(id));
    return json_pack("{s:o}", "eos_token_id", ids);
}

json_t *gguf_hf_file(const char *path, const char *file, bool *absent, struct error *err)
{
    *absent = false;
    struct gguf_file *g = gguf_open_meta(path, err);
    if (!g)
        return NULL;
    json_t *j = NULL;
    if (!strcmp(file, "config.json"))
        j = gguf_hf_config(g, err);
    else if (!strcmp(file, "tokenizer.json"))
        j = gguf_hf_tokenizer(g, err);
    else if (!strcmp(file, "tokenizer_config.json"))
        j = gguf_hf_tokenizer_config(g, err);
    else if (!strcmp(file, "generation_config.json"))
        j = generation_config(g);
    else
        *absent = true;
    gguf_close(g);
    if (!j && !*absent)
        error_wrap(err, "%s", file);
    return j;
}
