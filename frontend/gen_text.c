/* gen_text.c — what happens to a sequence's tokens on their way to the client: incremental
 * detokenization (never half a UTF-8 character), stop strings (partial matches held back), logprobs,
 * and shaping them into SSE chunks or collecting them for the whole answer. */
#include "frontend/gen.h"

#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

static int lp_add(struct gen_seq *s, struct fe *fe, int32_t id, float lp)
{
    if (s->n_lp == s->lp_cap) {
        int ncap = s->lp_cap ? s->lp_cap * 2 : 16;
        char **nt = realloc(s->lp_text, (size_t)ncap * sizeof *nt);
        if (!nt)
            return -1;
        s->lp_text = nt;
        float *nl = realloc(s->lp, (size_t)ncap * sizeof *nl);
        if (!nl)
            return -1;
        s->lp = nl;
        s->lp_cap = ncap;
    }
    char *text = NULL;
    size_t len;
    struct error err;
    if (tok_decode(fe->tok, &id, 1, false, &text, &len, &err))
        return -1;
    s->lp_text[s->n_lp] = text;
    s->lp[s->n_lp++] = lp;
    return 0;
}

/* Logprobs gathered since the last chunk, shaped for the kind, and forgotten here. */
static json_t *lp_take(struct gen_seq *s)
{
    if (!s->n_lp)
        return NULL;
    struct gen_req *g = s->g;
    json_t *j = oai_logprobs(g->api.kind, s->lp_text, s->lp, s->n_lp, s->text_offset, g->api.top_logprobs > 0);
    for (int i = 0; i < s->n_lp; i++) {
        s->text_offset += strlen(s->lp_text[i]);
        free(s->lp_text[i]);
    }
    s->n_lp = 0;
    return j;
}

/* Whole answer: merge chunk logprobs into one object (arrays appended key by key). */
static void lp_collect(struct gen_seq *s)
{
    json_t *j = lp_take(s);
    if (!j)
        return;
    if (!s->lp_all) {
        s->lp_all = j;
        return;
    }
    const char *key;
    json_t *arr;
    json_object_foreach(j, key, arr) {
        json_array_extend(json_object_get(s->lp_all, key), arr);
    }
    json_decref(j);
}

/* Text that became complete with token id goes through the stop strings; 1 = a stop string hit. */
static int push_token(struct gen_seq *s, int32_t id)
{
    struct error err;
    s->piece.len = 0;
    if (tok_stream_push(s->ts, id, &s->piece, &err)) {
        log_warn("gen: detokenizing token %d failed: %s", id, err.msg);
        return 0;
    }
    if (!s->piece.len)
        return 0;
    return stopstr_feed(&s->stop, s->piece.data, s->piece.len, &s->out, &s->out_len, &s->out_cap) == 1;
}

static void flush_text(struct gen_seq *s)
{
    struct error err;
    s->piece.len = 0;
    if (tok_stream_finish(s->ts, &s->piece, &err) == 0 && s->piece.len)
        stopstr_feed(&s->stop, s->piece.data, s->piece.len, &s->out, &s->out_len, &s->out_cap);
    stopstr_flush(&s->stop, &s->out, &s->out_len, &s->out_cap);
}

int gen_text_tokens(struct gen_seq *s, const struct wire_tokens *t)
{
    struct fe *fe = s->g->fe;
    for (uint32_t i = 0; i < t->n && s->finish == FINISH_NONE; i++) {
        s->n_tokens++;
        if (s->g->api.logprobs && t->logprobs && lp_add(s, fe, t->tokens[i], t->logprobs[i]))
            log_warn("gen: out of memory recording logprobs");
        if (push_token(s, t->tokens[i]))
            s->finish = FINISH_STOP; /* a stop string: the workers are told to stop by the caller */
    }
    if (s->finish == FINISH_NONE && t->finish != FINISH_NONE) {
        s->finish = t->finish; /* the decoder checked it is an enum finish */
        flush_text(s);
    } else if (s->finish == FINISH_NONE && s->n_tokens >= s->sp.max_tokens) {
        s->finish = FINISH_LENGTH; /* the worker will say so too; do not wait for it */
        flush_text(s);
    }
    return s->finish != FINISH_NONE;
}

void gen_text_emit(struct gen_seq *s, bool final)
{
    struct gen_req *g = s->g;
    if (!g->api.stream) {
        lp_collect(s);
        return;
    }
    bool role_first = g->api.kind == API_CHAT && !s->role_sent;
    const char *finish = final && s->finish != FINISH_NONE ? finish_name(s->finish) : NULL;
    if (!g->http || (!s->out_len && !role_first && !finish && !s->n_lp))
        return;
    char *chunk = oai_sse_chunk(&g->meta, s->index, s->out, s->out_len, finish, role_first, lp_take(s));
    s->role_sent = true;
    s->out_len = 0;
    if (chunk) {
        http_stream_write(g->http, chunk, strlen(chunk));
        free(chunk);
    }
}

void gen_seq_text_free(struct gen_seq *s)
{
    tok_stream_free(s->ts);
    s->ts = NULL;
    stopstr_free(&s->stop);
    tok_buf_free(&s->piece);
    free(s->out);
    s->out = NULL;
    for (int i = 0; i < s->n_lp; i++)
        free(s->lp_text[i]);
    free(s->lp_text);
    free(s->lp);
    s->lp_text = NULL;
    s->lp = NULL;
    s->n_lp = 0;
    json_decref(s->lp_all);
    s->lp_all = NULL;
}
