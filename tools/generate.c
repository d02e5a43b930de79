/* generate.c — pdserve-generate: offline generation in one process, for checking the engine.
 *
 *   pdserve-generate --model DIR --prompt "The capital of France is" --max-tokens 16
 *   pdserve-generate --model DIR --chat '[{"role":"user","content":"Hi"}]'
 *   pdserve-generate --model DIR --prompt-ids '[1,2,3]' --max-tokens 16 --print-ids
 *
 * Several prompts (--prompt-ids '[[...],[...]]') are decoded together as one continuous batch, or one
 * after another with --sequential; --no-cache recomputes every sequence from scratch at each step (the
 * reference the cache must match); --dump-logits writes the logits of every prompt position. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tmpl/chat.h"
#include "common/engine/blas_core.h"
#include "common/engine/engine.h"
#include "common/util/log.h"
#include "common/engine/model.h"
#include "common/tok/tok.h"

struct opts {
    const char *model, *prompt, *chat, *prompt_ids, *dump_logits;
    struct sample_params params;
    int threads, kv_blocks, block_size, budget;
    enum kn_dtype kv_dtype;
    enum model_weights weights;
    bool print_ids, no_cache, sequential;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pdserve-generate --model DIR (--prompt TEXT | --chat JSON | --prompt-ids JSON) [options]\n"
            "  --prompt TEXT           text, tokenized with the model's tokenizer.json (BOS as it says)\n"
            "  --chat JSON             messages [{\"role\":\"user\",\"content\":\"...\"}], rendered with the\n"
            "                          model's chat template and a generation prompt\n"
            "  --prompt-ids JSON       token ids: [1,2,3], or [[...],[...]] for a batch of prompts\n"
            "  --max-tokens N          tokens to generate (default 16)\n"
            "  --temperature T         0 = greedy (default 0)\n"
            "  --top-p P, --top-k K, --min-p P, --seed S\n"
            "  --repetition-penalty R, --presence-penalty P, --frequency-penalty F\n"
            "  --ignore-eos            do not stop at the model's end-of-sequence tokens\n"
            "  --print-ids             print the generated ids as JSON instead of text\n"
            "  --no-cache              recompute the whole sequence at every step\n"
            "  --sequential            decode batched prompts one after another\n"
            "  --dump-logits FILE      write float32 logits of every prompt position, [n][vocab]\n"
            "  --threads N             compute threads (default 1)\n"
            "  --weights stored|q8     matrices as stored in the files, or int8 groups of 32 (default stored)\n"
            "  --kv-dtype f32|f16|bf16 KV cache element type (default f16)\n"
            "  --kv-blocks N, --block-size N (default 16), --token-budget N (default 512)\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"model", 1, 0, 'm'},         {"prompt-ids", 1, 0, 'i'},   {"prompt", 1, 0, 'x'},
        {"chat", 1, 0, 'c'},   {"max-tokens", 1, 0, 'n'},
        {"temperature", 1, 0, 't'},   {"top-p", 1, 0, 'p'},        {"top-k", 1, 0, 'k'},
        {"min-p", 1, 0, 'M'},         {"seed", 1, 0, 's'},         {"repetition-penalty", 1, 0, 'R'},
        {"presence-penalty", 1, 0, 'P'}, {"frequency-penalty", 1, 0, 'F'}, {"ignore-eos", 0, 0, 'E'},
        {"print-ids", 0, 0, 'I'},     {"no-cache", 0, 0, 'C'},     {"sequential", 0, 0, 'S'},
        {"dump-logits", 1, 0, 'D'},   {"threads", 1, 0, 'T'},      {"kv-blocks", 1, 0, 'B'},
        {"block-size", 1, 0, 'b'},    {"token-budget", 1, 0, 'g'}, {"help", 0, 0, 'h'},
        {"kv-dtype", 1, 0, 'K'},      {"weights", 1, 0, 'W'},
        {0, 0, 0, 0}};
    sample_params_default(&o->params);
    o->params.temperature = 0;
    o->threads = 1, o->block_size = 16, o->budget = 512, o->kv_dtype = KN_F16;
    int t;
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'i': o->prompt_ids = optarg; break;
        case 'x': o->prompt = optarg; break;
        case 'c': o->chat = optarg; break;
        case 'n': o->params.max_tokens = atoi(optarg); break;
        case 't': o->params.temperature = strtof(optarg, NULL); break;
        case 'p': o->params.top_p = strtof(optarg, NULL); break;
        case 'k': o->params.top_k = atoi(optarg); break;
        case 'M': o->params.min_p = strtof(optarg, NULL); break;
        case 's': o->params.seed = strtoull(optarg, NULL, 10); break;
        case 'R': o->params.repetition_penalty = strtof(optarg, NULL); break;
        case 'P': o->params.presence_penalty = strtof(optarg, NULL); break;
        case 'F': o->params.frequency_penalty = strtof(optarg, NULL); break;
        case 'E': o->params.ignore_eos = true; break;
        case 'I': o->print_ids = true; break;
        case 'C': o->no_cache = true; break;
        case 'S': o->sequential = true; break;
        case 'D': o->dump_logits = optarg; break;
        case 'T': o->threads = atoi(optarg); break;
        case 'B': o->kv_blocks = atoi(optarg); break;
        case 'b': o->block_size = atoi(optarg); break;
        case 'g': o->budget = atoi(optarg); break;
        case 'K':
            if ((t = kn_dtype_parse(optarg, 0)) < 0) {
                fprintf(stderr, "pdserve-generate: --kv-dtype %s: must be f32, f16 or bf16\n", optarg);
                return -1;
            }
            o->kv_dtype = (enum kn_dtype)t;
            break;
        case 'W':
            if (strcmp(optarg, "stored") && strcmp(optarg, "q8")) {
                fprintf(stderr, "pdserve-generate: --weights %s: must be stored or q8\n", optarg);
                return -1;
            }
            o->weights = strcmp(optarg, "q8") ? MODEL_WEIGHTS_STORED : MODEL_WEIGHTS_Q8;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->budget < 1 || o->block_size < 1 || o->params.max_tokens < 0) {
        fprintf(stderr, "pdserve-generate: --token-budget and --block-size must be at least 1, "
                        "--max-tokens at least 0\n");
        return -1;
    }
    if (!o->model || !!o->prompt + !!o->chat + !!o->prompt_ids != 1) {
        fprintf(stderr, "pdserve-generate: --model and one of --prompt, --chat, --prompt-ids are required\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Parses [ids] or [[ids],...] into prompts; *batched says which form it was. */
