/* gguf_hf.h — a GGUF file's metadata as the Hugging Face JSON files a model folder would have
 * (gguf_hf.c: config.json; gguf_tok.c: tokenizer.json and tokenizer_config.json), and
 * model_json_load, the one way every consumer reads those files from a --model path that is either a
 * folder or a .gguf file. */
#ifndef PD_GGUF_HF_H
#define PD_GGUF_HF_H

#include <jansson.h>

#include "common/engine/gguf.h"

/* config.json (new reference), or NULL + err for an architecture pdserve does not run. */
json_t *gguf_hf_config(const struct gguf_file *g, struct error *err);
/* tokenizer.json built from tokenizer.ggml.* (gpt2 BPE or llama SentencePiece vocabularies). */
json_t *gguf_hf_tokenizer(const struct gguf_file *g, struct error *err);
/* tokenizer_config.json: bos/eos tokens, add_bos_token, chat_template. */
json_t *gguf_hf_tokenizer_config(const struct gguf_file *g, struct error *err);

/* `file` ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json") of the
 * model at `model`: read from the folder, or made from the GGUF file's metadata. NULL with *absent set
 * when the file does not exist (a GGUF file has no generation_config.json), else NULL + err. */
json_t *model_json_load(const char *model, const char *file, bool *absent, struct error *err);

#endif
