/* safetensors_out.c — writes the weights as Hugging Face does: model.safetensors, or with --shards N
 * the files model-0000k-of-0000N.safetensors plus model.safetensors.index.json. Each file is an 8-byte
 * little-endian header length, a JSON header ({"__metadata__":{"format":"pt"}, name: {dtype, shape,
 * data_offsets}}) padded with spaces to a multiple of 8 bytes, then the tensors back to back.
 * Tensors are generated and converted in chunks straight into the file, so memory stays small. */
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util/log.h"
#include "mkmodel.h"

#define CHUNK (1 << 20)

struct plan {
    struct mk_tensor *t;
    int n;
    int *shard;      /* shard index of each tensor */
};

static void add(struct plan *p, const char *name, int64_t rows, int64_t cols)
{
    struct mk_tensor *t = &p->t[p->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
}

/* add(p, "model.layers.L.<suffix>", rows, cols) */
static void add_l(struct plan *p, int l, const char *suffix, int64_t rows, int64_t cols)
{
    char name[96];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    add(p, name, rows, cols);
}

/* Phi3 stores q/k/v and gate/up fused; Gemma has four norms per layer; Qwen3/Gemma3 q/k norms. */
static void add_layer(struct plan *p, const struct mk_config *c, int l)
{
    static const char *const qkv[] = {"q", "k", "v"};
    char name[96];
    int64_t q_out = (int64_t)c->heads * c->head_dim, kv_out = (int64_t)c->kv_heads * c->head_dim;
    bool gemma = mk_is_gemma(c), phi3 = strcmp(c->arch, "phi3") == 0;
    add_l(p, l, "input_layernorm.weight", c->hidden, 0);
    if (phi3) {
        add_l(p, l, "self_attn.qkv_proj.weight", q_out + 2 * kv_out, c->hidden);
        add_l(p, l, "self_attn.o_proj.weight", c->hidden, q_out);
        add_l(p, l, "post_attention_layernorm.weight", c->hidden, 0);
        add_l(p, l, "mlp.gate_up_proj.weight", 2 * (int64_t)c->intermediate, c->hidden);
        add_l(p, l, "mlp.down_proj.weight", c->hidden, c->intermediate);
        return;
    }
    for (int i = 0; i < 3; i++) {
        int64_t out = i == 0 ? q_out : kv_out;
        snprintf(name, sizeof name, "model.layers.%d.self_attn.%s_proj.weight", l, qkv[i]);
        add(p, name, out, c->hidden);
        if (c->qkv_bias) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%s_proj.bias", l, qkv[i]);
            add(p, name, out, 0);
        }
    }
    if (!strcmp(c->arch, "qwen3") || !strcmp(c->arch, "gemma3")) {
        add_l(p, l, "self_attn.q_norm.weight", c->head_dim, 0);
        add_l(p, l, "self_attn.k_norm.weight", c->head_dim, 0);
    }
    add_l(p, l, "self_attn.o_proj.weight", c->hidden, q_out);
    add_l(p, l, "post_attention_layernorm.weight", c->hidden, 0);
    if (gemma)
        add_l(p, l, "pre_feedforward_layernorm.weight", c->hidden, 0);
    snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
    add(p, name, c->intermediate, c->hidden);
    snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
    add(p, name, c->intermediate, c->hidden);
    snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
    add(p, name, c->hidden, c->intermediate);
    if (gemma)
        add_l(p, l, "post_feedforward_layernorm.weight", c->hidden, 0);
}

static int64_t n_elems(const struct mk_tensor *t)
{
    return t->cols > 0 ? t->rows * t->cols : t->rows;
}

static size_t dtype_size(enum mk_dtype d)
{
    return d == MK_F32 ? 4 : 2;
}

static const char *dtype_name(enum mk_dtype d)
{
    return d == MK_F32 ? "F32" : d == MK_F16 ? "F16" : "BF16";
}

/* Lists the tensors and spreads them over the shards by size, in order, none empty. */
static int plan_build(struct plan *p, const struct mk_config *c, int shards, struct error *err)
{
    p->t = calloc((size_t)c->layers * 16 + 4, sizeof *p->t);
    p->shard = calloc((size_t)c->layers * 16 + 4, sizeof *p->shard);
    p->n = 0;
    if (!p->t || !p->shard)
        return error_set(err, "out of memory listing %d layers", c->layers);
    add(p, "model.embed_tokens.weight", c->vocab, c->hidden);
    for (int l = 0; l < c->layers; l++)
        add_layer(p, c, l);
    add(p, "model.norm.weight", c->hidden, 0);
    if (!c->tie)
        add(p, "lm_head.weight", c->vocab, c->hidden);
    if (shards > p->n)
        return error_set(err, "--shards %d: the model has only %d tensors", shards, p->n);
    double total = 0, done = 0;
    for (int i = 0; i < p->n; i++)
        total += (double)n_elems(&p->t[i]);
    int s = 0;
    for (int i = 0; i < p->n; i++) {
        /* Move on once this shard has its share, but leave one tensor for each later shard. */
        if (s < shards - 1 && i > 0 && p->shard[i - 1] == s &&
            (done >= total * (s + 1) / shards || p->n - i == shards - 1 - s))
            s++;
        p->shard[i] = s;
        done += (double)n_elems(&p->t[i]);
    }
    return 0;
}

