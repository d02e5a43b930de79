/* prompt.c — templates, tokenization and the context-length rule for requests (see prompt.h). Chat
 * prompts are tokenized without adding special tokens, because the template writes BOS itself (as
 * vLLM does); completions prompts get the tokenizer's usual BOS. */
#include "frontend/prompt.h"

#include <stdlib.h>
#include <string.h>

int prompt_render_chat(struct fe *fe, json_t *messages, bool add_generation_prompt, json_t *extra, char **out,
                       struct apierr *e)
{
    if (!fe->chat)
        return apierr_set(e, 400, "messages", "no_chat_template",
                          "the model %s has no chat template; use /v1/completions", fe->served_name);
    struct error err;
    if (chat_render(fe->chat, messages, add_generation_prompt, extra, out, &err))
        return apierr_set(e, 400, "messages", "invalid_value", "the chat template rejected the messages: %s",
                          err.msg);
    return 0;
}

/* The deployment's limits (fe_max_model_len) are the model's context, or the workers' KV pools where
 * those hold less: a request over them could never be placed, so it is refused here at once rather
 * than left to wait on a worker. */
static int check_len(struct fe *fe, struct api_request *r, int n, struct apierr *e)
{
    const char *what = r->kind == API_CHAT ? "messages" : "prompt";
    long max_len = fe_max_model_len(fe), max_prompt = fe_max_prompt_len(fe);
    const char *why = max_len < fe->max_model_len ? " (what the decode workers' KV cache holds)" : "";
    if (n == 0)
        return apierr_set(e, 400, what, "invalid_value", "the %s is empty after tokenization", what);
    if (n >= max_len)
        return apierr_set(e, 400, what, "context_length_exceeded",
                          "This model's maximum context length is %ld tokens%s. However, your %s has %d tokens; "
                          "shorten it", max_len, why, what, n);
    if (n > max_prompt)
        return apierr_set(e, 400, what, "context_length_exceeded",
                          "This deployment's prefill workers hold at most %ld prompt tokens of KV cache. However, "
                          "your %s has %d tokens; shorten it", max_prompt, what, n);
    if (r->sp.max_tokens > 0 && n + (long)r->sp.max_tokens > max_len)
        return apierr_set(e, 400, "max_tokens", "context_length_exceeded",
                          "This model's maximum context length is %ld tokens%s. However, you requested %ld tokens "
                          "(%d in the %s, %d for the completion). Reduce the length of the %s or the completion.",
                          max_len, why, n + (long)r->sp.max_tokens, n, what, r->sp.max_tokens, what);
    return 0;
}

static int encode(struct fe *fe, const char *text, bool add_special, int32_t **ids, int *n, struct apierr *e)
{
    struct error err;
    if (tok_encode(fe->tok, text, strlen(text), add_special, true, ids, n, &err))
        return apierr_set(e, 500, NULL, "tokenizer_error", "tokenizing the prompt failed: %s", err.msg);
    return 0;
}

/* Fill in the middle: the model's FIM tokens around the prompt and the suffix. */
static int encode_fim(struct fe *fe, const struct api_request *r, const char *prompt, int32_t **ids, int *n,
                      struct apierr *e)
{
    if (!fe->fim[0])
        return apierr_set(e, 400, "suffix", "invalid_value", "this model has no fill-in-the-middle tokens "
                          "(<|fim_prefix|> or <fim_prefix> and their suffix and middle), so 'suffix' cannot be used");
    size_t len = strlen(fe->fim[0]) + strlen(prompt) + strlen(fe->fim[1]) + strlen(r->suffix) + strlen(fe->fim[2]) + 1;
    char *text = malloc(len);
    if (!text)
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    snprintf(text, len, "%s%s%s%s%s", fe->fim[0], prompt, fe->fim[1], r->suffix, fe->fim[2]);
    int rc = encode(fe, text, true, ids, n, e);
    free(text);
    return rc;
}

