/* gguf.c — mapping and validating a GGUF file (see gguf.h).
 *
 * Layout (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count; the
 * metadata as (string key, u32 type, value); the tensor infos as (string name, u32 n_dims, u64 dims
 * [ne0 = the fastest-varying], u32 ggml type, u64 offset); padding to general.alignment (32); the data,
 * each tensor at its offset from the start of the data, aligned. A string is u64 length + bytes.
 * Nothing is trusted before it is shown to lie inside the file: counts are bounded by the bytes left,
 * every tensor's byte range by the data section, and no two tensors may overlap. */
#include "common/engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util/log.h"
#include "common/util/modelfile.h"

#define GGUF_MAX_KEY 65535
#define GGUF_MAX_TENSORS (1 << 20)
#define GGUF_MAX_KV 4096 /* real files have ~40; keys are compared pairwise for duplicates */

/* ggml type ids of the formats we read; every other id is refused by its name. */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_BF16 = 30 };
#define Q8_0_BLOCK 32
#define Q8_0_BYTES 34 /* f16 scale + 32 int8 */

struct gguf_file {
    char *path;
    const uint8_t *map;
    size_t size;
    bool borrowed;
    uint32_t version;
    struct gguf_kv *kv;
    uint64_t n_kv;
    struct st_tensor *tensors;
    uint64_t n_tensors;
    char **raw;                 /* [n_tensors] the names as stored (blk.0.attn_q.weight), for messages */
    char **label;               /* [n_tensors] "FILE: blk.0.attn_q.weight", each tensor's st_tensor.file */
    struct st_tensor **by_name; /* sorted by name, for gguf_find */
    void **owned; /* widened or un-permuted tensor data */
    int n_owned;
    char arch[64];
    bool meta_only; /* gguf_open_meta: shapes and metadata, tensor data not prepared */
};

/* A bounds-checked cursor over the file. */
struct rd {
    const uint8_t *p, *end;
};

static bool rd_take(struct rd *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    *out = r->p;
    r->p += n;
    return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
    const uint8_t *p;
    if (!rd_take(r, 4, &p))
        return false;
    memcpy(v, p, 4);
    return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
    const uint8_t *p;
    if (!rd_take(r, 8, &p))
        return false;
    memcpy(v, p, 8);
    return true;
}

static bool rd_str(struct rd *r, const uint8_t **s, uint64_t *len)
{
    return rd_u64(r, len) && *len <= (uint64_t)(r->end - r->p) && rd_take(r, (size_t)*len, s);
}

static size_t type_size(enum gguf_type t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GGUF_N_TYPES ? sz[t] : 0;
}

static const char *ggml_type_name(uint32_t t)
{
    static const char *const names[] = {
        "F32", "F16", "Q4_0", "Q4_1", "type 4", "type 5", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "type 31", "type 32",
        "type 33", "TQ1_0", "TQ2_0", "type 36", "type 37", "type 38", "MXFP4"};
    return t < sizeof names / sizeof *names ? names[t] : "an unknown type";
}

/* One metadata value at r; arrays hold scalars or strings (an array of arrays is refused). */
static int read_value(struct rd *r, struct gguf_kv *kv, const char *path, struct error *err)
{
    uint32_t type;
    if (!rd_u32(r, &type) || type >= GGUF_N_TYPES)
        return error_set(err, "%s: metadata %s: bad value type", path, kv->key);
    kv->type = type;
    kv->p = r->p;
    if (type == GGUF_STRING) {
        if (!rd_str(r, &kv->p, &kv->n))
            return error_set(err, "%s: metadata %s: string runs past the end of the file", path, kv->key);
    } else if (type == GGUF_ARRAY) {
        uint32_t elem;
        if (!rd_u32(r, &elem) || elem >= GGUF_N_TYPES || elem == GGUF_ARRAY || !rd_u64(r, &kv->n))
            return error_set(err, "%s: metadata %s: bad array header", path, kv->key);
        kv->elem = elem;
        kv->p = r->p;
        if (elem == GGUF_STRING) {
            const uint8_t *s;
            uint64_t len;
            for (uint64_t i = 0; i < kv->n; i++)
                if (!rd_str(r, &s, &len))
                    return error_set(err, "%s: metadata %s: string %llu of %llu runs past the end of the file",
                                     path, kv->key, (unsigned long long)i, (unsigned long long)kv->n);
        } else {
            const uint8_t *p;
            uint64_t bytes;
            if (__builtin_mul_overflow(kv->n, type_size(elem), &bytes) || !rd_take(r, bytes, &p))
                return error_set(err, "%s: metadata %s: array of %llu runs past the end of the file", path,
                                 kv->key, (unsigned long long)kv->n);
        }
    } else {
        const uint8_t *p;
        if (!rd_take(r, type_size(type), &p))
            return error_set(err, "%s: metadata %s: value runs past the end of the file", path, kv->key);
    }
    kv->end = r->p;
    return 0;
}