static json_t *header_json(const struct plan *p, int shard, enum mk_dtype d)
{
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    json_int_t off = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->shard[i] != shard)
            continue;
        const struct mk_tensor *t = &p->t[i];
        json_int_t bytes = (json_int_t)(n_elems(t) * (int64_t)dtype_size(d));
        json_t *shape = t->cols > 0 ? json_pack("[I,I]", (json_int_t)t->rows, (json_int_t)t->cols)
                                    : json_pack("[I]", (json_int_t)t->rows);
        json_object_set_new(h, t->name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype_name(d),
                                                  "shape", shape, "data_offsets", off, off + bytes));
        off += bytes;
    }
    return h;
}

static int write_header(FILE *f, json_t *h, const char *path, struct error *err)
{
    char *text = json_dumps(h, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (!text)
        return error_set(err, "%s: cannot encode the header", path);
    size_t len = strlen(text);
    size_t padded = (len + 8 + 7) / 8 * 8 - 8; /* data starts 8-byte aligned */
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    free(text);
    return ok ? 0 : error_set(err, "%s: write failed: %s", path, strerror(errno));
}

/* Generates tensor t in chunks, converts each to the file's dtype and appends it to f. */
static int write_tensor(FILE *f, const struct mk_config *c, const struct mk_specials *sp,
                        uint64_t seed, const struct mk_tensor *t, float *buf, uint16_t *half,
                        const char *path, struct error *err)
{
    int64_t total = n_elems(t);
    for (int64_t first = 0; first < total; first += CHUNK) {
        size_t n = (size_t)(total - first < CHUNK ? total - first : CHUNK);
        mk_tensor_fill(c, sp, seed, t, first, buf, n);
        size_t wrote;
        if (c->dtype == MK_F32) {
            wrote = fwrite(buf, 4, n, f);
        } else {
            for (size_t i = 0; i < n; i++)
                half[i] = c->dtype == MK_F16 ? mk_f32_to_f16(buf[i]) : mk_f32_to_bf16(buf[i]);
            wrote = fwrite(half, 2, n, f);
        }
        if (wrote != n)
            return error_set(err, "%s: writing tensor %s failed: %s", path, t->name, strerror(errno));
    }
    return 0;
}

static int write_shard(const char *path, const struct plan *p, int shard, const struct mk_config *c,
                       const struct mk_specials *sp, uint64_t seed, struct error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return error_set(err, "%s: cannot create: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 4 << 20);
    float *buf = malloc(CHUNK * sizeof *buf);
    uint16_t *half = malloc(CHUNK * sizeof *half);
    json_t *h = header_json(p, shard, c->dtype);
    int rc = !buf || !half ? error_set(err, "out of memory") : write_header(f, h, path, err);
    for (int i = 0; rc == 0 && i < p->n; i++)
        if (p->shard[i] == shard)
            rc = write_tensor(f, c, sp, seed, &p->t[i], buf, half, path, err);
    json_decref(h);
    free(buf);
    free(half);
    if (fclose(f) != 0 && rc == 0)
        rc = error_set(err, "%s: write failed: %s", path, strerror(errno));
    return rc;
}

static int write_index(const char *dir, const struct plan *p, int shards, enum mk_dtype d,
                       struct error *err)
{
    json_t *map = json_object();
    json_int_t total = 0;
    for (int i = 0; i < p->n; i++) {
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", p->shard[i] + 1, shards);
        json_object_set_new(map, p->t[i].name, json_string(file));
        total += (json_int_t)(n_elems(&p->t[i]) * (int64_t)dtype_size(d));
    }
    json_t *root = json_pack("{s:{s:I},s:o}", "metadata", "total_size", total, "weight_map", map);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc == 0 ? 0 : error_set(err, "%s: cannot write: %s", path, strerror(errno));
}

/* Removes weight files an earlier run left in dir that this layout does not have: loaders prefer
 * model.safetensors.index.json when present, so a stale one would silently load old shards. */
static int remove_stale(const char *dir, int shards, struct error *err)
{
    char pattern[4096], keep[64];
    glob_t g;
    snprintf(keep, sizeof keep, "-of-%05d.safetensors", shards);
    snprintf(pattern, sizeof pattern, "%s/model-*-of-*.safetensors", dir);
    int rc = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *tail = strstr(g.gl_pathv[i], "-of-");
            if (shards > 1 && tail && strcmp(tail, keep) == 0)
                continue;
            if (unlink(g.gl_pathv[i]) != 0 && rc == 0)
                rc = error_set(err, "%s: cannot remove the stale shard: %s", g.gl_pathv[i], strerror(errno));
        }
        globfree(&g);
    }
    const char *other = shards > 1 ? "model.safetensors" : "model.safetensors.index.json";
    snprintf(pattern, sizeof pattern, "%s/%s", dir, other);
    if (rc == 0 && unlink(pattern) != 0 && errno != ENOENT)
        rc = error_set(err, "%s: cannot remove the stale file: %s", pattern, strerror(errno));
    return rc;
}

int mk_write_weights(const char *dir, const struct mk_config *c, const struct mk_specials *sp,
                     uint64_t seed, int shards, struct error *err)
{
    struct plan p = {0};
    int rc = plan_build(&p, c, shards, err);
    if (rc == 0)
        rc = remove_stale(dir, shards, err);
    for (int s = 0; rc == 0 && s < shards; s++) {
        char path[4096];
        if (shards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", dir);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, shards);
        rc = write_shard(path, &p, s, c, sp, seed, err);
    }
    if (rc == 0 && shards > 1)
        rc = write_index(dir, &p, shards, c->dtype, err);
    free(p.t);
    free(p.shard);
    return rc;
}
