/* tok_pipeline.c — reads tokenizer.json's normalizer, pre_tokenizer and decoder into step lists, and
 * refuses, naming it, any component this tokenizer does not implement: a tokenizer that silently skipped
 * a step would hand the model tokens it was never trained on. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

/* GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true. */
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

pcre2_code *tok_regex_compile(const char *pattern, size_t len, bool literal, struct error *err)
{
    int code;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);   /* LITERAL refuses UCP */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        error_set(err, "tokenizer.json: regex /%.*s/ does not compile at offset %zu: %s", (int)(len > 200 ? 200 : len),
                  pattern, (size_t)off, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* JIT is an optimisation: the interpreter is the fallback */
    return re;
}

static const char *type_of(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "(no type)";
}

/* A {"String": s} pattern's text, or NULL (a Regex pattern sets *is_regex). */
static const char *pattern_text(json_t *o, bool *is_regex, size_t *len)
{
    json_t *p = json_object_get(o, "pattern"), *v;
    *is_regex = false;
    if ((v = json_object_get(p, "String")) && json_is_string(v)) {
        *len = json_string_length(v);
        return json_string_value(v);
    }
    if ((v = json_object_get(p, "Regex")) && json_is_string(v)) {
        *is_regex = true;
        *len = json_string_length(v);
        return json_string_value(v);
    }
    return NULL;
}

static int norm_push(struct tokenizer *t, struct tok_norm_step st, struct error *err)
{
    struct tok_norm_step *p = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) {
        free(st.from);
        free(st.to);
        return error_set(err, "tokenizer: out of memory");
    }
    t->norm = p;
    t->norm[t->n_norm++] = st;
    return 0;
}

static int load_normalizer(struct tokenizer *t, json_t *n, int depth, struct error *err)
{
    const char *type = type_of(n);
    if (depth > 8)
        return error_set(err, "tokenizer.json: normalizers nested too deep");
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers"), *x;
        size_t i;
        json_array_foreach(list, i, x) {
            if (load_normalizer(t, x, depth + 1, err))
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "NFC"))
        return norm_push(t, (struct tok_norm_step){.kind = TOK_NORM_NFC}, err);
    if (!strcmp(type, "Prepend")) {
        json_t *p = json_object_get(n, "prepend");
        if (!json_is_string(p))
            return error_set(err, "tokenizer.json: Prepend normalizer without a \"prepend\" string");
        return norm_push(t, (struct tok_norm_step){TOK_NORM_PREPEND, NULL, strdup(json_string_value(p)), 0,
                                                   json_string_length(p)}, err);
    }
    if (!strcmp(type, "Replace")) {
        bool regex;
        size_t len;
        const char *from = pattern_text(n, &regex, &len);
        json_t *to = json_object_get(n, "content");
        if (!from || regex || !json_is_string(to) || len == 0)
            return error_set(err, "tokenizer.json: Replace normalizer: only a non-empty String pattern and a "
                                  "string content are supported");
        return norm_push(t, (struct tok_norm_step){TOK_NORM_REPLACE, strndup(from, len), strdup(json_string_value(to)),
                                                   len, json_string_length(to)}, err);
    }
    return error_set(err, "tokenizer.json: normalizer \"%s\" is not supported (supported: Sequence, Prepend, "
                          "Replace, NFC)", type);
}

static int pre_push(struct tokenizer *t, struct tok_pre_step st, struct error *err)
{
    struct tok_pre_step *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) {
        pcre2_code_free(st.re);
        return error_set(err, "tokenizer: out of memory");
    }
    t->pre = p;
    t->pre[t->n_pre++] = st;
    return 0;
}

static int load_split(struct tokenizer *t, json_t *p, struct error *err)
{
    bool regex;
    size_t len;
    const char *pat = pattern_text(p, &regex, &len);
    const char *behavior = json_string_value(json_object_get(p, "behavior"));
    if (!pat)
        return error_set(err, "tokenizer.json: Split pre-tokenizer without a String or Regex pattern");
    if (json_is_true(json_object_get(p, "invert")))
        return error_set(err, "tokenizer.json: Split pre-tokenizer with invert: true is not supported");
    if (!behavior || (strcmp(behavior, "Isolated") && strcmp(behavior, "Removed")))
        return error_set(err, "tokenizer.json: Split behavior \"%s\" is not supported (only Isolated, Removed)",
                         behavior ? behavior : "(none)");
    pcre2_code *re = tok_regex_compile(pat, len, !regex, err);
    if (!re)
        return -1;
    return pre_push(t, (struct tok_pre_step){TOK_PRE_SPLIT, re, !strcmp(behavior, "Removed")}, err);
}

