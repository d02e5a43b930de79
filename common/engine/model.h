/* model.h — a Llama-family model (and the Qwen3, Gemma2/3 and Phi3 variations of its layer, arch.c)
 * as loaded from a Hugging Face folder or one GGUF file: config parsed and checked, every weight found
 * and shape-checked. Matrices stay in the dtype they are stored in (F32,
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

enum rope_kind { ROPE_DEFAULT, ROPE_LINEAR, ROPE_LLAMA3, ROPE_LONGROPE };
/* Architectures whose layer differs from Llama's (arch.c maps each class name to one). */
enum model_arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_GEMMA2, ARCH_GEMMA3, ARCH_PHI3 };
enum model_act { ACT_SILU, ACT_GELU_TANH };
#define MODEL_MAX_LAYERS 1024   /* per-layer flags are stored inline, so configs copy as values */
#define MODEL_MAX_ROPE_FACTORS 256

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
    /* Architecture-level features (arch.c); the Llama values are 0/false/1. */
    enum model_arch family;
    enum model_act act;       /* silu: SwiGLU; gelu_tanh: GeGLU (Gemma) */
    bool qk_norm;             /* per-head RMSNorm of q and k before RoPE (Qwen3, Gemma3) */
    bool sandwich_norm;       /* post-attention and post-feedforward norms (Gemma2/3) */
    bool fused_qkv;           /* qkv_proj and gate_up_proj stored fused (Phi3) */
    float norm_offset;        /* RMSNorm multiplies by (offset + weight): 1 for Gemma's HF weights */
    float embed_scale;        /* x = embed[token] * embed_scale (Gemma: sqrt(hidden) in torch_dtype) */
    float attn_scale;         /* q·k multiplier: head_dim^-0.5, or query_pre_attn_scalar^-0.5 (Gemma) */
    float attn_softcap;       /* scores = cap * tanh(scores / cap) when > 0 (Gemma2) */
    float final_softcap;      /* logits = cap * tanh(logits / cap) when > 0 (Gemma2) */
    int sliding_window;       /* a windowed layer attends to the last sliding_window positions (0: none) */
    double rope_local_theta;  /* RoPE base of windowed layers when it differs (Gemma3), else 0 */
    double rope_attn_factor;  /* longrope's cos/sin scale (Phi3), else 1 */
    double rope_short_factor[MODEL_MAX_ROPE_FACTORS]; /* longrope: one divisor per frequency */
    uint8_t layer_sliding[MODEL_MAX_LAYERS];           /* 1 where the layer is windowed */
    int n_eos;     /* end-of-sequence ids: generation_config.json, else config.json eos_token_id */
    int32_t eos_ids[8];
};

struct layer_weights {
    int window;                /* positions this layer attends to (0: all) */
    const double *inv_freq;    /* this layer's RoPE frequencies [head_dim/2] */
    const float *attn_norm;    /* [dim] */
    const float *q_norm, *k_norm; /* [head_dim], or NULL (Qwen3, Gemma3) */
    const float *post_attn_norm;  /* [dim] on the attention output, or NULL (Gemma2/3) */
    const float *post_ffn_norm;   /* [dim] on the feed-forward output, or NULL (Gemma2/3) */
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
    double *inv_freq_local; /* [head_dim/2] of windowed layers with their own base (Gemma3), or NULL */
    enum model_weights weights;
    enum kn_dtype dtype;   /* the matrices' dtype (the first matrix's if the files mix them) */
    size_t weight_bytes;   /* resident matrix bytes read per token at batch 1 (+ one embedding row) */
    size_t resident_bytes; /* every weight as held: what the model adds to a process's memory */
    struct st_set *st;
    struct gguf_file *gguf; /* set instead of st for a .gguf model */
    void **owned;          /* converted buffers */
    int n_owned;
};

/* Parses DIR/config.json into cfg; refuses what pdserve does not run, naming the field. */
int model_config_load(const char *dir, struct model_config *cfg, struct error *err);
/* The same from config.json's text (len bytes, need not be NUL-terminated); eos ids from it alone. */
int model_config_parse(const char *json, size_t len, struct model_config *cfg, struct error *err);
/* Loads config and weights from a folder, or from one .gguf file (gguf.c). NULL + err naming the
 * file, tensor and problem on any mismatch. */
struct model *model_load(const char *dir, struct error *err);
/* The same with the matrices held as `weights` says. */
struct model *model_load_as(const char *dir, enum model_weights weights, struct error *err);
const char *model_weights_name(enum model_weights w); /* "stored", "q8" */
/* Row `token` of the embedding as float32 into out[dim]. */
void model_embed_row(const struct model *m, int32_t token, float *out);
void model_free(struct model *m);

#endif
