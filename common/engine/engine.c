/* engine.c — sequences and the batched step (see engine.h). */
#include "common/engine/engine.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int engine_seq_init(struct seq *s, uint64_t id, const int32_t *prompt, int n_prompt,
             const struct sample_params *params, struct error *err)
{
    memset(s, 0, sizeof *s);
    if (n_prompt < 1)
        return error_set(err, "request %llu: the prompt has no tokens", (unsigned long long)id);
    s->cap = n_prompt + (params->max_tokens > 0 ? params->max_tokens : 16);
    s->tokens = malloc((size_t)s->cap * sizeof *s->tokens);
    if (!s->tokens)
        return error_set(err, "out of memory for a %d-token prompt", n_prompt);
    memcpy(s->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    s->id = id;
    s->n_tokens = s->n_prompt = n_prompt;
    s->params = *params;
    rng_seed(&s->rng, params->seed);
    if (params->prompt_logprobs && !(s->prompt_lp = prompt_logprobs_new(n_prompt))) {
        free(s->tokens);
        return error_set(err, "out of memory for a %d-token prompt's logprobs", n_prompt);
    }
    return 0;
}

struct prompt_logprobs *prompt_logprobs_new(int n)
{
    struct prompt_logprobs *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n;
    p->logprobs = calloc((size_t)n, sizeof *p->logprobs);
    p->top = calloc((size_t)n, sizeof *p->top);
    if (!p->logprobs || !p->top) {
        prompt_logprobs_free(p);
        return NULL;
    }
    return p;
}

void prompt_logprobs_free(struct prompt_logprobs *p)
{
    if (!p)
        return;
    free(p->logprobs);
    free(p->top);
    free(p);
}

int engine_seq_append(struct seq *s, int32_t token)
{
    if (s->n_tokens == s->cap) {
        int cap = 2 * s->cap;
        int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        s->tokens = t;
        s->cap = cap;
    }
    s->tokens[s->n_tokens++] = token;
    return 0;
}

void engine_seq_uncache(struct seq *s, struct kv_pool *kv)
{
    kv_seq_release(kv, &s->kv);
    s->n_cached = s->n_published = 0;
    s->chain = 0;
}

void engine_seq_release(struct seq *s, struct kv_pool *kv)
{
    kv_seq_release(kv, &s->kv);
    free(s->tokens);
    s->tokens = NULL;
    prompt_logprobs_free(s->prompt_lp);
    s->prompt_lp = NULL;
    gmatch_free(s->match);
    grammar_free(s->grammar);
    s->match = NULL;
    s->grammar = NULL;
    s->n_tokens = s->cap = s->n_cached = 0;
}

int engine_init(struct engine *e, const struct model *m, int n_blocks, int block_size, enum kn_dtype kv_dtype,
                int threads, struct error *err)
{
    memset(e, 0, sizeof *e);
    e->model = m;
    if (kv_pool_init(&e->kv, &m->cfg, n_blocks, block_size, kv_dtype, err) < 0)
        return -1;
    openblas_set_num_threads(1);
    e->rs = run_state_new(m, threads);
    e->sampler = sampler_new(m->cfg.vocab_size);
    if (!e->rs || !e->sampler) {
        engine_destroy(e);
        return error_set(err, "out of memory");
    }
    return 0;
}

void engine_destroy(struct engine *e)
{
    kv_pool_destroy(&e->kv);
    run_state_free(e->rs);
    sampler_free(e->sampler);
    free(e->logits);
    free(e->tok);
    free(e->pos);
    free(e->seq_of);
    free(e->want);
    free(e->tables);
    gvocab_free(e->vocab);
    free(e->mask);
    memset(e, 0, sizeof *e);
}

int engine_set_vocab(struct engine *e, struct gvocab *v, struct error *err)
{
    if (gvocab_size(v) != e->model->cfg.vocab_size) {
        error_set(err, "a vocabulary of %d ids for a model of %d", gvocab_size(v), e->model->cfg.vocab_size);
        gvocab_free(v);
        return -1;
    }
    uint32_t *mask = malloc((size_t)(e->model->cfg.vocab_size + 31) / 32 * sizeof *mask);
    if (!mask) {
        gvocab_free(v);
        return error_set(err, "out of memory for a token mask");
    }
    gvocab_free(e->vocab);
    free(e->mask);
    e->vocab = v;
    e->mask = mask;
    return 0;
}

int engine_seq_constrain(const struct engine *e, struct seq *s, const char *constraint, struct error *err)
{
    if (!e->vocab)
        return error_set(err, "structured output needs the model's tokenizer, which this worker could not load");
    struct grammar *g = grammar_compile_spec(constraint, err);
    struct gmatch *m = g ? gmatch_new(g) : NULL;
    if (g && !m)
        error_set(err, "out of memory");
    for (int i = s->n_prompt; m && i < s->n_tokens; i++) {
        size_t len;
        const uint8_t *b = gvocab_bytes(e->vocab, s->tokens[i], &len);
        if (!b || !gmatch_feed(m, b, len)) {
            error_set(err, "token %d does not continue a valid answer", s->tokens[i]);
            gmatch_free(m);
            m = NULL;
        }
    }
    if (!m) {
        grammar_free(g);
        return -1;
    }
    s->grammar = g;
    s->match = m;
    return 0;
}

/* The tokens the matcher lets through now, in e->mask; false when there are none (a schema's
 * nesting ran past the matcher's depth). */
static bool constrain_step(struct engine *e, struct seq *s)
{
    gmatch_mask(s->match, e->vocab, e->mask);
    size_t words = (size_t)(e->model->cfg.vocab_size + 31) / 32;
    for (size_t i = 0; i < words; i++)
        if (e->mask[i])
            return true;
    return false;
}

/* After token id: the matcher moves on; the answer ends when an end token comes or the value closes. */
static void constrain_advance(struct engine *e, struct seq *s, int32_t id)
{
    size_t len;
    const uint8_t *b = gvocab_bytes(e->vocab, id, &len);
    if (!b || !gmatch_feed(s->match, b, len) || gmatch_closed(s->match))
        s->finish = FINISH_STOP;
}

static int ensure_batch(struct engine *e, int n_tokens, int n_seqs)
{
    if (n_tokens > e->cap) {
        int cap = n_tokens > 2 * e->cap ? n_tokens : 2 * e->cap;
        int32_t *t = realloc(e->tok, (size_t)cap * sizeof *t), *p, *q;
        e->tok = t ? t : e->tok;
        p = realloc(e->pos, (size_t)cap * sizeof *p);
        e->pos = p ? p : e->pos;
        q = realloc(e->seq_of, (size_t)cap * sizeof *q);
        e->seq_of = q ? q : e->seq_of;
        bool *w = realloc(e->want, (size_t)cap * sizeof *w);
        e->want = w ? w : e->want;
        if (!t || !p || !q || !w)
            return -1;
        e->cap = cap;
    }
    if (n_seqs > e->tables_cap) {
        const struct kv_seq **tb = realloc(e->tables, (size_t)n_seqs * sizeof *tb);
        if (!tb)
            return -1;
        e->tables = tb;
        e->tables_cap = n_seqs;
    }
    return 0;
}

static bool is_stop_token(const struct engine *e, const struct seq *s, int32_t id)
{
    const struct model_config *c = &e->model->cfg;
    for (int i = 0; i < s->params.n_stop_ids; i++)
        if (s->params.stop_ids[i] == id)
            return true;
    if (s->params.ignore_eos)
        return false;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id)
            return true;
    return false;
}