static int parse_prompts(const char *text, int32_t ***ids, int **lens, int *n, bool *batched,
                         struct error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!json_is_array(root) || json_array_size(root) == 0) {
        json_decref(root);
        return error_set(err, "--prompt-ids must be a non-empty JSON array of token ids (%s)", jerr.text);
    }
    *batched = json_is_array(json_array_get(root, 0));
    *n = *batched ? (int)json_array_size(root) : 1;
    *ids = calloc((size_t)*n, sizeof **ids);
    *lens = calloc((size_t)*n, sizeof **lens);
    for (int p = 0; p < *n; p++) {
        json_t *arr = *batched ? json_array_get(root, (size_t)p) : root;
        size_t len = json_array_size(arr);
        (*ids)[p] = malloc((len ? len : 1) * sizeof(int32_t));
        (*lens)[p] = (int)len;
        for (size_t i = 0; i < len; i++) {
            json_t *v = json_array_get(arr, i);
            if (!json_is_integer(v)) {
                json_decref(root);
                return error_set(err, "--prompt-ids: prompt %d, element %zu is not an integer", p, i);
            }
            (*ids)[p][i] = (int32_t)json_integer_value(v);
        }
    }
    json_decref(root);
    return 0;
}

/* --prompt or --chat → token ids, with the model's own tokenizer and chat template. */
static int encode_text(const struct opts *o, const struct tokenizer *tok, int32_t ***ids, int **lens, int *n,
                       struct error *err)
{
    char *text = NULL;
    const char *src = o->prompt;
    if (o->chat) {
        json_t *messages = json_loads(o->chat, 0, NULL);
        struct chat_template *ct = json_is_array(messages) ? chat_load(o->model, NULL, err) : NULL;
        int rc = ct ? chat_render(ct, messages, true, NULL, &text, err) : -1;
        if (!json_is_array(messages))
            error_set(err, "--chat must be a JSON array of messages");
        chat_free(ct);
        json_decref(messages);
        if (rc < 0)
            return -1;
        src = text;
    }
    *n = 1;
    *ids = calloc(1, sizeof **ids);
    *lens = calloc(1, sizeof **lens);
    /* A rendered chat already has its special tokens: add none (as transformers and vLLM do). */
    int rc = tok_encode(tok, src, strlen(src), !o->chat, true, &(*ids)[0], &(*lens)[0], err);
    free(text);
    return rc;
}

