/* api_req.h — an OpenAI /v1/completions or /v1/chat/completions body, parsed and validated into one
 * struct. Every field is checked here (type and range) so the rest of the frontend trusts it; a bad
 * field gives a 400 whose message and `param` name it. Pure: no tokenizer, no network (the fuzz
 * harness drives it directly). */
#ifndef PD_API_REQ_H
#define PD_API_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frontend/apierr.h"
#include "frontend/toolcall.h"
#include "common/engine/sample.h"

#define API_MAX_N 16        /* choices per request */
#define API_MAX_PROMPTS 64  /* prompts in one completions request */
#define API_MAX_STOP 8      /* stop strings, as in OpenAI's API (4) with room to spare */
#define API_MAX_STOP_LEN 1024 /* bytes per stop string: the matcher holds back up to this much text per
                               * choice and scans it for every token */
#define API_MAX_LOGPROBS 20 /* top_logprobs */

enum api_kind { API_COMPLETION, API_CHAT };

/* One completions prompt: text, or token ids (then text is NULL). */
struct api_prompt {
    char *text;
    int32_t *ids;
    int n_ids;
};

struct api_request {
    enum api_kind kind;
    char *model;                 /* as sent, NULL if absent */
    int n_prompts;               /* completions: at least one */
    struct api_prompt *prompts;
    json_t *messages;            /* chat: the array (a reference the struct holds) */
    json_t *chat_extra;          /* chat: {tools, chat_template_kwargs...} for the template, or NULL */
    struct tc_request tools;     /* chat: tools and tool_choice */
    float slo_ttft_ms, slo_tpot_ms; /* extension: this request's SLOs for SLO-aware routing; 0: the frontend's */
    char *constraint;            /* chat's response_format json_object / json_schema, or a forced tool
                                    call: what the answer must be (grammar_compile_spec's JSON), or NULL */
    bool add_generation_prompt;  /* chat; default true */
    struct sample_params sp;     /* temperature ... stop_token_ids, ignore_eos; max_tokens -1 = not given */
    bool seed_given;
    int n;
    int best_of;                 /* completions: candidates sampled per prompt, the n likeliest returned (>= n) */
    int n_stop;
    char *stop[API_MAX_STOP];
    bool stream, include_usage;
    bool echo;                   /* completions: prompt text first */
    char *suffix;                /* completions: fill in the middle between the prompt and this, or NULL */
    bool logprobs;               /* chosen-token logprobs wanted */
    int top_logprobs;            /* completions' integer `logprobs`, or chat's `top_logprobs` */
    int logprobs_mode;           /* extension: enum sample_logprobs_mode; -1 = not given (--logprobs-mode) */
    bool skip_special_tokens;    /* vLLM extension; default true */
};

/* Parses `body` (len bytes) for the given endpoint into *r (zeroed first). On failure fills e
 * (400 with the field in param) and leaves *r empty. Free with api_request_free either way. */
int api_request_parse(enum api_kind kind, const char *body, size_t len, struct api_request *r, struct apierr *e);
void api_request_free(struct api_request *r);

#endif
