/* dataset.c — the prompts a run sends: random ones of exact lengths, or conversations from a
 * ShareGPT-format JSON file. Deterministic in --seed.
 *
 * Random prompts on /v1/completions are token-id lists (the OpenAI API and vLLM accept a list of
 * ints as the prompt), so the server sees exactly --input-len tokens whatever its tokenizer. Chat
 * messages must be text: we use common English words that byte-level BPE vocabularies hold as one
 * token each (" the", " time", ...), which lands near --input-len; the exact count is then taken
 * from the server's usage block. */
#include "bench.h"
#include "log.h"

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

static int draw_len(struct bench_rng *rng, int len, double ratio)
{
    int lo = (int)(len * (1.0 - ratio)), hi = (int)(len * (1.0 + ratio));
    int v = bench_rng_int(rng, lo, hi);
    return v < 1 ? 1 : v;
}

static char *random_text(struct bench_rng *rng, int n_words)
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

static int make_random(const struct bench_opts *o, struct bench_prompt *p, struct error *err)
{
    struct bench_rng rng;
    bench_rng_seed(&rng, o->seed);
    for (int i = 0; i < o->num_prompts; i++) {
        p[i].input_len = draw_len(&rng, o->input_len, o->range_ratio);
        p[i].output_len = draw_len(&rng, o->output_len, o->range_ratio);
        if (o->chat) {
            p[i].text = random_text(&rng, p[i].input_len);
            if (!p[i].text)
                return error_set(err, "out of memory building prompt %d", i);
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

/* Without the model's tokenizer, a token is counted as four bytes of English text, the usual
 * rule of thumb; the server's usage block gives the exact counts in the result. */
static int est_tokens(const char *s)
{
    return (int)((strlen(s) + 3) / 4);
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

/* vLLM's filter: drop very short turns and prompts too long for small context windows. */
static int usable(const char *prompt, const char *reply)
{
    int pl = est_tokens(prompt), ol = est_tokens(reply);
    return pl >= 4 && ol >= 4 && pl <= 1024 && pl + ol <= 2048;
}

static void shuffle(int *idx, int n, struct bench_rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = bench_rng_int(rng, 0, i), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static int take_sharegpt(const struct bench_opts *o, json_t *root, const int *idx, int n_usable,
                         struct bench_prompt *p, struct error *err)
{
    if (n_usable < o->num_prompts)
        log_warn("%s: only %d usable conversations for %d prompts; reusing them in turn",
                 o->dataset_path, n_usable, o->num_prompts);
    for (int i = 0; i < o->num_prompts; i++) {
        const char *prompt, *reply;
        conv_turns(json_array_get(root, (size_t)idx[i % n_usable]), &prompt, &reply);
        p[i].text = strdup(prompt);
        if (!p[i].text)
            return error_set(err, "out of memory copying conversation %d", idx[i % n_usable]);
        p[i].input_len = est_tokens(prompt);
        p[i].output_len = o->output_len_set ? o->output_len : est_tokens(reply);
    }
    return 0;
}

static int make_sharegpt(const struct bench_opts *o, struct bench_prompt *p, struct error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(o->dataset_path, 0, &jerr);
    if (!root)
        return error_set(err, "%s: line %d: %s (want a ShareGPT JSON array)", o->dataset_path,
                         jerr.line, jerr.text);
    int n = json_is_array(root) ? (int)json_array_size(root) : 0, n_usable = 0, rc = -1;
    int *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!idx) {
        json_decref(root);
        return error_set(err, "out of memory reading %s", o->dataset_path);
    }
    for (int i = 0; i < n; i++) {
        const char *prompt, *reply;
        if (conv_turns(json_array_get(root, (size_t)i), &prompt, &reply) == 0 &&
            usable(prompt, reply))
            idx[n_usable++] = i;
    }
    struct bench_rng rng;
    bench_rng_seed(&rng, o->seed);
    shuffle(idx, n_usable, &rng);
    if (n_usable == 0)
        error_set(err, "%s: no usable conversations (want [{\"conversations\": [{\"from\": "
                       "\"human\", \"value\": ...}, {\"from\": \"gpt\", \"value\": ...}]}, ...])",
                  o->dataset_path);
    else
        rc = take_sharegpt(o, root, idx, n_usable, p, err);
    free(idx);
    json_decref(root);
    return rc;
}

int bench_prompts_make(const struct bench_opts *o, struct bench_prompt **out, struct error *err)
{
    struct bench_prompt *p = calloc((size_t)o->num_prompts, sizeof *p);
    if (!p)
        return error_set(err, "out of memory for %d prompts", o->num_prompts);
    int rc = o->dataset == BENCH_DATASET_RANDOM ? make_random(o, p, err)
                                                : make_sharegpt(o, p, err);
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
