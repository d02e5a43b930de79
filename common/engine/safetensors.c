/* safetensors.c — mapping .safetensors files and validating their headers.
 *
 * Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
 * then the data. Offsets are relative to the end of the header. A header is trusted only after every
 * tensor's byte range is shown to lie inside the file, to match dtype × shape, and to not overlap
 * another tensor. */
#include "common/engine/safetensors.h"
#include "common/util/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's own limit */
#define ST_MAX_FILES 256

struct st_file {
    char *path;
    const uint8_t *map;
    size_t size;
    bool borrowed; /* st_open_buffer's memory: not ours to unmap */
};

struct st_set {
    struct st_file files[ST_MAX_FILES];
    int n_files;
    struct st_tensor *tensors;
    int n_tensors, cap_tensors;
    /* Name → tensor: open addressing over tensor index + 1 (0 = empty), at most half full. A linear
     * search made a crafted header of 60k names take minutes (every name is looked up on load). */
    int *slots;
    size_t n_slots;
};

size_t st_dtype_size(enum st_dtype t)
{
    return t == ST_F32 ? 4 : 2;
}

const char *st_dtype_name(enum st_dtype t)
{
    return t == ST_F32 ? "F32" : t == ST_F16 ? "F16" : "BF16";
}

static int dtype_parse(const char *s, enum st_dtype *t)
{
    if (!strcmp(s, "F32"))
        *t = ST_F32;
    else if (!strcmp(s, "F16"))
        *t = ST_F16;
    else if (!strcmp(s, "BF16"))
        *t = ST_BF16;
    else
        return -1;
    return 0;
}

static int map_file(struct st_file *f, const char *path, struct error *err)
{
    /* O_NONBLOCK: a FIFO in place of a shard must be refused, not waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return error_set(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error_set(err, "%s: %s, not a regular file", path, mf_kind(st.st_mode));
    }
    f->size = (size_t)st.st_size;
    f->path = strdup(path);
    if (f->size < 8) {
        close(fd);
        return 0; /* parse_file says why */
    }
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return error_set(err, "%s: mmap: %s", path, strerror(errno));
    f->map = p;
    return 0;
}

