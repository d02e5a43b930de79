/* gguf_hf.h — a GGUF file's metadata as the Hugging Face JSON files a model folder would have
 * (gguf_hf.c: config.json; gguf_tok.c: tokenizer.json and tokenizer_config.json), and
 * model_json_load, the one way every consumer reads those files from a --model path that is either a
 * folder or a .gguf file. */
#ifndef PD_GGUF_HF_H
#define PD_GGUF_HF_H

#include <jansson.h>
#include <stdbool.h>

#include "common/engine/gguf.h"

/* config.json (new reference), or NULL + err for an architecture pdserve does not run. */
json_t *gguf_hf_config(const struct gguf_file *g, struct error *err);
/* tokenizer.json built from tokenizer.ggml.* (gpt2 BPE or llama SentencePiece vocabularies). */
json_t *gguf_hf_tokenizer(const struct gguf_file *g, struct error *err);
/* tokenizer_config.json: bos/eos tokens, add_bos_token, chat_template. */
json_t *gguf_hf_tokenizer_config(const struct gguf_file *g, struct error *err);

/* `file` ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json") as the
 * GGUF file at `path` describes it; the one way the tokenizer, the chat template and the frontend read
 * a --model that is a .gguf file. NULL with *absent set for any other name (a GGUF file has no
 * chat_template.jinja), else NULL + err on a bad file. */
json_t *gguf_hf_file(const char *path, const char *file, bool *absent, struct error *err);

#endif
