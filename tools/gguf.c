/* gguf.c — pdserve-gguf: writes a model folder's weights as a GGUF file llama.cpp loads, so a benchmark
 * can run both engines on the same weights (`make bench-engine`).
 *
 *   pdserve-gguf --model DIR --out FILE.gguf [--type stored|q8_0]
 *
 * Follows llama.cpp's convert_hf_to_gguf.py for LlamaForCausalLM: tensor names (token_embd, blk.N.attn_q,
 * ...), metadata keys, norm weights as F32, and q_proj/k_proj rows permuted from Hugging Face's
 * rotate-half RoPE layout to the interleaved one llama.cpp's rope expects. Matrices are written in the
 * dtype they are stored in (F32, F16, BF16), or as Q8_0 (blocks of 32: an f16 scale and 32 int8,
 * round-half-away as llama.cpp quantizes). The vocabulary is a placeholder of the right size (SPM:
 * <unk>, <s>, </s>, 256 byte tokens, then filler): the benchmark feeds token ids, never text.
 * Qwen2's biases and llama3 rope scaling are not written: this is for the benchmark's plain Llama
 * shape, and the tool refuses models that need them. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/engine/kernels.h"
#include "common/engine/model.h"
#include "common/engine/safetensors.h"
#include "common/util/log.h"

enum { GGUF_U32 = 4, GGUF_F32 = 6, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_I32 = 5 };
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_BF16 = 30 };
#define ALIGN 32

struct out {
    FILE *f;
    size_t pos;
    int failed;
    uint64_t n_kv; /* written into the header at the end */
};

