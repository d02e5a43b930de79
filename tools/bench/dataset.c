/* dataset.c — the prompts a run sends: random ones of exact lengths, or conversations from a
 * ShareGPT-format JSON file. Deterministic in --seed.
 *
 * Random prompts on /v1/completions are token-id lists (the OpenAI API and vLLM accept a list of
 * ints as the prompt), so the server sees exactly --input-len tokens whatever its tokenizer. Chat
 * messages must be text: common English words, fitted to exactly --input-len tokens with the
 * model's tokenizer when --tokenizer DIR is given, else one word per token (byte-level BPE
 * vocabularies hold each as one token, so the count lands near); the server's usage block gives
 * the count it saw either way. */
#include "bench.h"
#include "common/util/log.h"
#include "common/tok/tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
    "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people",
    "year", "way", "day", "man", "thing", "woman", "life", "child", "world", "school", "state",
    "family", "group", "country", "problem", "hand", "part", "place", "case", "week", "company",
    "system", "program", "question", "work", "government", "number", "night", "point", "home",
    "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right", "study",
    "book", "eye", "job", "word", "business", "issue", "side", "kind", "head", "house", "service",
};

static int draw_len(struct rng *rng, int len, double ratio)
{
    int lo = (int)(len * (1.0 - ratio)), hi = (int)(len * (1.0 + ratio));
    int v = bench_rng_int(rng, lo, hi);
    return v < 1 ? 1 : v;
}

static char *random_text(struct rng *rng, int n_words)
{
    size_t cap = (size_t)n_words * 12 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (int i = 0; i < n_words; i++) {
        const char *w = words[bench_rng_int(rng, 0, (int)(sizeof words / sizeof *words) - 1)];
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? " " : "", w);
    }
    s[len] = '\0';
    return s;
}

static int random_chat_text(const struct tokenizer *tok, struct rng *rng,
                            struct bench_prompt *p, struct error *err)
{
    int got;
    if (!tok) {
        p->text = random_text(rng, p->input_len);
        return p->text ? 0 : error_set(err, "out of memory building a prompt");
    }
    if (bench_tok_fit_text(tok, rng, words, (int)(sizeof words / sizeof *words), p->input_len,
                           &p->text, &got, err) < 0)
        return -1;
    if (got != p->input_len)
        log_debug("a %d-token prompt came out at %d tokens", p->input_len, got);
    p->input_len = got;
    return 0;
}

static int make_random(const struct bench_opts *o, const struct tokenizer *tok,
                       struct bench_prompt *p, struct error *err)
{
    struct rng rng;
    rng_seed(&rng, o->seed);
    /* All lengths first: the same seed gives the same lengths on either endpoint. */
    for (int i = 0; i < o->num_prompts; i++) {
        p[i].input_len = draw_len(&rng, o->input_len, o->range_ratio);
        p[i].output_len = draw_len(&rng, o->output_len, o->range_ratio);
    }
    if (o->prompt_variant) /* another sweep run: the same lengths, other tokens */
        rng_seed(&rng, o->seed ^ (o->prompt_variant * 0x9e3779b97f4a7c15ull));
    for (int i = 0; i < o->num_prompts; i++) {
        if (o->chat) {
            if (random_chat_text(tok, &rng, &p[i], err) < 0)
                return -1;
            continue;
        }
        p[i].ids = malloc(sizeof(int) * (size_t)p[i].input_len);
        if (!p[i].ids)
            return error_set(err, "out of memory building prompt %d", i);
        p[i].n_ids = p[i].input_len;
        for (int j = 0; j < p[i].n_ids; j++)
            p[i].ids[j] = bench_rng_int(&rng, 0, o->vocab_size - 1);
    }
    return 0;
}

/* Multi-turn conversations, as chat and agent clients send them: every request resends the whole
 * history. All conversations open with the same --prefix-len system prompt; turn t of a conversation
 * is that prompt, then for each earlier turn its --input-len user tokens and an --output-len reply,
 * then this turn's user tokens. Requests go turn by turn (every conversation's first turn, then
 * every second turn...), so a conversation's history was sent shortly before. */
static int make_multiturn(const struct bench_opts *o, struct bench_prompt *p, struct error *err)
{
    struct rng rng;
    rng_seed(&rng, o->seed);
    int turns = o->turns, convs = (o->num_prompts + turns - 1) / turns;
    int per_turn = o->input_len + o->output_len, longest = o->prefix_len + turns * per_turn;
    int *system = malloc(sizeof(int) * (size_t)(o->prefix_len ? o->prefix_len : 1));
    int *history = malloc(sizeof(int) * (size_t)convs * (size_t)turns * (size_t)per_turn);
    if (!system || !history) {
        free(system), free(history);
        return error_set(err, "out of memory building %d conversations", convs);
    }
    for (int j = 0; j < o->prefix_len; j++)
        system[j] = bench_rng_int(&rng, 0, o->vocab_size - 1);
    for (size_t j = 0; j < (size_t)convs * turns * per_turn; j++)
        history[j] = bench_rng_int(&rng, 0, o->vocab_size - 1);
    for (int i = 0; i < o->num_prompts; i++) {
        int turn = i / convs, conv = i % convs, n = o->prefix_len + turn * per_turn + o->input_len;
        p[i].ids = malloc(sizeof(int) * (size_t)longest);
        if (!p[i].ids) {
            free(system), free(history);
            return error_set(err, "out of memory building prompt %d", i);
        }
        memcpy(p[i].ids, system, sizeof(int) * (size_t)o->prefix_len);
        memcpy(p[i].ids + o->prefix_len, history + (size_t)conv * turns * per_turn,
               sizeof(int) * (size_t)(n - o->prefix_len));
        p[i].n_ids = p[i].input_len = n;
        p[i].output_len = o->output_len;
    }
    free(system);
    free(history);
    return 0;
}

