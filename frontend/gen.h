/* gen.h — internals of a generation request, shared by gen.c (lifecycle: start, dispatch, re-route,
 * finish, abort) and gen_text.c (what happens to tokens: detokenize, stop strings, logprobs, chunks).
 *
 * A request (struct gen_req) has one sequence (struct gen_seq) per choice: prompts × n. Each sequence
 * is one GENERATE on the workers with its own id in fe->seqs. The request ends when every sequence
 * has, or at once when the client goes away or a sequence fails. */
#ifndef PD_GEN_H
#define PD_GEN_H

#include "frontend/fe.h"
#include "frontend/oai_resp.h"
#include "frontend/toolcall.h"
#include "frontend/prompt.h"
#include "frontend/stopstr.h"


struct gen_req;

struct gen_seq {
    struct gen_req *g;
    int index, prompt_idx;
    uint64_t id;                /* 0 while not dispatched */
    struct cl_worker *p, *d;    /* NULL once released */
    uint32_t undecoded;         /* of its max_tokens, those not come yet: in d's decode_left */
    struct sample_params sp;
    struct tok_stream *ts;
    struct stopstr stop;
    struct tok_buf piece;       /* scratch for the detokenizer */
    char *out;                  /* text to show: all of it (whole answer) or not yet sent (stream) */
    size_t out_len, out_cap;
    int n_tokens;
    double sum_logprob;         /* of its tokens (what best_of ranks by) */
    enum finish finish;         /* FINISH_NONE while it runs */
    uint32_t cached_tokens;     /* prompt tokens the prefill (or colocated) worker's prefix cache held */
    bool role_sent;
    bool started;               /* a token arrived: too late to re-route */
    int tries;
    uint8_t refused_role;       /* the worker that last refused it as overloaded: not retried there */
    uint32_t refused_id;
    struct oai_lp *lp;          /* logprobs of tokens not yet shaped; the last may still be growing */
    int n_lp, lp_cap;
    size_t text_offset;         /* completions logprobs' text_offset (characters) of the next token */
    int n_prompt_lp;            /* echo with logprobs: leading entries of lp that are the prompt's */
    size_t echo_chars;          /* the echoed prompt's text, in characters: where generated text starts */
    json_t *lp_all;             /* whole answer: logprobs collected so far */
    uint64_t t_first, t_last;
    uint64_t t_dispatch;        /* when GENERATE was sent */
    uint32_t queue_ahead;       /* prompt tokens its prefill worker computed up to its first token */
    uint32_t ran_on[2];         /* ids of the workers it was last sent to: prefill (or colocated), decode */
    /* The first token comes from the prefill worker, the rest from the decode worker, on another
     * connection: decode tokens that overtake the first one wait here until it has arrived. */
    bool first_seen;
    struct wire_msg *held;      /* decode TOKENS that came before the prefill's first token */
    int n_held;
    /* Tool calls (chat with tools, a known format): a stream holds text back once a call may have
     * begun (tc.format TC_NONE: nothing to watch for). */
    struct tc_stream tc;
};

struct gen_req {
    struct fe *fe;
    struct http_request *http;  /* NULL once the client has gone */
    struct api_request api;
    struct oai_meta meta;
    char rid[72];               /* the request's X-Request-Id, for log lines */
    struct prompt_set prompts;
    int n_seqs, n_live;
    struct gen_seq *seqs;
    long prompt_tokens;
    uint64_t t0;
    bool failed;
    /* Rendering and tokenizing the prompts runs on libuv's thread pool (gen.c says why); while it
     * does, only that thread touches api and prompts. */
    uv_work_t prep;
    char *body;                 /* a copy of the HTTP request's body, parsed on the thread pool */
    size_t body_len;
    bool preparing;
    int prep_rc;
    struct apierr prep_err;
};

/* gen_text.c */
/* Handles one TOKENS message for s: returns 1 when s has finished (EOS, length, or a stop string). */
int gen_text_tokens(struct gen_seq *s, const struct wire_tokens *t);
/* Echo with logprobs: the prompt's tokens, scored by the worker that computed it, lead the answer's
 * logprobs (the first unscored); their text is the prompt detokenized. -1 when memory ran out. */
int gen_text_prompt_logprobs(struct gen_seq *s, const struct wire_prompt_logprobs *m);
/* Sends what s has ready as one SSE chunk (stream only); with `final`, the finish_reason too. */
void gen_text_emit(struct gen_seq *s, bool final);
void gen_seq_text_free(struct gen_seq *s);

#endif
