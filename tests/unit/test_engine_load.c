/* test_engine_load.c — model folders, good and bad: every corruption of a safetensors file or
 * mismatch with config.json must be refused with a message naming the tensor and the problem, and
 * never read out of bounds (this test runs under ASan in `make asan`). */
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tmpl/chat.h"
#include "tests/helpers/check.h"
#include "common/engine/model.h"
#include "common/engine/safetensors.h"
#include "common/tok/tok.h"

static char dir[64];

/* tiny shapes: dim 8, 1 layer, 2 heads of 4, 1 kv head, hidden 16, vocab 10 */
struct spec {
    const char *name;
    int64_t rows, cols;
};
static const struct spec tensors[] = {
    {"model.embed_tokens.weight", 10, 8},
    {"model.norm.weight", 8, 0},
    {"lm_head.weight", 10, 8},
    {"model.layers.0.input_layernorm.weight", 8, 0},
    {"model.layers.0.post_attention_layernorm.weight", 8, 0},
    {"model.layers.0.self_attn.q_proj.weight", 8, 8},
    {"model.layers.0.self_attn.k_proj.weight", 4, 8},
    {"model.layers.0.self_attn.v_proj.weight", 4, 8},
    {"model.layers.0.self_attn.o_proj.weight", 8, 8},
    {"model.layers.0.mlp.gate_proj.weight", 16, 8},
    {"model.layers.0.mlp.up_proj.weight", 16, 8},
    {"model.layers.0.mlp.down_proj.weight", 8, 16},
};
#define N_TENSORS (int)(sizeof tensors / sizeof *tensors)

static void write_config(const char *extra_key, json_t *extra_val)
{
    json_t *c = json_pack("{s:[s],s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:i}", "architectures", "LlamaForCausalLM",
                          "hidden_size", 8, "num_hidden_layers", 1, "num_attention_heads", 2,
                          "num_key_value_heads", 1, "intermediate_size", 16, "vocab_size", 10,
                          "rms_norm_eps", 1e-5, "max_position_embeddings", 64);
    if (extra_key)
        json_object_set_new(c, extra_key, extra_val);
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_dump_file(c, path, 0);
    json_decref(c);
}

/* Writes model.safetensors; `mutate` may edit the header of tensor i before it is written. */
static void write_model(const char *dtype, void (*mutate)(json_t *hdr), long truncate_to)
{
    json_t *hdr = json_object();
    size_t esize = strcmp(dtype, "F32") ? 2 : 4, off = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        int64_t n = tensors[i].rows * (tensors[i].cols ? tensors[i].cols : 1);
        json_t *shape = tensors[i].cols ? json_pack("[I,I]", tensors[i].rows, tensors[i].cols)
                                        : json_pack("[I]", tensors[i].rows);
        json_object_set_new(hdr, tensors[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype, "shape", shape, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + n * esize)));
        off += n * esize;
    }
    if (mutate)
        mutate(hdr);
    char *h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t le = padded;
    fwrite(&le, 8, 1, f);
    fwrite(h, 1, hl, f);
    for (size_t i = hl; i < padded; i++)
        fputc(' ', f);
    for (size_t i = 0; i < off / 2; i++) /* 0x3c00: 1.0 in f16; 0x3f80: 1.0 in bf16 */
        fwrite(esize == 4 ? (i % 2 ? "\x80\x3f" : "\x00\x00") : strcmp(dtype, "F16") ? "\x80\x3f" : "\x00\x3c",
               1, 2, f);
    fclose(f);
    free(h);
    if (truncate_to >= 0)
        CHECK(truncate(path, truncate_to) == 0);
}

/* Loads the folder and checks the outcome: NULL want = must load; else the error must contain it. */
static void expect(const char *want)
{
    struct error err = {{0}};
    struct model *m = model_load(dir, &err);
    if (!want) {
        CHECK_MSG(m != NULL, "expected to load, got: %s", err.msg);
    } else {
        CHECK_MSG(m == NULL && strstr(err.msg, want), "expected an error containing \"%s\", got: %s", want,
                  m ? "(loaded)" : err.msg);
    }
    model_free(m);
}

