/* config.c — fuzz harness: the config.json of a model folder someone downloaded (or crafted) into
 * model_config_parse (common/engine/model_config.c), the parser model_config_load uses.
 *
 * Asserts beyond "no crash, no leak": a refusal has a message; an accepted config is one the engine
 * can size and run with — every dimension positive, heads a multiple of KV heads, an even head_dim,
 * a supported architecture, finite positive epsilon and RoPE parameters (as floats, since norm_eps is
 * stored as one), at most 8 EOS ids and none negative. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "common/engine/model.h"

static void fail(const struct model_config *c, const char *what)
{
    fprintf(stderr, "config harness: accepted %s config: %s\n", c->arch, what);
    abort();
}

static bool finite_pos(double v) { return isfinite(v) && v > 0; }

static void check_accepted(const struct model_config *c)
{
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->hidden_dim <= 0 ||
        c->vocab_size <= 0 || c->max_pos <= 0 || c->head_dim <= 0)
        fail(c, "a dimension is not positive");
    if (c->n_heads % c->n_kv_heads || c->head_dim % 2)
        fail(c, "heads are not a multiple of KV heads, or head_dim is odd");
    if (strcmp(c->arch, "LlamaForCausalLM") && strcmp(c->arch, "MistralForCausalLM") &&
        strcmp(c->arch, "Qwen2ForCausalLM"))
        fail(c, "unsupported architecture");
    if (!finite_pos(c->norm_eps) || !finite_pos(c->rope_theta))
        fail(c, "rms_norm_eps or rope_theta is not a finite positive number");
    if (c->rope_kind != ROPE_DEFAULT && !finite_pos(c->rope_factor))
        fail(c, "rope_scaling.factor is not a finite positive number");
    if (c->rope_kind == ROPE_LLAMA3 &&
        (!finite_pos(c->rope_low_freq_factor) || !finite_pos(c->rope_high_freq_factor) ||
         !finite_pos(c->rope_orig_max_pos) || c->rope_high_freq_factor <= c->rope_low_freq_factor))
        fail(c, "llama3 rope_scaling parameters out of range");
    if (c->n_eos < 0 || c->n_eos > 8)
        fail(c, "EOS count out of range");
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0)
            fail(c, "negative EOS id");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_level(LOG_ERROR); /* sliding_window warnings would flood the output */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model_config c;
    struct error err = {{0}};
    if (model_config_parse((const char *)data, size, &c, &err) == 0)
        check_accepted(&c);
    else if (!err.msg[0])
        fail(&c, "refused without a message");
    return 0;
}
