/* tok_impl.h — the tokenizer's internals, shared by the common/tok_*.c files and nobody else.
 * The public API is tok.h. Layout of a loaded tokenizer:
 *   - every token id has a "key" (what the BPE model looks up: raw bytes for byte-level models, the
 *     tokenizer.json string otherwise) and a "piece" (the bytes the decoder emits for it), both stored
 *     as offsets into one arena so loading a 150k vocabulary is two allocations, not 300k;
 *   - the normalizer, pre-tokenizer, post-processor and decoder are parsed into small step lists. */
#ifndef PD_TOK_IMPL_H
#define PD_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/tok/tok.h"

/* ---- byte strings and UTF-8 (tok_utf8.c) ---- */
struct tok_str {
    char *s;
    size_t len, cap;
};
int tok_str_put(struct tok_str *b, const void *p, size_t n);    /* 0, or -1 on out of memory */
int tok_buf_put(struct tok_buf *b, const void *p, size_t n);
/* Length of the UTF-8 sequence at s[0..n) if it is one valid character, else 0. */
int tok_utf8_valid_len(const unsigned char *s, size_t n);
/* Decodes the (valid) character at s, storing its length in *len. */
uint32_t tok_utf8_decode(const unsigned char *s, int *len);
int tok_utf8_encode(uint32_t cp, char out[4]);
/* Appends s[0..n) with each maximal invalid subsequence replaced by U+FFFD (the WHATWG / Rust
 * from_utf8_lossy rule). If !final, a trailing incomplete-but-valid prefix is not consumed; returns the
 * number of bytes consumed, or -1 on out of memory. */
long tok_utf8_lossy(struct tok_buf *out, const unsigned char *s, size_t n, bool final);
/* GPT-2's byte ↔ printable character map used by ByteLevel. */
uint32_t tok_byte_to_char(unsigned char b);
int tok_char_to_byte(uint32_t cp);   /* -1 if cp is not in the map */
/* Maps a ByteLevel string back to bytes into *out; returns false if some character is not in the map. */
bool tok_bytelevel_to_bytes(const char *s, size_t n, struct tok_str *out);

/* ---- NFC (tok_nfc.c, tables in tok_nfc_data.c) ---- */
struct tok_nfc_ccc { uint32_t cp; uint8_t ccc; };
struct tok_nfc_decomp { uint32_t cp; uint16_t off, len; };
struct tok_nfc_comp { uint32_t a, b, c; };
extern const struct tok_nfc_ccc tok_nfc_ccc_table[];
extern const int tok_nfc_ccc_count;
extern const struct tok_nfc_decomp tok_nfc_decomp_table[];
extern const int tok_nfc_decomp_count;
extern const uint32_t tok_nfc_decomp_pool[];
extern const struct tok_nfc_comp tok_nfc_comp_table[];
extern const int tok_nfc_comp_count;
/* Appends the NFC form of valid UTF-8 s[0..n) to out. 0, or -1 on out of memory. */
int tok_nfc(const char *s, size_t n, struct tok_str *out);

/* ---- the loaded tokenizer ---- */
enum tok_norm_kind { TOK_NORM_PREPEND, TOK_NORM_REPLACE, TOK_NORM_NFC };
struct tok_norm_step {
    enum tok_norm_kind kind;
    char *from, *to;          /* Prepend: to; Replace: from → to */
    size_t from_len, to_len;
};

enum tok_pre_kind { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL };
struct tok_pre_step {
    enum tok_pre_kind kind;
    pcre2_code *re;           /* Split pattern, or ByteLevel's GPT-2 regex when use_regex; else NULL */
    bool removed;             /* Split behavior Removed (else Isolated) */
};

struct tok_added {
    char *text;               /* what is matched: the content, normalized if the token is "normalized" */
    size_t len;
    int32_t id;
    bool special, normalized, lstrip, rstrip;
};

/* Token flags. */
enum { TOK_F_PRESENT = 1, TOK_F_SPECIAL = 2, TOK_F_ADDED = 4, TOK_F_BYTE = 8 };

struct tok_merge_slot {
    uint64_t pair;            /* (left id << 32) | right id; 0 with rank -1 = empty */
    int32_t rank, id;
};

struct tokenizer {
    int n_ids;                            /* highest id + 1 */
    uint8_t *flags;                       /* per id, TOK_F_* */
    uint8_t *byte_val;                    /* per id: the byte of a <0xNN> token */
    uint32_t *key_off, *key_len;          /* per id, into arena */
    uint32_t *piece_off, *piece_len;      /* per id, into arena */
    struct tok_str arena;

    /* model */
    bool byte_level;                      /* BPE runs over bytes (ByteLevel pre-tokenizer) */
    bool ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;
    int32_t byte_ids[256];                /* byte-level: the one-byte token; else <0xNN>; -1 if absent */
    int32_t *vocab_slots;                 /* open addressing over model vocab keys, id + 1 (0 = empty) */
    uint32_t vocab_mask;
    struct tok_merge_slot *merge_slots;
    uint32_t merge_mask;