/* The prepend scheme of a Metaspace pre-tokenizer or decoder (older files: add_prefix_space). */
static int meta_scheme(json_t *p)
{
    const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
    if (scheme)
        return !strcmp(scheme, "first") ? TOK_META_FIRST : !strcmp(scheme, "never") ? TOK_META_NEVER
             : !strcmp(scheme, "always") ? TOK_META_ALWAYS : -1;
    return json_is_false(json_object_get(p, "add_prefix_space")) ? TOK_META_NEVER : TOK_META_ALWAYS;
}

static int load_metaspace(struct tokenizer *t, json_t *p, struct error *err)
{
    json_t *rep = json_object_get(p, "replacement"), *split = json_object_get(p, "split");
    int scheme = meta_scheme(p);
    if (t->n_pre > 0 || t->byte_level || t->metaspace)
        return error_set(err, "tokenizer.json: Metaspace is supported only as the only pre-tokenizer");
    if (!json_is_string(rep) || json_string_length(rep) == 0 || json_string_length(rep) >= sizeof t->meta_rep ||
        tok_utf8_valid_len((const unsigned char *)json_string_value(rep), json_string_length(rep)) !=
            (int)json_string_length(rep))
        return error_set(err, "tokenizer.json: Metaspace replacement must be one character");
    if (scheme < 0)
        return error_set(err, "tokenizer.json: Metaspace prepend_scheme \"%s\" is not supported",
                         json_string_value(json_object_get(p, "prepend_scheme")));
    t->metaspace = true;
    t->meta_split = !json_is_false(split);   /* tokenizers' default is true */
    t->meta_prepend = scheme;
    t->meta_rep_len = json_string_length(rep);
    memcpy(t->meta_rep, json_string_value(rep), t->meta_rep_len);
    return 0;
}

static int load_pretok(struct tokenizer *t, json_t *p, int depth, struct error *err)
{
    const char *type = type_of(p);
    if (depth > 8)
        return error_set(err, "tokenizer.json: pre-tokenizers nested too deep");
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers"), *x;
        size_t i;
        json_array_foreach(list, i, x) {
            if (load_pretok(t, x, depth + 1, err))
                return -1;
        }
        return 0;
    }
    if (t->metaspace)
        return error_set(err, "tokenizer.json: Metaspace is supported only as the only pre-tokenizer");
    if (!strcmp(type, "Metaspace"))
        return load_metaspace(t, p, err);
    if (!strcmp(type, "Split"))
        return load_split(t, p, err);
    if (!strcmp(type, "ByteLevel")) {
        if (t->byte_level)
            return error_set(err, "tokenizer.json: two ByteLevel pre-tokenizers");
        t->byte_level = true;
        if (json_is_true(json_object_get(p, "add_prefix_space"))) {
            if (t->n_pre > 0)
                return error_set(err, "tokenizer.json: ByteLevel add_prefix_space after another pre-tokenizer "
                                      "is not supported");
            t->prefix_space = true;
        }
        json_t *ur = json_object_get(p, "use_regex");
        pcre2_code *re = NULL;
        if (!json_is_false(ur) && !(re = tok_regex_compile(GPT2_PATTERN, sizeof GPT2_PATTERN - 1, false, err)))
            return -1;
        return pre_push(t, (struct tok_pre_step){TOK_PRE_BYTELEVEL, re, false}, err);
    }
    return error_set(err, "tokenizer.json: pre-tokenizer \"%s\" is not supported (supported: Sequence, Split, "
                          "ByteLevel, Metaspace)", type);
}

/* One step of the SentencePiece decoder chain. fused: a Fuse came before (Strip must act on the
 * whole text, which it does only after Fuse). */