static void print_text(const struct tokenizer *tok, struct seq *seqs, int n)
{
    for (int p = 0; p < n; p++) {
        char *text = NULL;
        size_t len = 0;
        struct error err;
        if (tok_decode(tok, seqs[p].tokens + seqs[p].n_prompt, engine_seq_n_generated(&seqs[p]), true, &text, &len,
                       &err) < 0)
            fprintf(stderr, "pdserve-generate: %s\n", err.msg);
        else
            printf("%s\n", text);
        free(text);
    }
}

static int dump_logits(struct engine *e, const int32_t *prompt, int n, const char *path,
                       struct error *err)
{
    struct seq s;
    if (engine_seq_init(&s, 0, prompt, n, &(struct sample_params){.max_tokens = 1}, err) < 0)
        return -1;
    int rc = -1;
    size_t vocab = (size_t)e->model->cfg.vocab_size;
    int32_t *pos = malloc((size_t)n * sizeof *pos), *seq_of = calloc((size_t)n, sizeof *seq_of);
    bool *want = malloc((size_t)n * sizeof *want);
    float *logits = malloc((size_t)n * vocab * sizeof *logits);
    if (!pos || !seq_of || !want || !logits || kv_seq_reserve(&e->kv, &s.kv, n) < 0) {
        error_set(err, "out of memory or KV blocks for %d prompt tokens", n);
        goto out;
    }
    for (int i = 0; i < n; i++)
        pos[i] = i, want[i] = true;
    const struct kv_seq *tables[] = {&s.kv};
    struct fwd_batch b = {n, prompt, pos, seq_of, want, tables, 1, NULL, NULL};
    if (forward(e->model, &e->kv, e->rs, &b, logits, err) < 0)
        goto out;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(logits, sizeof *logits, (size_t)n * vocab, f) != (size_t)n * vocab) {
        error_set(err, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        goto out;
    }
    rc = fclose(f) == 0 ? 0 : error_set(err, "%s: %s", path, strerror(errno));
out:
    engine_seq_release(&s, &e->kv);
    free(pos), free(seq_of), free(want), free(logits);
    return rc;
}

/* --no-cache: a sequence that has just been given a token forgets its cache, so the next token is
 * computed from scratch. One still part-way through its recompute (longer than the token budget, so
 * computed in chunks over several steps) keeps what it has: dropping that too would undo each chunk
 * before the next and never reach a token. */
static void forget_cache_after_token(struct engine *e, struct seq **seqs, int n, const int *before)
{
    for (int i = 0; i < n; i++)
        if (seqs[i]->n_tokens != before[i]) {
            engine_seq_uncache(seqs[i], &e->kv);
        }
}

/* Steps every unfinished sequence together until all are done (continuous batching in miniature).
 * A step computes up to `budget` uncached tokens, so more than (live tokens / budget) + 2 steps in a
 * row without a new token means no progress: that is an error, never an endless loop. */
static int run_batch(struct engine *e, struct seq **seqs, int n, const struct opts *o, struct error *err)
{
    int *before = malloc((size_t)n * sizeof *before), idle_steps = 0;
    if (!before)
        return error_set(err, "out of memory");
    int rc = 0;
    for (;;) {
        int live = 0, live_tokens = 0;
        for (int i = 0; i < n; i++) {
            before[i] = seqs[i]->n_tokens;
            live += seqs[i]->finish == FINISH_NONE;
            live_tokens += seqs[i]->finish == FINISH_NONE ? seqs[i]->n_tokens : 0;
        }
        if (!live)
            break;
        struct step_result r;
        if ((rc = engine_step(e, seqs, n, o->budget, NULL, NULL, &r, err)) < 0)
            break;
        if (r.n_tokens == 0) {
            rc = error_set(err, "the KV pool (%d blocks) cannot hold these sequences; raise --kv-blocks",
                           e->kv.n_blocks);
            break;
        }
        bool progress = false;
        for (int i = 0; i < n; i++)
            progress |= seqs[i]->n_tokens != before[i];
        idle_steps = progress ? 0 : idle_steps + 1;
        if (idle_steps > live_tokens / o->budget + 2) {
            rc = error_set(err, "no sequence got a token in %d steps (%d tokens live, --token-budget %d); "
                                "this is a bug, please report it", idle_steps, live_tokens, o->budget);
            break;
        }
        if (o->no_cache)
            forget_cache_after_token(e, seqs, n, before);
    }
    free(before);
    return rc;
}