static int read_metadata(struct gguf_file *g, struct rd *r, struct error *err)
{
    /* every pair takes at least 8 (key length) + 4 (type) + 1 bytes */
    if (g->n_kv > (uint64_t)(r->end - r->p) / 13 || g->n_kv > GGUF_MAX_KV)
        return error_set(err, "%s: header claims %llu metadata pairs, more than the file can hold (or %d)",
                         g->path, (unsigned long long)g->n_kv, GGUF_MAX_KV);
    if (!(g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv)))
        return error_set(err, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const uint8_t *k;
        uint64_t len;
        if (!rd_str(r, &k, &len) || len == 0 || len > GGUF_MAX_KEY || memchr(k, 0, (size_t)len))
            return error_set(err, "%s: metadata key %llu is not a string inside the file", g->path,
                             (unsigned long long)i);
        if (!(g->kv[i].key = strndup((const char *)k, (size_t)len)))
            return error_set(err, "out of memory");
        if (read_value(r, &g->kv[i], g->path, err) < 0)
            return -1;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->kv[j].key, g->kv[i].key) == 0)
                return error_set(err, "%s: metadata key %s appears twice", g->path, g->kv[i].key);
    }
    return 0;
}

/* llama.cpp's names → Hugging Face's. Gemma's norms sit elsewhere in the layer; Phi3's ffn_up is the
 * fused gate_up. Unknown names are kept (and never asked for). */