static int load_sp_decoder(struct tokenizer *t, json_t *d, bool *fused, struct error *err)
{
    const char *type = type_of(d);
    if (!strcmp(type, "Fuse")) {
        *fused = true;
        return 0;
    }
    if (!strcmp(type, "ByteFallback")) {
        t->dec_byte_fallback = true;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        bool regex;
        size_t len;
        const char *from = pattern_text(d, &regex, &len);
        json_t *to = json_object_get(d, "content");
        if (!from || regex || !json_is_string(to) || len == 0 || t->dec_from || t->dec_byte_fallback)
            return error_set(err, "tokenizer.json: Replace decoder: only one, with a String pattern, before "
                                  "ByteFallback is supported");
        t->dec_from = strndup(from, len);
        t->dec_to = strdup(json_string_value(to));
        t->dec_from_len = len;
        t->dec_to_len = json_string_length(to);
        return t->dec_from && t->dec_to ? 0 : error_set(err, "tokenizer: out of memory");
    }
    if (!strcmp(type, "Metaspace")) {
        /* Its replacement becomes a space and the first token loses its leading space. */
        const char *rep = json_string_value(json_object_get(d, "replacement"));
        if (!rep || !*rep || t->dec_from || t->dec_byte_fallback || *fused)
            return error_set(err, "tokenizer.json: Metaspace decoder: needs a replacement, first in the chain");
        t->dec_from = strdup(rep);
        t->dec_to = strdup(" ");
        t->dec_from_len = strlen(rep);
        t->dec_to_len = 1;
        t->dec_strip_char = ' ';
        t->dec_strip_start = meta_scheme(d) == TOK_META_NEVER ? 0 : 1;
        return t->dec_from && t->dec_to ? 0 : error_set(err, "tokenizer: out of memory");
    }
    if (!strcmp(type, "Strip")) {
        const char *c = json_string_value(json_object_get(d, "content"));
        json_int_t start = json_integer_value(json_object_get(d, "start"));
        if (!*fused || !c || strlen(c) != 1 || json_integer_value(json_object_get(d, "stop")) != 0 || start < 0)
            return error_set(err, "tokenizer.json: Strip decoder: only an ASCII content, stop 0, after Fuse is "
                                  "supported");
        t->dec_strip_char = c[0];
        t->dec_strip_start = (int)(start > 64 ? 64 : start);
        return 0;
    }
    return error_set(err, "tokenizer.json: decoder \"%s\" is not supported (supported: ByteLevel; Replace, "
                          "ByteFallback, Fuse, Strip, Metaspace)", type);
}

static int load_decoder(struct tokenizer *t, json_t *d, struct error *err)
{
    const char *type = type_of(d);
    if (json_is_null(d) || !d)
        return error_set(err, "tokenizer.json: no decoder (null decoders are not supported)");
    if (!strcmp(type, "ByteLevel")) {
        if (!t->byte_level)
            return error_set(err, "tokenizer.json: ByteLevel decoder without a ByteLevel pre-tokenizer");
        return 0;
    }
    if (t->byte_level)
        return error_set(err, "tokenizer.json: ByteLevel pre-tokenizer with decoder \"%s\" (expected ByteLevel)",
                         type);
    bool fused = false;
    if (strcmp(type, "Sequence") != 0)
        return load_sp_decoder(t, d, &fused, err);
    json_t *list = json_object_get(d, "decoders"), *x;
    size_t i;
    json_array_foreach(list, i, x) {
        if (load_sp_decoder(t, x, &fused, err))
            return -1;
    }
    return 0;
}

int tok_pipeline_load(struct tokenizer *t, json_t *root, struct error *err)
{
    json_t *n = json_object_get(root, "normalizer"), *p = json_object_get(root, "pre_tokenizer");
    if (n && !json_is_null(n) && load_normalizer(t, n, 0, err))
        return -1;
    if (p && !json_is_null(p) && load_pretok(t, p, 0, err))
        return -1;
    return load_decoder(t, json_object_get(root, "decoder"), err);
}

int tok_decoder_piece(const struct tokenizer *t, const char *s, size_t n, struct tok_str *out)
{
    out->len = 0;
    if (tok_str_put(out, "", 0))
        return -1;
    for (size_t i = 0; i < n;) {
        if (t->dec_from_len && n - i >= t->dec_from_len && !memcmp(s + i, t->dec_from, t->dec_from_len)) {
            if (tok_str_put(out, t->dec_to, t->dec_to_len))
                return -1;
            i += t->dec_from_len;
        } else {
            if (tok_str_put(out, s + i, 1))
                return -1;
            i++;
        }
    }
    return 0;
}