static void good_models_load(void)
{
    write_config(NULL, NULL);
    for (int d = 0; d < 3; d++) {
        const char *dt = (const char *[]){"F32", "F16", "BF16"}[d];
        write_model(dt, NULL, -1);
        struct error err;
        struct model *m = model_load(dir, &err);
        CHECK_MSG(m != NULL, "%s: %s", dt, err.msg);
        if (m) {
            CHECK_NEAR(m->norm[0], 1.0, 0); /* every weight was written as 1.0 */
            float row[8]; /* w_down is [dim][hidden]: row 0 widened from its stored dtype */
            const struct kn_mat *wd = &m->layers[0].w_down;
            CHECK_EQ_INT(wd->dtype, d);
            kn_ops()->widen(row, wd->data, wd->dtype, wd->cols < 8 ? (size_t)wd->cols : 8);
            CHECK_NEAR(row[wd->cols < 8 ? wd->cols - 1 : 7], 1.0, 0);
            CHECK_EQ_INT(m->cfg.head_dim, 4);
        }
        model_free(m);
    }
}

static void drop_lm_head(json_t *h) { json_object_del(h, "lm_head.weight"); }
static void bad_dtype(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "dtype", json_string("I8"));
}
static void bad_offsets(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "data_offsets", json_pack("[i,i]", 0, 30));
}
static void overlap(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "data_offsets", json_pack("[i,i]", 0, 32));
}
static void huge_offset(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "data_offsets",
                        json_pack("[I,I]", (json_int_t)1 << 50, ((json_int_t)1 << 50) + 32));
}
static void negative_shape(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "shape", json_pack("[i]", -8));
}
static void wrong_shape(json_t *h)
{
    json_t *t = json_object_get(h, "model.layers.0.self_attn.k_proj.weight");
    json_object_set_new(t, "shape", json_pack("[i,i]", 8, 4)); /* same bytes, transposed */
}

static void corrupt_files_refused(void)
{
    write_config(NULL, NULL);
    write_model("F32", drop_lm_head, -1);
    expect("tensor lm_head.weight is missing");
    write_model("F32", bad_dtype, -1);
    expect("dtype I8 is not supported");
    write_model("F32", bad_offsets, -1);
    expect("model.norm.weight: 30 data bytes");
    write_model("F32", overlap, -1);
    expect("overlap");
    write_model("F32", huge_offset, -1);
    expect("model.norm.weight: data_offsets");
    write_model("F32", negative_shape, -1);
    expect("model.norm.weight: shape[0]");
    write_model("F32", wrong_shape, -1);
    expect("tensor model.layers.0.self_attn.k_proj.weight");
    write_model("F32", NULL, -1);
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(stat(path, &st) == 0 && truncate(path, st.st_size - 4) == 0); /* the last tensor's tail */
    expect("truncated or corrupt");
    write_model("F32", NULL, 5);
    expect("too short");
    write_model("F32", NULL, 100);
    expect("header length");
}

static void garbage_header_refused(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite("\x10\0\0\0\0\0\0\0{\"a\":[1,2,3,4,", 1, 8 + 14, f);
    fwrite("xxxx", 1, 4, f);
    fclose(f);
    expect("not a JSON object");
}

static void config_mismatch_refused(void)
{
    write_model("F32", NULL, -1);
    write_config("hidden_size", json_integer(16));
    expect("config.json implies");
    write_config("num_key_value_heads", json_integer(3));
    expect("not a multiple of num_key_value_heads");
    write_config("architectures", json_pack("[s]", "GPT2LMHeadModel"));
    expect("GPT2LMHeadModel is not supported");
    write_config("rope_scaling", json_pack("{s:s,s:f}", "rope_type", "yarn", "factor", 4.0));
    expect("\"yarn\" is not supported");
    write_config("vocab_size", json_string("ten"));
    expect("\"vocab_size\" must be a positive integer");
    write_config("tie_word_embeddings", json_true());
    expect(NULL); /* lm_head present but unused: fine */
    write_config(NULL, NULL);
}