static void hf_name(const char *arch, const char *in, char *out, size_t cap)
{
    static const char *const top[][2] = {{"token_embd.weight", "model.embed_tokens.weight"},
                                         {"output_norm.weight", "model.norm.weight"},
                                         {"output.weight", "lm_head.weight"}};
    bool gemma = !strncmp(arch, "gemma", 5), phi3 = !strcmp(arch, "phi3");
    const char *const layer[][2] = {
        {"attn_norm", "input_layernorm"},
        {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"},
        {"attn_qkv", "self_attn.qkv_proj"},
        {"attn_output", "self_attn.o_proj"},
        {"attn_q_norm", "self_attn.q_norm"},
        {"attn_k_norm", "self_attn.k_norm"},
        {"attn_post_norm", "post_attention_layernorm"},
        {"ffn_norm", gemma ? "pre_feedforward_layernorm" : "post_attention_layernorm"},
        {"ffn_post_norm", "post_feedforward_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},
        {"ffn_up", phi3 ? "mlp.gate_up_proj" : "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"},
    };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (!strcmp(in, top[i][0])) {
            snprintf(out, cap, "%s", top[i][1]);
            return;
        }
    unsigned l;
    int n = 0;
    if (sscanf(in, "blk.%u.%n", &l, &n) == 1 && n > 0) {
        const char *rest = in + n, *dot = strrchr(rest, '.');
        for (size_t i = 0; dot && i < sizeof layer / sizeof *layer; i++)
            if (strlen(layer[i][0]) == (size_t)(dot - rest) && !strncmp(rest, layer[i][0], (size_t)(dot - rest))) {
                snprintf(out, cap, "model.layers.%u.%s%s", l, layer[i][1], dot);
                return;
            }
    }
    snprintf(out, cap, "%s", in);
}

static int read_tensor_info(struct gguf_file *g, struct rd *r, uint64_t i, uint64_t *offset, uint32_t *type,
                            struct error *err)
{
    struct st_tensor *t = &g->tensors[i];
    const uint8_t *s;
    uint64_t len;
    uint32_t n_dims = 0;
    if (!rd_str(r, &s, &len) || len == 0 || len > 255 || memchr(s, 0, (size_t)len))
        return error_set(err, "%s: tensor info %llu: name is not a string inside the file", g->path,
                         (unsigned long long)i);
    char raw[256], name[300];
    memcpy(raw, s, (size_t)len);
    raw[len] = 0;
    hf_name(g->arch, raw, name, sizeof name);
    if (!(t->name = strdup(name)) || !(g->raw[i] = strdup(raw)) ||
        asprintf(&g->label[i], "%s: %s", g->path, raw) < 0)
        return error_set(err, "out of memory");
    t->file = g->label[i];
    if (!rd_u32(r, &n_dims) || n_dims < 1 || n_dims > ST_MAX_DIMS)
        return error_set(err, "%s: tensor %s: %u dimensions (1 to %d are valid)", g->path, raw, n_dims, ST_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t n = 1, dim;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (!rd_u64(r, &dim) || dim == 0 || dim > (1ull << 40))
            return error_set(err, "%s: tensor %s: dimension %u is not a valid size", g->path, raw, d);
        t->shape[n_dims - 1 - d] = (int64_t)dim; /* GGUF lists ne0 (columns) first */
        if (__builtin_mul_overflow(n, dim, &n) || n > (1ull << 40))
            return error_set(err, "%s: tensor %s: shape has too many elements", g->path, raw);
    }
    t->n_elems = (int64_t)n;
    if (!rd_u32(r, type) || !rd_u64(r, offset))
        return error_set(err, "%s: tensor %s: tensor info runs past the end of the file", g->path, raw);
    if (*type != GGML_F32 && *type != GGML_F16 && *type != GGML_BF16 && *type != GGML_Q8_0)
        return error_set(err, "%s: tensor %s has type %s; pdserve reads F32, F16, BF16 and Q8_0 GGUF tensors "
                              "(requantize or convert the model)", g->path, raw, ggml_type_name(*type));
    if (*type == GGML_Q8_0 && t->shape[n_dims - 1] % Q8_0_BLOCK != 0)
        return error_set(err, "%s: tensor %s: Q8_0 rows of %lld values are not whole blocks of 32", g->path,
                         raw, (long long)t->shape[n_dims - 1]);
    return 0;
}

static uint64_t tensor_bytes(const struct st_tensor *t, uint32_t type)
{
    switch (type) {
    case GGML_F32: return (uint64_t)t->n_elems * 4;
    case GGML_Q8_0: return (uint64_t)t->n_elems / Q8_0_BLOCK * Q8_0_BYTES;
    default: return (uint64_t)t->n_elems * 2;
    }
}

static float *owned(struct gguf_file *g, size_t bytes)
{
    void **o = realloc(g->owned, (size_t)(g->n_owned + 1) * sizeof *o), *buf = NULL;
    if (!o)
        return NULL;
    g->owned = o;
    if (posix_memalign(&buf, 64, bytes ? bytes : 1) != 0)
        return NULL;
    g->owned[g->n_owned++] = buf;
    return buf;
}

/* Q8_0 → F32: each block of 32 is an f16 scale d and 32 int8 q; value = d · q. */
static int widen_q8_0(struct gguf_file *g, struct st_tensor *t, const uint8_t *src, struct error *err)
{
    float *dst = owned(g, (size_t)t->n_elems * sizeof(float));
    if (!dst)
        return error_set(err, "out of memory widening %s", t->name);
    for (int64_t b = 0; b < t->n_elems / Q8_0_BLOCK; b++) {
        const uint8_t *blk = src + b * Q8_0_BYTES;
        float d;
        st_to_f32(&d, blk, ST_F16, 1);
        for (int j = 0; j < Q8_0_BLOCK; j++)
            dst[b * Q8_0_BLOCK + j] = d * (float)(int8_t)blk[2 + j];
    }
    t->data = dst;
    t->dtype = ST_F32;
    return 0;
}

/* llama.cpp's converter reorders each head's q/k rows from (pair half, i) to (i, pair half) for the
 * "llama" architecture; put them back in Hugging Face's rotate_half order. */
static int unpermute(struct gguf_file *g, struct st_tensor *t, int n_heads, struct error *err)
{
    int64_t rows = t->shape[0], row_bytes = t->n_elems / rows * (int64_t)st_dtype_size(t->dtype);
    if (n_heads <= 0 || rows % (2 * n_heads) != 0)
        return error_set(err, "%s: tensor %s: %lld rows do not split into %d heads of RoPE pairs", g->path,
                         g->raw[t - g->tensors], (long long)rows, n_heads);
    uint8_t *dst = (uint8_t *)owned(g, (size_t)(rows * row_bytes));
    if (!dst)
        return error_set(err, "out of memory");
    int64_t hd = rows / n_heads, half = hd / 2;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t s = 0; s < 2; s++)
            for (int64_t j = 0; j < half; j++)
                memcpy(dst + (h * hd + s * half + j) * row_bytes,
                       (const uint8_t *)t->data + (h * hd + 2 * j + s) * row_bytes, (size_t)row_bytes);
    t->data = dst;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Byte ranges must not overlap: sorted [begin, end, index] triples, neighbours compared. */
static int check_ranges(struct gguf_file *g, uint64_t (*range)[3], struct error *err)
{
    qsort(range, (size_t)g->n_tensors, sizeof *range, cmp_range);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (range[i][0] < range[i - 1][1])
            return error_set(err, "%s: tensors %s and %s overlap in the file", g->path,
                             g->raw[range[i - 1][2]], g->raw[range[i][2]]);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const struct st_tensor *const *)a)->name, (*(const struct st_tensor *const *)b)->name);
}

