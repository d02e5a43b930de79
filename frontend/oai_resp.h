/* oai_resp.h — response bodies and SSE chunks shaped exactly like OpenAI's:
 *   completions:  {"id":"cmpl-…","object":"text_completion","created":…,"model":…,
 *                  "choices":[{"index","text","logprobs","finish_reason"}],"usage":{…}}
 *   chat:         {"id":"chatcmpl-…","object":"chat.completion", … "choices":[{"index",
 *                  "message":{"role":"assistant","content"},"logprobs","finish_reason"}],"usage"}
 *   chat stream:  object "chat.completion.chunk", choices[].delta ({"role","content"} first, then
 *                 {"content"}, then {} with the finish_reason); completions stream: the same object
 *                 as non-streamed with a piece of text. With stream_options.include_usage every chunk
 *                 carries "usage":null and a last chunk has "choices":[] and the usage. */
#ifndef PD_OAI_RESP_H
#define PD_OAI_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frontend/api_req.h"

struct oai_meta {
    enum api_kind kind;
    char id[48];       /* "cmpl-<hex>" or "chatcmpl-<hex>" */
    long long created; /* unix seconds */
    const char *model; /* borrowed */
    const char *fingerprint; /* system_fingerprint, borrowed; NULL: left out */
    bool usage_null;   /* stream with include_usage: every chunk has "usage": null */
};

/* Fills id and created for a new response (fingerprint NULL: set it after). */
void oai_meta_init(struct oai_meta *m, enum api_kind kind, const char *model, bool usage_null);

/* One of a token's most likely alternatives: its text alone (the token decoded by itself) and raw
 * bytes, or, for the token that was chosen, the chosen token's own entry. */
struct oai_alt {
    char *text;        /* NULL when it is the chosen token */
    size_t len;
    const char *bytes; /* the tokenizer's; NULL: text's bytes */
    size_t n_bytes;
    float logprob;
};

/* One generated token as logprobs show it. */
struct oai_lp {
    char *text;      /* its text in context: what the incremental detokenizer emitted for it (gen_text.c) */
    size_t len;
    char *bytes;     /* chat's "bytes" when they are not text's: the token's raw bytes when it is part of a
                        character split over several tokens (its text is then "" or the whole character) */
    size_t n_bytes;
    float logprob;
    int n_top;           /* its most likely alternatives, best first */
    struct oai_alt *top;
    bool unscored;       /* an echoed prompt's first token: nothing before it, logprob null */
    size_t offset;       /* completions' text_offset: where its text starts in the answer (characters) */
};

/* Logprobs of some tokens, shaped for the kind: completions {"tokens","token_logprobs",
 * "top_logprobs","text_offset"}, chat {"content":[{"token","logprob","bytes","top_logprobs"}]}.
 * text_offset is each token's `offset` (characters: code points, as Python's len in vLLM and
 * OpenAI). Returns a new reference. Each token's top_logprobs lists its alternatives (want_top);
 * completions' also holds the chosen token when it is not among them (as OpenAI: up to logprobs+1). */
json_t *oai_logprobs(enum api_kind kind, const struct oai_lp *toks, int n, bool want_top);
/* Characters (code points) in UTF-8 text: what a token adds to text_offset. */
size_t oai_text_chars(const char *text, size_t len);

/* One streamed chunk for choice `index`: text (may be empty), finish ("stop", "length", "tool_calls"
 * or NULL), role_first (chat: the first chunk of a choice carries the role), logprobs and tool_calls
 * (chat's delta.tool_calls, each given its index) stolen, may be NULL. Returns "data: {...}\n\n"
 * malloc'd. */
char *oai_sse_chunk(const struct oai_meta *m, int index, const char *text, size_t len, const char *finish,
                    bool role_first, json_t *logprobs, json_t *tool_calls);
/* The usage chunk that ends an include_usage stream. */
char *oai_sse_usage(const struct oai_meta *m, long prompt_tokens, long completion_tokens, long cached_tokens);

/* A choice of a whole (non-streamed) answer; logprobs and tool_calls (chat: message.tool_calls, with
 * content null when len is 0) stolen, may be NULL. New reference. */
json_t *oai_choice(const struct oai_meta *m, int index, const char *text, size_t len, const char *finish,
                   json_t *logprobs, json_t *tool_calls);
/* The whole answer; choices stolen. Returns the JSON text, malloc'd. */
char *oai_response(const struct oai_meta *m, json_t *choices, long prompt_tokens, long completion_tokens,
                   long cached_tokens);

/* An error in a stream: `data: {"error":{…}}\n\n`, as vLLM sends when generation fails midway. */
char *oai_sse_error(int status, const char *message);

#endif