/* config.json of another architecture: parsed with transformers' defaults, refusals named. */
static int parse(const char *arch, const char *extra, struct model_config *c, struct error *err)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"architectures\":[\"%s\"],\"hidden_size\":1152,\"num_hidden_layers\":12,"
             "\"num_attention_heads\":4,\"num_key_value_heads\":1,\"head_dim\":256,\"intermediate_size\":64,"
             "\"vocab_size\":10,\"max_position_embeddings\":4096%s%s}",
             arch, extra[0] ? "," : "", extra);
    memset(err, 0, sizeof *err);
    return model_config_parse(json, strlen(json), c, err);
}

static void expect_config(const char *arch, const char *extra, const char *want)
{
    struct model_config c;
    struct error err;
    int rc = parse(arch, extra, &c, &err);
    CHECK_MSG(rc < 0 && strstr(err.msg, want), "%s {%s}: expected an error containing \"%s\", got: %s", arch,
              extra, want, rc < 0 ? err.msg : "(accepted)");
}

static void architectures(void)
{
    struct model_config c;
    struct error err;
    CHECK(parse("Gemma3ForCausalLM", "\"torch_dtype\":\"bfloat16\",\"sliding_window\":512", &c, &err) == 0);
    CHECK(c.family == ARCH_GEMMA3 && c.qk_norm && c.sandwich_norm && c.act == ACT_GELU_TANH);
    CHECK(c.embed_scale == 34.0f); /* √1152 = 33.94 in bfloat16, as transformers multiplies */
    CHECK_NEAR(c.attn_scale, 1.0 / 16, 1e-9); /* query_pre_attn_scalar 256 by default */
    CHECK(c.attn_softcap == 0 && c.final_softcap == 0 && c.rope_local_theta == 10000.0);
    for (int l = 0; l < 12; l++)
        CHECK_MSG(c.layer_sliding[l] == ((l + 1) % 6 != 0), "gemma3 layer %d windowed: %d", l, c.layer_sliding[l]);
    CHECK(parse("Gemma2ForCausalLM", "\"sliding_window\":4096", &c, &err) == 0);
    CHECK(c.attn_softcap == 50.0f && c.final_softcap == 30.0f && c.layer_sliding[0] && !c.layer_sliding[1]);
    CHECK(c.embed_scale == (float)sqrt(1152.0)); /* no torch_dtype: float32 */
    CHECK(parse("Qwen3ForCausalLM", "", &c, &err) == 0 && c.qk_norm && !c.qkv_bias && !c.sandwich_norm);
    CHECK(parse("Phi3ForCausalLM", "\"sliding_window\":2047", &c, &err) == 0 && c.fused_qkv &&
          c.sliding_window == 2047 && c.layer_sliding[11]);
    CHECK(parse("MistralForCausalLM", "\"sliding_window\":100", &c, &err) == 0 && c.sliding_window == 100);

    expect_config("FalconForCausalLM", "", "FalconForCausalLM is not supported (supported: LlamaForCausalLM");
    expect_config("Gemma3ForConditionalGeneration", "", "Gemma3ForConditionalGeneration is not supported");
    expect_config("Gemma2ForCausalLM", "\"hidden_activation\":\"silu\"", "hidden_activation \"silu\" is not supported");
    expect_config("Qwen3ForCausalLM", "\"use_sliding_window\":true", "use_sliding_window=true is not supported");
    expect_config("Phi3ForCausalLM", "\"partial_rotary_factor\":0.75", "partial_rotary_factor 0.75 is not supported");
    expect_config("Phi3ForCausalLM", "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,2]}",
                  "short_factor must list head_dim/2 = 128 numbers");
    expect_config("LlamaForCausalLM", "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,2]}",
                  "supported only for Phi3");
    expect_config("Gemma2ForCausalLM", "\"sliding_window\":8,\"layer_types\":[\"full_attention\"]",
                  "layer_types has 1 entries for 12 layers");
    expect_config("Gemma2ForCausalLM", "\"attn_logit_softcapping\":-1", "\"attn_logit_softcapping\" must be a positive");
    /* a fraction was taken modulo its integer part, 0 (found by fuzz_config) */
    expect_config("Gemma3ForCausalLM", "\"sliding_window\":8,\"sliding_window_pattern\":0.56",
                  "\"sliding_window_pattern\" must be a positive integer (0.56)");
    expect_config("Gemma3ForCausalLM", "\"sliding_window\":8,\"sliding_window_pattern\":1e300",
                  "\"sliding_window_pattern\" must be a positive integer");
}