    struct tok_norm_step *norm;
    int n_norm;
    struct tok_pre_step *pre;
    int n_pre;
    bool prefix_space;                    /* ByteLevel add_prefix_space */
    /* Metaspace pre-tokenizer (the only step when present): spaces become meta_rep, which is also
     * prepended (always, or only to the section at the start of the input), and with meta_split
     * each meta_rep starts a new piece. */
    bool metaspace, meta_split;
    enum { TOK_META_ALWAYS, TOK_META_FIRST, TOK_META_NEVER } meta_prepend;
    char meta_rep[8];
    size_t meta_rep_len;

    struct tok_added *added;              /* sorted by first byte, then longest first */
    int n_added;
    int added_start[257];                 /* added[added_start[b] .. added_start[b+1]) start with byte b */
    bool any_normalized_added;

    int32_t *prefix, *suffix;             /* what add_special puts around the ids */
    int n_prefix, n_suffix;

    /* decoder: ByteLevel when byte_level, else the SentencePiece chain */
    char *dec_from, *dec_to;              /* Replace, applied to each token's text */
    size_t dec_from_len, dec_to_len;
    bool dec_byte_fallback;
    int dec_strip_start;                  /* Strip: drop up to this many leading dec_strip_char */
    char dec_strip_char;

    int32_t bos_id;
    int32_t *eos_ids;
    int n_eos;
};

static inline const char *tok_key(const struct tokenizer *t, int32_t id) { return t->arena.s + t->key_off[id]; }
static inline const char *tok_piece(const struct tokenizer *t, int32_t id) { return t->arena.s + t->piece_off[id]; }

/* tok_vocab.c: the id tables and hash maps */
int tok_vocab_init(struct tokenizer *t, int n_ids, struct error *err);
int tok_vocab_set(struct tokenizer *t, int32_t id, const char *key, size_t key_len, const char *piece,
                  size_t piece_len, struct error *err);
int tok_vocab_index(struct tokenizer *t, struct error *err);      /* builds the key → id map */
int32_t tok_vocab_find(const struct tokenizer *t, const char *key, size_t len);
int tok_merges_init(struct tokenizer *t, size_t n, struct error *err);
void tok_merges_put(struct tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id);
const struct tok_merge_slot *tok_merges_find(const struct tokenizer *t, int32_t a, int32_t b);

/* tok_model.c: tokenizer.json "model" */
int tok_model_load(struct tokenizer *t, json_t *root, struct error *err);
/* tok_pipeline.c: normalizer, pre_tokenizer, decoder (before the vocabulary: they decide its keys) */
int tok_pipeline_load(struct tokenizer *t, json_t *root, struct error *err);
pcre2_code *tok_regex_compile(const char *pattern, size_t len, bool literal, struct error *err);
/* tok_added.c */
int tok_added_load(struct tokenizer *t, json_t *root, struct error *err);
/* Finds the leftmost-longest added token in s[0..n) that this pass may match; -1 if none, else its
 * index in t->added with *at set to its offset. */
int tok_added_find(const struct tokenizer *t, const char *s, size_t n, bool normalized, bool parse_special,
                   size_t *at);
/* tok_config.c: post_processor, tokenizer_config.json, generation_config.json, BOS/EOS */
int tok_config_load(struct tokenizer *t, json_t *root, const char *model_dir, struct error *err);
/* The decoder piece of a token string: dec_from replaced by dec_to (SentencePiece chain). */
int tok_decoder_piece(const struct tokenizer *t, const char *s, size_t n, struct tok_str *out);

/* tok_norm.c: applies the normalizer to s[0..n) into out (replacing its content). */
int tok_normalize(const struct tokenizer *t, const char *s, size_t n, struct tok_str *out);
/* tok_pretok.c: splits s[0..n) into pieces; *spans holds (start, length) pairs. */
struct tok_spans {
    size_t *v;     /* 2 per span */
    size_t n, cap;
};
int tok_pretokenize(const struct tokenizer *t, const char *s, size_t n, pcre2_match_data *md,
                    struct tok_spans *spans, struct error *err);
/* tok_bpe.c: appends the ids of one pre-tokenized piece. */
struct tok_ids {
    int32_t *v;
    int n, cap;
};
int tok_ids_push(struct tok_ids *ids, int32_t id);
struct tok_bpe_scratch;
struct tok_bpe_scratch *tok_bpe_scratch_new(void);
void tok_bpe_scratch_free(struct tok_bpe_scratch *w);
int tok_bpe_word(const struct tokenizer *t, struct tok_bpe_scratch *w, const char *s, size_t n,
                 struct tok_ids *out);

#endif
