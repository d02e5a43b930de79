/* config.c — fuzz harness: the config.json of a model folder someone downloaded (or crafted) into
 * model_config_parse (common/engine/model_config.c), the parser model_config_load uses.
 *
 * Asserts beyond "no crash, no leak": a refusal has a message; an accepted config is one the engine
 * can size and run with — every dimension positive, heads a multiple of KV heads, an even head_dim,
 * a supported architecture (arch.c's list), finite positive epsilon and RoPE parameters (as floats,
 * since norm_eps is stored as one), the per-architecture constants usable (a finite positive query
 * and embedding scale, soft-caps and window not negative, longrope's factors finite and positive), at
 * most 8 EOS ids and none negative. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "common/engine/arch.h"
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
    enum model_arch family;
    struct error err = {{0}};
    if (arch_lookup(c->arch, &family, &err) < 0 || family != c->family)
        fail(c, "unsupported architecture, or not the family parsed");
    if (!finite_pos(c->norm_eps) || !finite_pos(c->rope_theta))
        fail(c, "rms_norm_eps or rope_theta is not a finite positive number");
    if ((c->rope_kind == ROPE_LINEAR || c->rope_kind == ROPE_LLAMA3) && !finite_pos(c->rope_factor))
        fail(c, "rope_scaling.factor is not a finite positive number");
    if (c->rope_kind == ROPE_LLAMA3 &&
        (!finite_pos(c->rope_low_freq_factor) || !finite_pos(c->rope_high_freq_factor) ||
         !finite_pos(c->rope_orig_max_pos) || c->rope_high_freq_factor <= c->rope_low_freq_factor))
        fail(c, "llama3 rope_scaling parameters out of range");
    if (!finite_pos(c->attn_scale) || !finite_pos(c->embed_scale) || !isfinite(c->norm_offset))
        fail(c, "query or embedding scale not a finite positive number, or a non-finite norm offset");
    if (!(c->attn_softcap >= 0 && isfinite(c->attn_softcap)) || !(c->final_softcap >= 0 && isfinite(c->final_softcap)))
        fail(c, "a soft-cap is negative or not finite");
    if (c->sliding_window < 0 || (c->rope_local_theta != 0 && !finite_pos(c->rope_local_theta)))
        fail(c, "negative sliding window, or a local RoPE base not finite positive");
    if (!finite_pos(c->rope_attn_factor))
        fail(c, "longrope attention factor not a finite positive number");
    if (c->rope_kind == ROPE_LONGROPE)
        for (int i = 0; i < c->head_dim / 2 && i < MODEL_MAX_ROPE_FACTORS; i++)
            if (!finite_pos(c->rope_short_factor[i]))
                fail(c, "a longrope short factor is not a finite positive number");
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
