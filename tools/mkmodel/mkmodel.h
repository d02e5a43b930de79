/* mkmodel.h — the parts of pdserve-mkmodel, the tool that writes a random-weight Llama-family model
 * folder in the Hugging Face layout (config.json, safetensors, tokenizer files). Internal to the tool:
 * main.c parses flags into a struct mk_config, then each writer below puts one file (or file family)
 * into the output folder. Every function returns 0 or -1 with a message in the caller's struct error. */
#ifndef PD_MKMODEL_H
#define PD_MKMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"

enum mk_dtype { MK_F32, MK_F16, MK_BF16 };

/* The model's shape and everything else config.json states. */
struct mk_config {
    char arch[16];          /* "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3" or "phi3" */
    int hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_pos;
    double rope_theta, rms_eps;
    bool rope_llama3;       /* rope_scaling {"rope_type": "llama3", ...} as Llama 3.1/3.2 have it */
    double rope_factor, rope_low, rope_high, rope_orig_max;
    bool tie;               /* tie_word_embeddings: no lm_head.weight tensor */
    bool qkv_bias;          /* q/k/v_proj.bias tensors (Qwen2) */
    enum mk_dtype dtype;
    int sliding_window;     /* gemma2/3, phi3, mistral: config.json sliding_window (0: null) */
    int longrope_orig;      /* phi3: rope_scaling longrope with this original_max_position_embeddings */
};
/* Architecture helpers (presets.c). */
bool mk_is_gemma(const struct mk_config *c);

/* Special token ids the config files name; -1 when the tokenizer has no such token. */
struct mk_specials {
    int bos, eos;           /* config.json bos_token_id / eos_token_id */
    int eot;                /* end of a chat turn (<|im_end|>, <|eot_id|>): generation stops there too */
    int n_tokens;           /* ids 0..n_tokens-1 exist in the tokenizer */
    int n_live_rows;        /* embedding/lm_head rows with ordinary weights (n_tokens + --vocab-pad);
                               rows above are scaled down (weights.c) */
};

/* presets.c: fills c with preset `name`; lists the names on failure. */
int mk_preset(const char *name, struct mk_config *c, struct error *err);
/* The preset names, comma-separated, for --help. */
const char *mk_preset_names(void);
/* Checks the shape is one the engine can run (heads divisible by kv heads, even head_dim, ...). */
int mk_config_check(const struct mk_config *c, struct error *err);

/* hfconfig.c: writes DIR/config.json and DIR/generation_config.json. */
int mk_write_hf_config(const char *dir, const struct mk_config *c, const struct mk_specials *sp,
                       struct error *err);

/* bpe.c: learns byte-level BPE merges from `text`, pre-split with the PCRE2 `pattern`, until the
 * vocabulary (256 bytes + merged tokens) has `target` tokens or no pair is left. Token i is the raw
 * bytes vocab[i][0..vocab_len[i]) (not yet byte-level mapped); tokens 0..255 are the single bytes.
 * merges holds (left id, right id) in rank order. The caller frees *out with mk_bpe_free. */
struct mk_bpe {
    char **vocab;
    int *vocab_len;
    int n_vocab;
    int (*merges)[2];
    int n_merges;
};
int mk_bpe_learn(const char *text, const char *pattern, int target, struct mk_bpe *out,
                 struct error *err);
void mk_bpe_free(struct mk_bpe *b);

/* corpus.c: the built-in English text the BPE merges are learned from (static storage). */
const char *mk_corpus(void);

/* tokfiles.c: writes tokenizer.json and tokenizer_config.json. With `src` (a tokenizer.json path)
 * copies it (and a tokenizer_config.json beside it, if any) and reads its special tokens; without,
 * learns a tokenizer of at most c->vocab tokens. Fills *sp. */
int mk_write_tokenizer(const char *dir, const char *src, const struct mk_config *c,
                       struct mk_specials *sp, struct error *err);
/* Writes tokenizer_config.json naming the special tokens by content (NULL: null; a bos makes
 * add_bos_token true), with the ChatML template; takes ownership of `decoder` (added_tokens_decoder). */
struct json_t;
int mk_write_tok_config(const char *dir, const struct mk_config *c, const char *bos, const char *eos,
                        const char *pad, struct json_t *decoder, struct error *err);
/* The ChatML chat template written into tokenizer_config.json (static storage). */
const char *mk_chat_template(void);

/* tokcopy.c: the --tokenizer case of mk_write_tokenizer. */
int mk_copy_tokenizer(const char *dir, const char *src, const struct mk_config *c,
                      struct mk_specials *sp, struct error *err);
/* Number of tokens (max id + 1) in a tokenizer.json, so the model's vocab can be sized to it. */
int mk_tokenizer_size(const char *path, int *n_tokens, struct error *err);

/* weights.c: the deterministic weights. Fills out[0..n) with elements [first, first+n) of tensor
 * `name` (row-major, `cols` per row) for the given seed; the values depend only on (seed, name,
 * index), not on dtype or sharding. */
struct mk_tensor {
    char name[96];
    int64_t rows, cols;     /* cols == 0 for 1-D tensors (rows elements) */
};
void mk_tensor_fill(const struct mk_config *c, const struct mk_specials *sp, uint64_t seed,
                    const struct mk_tensor *t, int64_t first, float *out, size_t n);
/* f32 → f16 / bf16 with round-to-nearest-even (overflow goes to infinity, NaN stays NaN). */
uint16_t mk_f32_to_f16(float f);
uint16_t mk_f32_to_bf16(float f);

/* safetensors_out.c: lists the tensors of config c in Hugging Face names and writes them to
 * model.safetensors, or to `shards` files plus model.safetensors.index.json when shards > 1. */
int mk_write_weights(const char *dir, const struct mk_config *c, const struct mk_specials *sp,
                     uint64_t seed, int shards, struct error *err);

#endif