static void sharded_index(void)
{
    char path[128];
    write_model("F32", NULL, -1);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char shard[128];
    snprintf(shard, sizeof shard, "%s/model-00001-of-00001.safetensors", dir);
    rename(path, shard);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_t *map = json_object();
    for (int i = 0; i < N_TENSORS; i++)
        json_object_set_new(map, tensors[i].name, json_string("model-00001-of-00001.safetensors"));
    json_t *idx = json_pack("{s:o}", "weight_map", map);
    json_dump_file(idx, path, 0);
    expect(NULL);
    json_object_set_new(map, "model.extra.weight", json_string("model-00001-of-00001.safetensors"));
    json_dump_file(idx, path, 0);
    expect("does not contain it");
    json_object_del(map, "model.extra.weight");
    json_object_set_new(map, "model.norm.weight", json_string("../etc/passwd"));
    json_dump_file(idx, path, 0);
    expect("is not a plain *.safetensors file name in the model folder");
    json_decref(idx);
    unlink(path);
    unlink(shard);
    expect("neither model.safetensors nor");
}

/* Writes an index mapping every tensor to `shard`, except model.norm.weight to `odd` (NULL: none). */
static void write_index(const char *shard, const char *odd)
{
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_t *map = json_object();
    for (int i = 0; i < N_TENSORS; i++)
        json_object_set_new(map, tensors[i].name, json_string(shard));
    if (odd)
        json_object_set_new(map, "model.norm.weight", json_string(odd));
    json_t *idx = json_pack("{s:o}", "weight_map", map);
    json_dump_file(idx, path, 0);
    json_decref(idx);
}