/* The name index gguf_find bisects; two tensors with one (Hugging Face) name are refused. */
static int index_names(struct gguf_file *g, struct error *err)
{
    if (!(g->by_name = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *g->by_name)))
        return error_set(err, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        g->by_name[i] = &g->tensors[i];
    qsort(g->by_name, (size_t)g->n_tensors, sizeof *g->by_name, cmp_name);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->by_name[i - 1]->name, g->by_name[i]->name) == 0)
            return error_set(err, "%s: tensor %s appears twice", g->path, g->raw[g->by_name[i] - g->tensors]);
    return 0;
}

static int read_tensors(struct gguf_file *g, struct rd *r, struct error *err)
{
    uint64_t n = g->n_tensors, alignment = 32;
    int64_t a;
    if (gguf_get_int(g, "general.alignment", &a)) {
        if (a <= 0 || a > (1 << 20) || (a & (a - 1)))
            return error_set(err, "%s: general.alignment %lld is not a power of two", g->path, (long long)a);
        alignment = (uint64_t)a;
    }
    if (n > GGUF_MAX_TENSORS || n > (uint64_t)(r->end - r->p) / 24)
        return error_set(err, "%s: header claims %llu tensors, more than the file can hold", g->path,
                         (unsigned long long)n);
    g->tensors = calloc(n ? n : 1, sizeof *g->tensors);
    g->raw = calloc(n ? n : 1, sizeof *g->raw);
    g->label = calloc(n ? n : 1, sizeof *g->label);
    uint64_t(*range)[3] = calloc(n ? n : 1, sizeof *range);
    uint32_t *types = calloc(n ? n : 1, sizeof *types);
    int rc = 0;
    if (!g->tensors || !g->raw || !g->label || !range || !types)
        rc = error_set(err, "out of memory");
    for (uint64_t i = 0; rc == 0 && i < n; i++)
        rc = read_tensor_info(g, r, i, &range[i][0], &types[i], err);
    uint64_t data_start = (uint64_t)(r->p - g->map);
    data_start = (data_start + alignment - 1) / alignment * alignment;
    if (rc == 0 && n > 0 && data_start > g->size)
        rc = error_set(err, "%s: the data section starts past the end of the file", g->path);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        struct st_tensor *t = &g->tensors[i];
        uint64_t off = range[i][0], bytes = tensor_bytes(t, types[i]);
        if (off % alignment)
            rc = error_set(err, "%s: tensor %s: offset %llu is not a multiple of the alignment %llu", g->path,
                           g->raw[i], (unsigned long long)off, (unsigned long long)alignment);
        else if (off > g->size - data_start || bytes > g->size - data_start - off)
            rc = error_set(err, "%s: tensor %s: bytes [%llu, %llu) of the data section run past the end of the "
                                "file (%llu data bytes)", g->path, g->raw[i], (unsigned long long)off,
                           (unsigned long long)(off + bytes), (unsigned long long)(g->size - data_start));
        else
            t->data = g->map + data_start + off;
        t->dtype = types[i] == GGML_F32 ? ST_F32 : types[i] == GGML_BF16 ? ST_BF16 : ST_F16;
        range[i][1] = off + bytes;
        range[i][2] = i;
    }
    if (rc == 0)
        rc = check_ranges(g, range, err);
    if (rc == 0)
        rc = index_names(g, err);
    int n_q8 = 0;
    for (uint64_t i = 0; rc == 0 && !g->meta_only && i < n; i++)
        if (types[i] == GGML_Q8_0 && (rc = widen_q8_0(g, &g->tensors[i], g->tensors[i].data, err)) == 0)
            n_q8++;
    if (rc == 0 && n_q8)
        log_info("%s: %d Q8_0 tensors widened to float32 at load (memory and bandwidth are those of an "
                 "F32 model unless --weights q8 quantizes them again)", g->path, n_q8);
    free(range);
    free(types);
    return rc;
}

