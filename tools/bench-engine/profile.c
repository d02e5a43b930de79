/* profile.c — `pdserve-bench-engine --profile FILE`: the model's cost on this machine as pdserve-plan
 * needs it. Forward passes of the shapes the daemons run are timed — a prompt alone in one pass (16 to
 * 512 tokens), and decode passes of 1 to 16 sequences at short and long contexts — and each is written
 * with its cost terms (tokens, attention pairs, logits rows) and seconds:
 *
 *   {"model": DIR, "kv_bytes_per_token": N, "passes": [{"threads": 1, "tokens": 128, "attn": 8256,
 *    "logits": 1, "secs": 0.31}, ...]}
 *
 * An existing FILE keeps the passes of other thread counts, so runs at --threads 1 and 2 make one
 * profile of both. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/bench-engine/bench_engine.h"

static void add_pass(json_t *passes, int threads, double tokens, double prompt_attn, double decode_attn,
                     double logits, double secs)
{
    json_array_append_new(passes, json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "threads", threads, "tokens", tokens,
                                            "prompt_attn", prompt_attn, "decode_attn", decode_attn, "logits",
                                            logits, "secs", secs));
}

/* n prompts of len tokens in one pass (the best of reps). */
static int prefill_pass(struct engine *e, int n, int len, int reps, double *best)
{
    struct seq s[8];
    *best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double secs;
        int tokens, rc;
        make_seqs(s, n, len, 1, e->model->cfg.vocab_size, rep * 8 + 11);
        rc = run_seqs(e, s, n, n * len, &secs, &tokens);
        for (int i = 0; i < n; i++)
            engine_seq_release(&s[i], &e->kv);
        if (rc)
            return -1;
        *best = !*best || secs < *best ? secs : *best;
    }
    return 0;
}

/* Seconds per decode pass of `batch` sequences whose context is ctx tokens (prefilled untimed), over
 * `steps` passes; *mid_ctx is their mean context during the timed passes. */
static int decode_pass(struct engine *e, int batch, int ctx, int steps, double *secs, double *mid_ctx)
{
    struct seq *seqs = calloc((size_t)batch, sizeof *seqs);
    double t;
    int tokens, rc;
    make_seqs(seqs, batch, ctx - 1, 1, e->model->cfg.vocab_size, 21);
    rc = run_seqs(e, seqs, batch, 1 << 20, &t, &tokens); /* prompt + first token: context ctx */
    for (int s = 0; s < batch; s++)
        seqs[s].params.max_tokens = steps + 1, seqs[s].finish = FINISH_NONE;
    if (rc == 0)
        rc = run_seqs(e, seqs, batch, 1 << 20, &t, &tokens);
    for (int s = 0; s < batch; s++)
        engine_seq_release(&seqs[s], &e->kv);
    free(seqs);
    *secs = t / steps;
    *mid_ctx = ctx + (steps + 1) / 2.0;
    return rc;
}

/* The profile's passes, those of other thread counts kept from an earlier file. */
static json_t *load_or_new(const char *path, int threads, const char *model, double kv_bytes)
{
    json_t *root = json_load_file(path, 0, NULL), *kept = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(root, "passes"), i, e)
        if (json_integer_value(json_object_get(e, "threads")) != threads)
            json_array_append(kept, e);
    json_decref(root);
    return json_pack("{s:s, s:f, s:o}", "model", model, "kv_bytes_per_token", kv_bytes, "passes", kept);
}

int profile_write(struct engine *e, const char *model_dir, int threads, const char *path)
{
    static const int prompts[][2] = {{1, 16}, {1, 64}, {1, 256}, {1, 512}, {4, 64}, {2, 256}};
    static const int batches[] = {1, 4, 16}, long_batches[] = {1, 8};
    const struct kv_pool *kv = &e->kv;
    double kv_bytes = (double)kv->block_bytes * kv->n_layers / kv->block_size, secs, ctx;
    json_t *root = load_or_new(path, threads, model_dir, kv_bytes), *passes = json_object_get(root, "passes");
    int rc = 0;
    for (size_t i = 0; i < sizeof prompts / sizeof *prompts && !rc; i++) {
        int n = prompts[i][0], len = prompts[i][1];
        if (!(rc = prefill_pass(e, n, len, 2, &secs)))
            add_pass(passes, threads, n * len, n * len * (len + 1) / 2.0, 0, n, secs);
    }
    for (size_t i = 0; i < sizeof batches / sizeof *batches && !rc; i++)
        if (!(rc = decode_pass(e, batches[i], 16, 16, &secs, &ctx)))
            add_pass(passes, threads, batches[i], 0, batches[i] * ctx, batches[i], secs);
    for (size_t i = 0; i < sizeof long_batches / sizeof *long_batches && !rc; i++)
        if (!(rc = decode_pass(e, long_batches[i], 256, 16, &secs, &ctx)))
            add_pass(passes, threads, long_batches[i], 0, long_batches[i] * ctx, long_batches[i], secs);
    if (!rc && json_dump_file(root, path, JSON_INDENT(1)))
        fprintf(stderr, "pdserve-bench-engine: cannot write %s\n", path), rc = -1;
    json_decref(root);
    return rc;
}