/* Without the model's tokenizer, a token is counted as four bytes of English text, the usual
 * rule of thumb; the server's usage block gives the exact counts in the result. */
static int count_tokens(const struct tokenizer *tok, const char *s, int *n, struct error *err)
{
    if (tok)
        return bench_tok_count(tok, s, n, err);
    *n = (int)((strlen(s) + 3) / 4);
    return 0;
}

/* The first two turns of a conversation, or NULL if it has fewer. */
static int conv_turns(json_t *conv, const char **prompt, const char **reply)
{
    json_t *turns = json_object_get(conv, "conversations");
    if (!json_is_array(turns) || json_array_size(turns) < 2)
        return -1;
    *prompt = json_string_value(json_object_get(json_array_get(turns, 0), "value"));
    *reply = json_string_value(json_object_get(json_array_get(turns, 1), "value"));
    return *prompt && *reply ? 0 : -1;
}

struct conv {
    int idx, prompt_len, reply_len;
};

/* Collects the usable conversations with their lengths; vLLM's filter drops very short turns and
 * prompts too long for small context windows. Returns how many, or -1. */
static int usable_convs(json_t *root, const struct tokenizer *tok, struct conv *c,
                        struct error *err)
{
    int n = 0;
    for (size_t i = 0; i < json_array_size(root); i++) {
        const char *prompt, *reply;
        struct conv v = {.idx = (int)i};
        if (conv_turns(json_array_get(root, i), &prompt, &reply) < 0)
            continue;
        if (count_tokens(tok, prompt, &v.prompt_len, err) < 0 ||
            count_tokens(tok, reply, &v.reply_len, err) < 0)
            return -1;
        if (v.prompt_len >= 4 && v.reply_len >= 4 && v.prompt_len <= 1024 &&
            v.prompt_len + v.reply_len <= 2048)
            c[n++] = v;
    }
    return n;
}

static void shuffle(struct conv *c, int n, struct rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = bench_rng_int(rng, 0, i);
        struct conv t = c[i];
        c[i] = c[j];
        c[j] = t;
    }
}

static int take_sharegpt(const struct bench_opts *o, json_t *root, const struct conv *c,
                         int n_usable, struct bench_prompt *p, struct error *err)
{
    if (n_usable < o->num_prompts)
        log_warn("%s: only %d usable conversations for %d prompts; reusing them in turn",
                 o->dataset_path, n_usable, o->num_prompts);
    for (int i = 0; i < o->num_prompts; i++) {
        const struct conv *v = &c[i % n_usable];
        const char *prompt, *reply;
        conv_turns(json_array_get(root, (size_t)v->idx), &prompt, &reply);
        p[i].text = strdup(prompt);
        if (!p[i].text)
            return error_set(err, "out of memory copying conversation %d", v->idx);
        p[i].input_len = v->prompt_len;
        p[i].output_len = o->output_len_set ? o->output_len : v->reply_len;
    }
    return 0;
}

static int make_sharegpt(const struct bench_opts *o, const struct tokenizer *tok,
                         struct bench_prompt *p, struct error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(o->dataset_path, 0, &jerr);
    if (!root && jerr.line < 0) /* not readable at all: jansson's text names the file */
        return error_set(err, "--dataset sharegpt: %s", jerr.text);
    if (!root)
        return error_set(err, "%s: line %d: %s (want a ShareGPT JSON array)", o->dataset_path,
                         jerr.line, jerr.text);
    size_t n = json_array_size(root); /* 0 when root is not an array */
    struct conv *c = malloc(sizeof *c * (n ? n : 1));
    int n_usable = c ? usable_convs(root, tok, c, err) : error_set(err, "out of memory"), rc = -1;
    if (n_usable == 0)
        error_set(err, "%s: no usable conversations (want [{\"conversations\": [{\"from\": "
                       "\"human\", \"value\": ...}, {\"from\": \"gpt\", \"value\": ...}]}, ...])",
                  o->dataset_path);
    if (n_usable > 0) {
        struct rng rng;
        rng_seed(&rng, o->seed);
        shuffle(c, n_usable, &rng);
        rc = take_sharegpt(o, root, c, n_usable, p, err);
    }
    free(c);
    json_decref(root);
    return rc;
}

int bench_prompts_make(const struct bench_opts *o, struct bench_prompt **out, struct error *err)
{
    struct bench_prompt *p = calloc((size_t)o->num_prompts, sizeof *p);
    if (!p)
        return error_set(err, "out of memory for %d prompts", o->num_prompts);
    struct tokenizer *tok = NULL;
    if (o->tokenizer_dir && !(tok = tok_load(o->tokenizer_dir, err))) {
        free(p);
        return error_wrap(err, "--tokenizer %s", o->tokenizer_dir);
    }
    int rc = o->dataset == BENCH_DATASET_RANDOM      ? make_random(o, tok, p, err)
             : o->dataset == BENCH_DATASET_MULTITURN ? make_multiturn(o, p, err)
                                                     : make_sharegpt(o, tok, p, err);
    tok_free(tok);
    if (rc < 0) {
        bench_prompts_free(p, o->num_prompts);
        return -1;
    }
    *out = p;
    return 0;
}

void bench_prompts_free(struct bench_prompt *p, int n)
{
    if (!p)
        return;
    for (int i = 0; i < n; i++) {
        free(p[i].ids);
        free(p[i].text);
    }
    free(p);
}
