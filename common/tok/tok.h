/* tok.h — the tokenizer: Hugging Face tokenizer.json (BPE, byte-level or SentencePiece-style) to token
 * ids and back, with the same ids and text as Hugging Face's `tokenizers`.
 *
 * A `struct tokenizer` is immutable after tok_load(): any number of threads may encode and decode with
 * it at once. A `struct tok_stream` belongs to one stream (one thread at a time).
 *
 * Supported (anything else is refused at load with an error naming it):
 *   model        BPE (merges as "a b" or ["a","b"], ignore_merges, byte_fallback, unk_token, fuse_unk)
 *   normalizer   null, Sequence, Prepend, Replace (String pattern), NFC
 *   pre_tokenizer null, Sequence, Split (Regex/String, behavior Isolated or Removed), ByteLevel
 *   post_processor null, ByteLevel, TemplateProcessing, Sequence of these
 *   decoder      ByteLevel; Sequence of Replace, ByteFallback, Fuse, Strip (the SentencePiece chain)
 * See docs/tokenizer.md for the details and the choices made. */
#ifndef PD_TOK_H
#define PD_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"

struct tokenizer;
struct tok_stream;

/* A growing text buffer the caller owns: start it zeroed ({0}), free data with free() (or tok_buf_free).
 * data is NUL-terminated whenever len > 0. */
struct tok_buf {
    char *data;
    size_t len, cap;
};
void tok_buf_free(struct tok_buf *b);

/* Loads DIR/tokenizer.json (and DIR/tokenizer_config.json, DIR/generation_config.json when present).
 * Returns NULL and fills err on a missing/malformed file or an unsupported component. Free with tok_free. */
struct tokenizer *tok_load(const char *model_dir, struct error *err);
void tok_free(struct tokenizer *t);

/* Highest token id + 1, added tokens included. */
int tok_vocab_size(const struct tokenizer *t);

/* Tokenizes text[0..len) (UTF-8; invalid sequences are read as U+FFFD, as a lossy UTF-8 decoder does).
 * add_special: add what the post-processor adds (BOS for Llama-style tokenizers; tokenizer_config's
 * add_bos_token/add_eos_token where transformers lets them override it).
 * parse_special: recognise special added tokens written in the text (e.g. "<|im_end|>"); when false
 * they are tokenized as plain text. Non-special added tokens are always recognised.
 * *ids: malloc'd array the caller frees (NULL when *n_ids is 0). Returns 0, or -1 with err filled. */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
               int32_t **ids, int *n_ids, struct error *err);

/* Decodes ids to text, as tokenizers' decode() does. Ids that name no token are skipped, as Hugging Face
 * does. *text: malloc'd, NUL-terminated, the caller frees it; *len excludes the NUL. */
int tok_decode(const struct tokenizer *t, const int32_t *ids, int n, bool skip_special, char **text, size_t *len,
               struct error *err);

/* Incremental detokenizer, one per generated stream. The text appended by every tok_stream_push and the
 * final tok_stream_finish concatenates to tok_decode() of all the ids pushed; no call ever appends part
 * of a UTF-8 character. The stream keeps a pointer to t, which must outlive it. NULL on out of memory. */
struct tok_stream *tok_stream_new(const struct tokenizer *t, bool skip_special);
/* Appends to *out the text that became complete with this token (often nothing, e.g. half an emoji). */
int tok_stream_push(struct tok_stream *s, int32_t id, struct tok_buf *out, struct error *err);
/* Whether bytes of pushed tokens are held back (an unfinished UTF-8 character, or a SentencePiece
 * run of <0xNN> byte tokens that has not ended): the text of the last token may still grow. */
bool tok_stream_pending(const struct tok_stream *s);
/* How many bytes at the start of what the last tok_stream_push appended belong to the tokens before
 * it: a SentencePiece byte-token run is emitted by the token after the run, but it is the run's own
 * text (the last byte token's, in context). 0 for ByteLevel, where the token completing a character
 * emits it as its own. With this, each token's "text in context" (OpenAI logprobs' token strings)
 * concatenates to the decoded text. */
size_t tok_stream_carried(const struct tok_stream *s);
/* End of the stream: appends what is still held back (an unfinished UTF-8 sequence becomes U+FFFD). */
int tok_stream_finish(struct tok_stream *s, struct tok_buf *out, struct error *err);
void tok_stream_free(struct tok_stream *s);

/* tokenizer_config's bos_token, or the first token the post-processor adds; -1 if none. */
int32_t tok_bos_id(const struct tokenizer *t);
/* generation_config eos_token_id (int or list), else tokenizer_config eos_token. *ids points into t
 * (valid until tok_free). Returns the count (0 if none). */
int tok_eos_ids(const struct tokenizer *t, const int32_t **ids);
/* The id of a token written as in tokenizer.json (e.g. "<|im_end|>", "Ġthe", "▁the"); -1 if absent. */
int32_t tok_token_id(const struct tokenizer *t, const char *token_text);
/* The bytes token id stands for when decoded on its own (for OpenAI logprobs' "bytes"): may be part of
 * a UTF-8 character; a SentencePiece <0xNN> token gives its one byte, "▁" is already a space. Points
 * into t (valid until tok_free); NULL if id names no token. */
const char *tok_id_bytes(const struct tokenizer *t, int32_t id, size_t *len);
/* True for added tokens marked special (and tokenizer_config's additional_special_tokens). */
bool tok_is_special(const struct tokenizer *t, int32_t id);

#endif