static int from_ids(struct fe *fe, const struct api_prompt *p, int32_t **ids, char **text, struct apierr *e)
{
    int vocab = fe_vocab_size(fe);
    for (int i = 0; i < p->n_ids; i++)
        if (p->ids[i] >= vocab)
            return apierr_set(e, 400, "prompt", "invalid_value", "token id %d is outside the vocabulary (size %d)",
                              p->ids[i], vocab);
    *ids = malloc((size_t)p->n_ids * sizeof **ids);
    if (!*ids)
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    memcpy(*ids, p->ids, (size_t)p->n_ids * sizeof **ids);
    size_t len;
    struct error err;
    if (tok_decode(fe->tok, p->ids, p->n_ids, false, text, &len, &err))
        return apierr_set(e, 500, NULL, "tokenizer_error", "decoding the prompt failed: %s", err.msg);
    return 0;
}

static int alloc_set(struct prompt_set *ps, int n)
{
    ps->n = n;
    ps->ids = calloc((size_t)n, sizeof *ps->ids);
    ps->n_ids = calloc((size_t)n, sizeof *ps->n_ids);
    ps->text = calloc((size_t)n, sizeof *ps->text);
    return ps->ids && ps->n_ids && ps->text ? 0 : -1;
}

/* Token ids a request names besides its prompt (logit_bias, stop_token_ids) are in the vocabulary. */
static int check_ids(struct fe *fe, const struct api_request *r, struct apierr *e)
{
    int vocab = fe_vocab_size(fe);
    for (int i = 0; i < r->sp.n_logit_bias; i++)
        if (r->sp.bias_ids[i] >= vocab)
            return apierr_set(e, 400, "logit_bias", "invalid_value", "Invalid key in 'logit_bias': token id %d is "
                              "outside the vocabulary (size %d)", r->sp.bias_ids[i], vocab);
    for (int i = 0; i < r->sp.n_stop_ids; i++)
        if (r->sp.stop_ids[i] >= vocab)
            return apierr_set(e, 400, "stop_token_ids", "invalid_value", "token id %d is outside the vocabulary "
                              "(size %d)", r->sp.stop_ids[i], vocab);
    return 0;
}

int prompt_prepare(struct fe *fe, struct api_request *r, struct prompt_set *ps, struct apierr *e)
{
    memset(ps, 0, sizeof *ps);
    if (check_ids(fe, r, e))
        return -1;
    int n = r->kind == API_CHAT ? 1 : r->n_prompts;
    if (alloc_set(ps, n))
        return apierr_set(e, 500, NULL, "internal_error", "out of memory");
    for (int i = 0; i < n; i++) {
        int rc;
        if (r->kind == API_CHAT) {
            rc = prompt_render_chat(fe, r->messages, r->add_generation_prompt, r->chat_extra, &ps->text[0], e);
            rc = rc ? rc : encode(fe, ps->text[0], false, &ps->ids[0], &ps->n_ids[0], e);
        } else if (r->prompts[i].text) {
            ps->text[i] = strdup(r->prompts[i].text);
            rc = !ps->text[i] ? apierr_set(e, 500, NULL, "internal_error", "out of memory")
                 : r->suffix  ? encode_fim(fe, r, r->prompts[i].text, &ps->ids[i], &ps->n_ids[i], e)
                              : encode(fe, r->prompts[i].text, true, &ps->ids[i], &ps->n_ids[i], e);
        } else if (r->suffix) {
            rc = apierr_set(e, 400, "suffix", "invalid_value", "'suffix' needs a text prompt, not token ids");
        } else {
            rc = from_ids(fe, &r->prompts[i], &ps->ids[i], &ps->text[i], e);
            ps->n_ids[i] = r->prompts[i].n_ids;
        }
        if (rc || check_len(fe, r, ps->n_ids[i], e))
            return -1;
    }
    if (r->sp.max_tokens < 0) {
        int longest = 0;
        for (int i = 0; i < n; i++)
            longest = ps->n_ids[i] > longest ? ps->n_ids[i] : longest;
        r->sp.max_tokens = fe_max_model_len(fe) - longest;
    }
    return 0;
}

void prompt_set_free(struct prompt_set *ps)
{
    for (int i = 0; i < ps->n; i++) {
        if (ps->ids)
            free(ps->ids[i]);
        if (ps->text)
            free(ps->text[i]);
    }
    free(ps->ids);
    free(ps->n_ids);
    free(ps->text);
    memset(ps, 0, sizeof *ps);
}