static void path_at(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* What "validated" means for a model folder (common/util/modelfile.h): names an index gives are plain
 * *.safetensors names inside the folder; what is finally opened must be a regular file (a FIFO would
 * block the loader for ever, a device never end); symbolic links are followed, as Hugging Face's
 * cache folders link every file into ../../blobs. Each refusal names the file. */
static void paths_validated(void)
{
    char single[128], shard[128], index[128], p[160], outside[160];
    path_at(single, sizeof single, "model.safetensors");
    path_at(shard, sizeof shard, "model-00001-of-00001.safetensors");
    path_at(index, sizeof index, "model.safetensors.index.json");
    write_config(NULL, NULL);
    write_model("F32", NULL, -1);
    rename(single, shard);

    const char *bad_names[] = {"../model-00001-of-00001.safetensors", "/etc/passwd.safetensors",
                               "sub/x.safetensors", "a\\b.safetensors", "model.bin", "..", "", "x.safetensors\n"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        write_index("model-00001-of-00001.safetensors", bad_names[i]);
        expect("is not a plain *.safetensors file name");
    }

    /* Things that are not regular files, under a good name: refused at once, not waited on. */
    alarm(20); /* a FIFO that blocks the loader fails the test instead of hanging it */
    path_at(p, sizeof p, "odd.safetensors");
    write_index("model-00001-of-00001.safetensors", "odd.safetensors");
    CHECK(mkfifo(p, 0600) == 0);
    expect("odd.safetensors: a FIFO, not a regular file");
    unlink(p);
    CHECK(mkdir(p, 0700) == 0);
    expect("odd.safetensors: a directory, not a regular file");
    rmdir(p);
    CHECK(symlink("/dev/zero", p) == 0);
    expect("odd.safetensors: a character device, not a regular file");
    unlink(p);
    /* A huge (sparse) file: its header is checked against its size, nothing is read in whole. */
    FILE *f = fopen(p, "wb");
    fclose(f);
    CHECK(truncate(p, 1ll << 36) == 0);
    expect("odd.safetensors");
    unlink(p);

    /* A symbolic link out of the folder (Hugging Face's snapshots/…/x -> ../../blobs/…) is followed. */
    snprintf(outside, sizeof outside, "%s-blob", dir);
    CHECK(rename(shard, outside) == 0);
    CHECK(symlink(outside, shard) == 0);
    write_index("model-00001-of-00001.safetensors", NULL);
    expect(NULL);

    /* The index itself, config.json and model.safetensors as FIFOs. */
    unlink(index);
    CHECK(mkfifo(index, 0600) == 0);
    expect("model.safetensors.index.json: a FIFO, not a regular file");
    unlink(index);
    CHECK(mkfifo(single, 0600) == 0);
    expect("model.safetensors: a FIFO, not a regular file");
    unlink(single);
    path_at(p, sizeof p, "config.json");
    unlink(p);
    CHECK(mkfifo(p, 0600) == 0);
    expect("config.json: a FIFO, not a regular file");
    unlink(p);
    /* The tokenizer's and the chat template's files go through the same door (the frontend's). */
    struct error e2;
    path_at(p, sizeof p, "tokenizer.json");
    CHECK(mkfifo(p, 0600) == 0);
    struct tokenizer *t = tok_load(dir, &e2);
    CHECK_MSG(!t && strstr(e2.msg, "tokenizer.json") && strstr(e2.msg, "a FIFO"), "%s", t ? "(loaded)" : e2.msg);
    tok_free(t);
    unlink(p);
    path_at(p, sizeof p, "tokenizer_config.json");
    CHECK(symlink("/dev/zero", p) == 0);
    struct chat_template *ct = chat_load(dir, NULL, &e2);
    CHECK_MSG(!ct && strstr(e2.msg, "tokenizer_config.json") && strstr(e2.msg, "a device"), "%s",
              ct ? "(loaded)" : e2.msg);
    chat_free(ct);
    unlink(p);
    alarm(0);
    unlink(shard);
    unlink(outside);

    /* The folder itself. */
    struct error err;
    CHECK(model_load("/nonexistent/model", &err) == NULL && strstr(err.msg, "/nonexistent/model: No such file"));
    write_config(NULL, NULL);
    path_at(p, sizeof p, "config.json");
    CHECK(model_load(p, &err) == NULL && strstr(err.msg, "a regular file, not a model folder"));
}

static void f16_values(void)
{
    uint16_t h[] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000, 0x3555};
    float f[6];
    st_to_f32(f, h, ST_F16, 6);
    CHECK_NEAR(f[0], 1.0, 0);
    CHECK_NEAR(f[1], -2.0, 0);
    CHECK_NEAR(f[2], 5.960464477539063e-08, 1e-15); /* smallest subnormal */
    CHECK_NEAR(f[3], 65504.0, 0);
    CHECK(f[4] == 0 && signbit(f[4]));
    CHECK_NEAR(f[5], 0.33325195, 1e-7);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pdserve-load-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(good_models_load);
    RUN(corrupt_files_refused);
    RUN(garbage_header_refused);
    RUN(config_mismatch_refused);
    RUN(architectures);
    RUN(sharded_index);
    RUN(paths_validated);
    RUN(f16_values);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_report();
}