int engine_sample(struct engine *e, struct seq *s, float *logits)
{
    if (s->match && !constrain_step(e, s)) {
        s->finish = FINISH_LENGTH;
        return 0;
    }
    int32_t id = sampler_pick(e->sampler, &s->params, &s->rng, logits, s->match ? e->mask : NULL, s->tokens,
                              s->n_prompt, s->tokens + s->n_prompt, engine_seq_n_generated(s), &s->last_logprob,
                              &s->last_top);
    if (engine_seq_append(s, id) < 0)
        return -1;
    if (s->match)
        constrain_advance(e, s, id);
    if (s->finish == FINISH_STOP || is_stop_token(e, s, id))
        s->finish = FINISH_STOP;
    else if (engine_seq_n_generated(s) >= s->params.max_tokens || s->n_tokens >= e->model->cfg.max_pos)
        s->finish = FINISH_LENGTH;
    return 0;
}

/* Adds seq s's next uncached tokens (at most budget) to the batch; returns how many, -1 if the pool
 * cannot hold them. */
static int schedule_seq(struct engine *e, struct seq *s, int seq_index, int n_batch, int budget)
{
    int n = s->n_tokens - s->n_cached;
    if (n > budget)
        n = budget;
    if (s->prompt_lp && n > PROMPT_LOGPROBS_CHUNK)
        n = PROMPT_LOGPROBS_CHUNK;
    if (kv_seq_reserve(&e->kv, &s->kv, s->n_cached + n) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int p = s->n_cached + i;
        e->tok[n_batch + i] = s->tokens[p];
        e->pos[n_batch + i] = p;
        e->seq_of[n_batch + i] = seq_index;
        e->want[n_batch + i] = p == s->n_tokens - 1 || (s->prompt_lp && p < s->n_prompt - 1);
    }
    e->tables[seq_index] = &s->kv;
    return n;
}

/* A sequence with nothing cached starts from the cache's longest match of its tokens; its last token
 * is always computed (its logits are wanted), so the blocks matched are never written. */