static void put(struct out *o, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, o->f) != n)
        o->failed = 1;
    o->pos += n;
}
static void put_u32(struct out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(struct out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(struct out *o, const char *s)
{
    put_u64(o, strlen(s));
    put(o, s, strlen(s));
}
static void key(struct out *o, const char *k)
{
    put_str(o, k);
    o->n_kv++;
}
static void kv_str(struct out *o, const char *k, const char *v)
{
    key(o, k);
    put_u32(o, GGUF_STRING);
    put_str(o, v);
}
static void kv_u32(struct out *o, const char *k, uint32_t v)
{
    key(o, k);
    put_u32(o, GGUF_U32);
    put_u32(o, v);
}
static void kv_f32(struct out *o, const char *k, float v)
{
    key(o, k);
    put_u32(o, GGUF_F32);
    put(o, &v, 4);
}
static void pad(struct out *o)
{
    static const char zero[ALIGN];
    put(o, zero, (ALIGN - o->pos % ALIGN) % ALIGN);
}

/* One tensor to write: where its rows come from and how. */
struct tensor {
    char name[96];
    const struct st_tensor *src;
    int perm_heads; /* > 0: permute rows for llama.cpp's rope (q: heads, k: kv heads) */
    int type;       /* GGML_* */
    int n_dims;
    uint64_t rows, cols, offset, bytes;
};

static uint64_t type_bytes(int type, uint64_t rows, uint64_t cols)
{
    if (type == GGML_Q8_0)
        return rows * (cols / 32) * 34;
    return rows * cols * (type == GGML_F32 ? 4 : 2);
}

/* Hugging Face row r of a q/k projection → the row llama.cpp expects there: within each head, the
 * halves [0, hd/2) and [hd/2, hd) are interleaved (convert_hf_to_gguf.py's permute()). */
static uint64_t source_row(const struct tensor *t, uint64_t r)
{
    if (t->perm_heads <= 0)
        return r;
    uint64_t hd = t->rows / (uint64_t)t->perm_heads, half = hd / 2, h = r / hd, i = r % hd;
    return h * hd + (i % 2) * half + i / 2;
}

static void write_row(struct out *o, const struct tensor *t, uint64_t r, float *buf)
{
    size_t es = st_dtype_size(t->src->dtype);
    const char *src = (const char *)t->src->data + source_row(t, r) * t->cols * es;
    int same = (t->type == GGML_F32 && t->src->dtype == ST_F32) || (t->type == GGML_F16 && t->src->dtype == ST_F16) ||
               (t->type == GGML_BF16 && t->src->dtype == ST_BF16);
    if (same) {
        put(o, src, t->cols * es);
        return;
    }
    st_to_f32(buf, src, t->src->dtype, (int64_t)t->cols);
    if (t->type == GGML_F32) {
        put(o, buf, t->cols * 4);
        return;
    }
    for (uint64_t g = 0; g < t->cols / 32; g++) { /* Q8_0 */
        const float *x = buf + g * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t dh = kn_f32_to_f16(d);
        int8_t q[32];
        for (int j = 0; j < 32; j++)
            q[j] = (int8_t)roundf(x[j] * id);
        put(o, &dh, 2);
        put(o, q, 32);
    }
}

static int add(struct tensor *ts, int *n, const struct st_set *st, const char *hf, const char *gg, int matrix_type,
               int perm_heads, struct error *err)
{
    const struct st_tensor *s = st_find(st, hf);
    if (!s)
        return error_set(err, "tensor %s is missing", hf);
    struct tensor *t = &ts[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", gg);
    t->src = s;
    t->perm_heads = perm_heads;
    t->n_dims = s->n_dims;
    t->rows = s->n_dims == 2 ? (uint64_t)s->shape[0] : 1;
    t->cols = (uint64_t)s->shape[s->n_dims - 1];
    t->type = s->n_dims == 1 ? GGML_F32 : matrix_type;
    if (t->type == GGML_Q8_0 && t->cols % 32)
        return error_set(err, "%s: %llu columns is not a multiple of 32 (Q8_0 blocks)", hf, (unsigned long long)t->cols);
    if (t->type < 0)
        t->type = s->dtype == ST_F32 ? GGML_F32 : s->dtype == ST_F16 ? GGML_F16 : GGML_BF16;
    t->bytes = type_bytes(t->type, t->rows, t->cols);
    return 0;
}

static int collect(const struct model_config *c, const struct st_set *st, int mtype, struct tensor *ts, int *n,
                   struct error *err)
{
    char hf[160], gg[96];
    if (add(ts, n, st, "model.embed_tokens.weight", "token_embd.weight", mtype, 0, err) ||
        add(ts, n, st, "model.norm.weight", "output_norm.weight", mtype, 0, err) ||
        add(ts, n, st, c->tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", "output.weight", mtype, 0,
            err))
        return -1;
    static const struct {
        const char *hf, *gg;
        int perm; /* 1: q heads, 2: kv heads */
    } per_layer[] = {
        {"input_layernorm.weight", "attn_norm.weight", 0},  {"self_attn.q_proj.weight", "attn_q.weight", 1},
        {"self_attn.k_proj.weight", "attn_k.weight", 2},    {"self_attn.v_proj.weight", "attn_v.weight", 0},
        {"self_attn.o_proj.weight", "attn_output.weight", 0}, {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 0},     {"mlp.up_proj.weight", "ffn_up.weight", 0},
        {"mlp.down_proj.weight", "ffn_down.weight", 0},
    };
    for (int l = 0; l < c->n_layers; l++)
        for (size_t i = 0; i < sizeof per_layer / sizeof *per_layer; i++) {
            snprintf(hf, sizeof hf, "model.layers.%d.%s", l, per_layer[i].hf);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, per_layer[i].gg);
            int heads = per_layer[i].perm == 1 ? c->n_heads : per_layer[i].perm == 2 ? c->n_kv_heads : 0;
            if (add(ts, n, st, hf, gg, mtype, heads, err))
                return -1;
        }
    return 0;
}

static void write_vocab(struct out *o, const struct model_config *c)
{
    char tok[32];
    kv_str(o, "tokenizer.ggml.model", "llama");
    key(o, "tokenizer.ggml.tokens");
    put_u32(o, GGUF_ARRAY);
    put_u32(o, GGUF_STRING);
    put_u64(o, (uint64_t)c->vocab_size);
    for (int i = 0; i < c->vocab_size; i++) {
        if (i < 3)
            snprintf(tok, sizeof tok, "%s", (const char *[]){"<unk>", "<s>", "</s>"}[i]);
        else if (i < 259)
            snprintf(tok, sizeof tok, "<0x%02X>", i - 3);
        else
            snprintf(tok, sizeof tok, "\xe2\x96\x81t%d", i);
        put_str(o, tok);
    }
    key(o, "tokenizer.ggml.scores");
    put_u32(o, GGUF_ARRAY);
    put_u32(o, GGUF_F32);
    put_u64(o, (uint64_t)c->vocab_size);
    for (int i = 0; i < c->vocab_size; i++) {
        float s = i < 259 ? 0.0f : -(float)i;
        put(o, &s, 4);
    }
    key(o, "tokenizer.ggml.token_type");
    put_u32(o, GGUF_ARRAY);
    put_u32(o, GGUF_I32);
    put_u64(o, (uint64_t)c->vocab_size);
    for (int i = 0; i < c->vocab_size; i++) {
        int32_t t = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
        put(o, &t, 4);
    }
    kv_u32(o, "tokenizer.ggml.unknown_token_id", 0);
    kv_u32(o, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(o, "tokenizer.ggml.eos_token_id", 2);
}

static int usage(FILE *f)
{
    fprintf(f, "usage: pdserve-gguf --model DIR --out FILE.gguf [--type stored|q8_0]\n");
    return 2;
}

/* The header and the metadata llama.cpp reads for a Llama model (n_kv counted as written, patched
 * in at the end). */
static void write_metadata(struct out *o, const struct model_config *c, int n_tensors, int file_type)
{
    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, (uint64_t)n_tensors);
    put_u64(o, 0); /* n_kv, patched below */
    kv_str(o, "general.architecture", "llama");
    kv_str(o, "general.name", "pdserve-bench");
    kv_u32(o, "general.file_type", (uint32_t)file_type);
    kv_u32(o, "general.alignment", ALIGN);
    kv_u32(o, "llama.context_length", (uint32_t)c->max_pos);
    kv_u32(o, "llama.embedding_length", (uint32_t)c->dim);
    kv_u32(o, "llama.block_count", (uint32_t)c->n_layers);
    kv_u32(o, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    kv_u32(o, "llama.attention.head_count", (uint32_t)c->n_heads);
    kv_u32(o, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    kv_u32(o, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    kv_f32(o, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    kv_f32(o, "llama.rope.freq_base", (float)c->rope_theta);
    kv_u32(o, "llama.vocab_size", (uint32_t)c->vocab_size);
    write_vocab(o, c);
}

/* Each tensor's name, shape, type and offset in the data section; returns that section's size. */
static uint64_t write_tensor_infos(struct out *o, struct tensor *ts, int n)
{
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        put_str(o, ts[i].name);
        put_u32(o, (uint32_t)ts[i].n_dims);
        put_u64(o, ts[i].cols); /* ne[0]: the contiguous dimension */
        if (ts[i].n_dims == 2)
            put_u64(o, ts[i].rows);
        put_u32(o, (uint32_t)ts[i].type);
        ts[i].offset = off;
        put_u64(o, off);
        off += (ts[i].bytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    pad(o);
    return off;
}

/* The tensors' rows, each tensor padded to ALIGN; a tensor that lands off its announced offset fails
 * the file. */
static void write_data(struct out *o, const struct model_config *c, const struct tensor *ts, int n, uint64_t size)
{
    float *buf = malloc((size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim) * sizeof *buf);
    if (!buf) {
        o->failed = 1;
        return;
    }
    size_t data_start = o->pos;
    for (int i = 0; i < n; i++) {
        for (uint64_t r = 0; r < ts[i].rows; r++)
            write_row(o, &ts[i], r, buf);
        pad(o);
        if (o->pos - data_start != (i + 1 < n ? ts[i + 1].offset : size))
            o->failed = 1;
    }
    free(buf);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *out_path = NULL, *type = "stored";
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    static const struct option longs[] = {{"model", 1, 0, 'm'}, {"out", 1, 0, 'o'}, {"type", 1, 0, 't'}, {0, 0, 0, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        if (ch == 'm') dir = optarg;
        else if (ch == 'o') out_path = optarg;
        else if (ch == 't') type = optarg;
        else return usage(stderr);
    }
    if (!dir || !out_path || (strcmp(type, "stored") && strcmp(type, "q8_0")))
        return usage(stderr);
    log_init("gguf");
    struct error err;
    struct model_config c;
    struct st_set *st = NULL;
    if (model_config_load(dir, &c, &err) < 0 || !(st = st_open_dir(dir, &err))) {
        fprintf(stderr, "pdserve-gguf: %s\n", err.msg);
        return 1;
    }
    if (c.qkv_bias || c.o_bias || c.rope_kind != ROPE_DEFAULT || c.head_dim * c.n_heads != c.dim) {
        fprintf(stderr, "pdserve-gguf: %s: only plain Llama models (no biases, no rope scaling, head_dim = "
                        "hidden/heads) are written\n", dir);
        return 1;
    }
    int n = 0, mtype = strcmp(type, "q8_0") ? -1 : GGML_Q8_0;
    struct tensor *ts = calloc((size_t)(3 + 9 * c.n_layers), sizeof *ts);
    if (!ts || collect(&c, st, mtype, ts, &n, &err) < 0) {
        fprintf(stderr, "pdserve-gguf: %s\n", ts ? err.msg : "out of memory");
        return 1;
    }
    struct out o = {fopen(out_path, "wb"), 0, 0, 0};
    if (!o.f) {
        perror(out_path);
        return 1;
    }
    int file_type = mtype == GGML_Q8_0 ? 7 : ts[3].type == GGML_F32 ? 0 : ts[3].type == GGML_F16 ? 1 : 32;
    write_metadata(&o, &c, n, file_type);
    write_data(&o, &c, ts, n, write_tensor_infos(&o, ts, n));
    if (fseek(o.f, 16, SEEK_SET) != 0 || fwrite(&o.n_kv, 8, 1, o.f) != 1)
        o.failed = 1;
    if (fclose(o.f) != 0 || o.failed) {
        fprintf(stderr, "pdserve-gguf: writing %s failed\n", out_path);
        return 1;
    }
    printf("wrote %s: %d tensors, %.1f MiB\n", out_path, n, o.pos / 1048576.0);
    free(ts);
    st_close(st);
    return 0;
}
