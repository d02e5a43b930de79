/* gguf.h — read-only access to a GGUF v2/v3 file (llama.cpp's single-file model format), memory-mapped
 * and validated as strictly as safetensors: every metadata string and array, every tensor's dims,
 * type and data range is checked against the file size before anything is exposed.
 *
 * Tensors are exposed under their Hugging Face names (token_embd.weight → model.embed_tokens.weight,
 * blk.3.attn_q.weight → model.layers.3.self_attn.q_proj.weight, ...) in HF row-major shape, so
 * model.c loads a GGUF file exactly as it loads a safetensors folder. On open:
 *   - F32/F16/BF16 tensors are used in place from the mapping;
 *   - Q8_0 tensors are widened to F32 once (logged; --weights q8 quantizes them again to the engine's
 *     own int8 layout, whose group scales are float32, not Q8_0's interleaved f16);
 *   - llama.cpp's q/k row permutation (its converter interleaves RoPE pairs for "llama") is undone;
 *   - other types (Q4_K, ...) are refused by name.
 * gguf_hf.c turns the metadata into the config.json / tokenizer.json / tokenizer_config.json a
 * Hugging Face folder would have, so every consumer reads one description of the model. */
#ifndef PD_GGUF_H
#define PD_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/engine/model.h"
#include "common/engine/safetensors.h"
#include "common/util/error.h"

enum gguf_type {
    GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING,
    GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_N_TYPES
};

/* One metadata value. Scalars: p points at the little-endian value. Strings: p, len. Arrays: elem
 * type, n elements starting at p (strings inside an array are u64 length + bytes, walk them with
 * gguf_str_next). All of it is inside the file (checked at open). */
struct gguf_kv {
    const char *key; /* NUL-terminated copy */
    enum gguf_type type, elem;
    const uint8_t *p;
    uint64_t n;      /* string length, or array element count */
    const uint8_t *end;
};

struct gguf_file;

/* True when path is a regular file: a model given as one file is read as GGUF (a folder as Hugging
 * Face's layout), and gguf_open says what is wrong when it is not a GGUF file. */
bool gguf_is_file(const char *path);
struct gguf_file *gguf_open(const char *path, struct error *err);
/* The same checks, but tensor data is left as stored (no widening, no un-permuting): for readers of
 * the metadata and shapes only (the tokenizer, the chat template, the frontend). */
struct gguf_file *gguf_open_meta(const char *path, struct error *err);
/* The same checks on a file already in memory (borrowed; must outlive the handle); name for messages. */
struct gguf_file *gguf_open_buffer(const void *data, size_t size, const char *name, struct error *err);
void gguf_close(struct gguf_file *g);

/* True when p points into the file mapping (not into a tensor the reader widened or un-permuted, nor
 * into a borrowed buffer): only such pages may be dropped with madvise. */
bool gguf_in_mapping(const struct gguf_file *g, const void *p);
/* A tensor by its Hugging Face name; NULL if absent. Valid until gguf_close. */
const struct st_tensor *gguf_find(const struct gguf_file *g, const char *hf_name);
int gguf_tensor_count(const struct gguf_file *g);

const struct gguf_kv *gguf_get(const struct gguf_file *g, const char *key);
/* Typed reads: false when absent or of another kind. Integers of any width, floats of either. */
bool gguf_get_int(const struct gguf_file *g, const char *key, int64_t *out);
bool gguf_get_num(const struct gguf_file *g, const char *key, double *out);
/* A string value (not NUL-terminated), or NULL. */
const char *gguf_get_str(const struct gguf_file *g, const char *key, size_t *len);
/* Walks an array of strings: *cursor starts at kv->p; returns the next string and its length. */
const char *gguf_str_next(const uint8_t **cursor, size_t *len);
/* Element i of a numeric array as a double (kv an array of a numeric type, i < kv->n). */
double gguf_array_num(const struct gguf_kv *kv, uint64_t i);
/* general.architecture, NUL-terminated ("" if absent). */
const char *gguf_arch(const struct gguf_file *g);
const char *gguf_name(const struct gguf_file *g);

/* gguf_hf.c: the model config from the metadata and tensor shapes (same checks as config.json). */
int gguf_model_config(const struct gguf_file *g, struct model_config *c, struct error *err);

#endif