static void match_prefix(struct engine *e, struct seq *s)
{
    if (!e->kv.prefix || s->n_cached != 0 || s->kv.n_blocks != 0 || s->finish != FINISH_NONE || s->prompt_lp)
        return;
    int got = kv_prefix_match(&e->kv, s->tokens, (s->n_tokens - 1) / e->kv.block_size, &s->kv, &s->chain);
    s->n_cached = got * e->kv.block_size;
    s->n_published = got;
    if (s->n_tokens == s->n_prompt)
        s->n_cache_hit = s->n_cached;
}

static int build_batch(struct engine *e, struct seq **seqs, int n, int budget, struct step_result *res)
{
    int total = 0; /* an upper bound: a prefix found in the cache below computes less */
    for (int i = 0; i < n; i++)
        if (seqs[i]->finish == FINISH_NONE)
            total += seqs[i]->n_tokens - seqs[i]->n_cached;
    if (ensure_batch(e, total < budget ? total : budget, n) < 0)
        return -1;
    memset(res, 0, sizeof *res);
    int n_batch = 0;
    for (int i = 0; i < n && n_batch < budget; i++, res->n_scheduled = i) {
        e->tables[i] = &seqs[i]->kv;
        if (seqs[i]->finish != FINISH_NONE || seqs[i]->n_cached == seqs[i]->n_tokens)
            continue;
        match_prefix(e, seqs[i]); /* only now: a sequence that waits must not pin cached blocks */
        int got = schedule_seq(e, seqs[i], i, n_batch, budget - n_batch);
        if (got < 0) {
            res->out_of_blocks = true;
            break;
        }
        n_batch += got;
    }
    res->n_tokens = n_batch;
    return 0;
}

static int ensure_logits(struct engine *e, int rows)
{
    if (rows <= e->logits_rows)
        return 0;
    float *l = realloc(e->logits, (size_t)rows * e->model->cfg.vocab_size * sizeof *l);
    if (!l)
        return -1;
    e->logits = l;
    e->logits_rows = rows;
    return 0;
}

/* The batch's attention pairs (a token at position p attends to p + 1 keys): a sequence's tokens
 * are consecutive in the batch, a run of one being a decoded token and longer ones prompt chunks. */
static void pass_shape(const struct engine *e, struct step_result *res)
{
    for (int i = 0; i < res->n_tokens; i++) {
        double pairs = e->pos[i] + 1;
        bool alone = (i == 0 || e->seq_of[i - 1] != e->seq_of[i]) &&
                     (i + 1 == res->n_tokens || e->seq_of[i + 1] != e->seq_of[i]);
        *(alone ? &res->decode_attn : &res->prompt_attn) += pairs;
        res->n_logits += e->want[i];
    }
}

int engine_step(struct engine *e, struct seq **seqs, int n, int token_budget,
                bool (*on_layer)(void *ctx, int layer), void *ctx, struct step_result *res,
                struct error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (build_batch(e, seqs, n, token_budget, res) < 0)
        return error_set(err, "out of memory building a batch");
    pass_shape(e, res);
    if (ensure_logits(e, res->n_logits) < 0)
        return error_set(err, "out of memory for %d rows of logits", res->n_logits);
    struct fwd_batch b = {res->n_tokens, e->tok, e->pos, e->seq_of, e->want, e->tables,
                          res->n_scheduled, on_layer, ctx};
    int rc = forward(e->model, &e->kv, e->rs, &b, e->logits, err);
    if (rc < 0)
        return -1;
    if (rc == FORWARD_STOPPED) {
        res->stopped = true;
        return 0;
    }
    int row = 0;
    for (int i = 0; i < res->n_tokens; i++) {
        struct seq *s = seqs[e->seq_of[i]];
        int p = e->pos[i];
        s->n_cached = p + 1;
        if (!e->want[i])
            continue;
        float *logits = e->logits + (size_t)row++ * e->model->cfg.vocab_size;
        if (p < s->n_tokens - 1) /* a prompt token's row: it scores the next prompt token */
            sampler_score(e->sampler, logits, s->tokens[p + 1], s->params.top_logprobs,
                          &s->prompt_lp->logprobs[p + 1], &s->prompt_lp->top[p + 1]);
        else if (engine_sample(e, s, logits) < 0)
            return error_set(err, "out of memory appending a token");
    }
    for (int i = 0; i < res->n_scheduled; i++)
        kv_prefix_publish(&e->kv, seqs[i]->tokens, &seqs[i]->kv, &seqs[i]->n_published,
                          seqs[i]->n_cached / e->kv.block_size, &seqs[i]->chain);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    res->started = (double)t0.tv_sec + (double)t0.tv_nsec / 1e9;
    return 0;
}