static size_t slot_of(const struct st_set *s, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    size_t mask = s->n_slots - 1, i = (size_t)h & mask;
    while (s->slots[i] && strcmp(s->tensors[s->slots[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Indexes tensor t (named, not yet in the index) by its name. */
static int index_add(struct st_set *s, int t)
{
    if (2 * (size_t)(t + 1) > s->n_slots) {
        int *old = s->slots;
        size_t n_old = s->n_slots;
        s->n_slots = n_old ? 2 * n_old : 256;
        if (!(s->slots = calloc(s->n_slots, sizeof *s->slots))) {
            s->slots = old;
            s->n_slots = n_old;
            return -1;
        }
        for (size_t i = 0; i < n_old; i++)
            if (old[i])
                s->slots[slot_of(s, s->tensors[old[i] - 1].name)] = old[i];
        free(old);
    }
    s->slots[slot_of(s, s->tensors[t].name)] = t + 1;
    return 0;
}

static struct st_tensor *push_tensor(struct st_set *s)
{
    if (s->n_tensors == s->cap_tensors) {
        int cap = s->cap_tensors ? 2 * s->cap_tensors : 64;
        struct st_tensor *t = realloc(s->tensors, (size_t)cap * sizeof *t);
        if (!t)
            return NULL;
        s->tensors = t;
        s->cap_tensors = cap;
    }
    struct st_tensor *t = &s->tensors[s->n_tensors++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Fills t's dtype and shape from a header entry; returns the byte count they imply in *bytes. */
static int parse_dtype_shape(struct st_tensor *t, json_t *entry, uint64_t *bytes, struct error *err)
{
    json_t *dt = json_object_get(entry, "dtype"), *shape = json_object_get(entry, "shape");
    if (!json_is_string(dt))
        return error_set(err, "tensor %s: missing \"dtype\"", t->name);
    if (dtype_parse(json_string_value(dt), &t->dtype) < 0)
        return error_set(err, "tensor %s: dtype %s is not supported (F32, F16 and BF16 are)", t->name,
                         json_string_value(dt));
    if (!json_is_array(shape) || json_array_size(shape) > ST_MAX_DIMS)
        return error_set(err, "tensor %s: \"shape\" must be an array of at most %d sizes", t->name,
                         ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(shape);
    uint64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1ll << 40))
            return error_set(err, "tensor %s: shape[%d] is not a valid size", t->name, i);
        t->shape[i] = json_integer_value(d);
        if (__builtin_mul_overflow(n, (uint64_t)t->shape[i], &n) || n > (1ull << 40))
            return error_set(err, "tensor %s: shape has too many elements", t->name);
    }
    t->n_elems = (int64_t)n;
    *bytes = n * st_dtype_size(t->dtype);
    return 0;
}

static int parse_offsets(json_t *entry, uint64_t *begin, uint64_t *end)
{
    json_t *off = json_object_get(entry, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2)
        return -1;
    json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return -1;
    *begin = (uint64_t)json_integer_value(b);
    *end = (uint64_t)json_integer_value(e);
    return 0;
}

static int add_tensor(struct st_set *s, struct st_file *f, const char *name, json_t *entry,
                      const uint8_t *data, uint64_t data_len, struct error *err)
{
    if (!json_is_object(entry))
        return error_set(err, "%s: header entry %s is not an object", f->path, name);
    struct st_tensor *t = push_tensor(s);
    if (!t)
        return error_set(err, "out of memory");
    t->name = strdup(name);
    t->file = f->path;
    if (!t->name || index_add(s, (int)(t - s->tensors)) < 0)
        return error_set(err, "out of memory");
    uint64_t bytes = 0, begin = 0, end = 0;
    if (parse_dtype_shape(t, entry, &bytes, err) < 0)
        return error_wrap(err, "%s", f->path);
    if (parse_offsets(entry, &begin, &end) < 0)
        return error_set(err, "%s: tensor %s: \"data_offsets\" must be [begin, end] with begin <= end",
                         f->path, name);
    if (end > data_len)
        return error_set(err,
                         "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the file's data "
                         "(%llu bytes) — the file is truncated or corrupt",
                         f->path, name, (unsigned long long)begin, (unsigned long long)end,
                         (unsigned long long)data_len);
    if (end - begin != bytes)
        return error_set(err, "%s: tensor %s: %llu data bytes but %s × shape needs %llu", f->path, name,
                         (unsigned long long)(end - begin), st_dtype_name(t->dtype),
                         (unsigned long long)bytes);
    t->data = data + begin;
    return 0;
}

static int cmp_by_data(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Tensors of one file must not share bytes: an overlapping header is a corrupt or hostile file. */
static int check_overlap(struct st_set *s, int first, struct st_file *f, struct error *err)
{
    int n = s->n_tensors - first;
    if (n < 2)
        return 0; /* also: a header without tensors leaves s->tensors NULL, not to be offset or copied */
    struct st_tensor *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted)
        return error_set(err, "out of memory");
    memcpy(sorted, s->tensors + first, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_by_data);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++) {
        const uint8_t *prev_end = (const uint8_t *)sorted[i - 1].data +
                                  sorted[i - 1].n_elems * (int64_t)st_dtype_size(sorted[i - 1].dtype);
        if ((const uint8_t *)sorted[i].data < prev_end)
            rc = error_set(err, "%s: tensors %s and %s overlap", f->path, sorted[i - 1].name,
                           sorted[i].name);
    }
    free(sorted);
    return rc;
}

static int parse_file(struct st_set *s, struct st_file *f, struct error *err)
{
    if (f->size < 8)
        return error_set(err, "%s: %zu bytes is too short for a safetensors file", f->path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map[i];
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8)
        return error_set(err, "%s: header length %llu does not fit the file (%zu bytes)", f->path,
                         (unsigned long long)hlen, f->size);
    json_error_t jerr;
    json_t *h = json_loadb((const char *)f->map + 8, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(h)) {
        json_decref(h);
        return error_set(err, "%s: header is not a JSON object (%s)", f->path, jerr.text);
    }
    int first = s->n_tensors, rc = 0;
    const char *name;
    json_t *entry;
    json_object_foreach(h, name, entry)
    {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if (st_find(s, name)) {
            rc = error_set(err, "%s: tensor %s appears in more than one file", f->path, name);
            break;
        }
        rc = add_tensor(s, f, name, entry, f->map + 8 + hlen, f->size - 8 - hlen, err);
        if (rc < 0)
            break;
    }
    json_decref(h);
    return rc < 0 ? rc : check_overlap(s, first, f, err);
}

static int open_one(struct st_set *s, const char *path, struct error *err)
{
    if (s->n_files == ST_MAX_FILES)
        return error_set(err, "more than %d safetensors shards", ST_MAX_FILES);
    struct st_file *f = &s->files[s->n_files++];
    if (map_file(f, path, err) < 0)
        return -1;
    return parse_file(s, f, err);
}

static int open_index(struct st_set *s, const char *dir, const char *index, struct error *err)
{
    json_error_t jerr;
    json_t *root = mf_load_json(index, 0, &jerr);
    if (!root)
        return error_set(err, "%s: %s", index, jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return error_set(err, "%s: no \"weight_map\" object", index);
    }
    const char *tensor;
    json_t *file;
    int rc = 0;
    char path[4096];
    json_object_foreach(map, tensor, file)
    {
        /* Shard names come from a file someone downloaded: plain names of files in the folder. */
        if (!json_is_string(file) || !mf_name_ok(json_string_value(file), ".safetensors")) {
            rc = error_set(err, "%s: weight_map[\"%.200s\"] = %.200s%s%s is not a plain *.safetensors file name "
                                "in the model folder", index, tensor, json_is_string(file) ? "\"" : "",
                           json_is_string(file) ? json_string_value(file) : "(not a string)",
                           json_is_string(file) ? "\"" : "");
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(file));
        int seen = 0;
        for (int i = 0; i < s->n_files && !seen; i++)
            seen = strcmp(s->files[i].path, path) == 0;
        if (!seen && (rc = open_one(s, path, err)) < 0)
            break;
    }
    json_object_foreach(map, tensor, file)
    {
        if (rc == 0 && !st_find(s, tensor))
            rc = error_set(err, "%s names tensor %s, but %s does not contain it", index, tensor,
                           json_string_value(file));
    }
    json_decref(root);
    return rc;
}

struct st_set *st_open_buffer(const void *data, size_t size, const char *name, struct error *err)
{
    struct st_set *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, "out of memory");
        return NULL;
    }
    struct st_file *f = &s->files[s->n_files++];
    *f = (struct st_file){.path = strdup(name), .map = data, .size = size, .borrowed = true};
    if (!f->path || parse_file(s, f, err) < 0) {
        if (!f->path)
            error_set(err, "out of memory");
        st_close(s);
        return NULL;
    }
    return s;
}

struct st_set *st_open_dir(const char *dir, struct error *err)
{
    struct st_set *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, "out of memory");
        return NULL;
    }
    char single[4096], index[4096];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    int rc;
    if (access(single, F_OK) == 0)
        rc = open_one(s, single, err);
    else if (access(index, F_OK) == 0)
        rc = open_index(s, dir, index, err);
    else
        rc = error_set(err, "%s: neither model.safetensors nor model.safetensors.index.json is there", dir);
    if (rc < 0) {
        st_close(s);
        return NULL;
    }
    return s;
}

void st_close(struct st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].map && !s->files[i].borrowed)
            munmap((void *)s->files[i].map, s->files[i].size);
        free(s->files[i].path);
    }
    for (int i = 0; i < s->n_tensors; i++)
        free((char *)s->tensors[i].name);
    free(s->tensors);
    free(s->slots);
    free(s);
}

const struct st_tensor *st_find(const struct st_set *s, const char *name)
{
    if (!s->n_slots)
        return NULL;
    int i = s->slots[slot_of(s, name)];
    return i ? &s->tensors[i - 1] : NULL;
}

int st_count(const struct st_set *s)
{
    return s->n_tensors;
}

const struct st_tensor *st_at(const struct st_set *s, int i)
{
    return &s->tensors[i];
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | man << 13;
    else if (exp)
        bits = sign | (exp + 112) << 23 | man << 13;
    else if (man) { /* subnormal: renormalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    } else
        bits = sign;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void st_to_f32(float *dst, const void *src, enum st_dtype t, int64_t n)
{
    const uint8_t *p = src;
    if (t == ST_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        if (t == ST_F16) {
            dst[i] = f16_to_f32(h);
        } else {
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
    }
}