/* q/k rows of a "llama" GGUF back into Hugging Face's order (other architectures are stored as is). */
static int undo_permutation(struct gguf_file *g, struct error *err)
{
    int64_t heads = 0, kv_heads = 0;
    char key[96];
    if (strcmp(g->arch, "llama") != 0)
        return 0;
    snprintf(key, sizeof key, "%s.attention.head_count", g->arch);
    if (!gguf_get_int(g, key, &heads) || heads <= 0 || heads > (1 << 16))
        return error_set(err, "%s: %s is missing or not a head count", g->path, key);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", g->arch);
    if (!gguf_get_int(g, key, &kv_heads))
        kv_heads = heads;
    if (kv_heads <= 0 || kv_heads > heads)
        return error_set(err, "%s: %s is not a head count", g->path, key);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct st_tensor *t = &g->tensors[i];
        const char *sfx = strstr(t->name, ".self_attn.");
        if (!sfx || strncmp(t->name, "model.layers.", 13) != 0)
            continue;
        sfx += strlen(".self_attn.");
        int h = !strncmp(sfx, "q_proj.", 7) ? (int)heads : !strncmp(sfx, "k_proj.", 7) ? (int)kv_heads : 0;
        if (h && unpermute(g, t, h, err) < 0)
            return -1;
    }
    return 0;
}

static int parse(struct gguf_file *g, struct error *err)
{
    struct rd r = {g->map, g->map + g->size};
    const uint8_t *magic;
    uint32_t version = 0;
    if (!rd_take(&r, 4, &magic) || memcmp(magic, "GGUF", 4) != 0)
        return error_set(err, "%s: a regular file, not a model folder, and not a GGUF file (no \"GGUF\" magic)", g->path);
    if (!rd_u32(&r, &version) || (version != 2 && version != 3))
        return error_set(err, "%s: GGUF version %u is not supported (2 and 3 are)", g->path, version);
    g->version = version;
    if (!rd_u64(&r, &g->n_tensors) || !rd_u64(&r, &g->n_kv))
        return error_set(err, "%s: the GGUF header is truncated", g->path);
    if (read_metadata(g, &r, err) < 0)
        return -1;
    size_t len;
    const char *a = gguf_get_str(g, "general.architecture", &len);
    if (!a || len == 0 || len >= sizeof g->arch || memchr(a, 0, len))
        return error_set(err, "%s: general.architecture is missing or not a short string", g->path);
    memcpy(g->arch, a, len);
    g->arch[len] = 0;
    uint64_t n = g->n_tensors;
    g->n_tensors = 0; /* only what read_tensors filled counts for gguf_close */
    if (n > GGUF_MAX_TENSORS || n > (uint64_t)(r.end - r.p) / 24)
        return error_set(err, "%s: header claims %llu tensors, more than the file can hold", g->path,
                         (unsigned long long)n);
    g->n_tensors = n;
    if (read_tensors(g, &r, err) < 0 || (!g->meta_only && undo_permutation(g, err) < 0))
        return -1;
    return 0;
}

static struct gguf_file *finish_open(struct gguf_file *g, struct error *err)
{
    if (parse(g, err) < 0) {
        gguf_close(g);
        return NULL;
    }
    return g;
}

struct gguf_file *gguf_open_buffer(const void *data, size_t size, const char *name, struct error *err)
{
    struct gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(name))) {
        free(g);
        error_set(err, "out of memory");
        return NULL;
    }
    g->map = data;
    g->size = size;
    g->borrowed = true;
    return finish_open(g, err);
}

bool gguf_is_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    (void)path; /* any regular file: gguf_open says so when it is not a GGUF file */
    return true;
}

static struct gguf_file *open_file(const char *path, bool meta_only, struct error *err)
{
    struct gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        error_set(err, "out of memory");
        return NULL;
    }
    g->meta_only = meta_only;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        error_set(err, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        error_set(err, "%s: %s, not a regular file", path, mf_kind(st.st_mode));
    } else if (st.st_size < 24) {
        error_set(err, "%s: %lld bytes is too short for a GGUF header", path, (long long)st.st_size);
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            error_set(err, "%s: mmap: %s", path, strerror(errno));
        } else {
            g->map = p;
            g->size = (size_t)st.st_size;
        }
    }
    if (fd >= 0)
        close(fd);
    if (!g->map) {
        gguf_close(g);
        return NULL;
    }
    return finish_open(g, err);
}

