/* model.h — a Llama-family model as loaded from a Hugging Face folder: config.json parsed and
 * checked, every weight found and shape-checked. Matrices stay in the dtype they are stored in (F32,
 * F16 or BF16), used in place from the file mapping, or with MODEL_WEIGHTS_Q8 are quantized to int8
 * groups of 32 at load. Matrices applied to the same input are stacked at load (q/k/v, gate/up) so
 * each is one product: a copy in the stored dtype, whose file pages are then dropped from the
 * process. Norm weights and biases are float32. Read-only after model_load, so any number of threads
 * may run forward passes over it. */
#ifndef PD_MODEL_H
#define PD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"
#include "common/engine/kernels.h"

enum rope_kind { ROPE_DEFAULT, ROPE_LINEAR, ROPE_LLAMA3 };

struct model_config {
    char arch[64];      /* architectures[0], e.g. "LlamaForCausalLM" */
    int dim;            /* hidden_size */
    int n_layers;       /* num_hidden_layers */
    int n_heads;        /* num_attention_heads */
    int n_kv_heads;     /* num_key_value_heads */
    int head_dim;       /* head_dim, or hidden_size / heads */
    int hidden_dim;     /* intermediate_size */
    int vocab_size;
    int max_pos;        /* max_position_embeddings */
    float norm_eps;     /* rms_norm_eps */
    double rope_theta;
    enum rope_kind rope_kind;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor, rope_orig_max_pos;
    bool tie_embeddings;
    bool qkv_bias; /* Qwen2, or Llama with attention_bias */
    bool o_bias;   /* Llama with attention_bias */
    int n_eos;     /* end-of-sequence ids: generation_config.json, else config.json eos_token_id */
    int32_t eos_ids[8];
};

struct layer_weights {
    const float *attn_norm;    /* [dim] */
    struct kn_mat wqkv;        /* [n_heads*hd + 2*kv_heads*hd][dim]: q_proj, k_proj, v_proj stacked */
    const float *bqkv;         /* their biases stacked, or NULL */
    struct kn_mat wo;          /* [dim][n_heads*hd] */
    const float *bo;           /* or NULL */
    const float *ffn_norm;     /* [dim] */
    struct kn_mat w_gate_up;   /* [2*hidden][dim]: gate_proj, up_proj stacked */
    struct kn_mat w_down;      /* [dim][hidden] */
};

/* How the matrices are held: as stored in the files, or quantized to int8 at load (--weights q8). */
enum model_weights { MODEL_WEIGHTS_STORED = 0, MODEL_WEIGHTS_Q8 = 1 };

struct model {
    struct model_config cfg;
    struct kn_mat embed;   /* [vocab][dim], as stored (one row read per token) */
    const float *norm;     /* [dim] */
    struct kn_mat lm_head; /* [vocab][dim]; the embedding itself when tied (unless quantized) */
    struct layer_weights *layers;
    double *inv_freq;      /* [head_dim/2], RoPE frequencies after rope_scaling */
    enum model_weights weights;
    enum kn_dtype dtype;   /* the matrices' dtype (the first matrix's if the files mix them) */
    size_t weight_bytes;   /* resident matrix bytes read per token at batch 1 (+ one embedding row) */
    size_t resident_bytes; /* every weight as held: what the model adds to a process's memory */
    struct st_set *st;
    void **owned;          /* converted buffers */
    int n_owned;
};

/* Parses DIR/config.json into cfg; refuses what pdserve does not run, naming the field. */
int model_config_load(const char *dir, struct model_config *cfg, struct error *err);
/* The same from config.json's text (len bytes, need not be NUL-terminated); eos ids from it alone. */
int model_config_parse(const char *json, size_t len, struct model_config *cfg, struct error *err);
/* Loads config and weights. NULL + err naming the file, tensor and problem on any mismatch. */
struct model *model_load(const char *dir, struct error *err);
/* The same with the matrices held as `weights` says. */
struct model *model_load_as(const char *dir, enum model_weights weights, struct error *err);
const char *model_weights_name(enum model_weights w); /* "stored", "q8" */
/* Row `token` of the embedding as float32 into out[dim]. */
void model_embed_row(const struct model *m, int32_t token, float *out);
void model_free(struct model *m);

#endif
