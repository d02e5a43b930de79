/* safetensors.h — read-only access to .safetensors files (one file or a sharded set listed in
 * model.safetensors.index.json), memory-mapped. Every header field is validated against the file
 * before anything is exposed: a tensor handed out is always fully inside its file. */
#ifndef PD_SAFETENSORS_H
#define PD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"

enum st_dtype { ST_F32, ST_F16, ST_BF16 };

#define ST_MAX_DIMS 4

struct st_tensor {
    const char *name; /* owned by the st_set */
    enum st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    int64_t n_elems;
    const void *data; /* inside the mapping; n_elems * st_dtype_size(dtype) bytes */
    const char *file; /* the file it lives in, for messages */
};

struct st_set;

/* Opens DIR/model.safetensors, or every shard named by DIR/model.safetensors.index.json. */
struct st_set *st_open_dir(const char *dir, struct error *err);
/* The same checks on a whole .safetensors file already in memory (borrowed: it must outlive the set);
 * name is used in messages. */
struct st_set *st_open_buffer(const void *data, size_t size, const char *name, struct error *err);
void st_close(struct st_set *s);

/* NULL if absent. The pointer stays valid until st_close. */
const struct st_tensor *st_find(const struct st_set *s, const char *name);
int st_count(const struct st_set *s);
const struct st_tensor *st_at(const struct st_set *s, int i);

size_t st_dtype_size(enum st_dtype t);
const char *st_dtype_name(enum st_dtype t);

/* Converts n elements to float32 (dst must not overlap src). */
void st_to_f32(float *dst, const void *src, enum st_dtype t, int64_t n);

#endif