struct gguf_file *gguf_open(const char *path, struct error *err)
{
    return open_file(path, false, err);
}

struct gguf_file *gguf_open_meta(const char *path, struct error *err)
{
    return open_file(path, true, err);
}

void gguf_close(struct gguf_file *g)
{
    if (!g)
        return;
    if (g->map && !g->borrowed)
        munmap((void *)g->map, g->size);
    for (uint64_t i = 0; g->kv && i < g->n_kv; i++)
        free((char *)g->kv[i].key);
    free(g->kv);
    for (uint64_t i = 0; g->tensors && i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    for (uint64_t i = 0; g->raw && i < g->n_tensors; i++)
        free(g->raw[i]);
    free(g->raw);
    for (uint64_t i = 0; g->label && i < g->n_tensors; i++)
        free(g->label[i]);
    free(g->label);
    free(g->tensors);
    free(g->by_name);
    for (int i = 0; i < g->n_owned; i++)
        free(g->owned[i]);
    free(g->owned);
    free(g->path);
    free(g);
}

bool gguf_in_mapping(const struct gguf_file *g, const void *p)
{
    const uint8_t *b = p;
    return !g->borrowed && g->map && b >= g->map && b < g->map + g->size;
}

const struct st_tensor *gguf_find(const struct gguf_file *g, const char *hf_name)
{
    if (!g->by_name)
        return NULL;
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->by_name[mid]->name, hf_name);
        if (c == 0)
            return g->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int gguf_tensor_count(const struct gguf_file *g)
{
    return (int)g->n_tensors;
}

const char *gguf_arch(const struct gguf_file *g)
{
    return g->arch;
}

const char *gguf_name(const struct gguf_file *g)
{
    return g->path;
}

const struct gguf_kv *gguf_get(const struct gguf_file *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0)
            return &g->kv[i];
    return NULL;
}

static double scalar(enum gguf_type t, const uint8_t *p)
{
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
        uint64_t u64; int64_t i64; double f64;
    } v;
    memcpy(&v, p, type_size(t));
    switch (t) {
    case GGUF_U8: case GGUF_BOOL: return v.u8;
    case GGUF_I8: return v.i8;
    case GGUF_U16: return v.u16;
    case GGUF_I16: return v.i16;
    case GGUF_U32: return v.u32;
    case GGUF_I32: return v.i32;
    case GGUF_F32: return v.f32;
    case GGUF_U64: return (double)v.u64;
    case GGUF_I64: return (double)v.i64;
    case GGUF_F64: return v.f64;
    default: return 0;
    }
}

bool gguf_get_int(const struct gguf_file *g, const char *key, int64_t *out)
{
    const struct gguf_kv *kv = gguf_get(g, key);
    if (!kv || kv->type == GGUF_STRING || kv->type == GGUF_ARRAY || kv->type == GGUF_F32 || kv->type == GGUF_F64)
        return false;
    if (kv->type == GGUF_U64 || kv->type == GGUF_I64) {
        int64_t v;
        memcpy(&v, kv->p, 8);
        if (kv->type == GGUF_U64 && v < 0)
            return false;
        *out = v;
        return true;
    }
    *out = (int64_t)scalar(kv->type, kv->p);
    return true;
}

bool gguf_get_num(const struct gguf_file *g, const char *key, double *out)
{
    const struct gguf_kv *kv = gguf_get(g, key);
    if (!kv || kv->type == GGUF_STRING || kv->type == GGUF_ARRAY)
        return false;
    *out = scalar(kv->type, kv->p);
    return true;
}

const char *gguf_get_str(const struct gguf_file *g, const char *key, size_t *len)
{
    const struct gguf_kv *kv = gguf_get(g, key);
    if (!kv || kv->type != GGUF_STRING)
        return NULL;
    *len = (size_t)kv->n;
    return (const char *)kv->p;
}

const char *gguf_str_next(const uint8_t **cursor, size_t *len)
{
    uint64_t n;
    memcpy(&n, *cursor, 8); /* in bounds: read_value walked every string of the array */
    const char *s = (const char *)*cursor + 8;
    *cursor += 8 + n;
    *len = (size_t)n;
    return s;
}

double gguf_array_num(const struct gguf_kv *kv, uint64_t i)
{
    return scalar(kv->elem, kv->p + i * type_size(kv->elem));
}
