/* tokfiles.c — tokenizer.json and tokenizer_config.json. Either a byte-level BPE tokenizer learned
 * here (GPT-2 byte map, Llama-3's pre-tokenizer regex, merges from the built-in corpus, special
 * tokens after the merged tokens), or a copy of a given tokenizer.json whose special tokens the
 * config files then name. Why learned and not a fixed table: the merges are real, so tokenizer tests
 * exercise the same code paths a downloaded model does, and tokenizers.js/HF load it unchanged. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "mkmodel.h"

#define LLAMA3_SPLIT                                                                             \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const char *const specials[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>",
                                       "<|im_end|>"};
enum { SP_BOS, SP_EOS, SP_IM_START, SP_IM_END, N_SPECIALS };

/* ChatML, as Qwen2.5-Instruct uses it (without the tool-calling parts). */
static const char chatml[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
    "}}{% endif %}";

/* GPT-2's byte → printable code point map: printable Latin-1 bytes stand for themselves, the others
 * are moved to 256 and up, so every token is a readable string without spaces or control bytes. */
static int byte_char(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        return b;
    int n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= '!' && i <= '~') || (i >= 0xa1 && i <= 0xac) || (i >= 0xae && i <= 0xff)))
            n++;
    return 256 + n;
}

/* The byte-level form of raw bytes s[0..len), UTF-8 encoded into out (at least 2*len+1 bytes). */
static void byte_level(const char *s, int len, char *out)
{
    for (int i = 0; i < len; i++) {
        int c = byte_char((unsigned char)s[i]);
        if (c < 0x80) {
            *out++ = (char)c;
        } else {
            *out++ = (char)(0xc0 | (c >> 6));
            *out++ = (char)(0x80 | (c & 0x3f));
        }
    }
    *out = 0;
}

static json_t *added_token(int id, const char *content)
{
    return json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", id, "content", content, "single_word", 0,
                     "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

static json_t *bpe_model(const struct mk_bpe *b)
{
    json_t *vocab = json_object(), *merges = json_array();
    char *l = malloc(4096), *r = malloc(4096), *m = malloc(8192);
    for (int i = 0; i < b->n_vocab; i++) {
        byte_level(b->vocab[i], b->vocab_len[i], l);
        json_object_set_new(vocab, l, json_integer(i));
    }
    for (int i = 0; i < b->n_merges; i++) {
        byte_level(b->vocab[b->merges[i][0]], b->vocab_len[b->merges[i][0]], l);
        byte_level(b->vocab[b->merges[i][1]], b->vocab_len[b->merges[i][1]], r);
        snprintf(m, 8192, "%s %s", l, r);
        json_array_append_new(merges, json_string(m));
    }
    free(l);
    free(r);
    free(m);
    return json_pack("{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout", "unk_token",
                     "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback",
                     0, "ignore_merges", 0, "vocab", vocab, "merges", merges);
}

/* Prepends <|begin_of_text|> when encoding with special tokens, as Llama 3's tokenizer.json does. */
static json_t *post_processor(int bos_id)
{
    const char *bos = specials[SP_BOS];
    return json_pack("{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}}],s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}},"
                     "{s:{s:s,s:i}}],s:{s:{s:s,s:[i],s:[s]}}}",
                     "type", "TemplateProcessing", "single", "SpecialToken", "id", bos, "type_id", 0,
                     "Sequence", "id", "A", "type_id", 0, "pair", "SpecialToken", "id", bos, "type_id",
                     0, "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", bos, "type_id", 1,
                     "Sequence", "id", "B", "type_id", 1, "special_tokens", bos, "id", bos, "ids",
                     bos_id, "tokens", bos);
}

static json_t *tokenizer_json(const struct mk_bpe *b)
{
    json_t *added = json_array();
    for (int i = 0; i < N_SPECIALS; i++)
        json_array_append_new(added, added_token(b->n_vocab + i, specials[i]));
    json_t *pre = json_pack(
        "{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]}", "type", "Sequence", "pretokenizers",
        "type", "Split", "pattern", "Regex", LLAMA3_SPLIT, "behavior", "Isolated", "invert", 0, "type",
        "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
    json_t *dec = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                            "trim_offsets", 1, "use_regex", 1);
    return json_pack("{s:s,s:n,s:n,s:o,s:n,s:o,s:o,s:o,s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added, "normalizer", "pre_tokenizer", pre, "post_processor",
                     post_processor(b->n_vocab + SP_BOS), "decoder", dec, "model", bpe_model(b));
}

static int dump(json_t *o, const char *dir, const char *file, struct error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return rc == 0 ? 0 : error_set(err, "%s: cannot write: %s", path, strerror(errno));
}

/* tokenizer_config.json naming the special tokens by content; NULL names are written as null. */
int mk_write_tok_config(const char *dir, const struct mk_config *c, const char *bos,
                        const char *eos, const char *pad, json_t *decoder, struct error *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "add_bos_token", json_boolean(bos != NULL));
    json_object_set_new(o, "add_eos_token", json_false());
    json_object_set_new(o, "added_tokens_decoder", decoder);
    json_object_set_new(o, "bos_token", bos ? json_string(bos) : json_null());
    json_object_set_new(o, "chat_template", json_string(chatml));
    json_object_set_new(o, "clean_up_tokenization_spaces", json_false());
    json_object_set_new(o, "eos_token", eos ? json_string(eos) : json_null());
    json_object_set_new(o, "model_max_length", json_integer(c->max_pos));
    json_object_set_new(o, "pad_token", pad ? json_string(pad) : json_null());
    json_object_set_new(o, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    return dump(o, dir, "tokenizer_config.json", err);
}

static int write_learned(const char *dir, const struct mk_config *c, struct mk_specials *sp,
                         struct error *err)
{
    struct mk_bpe b;
    if (c->vocab < 256 + N_SPECIALS)
        return error_set(err, "--vocab %d is too small for the built-in byte-level tokenizer (needs "
                              "%d); pass a larger --vocab or a --tokenizer", c->vocab, 256 + N_SPECIALS);
    if (mk_bpe_learn(mk_corpus(), LLAMA3_SPLIT, c->vocab - N_SPECIALS, &b, err) < 0)
        return -1;
    sp->bos = b.n_vocab + SP_BOS;
    sp->eos = b.n_vocab + SP_EOS;
    sp->eot = b.n_vocab + SP_IM_END;
    sp->n_tokens = b.n_vocab + N_SPECIALS;
    log_info("tokenizer: %d byte-level BPE tokens (%d merges) + %d special tokens", b.n_vocab,
             b.n_merges, N_SPECIALS);
    json_t *decoder = json_object();
    for (int i = 0; i < N_SPECIALS; i++) {
        json_t *t = added_token(b.n_vocab + i, specials[i]);
        json_object_del(t, "id");
        char key[16];
        snprintf(key, sizeof key, "%d", b.n_vocab + i);
        json_object_set_new(decoder, key, t);
    }
    int rc = dump(tokenizer_json(&b), dir, "tokenizer.json", err);
    mk_bpe_free(&b);
    if (rc < 0) {
        json_decref(decoder);
        return -1;
    }
    return mk_write_tok_config(dir, c, specials[SP_BOS], specials[SP_IM_END], specials[SP_EOS], decoder,
                            err);
}

int mk_write_tokenizer(const char *dir, const char *src, const struct mk_config *c,
                       struct mk_specials *sp, struct error *err)
{
    if (src)
        return mk_copy_tokenizer(dir, src, c, sp, err);
    return write_learned(dir, c, sp, err);
}

const char *mk_chat_template(void)
{
    return chatml;
}
