/* safetensors.c — fuzz harness: model files someone downloaded (or crafted). First byte even: the
 * rest is a whole .safetensors file (8-byte header length, JSON header, data) through st_open_buffer,
 * the parser st_open_dir uses for every mapped file. Odd: the rest is model.safetensors.index.json,
 * written into a scratch folder that holds two valid shards and one corrupt one, through st_open_dir.
 *
 * Asserts beyond "no crash, no leak": a refusal has a message; an accepted file hands out only
 * tensors that lie wholly inside the data section, match dtype × shape, do not overlap, have unique
 * names that st_find finds; an accepted index names only tensors that were found. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/engine/safetensors.h"

static char scratch[256];

static void fail(const char *what)
{
    fprintf(stderr, "safetensors harness: %s\n", what);
    abort();
}

static void check_tensor(const struct st_set *s, const struct st_tensor *t, const uint8_t *lo,
                         const uint8_t *hi)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    size_t bytes = (size_t)t->n_elems * st_dtype_size(t->dtype);
    const uint8_t *p = t->data;
    if (t->n_dims < 0 || t->n_dims > ST_MAX_DIMS || n != t->n_elems)
        fail("shape and element count disagree");
    if (p < lo || p > hi || bytes > (size_t)(hi - p))
        fail("a tensor reaches outside the data section");
    if (st_find(s, t->name) != t)
        fail("st_find does not find a tensor by its name (duplicate?)");
}

static void check_no_overlap(const struct st_set *s)
{
    for (int i = 0; i < st_count(s); i++)
        for (int j = i + 1; j < st_count(s); j++) {
            const struct st_tensor *a = st_at(s, i), *b = st_at(s, j);
            const uint8_t *pa = a->data, *pb = b->data;
            size_t na = (size_t)a->n_elems * st_dtype_size(a->dtype), nb = (size_t)b->n_elems * st_dtype_size(b->dtype);
            if (na && nb && pa < pb + nb && pb < pa + na)
                fail("two tensors share bytes");
        }
}

static void one_file(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so a read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct error err = {{0}};
    struct st_set *s = st_open_buffer(copy, size, "fuzz.safetensors", &err);
    if (s) {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--)
            hlen = hlen << 8 | copy[i];
        for (int i = 0; i < st_count(s) && st_count(s) < 512; i++)
            check_tensor(s, st_at(s, i), copy + 8 + hlen, copy + size);
        if (st_count(s) < 512)
            check_no_overlap(s);
        st_close(s);
    } else if (!err.msg[0]) {
        fail("refused without a message");
    }
    free(copy);
}

static void index_file(const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", scratch);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        fail("cannot write the index into the scratch folder");
    struct error err = {{0}};
    struct st_set *s = st_open_dir(scratch, &err);
    if (!s) {
        if (!err.msg[0])
            fail("refused without a message");
        return;
    }
    json_t *root = json_loadb((const char *)data, size, 0, NULL), *file;
    const char *name;
    json_object_foreach(json_object_get(root, "weight_map"), name, file)
        if (!st_find(s, name))
            fail("an accepted index names a tensor that was not found");
    json_decref(root);
    st_close(s);
}

/* A valid shard with the given tensors, each F32 [2] (8 bytes), packed in order. */
static void write_shard(const char *name, const char *const *tensors, int n)
{
    char hdr[1024], path[512];
    int len = snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++)
        len += snprintf(hdr + len, sizeof hdr - (size_t)len,
                        ",\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%d,%d]}", tensors[i], 8 * i,
                        8 * i + 8);
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "}");
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    uint64_t hlen = (uint64_t)len;
    uint8_t le[8], zero[8] = {0};
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(hlen >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < n; i++)
        fwrite(zero, 1, 8, f);
    fclose(f);
}

static void remove_scratch(void)
{
    static const char *const files[] = {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors", "corrupt.safetensors"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", scratch, files[i]);
        unlink(path);
    }
    rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/pdserve-fuzz-st.XXXXXX", tmp);
    if (!mkdtemp(scratch))
        fail("cannot make a scratch folder");
    atexit(remove_scratch);
    static const char *const a[] = {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"};
    static const char *const b[] = {"model.norm.weight", "lm_head.weight"};
    write_shard("model-00001-of-00002.safetensors", a, 2);
    write_shard("model-00002-of-00002.safetensors", b, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/corrupt.safetensors", scratch);
    FILE *f = fopen(path, "wb");
    fputs("\xff\xff\xff\xff\xff\xff\xff\x7f{", f);
    fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        index_file(data + 1, size - 1);
    else
        one_file(data + 1, size - 1);
    return 0;
}
