/* presets.c — the named model shapes pdserve-mkmodel knows. The real-model presets copy the shapes of
 * the published config.json files exactly (vocab included), so load time, memory and speed measured on
 * them are those of the real model; `tiny` and `small` are for tests and a local cluster. */
#include <stdio.h>
#include <string.h>

#include "mkmodel.h"

struct preset {
    const char *name;
    struct mk_config c;
};

/* Fields: arch, hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_pos, rope_theta,
 * rms_eps, rope_llama3, factor, low, high, orig_max, tie, qkv_bias, dtype, sliding_window, longrope_orig. */
static const struct preset presets[] = {
    /* Fast enough for unit-level tests: a forward pass is microseconds. */
    {"tiny", {"llama", 64, 2, 4, 2, 16, 192, 512, 2048, 10000.0, 1e-5, false, 0, 0, 0, 0, false, false,
              MK_F32, 0, 0}},
    /* A default local cluster: ~26M parameters, hundreds of tokens/s on 2 cores. */
    {"small", {"llama", 512, 8, 8, 4, 64, 1408, 2048, 4096, 500000.0, 1e-5, false, 0, 0, 0, 0, false,
               false, MK_F32, 0, 0}},
    /* Qwen/Qwen2.5-0.5B */
    {"qwen2.5-0.5b", {"qwen2", 896, 24, 14, 2, 64, 4864, 151936, 32768, 1000000.0, 1e-6, false, 0, 0,
                      0, 0, true, true, MK_BF16, 0, 0}},
    /* meta-llama/Llama-3.2-1B */
    {"llama-3.2-1b", {"llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0, 1e-5, true, 32.0,
                      1.0, 4.0, 8192, true, false, MK_BF16, 0, 0}},
    /* Qwen/Qwen3-0.6B */
    {"qwen3-0.6b", {"qwen3", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1000000.0, 1e-6, false, 0, 0, 0, 0,
                    true, false, MK_BF16, 0, 0}},
    /* google/gemma-2-2b */
    {"gemma-2-2b", {"gemma2", 2304, 26, 8, 4, 256, 9216, 256000, 8192, 10000.0, 1e-6, false, 0, 0, 0, 0,
                    true, false, MK_BF16, 4096, 0}},
    /* google/gemma-3-1b-pt (Gemma3ForCausalLM) */
    {"gemma-3-1b", {"gemma3", 1152, 26, 4, 1, 256, 6912, 262144, 32768, 1000000.0, 1e-6, false, 0, 0, 0, 0,
                    true, false, MK_BF16, 512, 0}},
    /* microsoft/Phi-3-mini-4k-instruct */
    {"phi-3-mini", {"phi3", 3072, 32, 32, 32, 96, 8192, 32064, 4096, 10000.0, 1e-5, false, 0, 0, 0, 0,
                    false, false, MK_BF16, 2047, 0}},
    /* TinyLlama/TinyLlama-1.1B-Chat-v1.0 */
    {"tinyllama-1.1b", {"llama", 2048, 22, 32, 4, 64, 5632, 32000, 2048, 10000.0, 1e-5, false, 0, 0, 0,
                        0, false, false, MK_BF16, 0, 0}},
};

int mk_preset(const char *name, struct mk_config *c, struct error *err)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *c = presets[i].c;
            return 0;
        }
    }
    return error_set(err, "unknown preset \"%s\" (known: %s)", name, mk_preset_names());
}

const char *mk_preset_names(void)
{
    return "tiny, small, qwen2.5-0.5b, llama-3.2-1b, tinyllama-1.1b, qwen3-0.6b, gemma-2-2b, gemma-3-1b, "
           "phi-3-mini";
}

bool mk_is_gemma(const struct mk_config *c)
{
    return strncmp(c->arch, "gemma", 5) == 0;
}

int mk_config_check(const struct mk_config *c, struct error *err)
{
    static const char *const archs[] = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"};
    bool known = false;
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        known |= strcmp(c->arch, archs[i]) == 0;
    if (!known)
        return error_set(err, "--arch %s: must be llama, mistral, qwen2, qwen3, gemma2, gemma3 or phi3", c->arch);
    if (c->longrope_orig && strcmp(c->arch, "phi3") != 0)
        return error_set(err, "--longrope is for --arch phi3");
    if (c->hidden < 1 || c->layers < 1 || c->heads < 1 || c->kv_heads < 1 || c->head_dim < 1 ||
        c->intermediate < 1 || c->vocab < 1 || c->max_pos < 1)
        return error_set(err, "every dimension must be positive (hidden %d, layers %d, heads %d, "
                              "kv-heads %d, head-dim %d, intermediate %d, vocab %d, max-pos %d)",
                         c->hidden, c->layers, c->heads, c->kv_heads, c->head_dim, c->intermediate,
                         c->vocab, c->max_pos);
    if (c->heads % c->kv_heads)
        return error_set(err, "--heads %d is not a multiple of --kv-heads %d", c->heads, c->kv_heads);
    if (c->head_dim % 2)
        return error_set(err, "--head-dim %d must be even (RoPE rotates pairs)", c->head_dim);
    if (!(c->rope_theta > 1.0))
        return error_set(err, "--rope-theta %g must be > 1", c->rope_theta);
    if (c->rope_llama3 && !(c->rope_factor > 0 && c->rope_high > c->rope_low && c->rope_low > 0 &&
                            c->rope_orig_max > 0))
        return error_set(err, "--rope-scaling-llama3 needs factor > 0, high_freq_factor > "
                              "low_freq_factor > 0 and original_max_position_embeddings > 0");
    return 0;
}