static void print_ids(struct seq *seqs, int n, bool batched)
{
    if (batched)
        printf("[");
    for (int p = 0; p < n; p++) {
        printf("%s[", p ? "," : "");
        for (int i = seqs[p].n_prompt; i < seqs[p].n_tokens; i++)
            printf("%s%d", i > seqs[p].n_prompt ? "," : "", seqs[p].tokens[i]);
        printf("]");
    }
    printf(batched ? "]\n" : "\n");
}

static void print_result(const struct opts *o, const struct tokenizer *tok, struct seq *seqs, int n,
                         bool batched)
{
    if (tok && !o->print_ids)
        print_text(tok, seqs, n);
    else
        print_ids(seqs, n, batched);
    for (int p = 0; p < n; p++)
        log_info("sequence %d: %d prompt + %d generated tokens, finish reason %s", p, seqs[p].n_prompt,
                 engine_seq_n_generated(&seqs[p]), finish_name(seqs[p].finish));
}

static int generate(struct engine *e, const struct opts *o, const struct tokenizer *tok, int32_t **ids,
                    int *lens, int n, bool batched, struct error *err)
{
    struct seq *seqs = calloc((size_t)n, sizeof *seqs);
    struct seq **order = calloc((size_t)n, sizeof *order);
    int rc = 0;
    for (int p = 0; p < n && rc == 0; p++) {
        rc = engine_seq_init(&seqs[p], (uint64_t)p, ids[p], lens[p], &o->params, err);
        order[p] = &seqs[p];
    }
    if (rc == 0 && o->sequential)
        for (int p = 0; p < n && rc == 0; p++)
            rc = run_batch(e, &order[p], 1, o, err);
    else if (rc == 0)
        rc = run_batch(e, order, n, o, err);
    if (rc == 0)
        print_result(o, tok, seqs, n, batched);
    for (int p = 0; p < n; p++)
        engine_seq_release(&seqs[p], &e->kv);
    free(seqs);
    free(order);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    struct error err = {{0}};
    log_init("generate");
    blas_core_check(argv);
    if (parse_args(argc, argv, &o) < 0)
        return 2;
    int32_t **ids = NULL;
    int *lens = NULL, n = 0, rc = 1;
    bool batched = false;
    struct model *m = model_load_as(o.model, o.weights, &err);
    struct engine e = {0};
    struct tokenizer *tok = NULL;
    if (!m)
        goto out;
    if (o.prompt_ids ? parse_prompts(o.prompt_ids, &ids, &lens, &n, &batched, &err) < 0
                     : !(tok = tok_load(o.model, &err)) || encode_text(&o, tok, &ids, &lens, &n, &err) < 0)
        goto out;
    int max_len = 0;
    for (int p = 0; p < n; p++)
        max_len = lens[p] > max_len ? lens[p] : max_len;
    int blocks = o.kv_blocks ? o.kv_blocks : n * ((max_len + o.params.max_tokens) / o.block_size + 2);
    if (engine_init(&e, m, blocks, o.block_size, o.kv_dtype, o.threads, &err) < 0)
        goto out;
    rc = 0;
    if (o.dump_logits)
        rc = dump_logits(&e, ids[0], lens[0], o.dump_logits, &err) < 0;
    if (rc == 0 && (!o.dump_logits || o.params.max_tokens > 0))
        rc = generate(&e, &o, tok, ids, lens, n, batched, &err) < 0;
out:
    if (rc)
        fprintf(stderr, "pdserve-generate: %s\n", err.msg);
    for (int p = 0; p < n; p++)
        free(ids[p]);
    free(ids);
    free(lens);
    tok_free(tok);
    if (m)
        engine_destroy(&e);
    model_free(m);
    return rc;
}
