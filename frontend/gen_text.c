/* gen_text.c — what happens to a sequence's tokens on their way to the client: incremental
 * detokenization (never half a UTF-8 character), stop strings (partial matches held back), logprobs,
 * and shaping them into SSE chunks or collecting them for the whole answer. */
#include "frontend/gen.h"

#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"

static void lp_entry_free(struct oai_lp *t)
{
    free(t->text);
    free(t->bytes);
    for (int j = 0; j < t->n_top; j++)
        free(t->top[j].text);
    free(t->top);
}

/* A token's alternatives as the wire lists them (ids -1 are padding): each decoded by itself, the
 * chosen one pointing at the chosen token's entry. */
static int lp_add_top(struct oai_lp *t, const struct tokenizer *tok, int vocab, int32_t chosen,
                      const struct wire_alts *alts)
{
    if (!alts || alts->n <= 0)
        return 0;
    if (!(t->top = calloc((size_t)alts->n, sizeof *t->top)))
        return -1;
    for (int j = 0; j < alts->n; j++) {
        int32_t id = alts->ids[j];
        if (id < 0 || id >= vocab)
            continue;
        struct oai_alt *a = &t->top[t->n_top++];
        a->logprob = alts->logprobs[j];
        if (id == chosen)
            continue;
        struct error err;
        if (tok_decode(tok, &id, 1, false, &a->text, &a->len, &err) || !a->text) {
            t->n_top--;
            continue;
        }
        a->bytes = tok_id_bytes(tok, id, &a->n_bytes);
    }
    return 0;
}

/* Appends n bytes to a logprob entry's text. */
static int lp_append_text(struct oai_lp *t, const char *p, size_t n)
{
    char *nt = realloc(t->text, t->len + n + 1);
    if (!nt)
        return -1;
    memcpy(nt + t->len, p, n);
    t->len += n;
    nt[t->len] = 0;
    t->text = nt;
    return 0;
}

/* Records token id with its text in context: `piece` is what the detokenizer appended for it, whose
 * first `carried` bytes finish the previous token's text (a SentencePiece byte-token run flushed by
 * the token after it). A token that is part of a character split over several tokens (bytes held
 * before or after it) keeps its own raw bytes for chat's "bytes", so they concatenate to the text's. */
static int lp_add(struct gen_seq *s, int32_t id, float lp, const struct wire_alts *alts, const char *piece,
                  size_t len, size_t carried, bool split_char)
{
    if (carried && s->n_lp && lp_append_text(&s->lp[s->n_lp - 1], piece, carried))
        return -1;
    if (s->n_lp == s->lp_cap) {
        int ncap = s->lp_cap ? s->lp_cap * 2 : 16;
        struct oai_lp *nl = realloc(s->lp, (size_t)ncap * sizeof *nl);
        if (!nl)
            return -1;
        s->lp = nl;
        s->lp_cap = ncap;
    }
    struct oai_lp t = {.logprob = lp};
    if (lp_append_text(&t, piece + carried, len - carried))
        return -1;
    size_t n_raw = 0;
    const char *raw = split_char ? tok_id_bytes(s->g->fe->tok, id, &n_raw) : NULL;
    if (raw && !(t.bytes = malloc(n_raw ? n_raw : 1))) {
        free(t.text);
        return -1;
    }
    if (raw) {
        memcpy(t.bytes, raw, n_raw);
        t.n_bytes = n_raw;
    }
    if (lp_add_top(&t, s->g->fe->tok, fe_vocab_size(s->g->fe), id, alts)) {
        lp_entry_free(&t);
        return -1;
    }
    s->lp[s->n_lp++] = t;
    return 0;
}

/* Logprobs gathered since the last chunk, shaped for the kind, and forgotten here. While the
 * detokenizer holds bytes back, the newest token's text may still grow: it waits for the next chunk. */
static int lp_ready(const struct gen_seq *s)
{
    return s->n_lp - (s->n_lp && s->finish == FINISH_NONE && tok_stream_pending(s->ts));
}

static json_t *lp_take(struct gen_seq *s)
{
    int n = lp_ready(s);
    if (!n)
        return NULL;
    struct gen_req *g = s->g;
    for (int i = 0; i < n; i++) { /* the prompt's tokens from 0, generated ones after the echoed text */
        s->lp[i].offset = s->text_offset;
        s->text_offset += oai_text_chars(s->lp[i].text, s->lp[i].len);
        if (s->n_prompt_lp > 0 && --s->n_prompt_lp == 0)
            s->text_offset = s->echo_chars;
    }
    json_t *j = oai_logprobs(g->api.kind, s->lp, n, g->api.top_logprobs > 0);
    for (int i = 0; i < n; i++)
        lp_entry_free(&s->lp[i]);
    memmove(s->lp, s->lp + n, (size_t)(s->n_lp - n) * sizeof *s->lp);
    s->n_lp -= n;
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

/* Text that became complete with token id goes through the stop strings; 1 = a stop string hit.
 * With logprobs wanted (lp non-NULL), the token's text in context is recorded with *lp and its
 * alternatives. */
static int push_token(struct gen_seq *s, int32_t id, const float *lp, const struct wire_alts *alts)
{
    struct error err;
    s->piece.len = 0;
    bool held_before = tok_stream_pending(s->ts);
    if (tok_stream_push(s->ts, id, &s->piece, &err)) {
        log_warn("gen: detokenizing token %d failed: %s", id, err.msg);
        return 0;
    }
    if (lp && lp_add(s, id, *lp, alts, s->piece.data ? s->piece.data : "", s->piece.len, tok_stream_carried(s->ts),
                     held_before || tok_stream_pending(s->ts)))
        log_warn("gen: out of memory recording logprobs");
    if (!s->piece.len)
        return 0;
    return stopstr_feed(&s->stop, s->piece.data, s->piece.len, &s->out, &s->out_len, &s->out_cap) == 1;
}

static void flush_text(struct gen_seq *s)
{
    struct error err;
    s->piece.len = 0;
    if (tok_stream_finish(s->ts, &s->piece, &err) == 0 && s->piece.len) {
        /* what was held back (an unfinished character, now U+FFFD) is the last token's */
        if (s->n_lp && lp_append_text(&s->lp[s->n_lp - 1], s->piece.data, s->piece.len))
            log_warn("gen: out of memory recording logprobs");
        stopstr_feed(&s->stop, s->piece.data, s->piece.len, &s->out, &s->out_len, &s->out_cap);
    }
    stopstr_flush(&s->stop, &s->out, &s->out_len, &s->out_cap);
}

int gen_text_prompt_logprobs(struct gen_seq *s, const struct wire_prompt_logprobs *m)
{
    struct gen_req *g = s->g;
    const int32_t *ids = g->prompts.ids[s->prompt_idx];
    int n = g->prompts.n_ids[s->prompt_idx];
    if (!g->api.echo || !g->api.logprobs || (int)m->n != n || s->n_lp || s->n_tokens || s->n_prompt_lp)
        return 0; /* not asked for, or a retried sequence's second copy */
    struct tok_stream *ts = tok_stream_new(g->fe->tok, g->api.skip_special_tokens);
    struct tok_buf piece = {0};
    struct error err;
    int rc = ts ? 0 : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        piece.len = 0;
        bool held_before = tok_stream_pending(ts);
        if (tok_stream_push(ts, ids[i], &piece, &err))
            piece.len = 0;
        struct wire_alts alts = {m->n_top, m->top_ids ? m->top_ids + (size_t)i * m->n_top : NULL,
                                 m->top_logprobs ? m->top_logprobs + (size_t)i * m->n_top : NULL};
        rc = lp_add(s, ids[i], m->logprobs[i], i && alts.ids ? &alts : NULL, piece.data ? piece.data : "", piece.len,
                    tok_stream_carried(ts), held_before || tok_stream_pending(ts));
        if (rc == 0 && i == 0)
            s->lp[0].unscored = true;
    }
    piece.len = 0;
    if (rc == 0 && tok_stream_finish(ts, &piece, &err) == 0 && piece.len)
        rc = lp_append_text(&s->lp[s->n_lp - 1], piece.data, piece.len);
    tok_buf_free(&piece);
    tok_stream_free(ts);
    s->n_prompt_lp = s->n_lp;
    return rc;
}

int gen_text_tokens(struct gen_seq *s, const struct wire_tokens *t)
{
    bool want_lp = s->g->api.logprobs && t->logprobs;
    for (uint32_t i = 0; i < t->n && s->finish == FINISH_NONE; i++) {
        s->n_tokens++;
        s->sum_logprob += t->logprobs ? t->logprobs[i] : 0;
        struct wire_alts alts = {t->n_top, t->top_ids ? t->top_ids + i * t->n_top : NULL,
                                 t->top_logprobs ? t->top_logprobs + i * t->n_top : NULL};
        if (push_token(s, t->tokens[i], want_lp ? &t->logprobs[i] : NULL, alts.ids ? &alts : NULL))
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

static void write_chunk(struct gen_seq *s, const char *text, size_t len, const char *finish, json_t *calls)
{
    struct gen_req *g = s->g;
    bool role_first = g->api.kind == API_CHAT && !s->role_sent;
    char *chunk = oai_sse_chunk(&g->meta, s->index, text, len, finish, role_first, lp_take(s), calls);
    s->role_sent = true;
    if (chunk) {
        http_stream_write(g->http, chunk, strlen(chunk));
        free(chunk);
    }
}

/* A stream watching for tool calls: what may go out now, and at the end the calls (a chunk of
 * delta.tool_calls, finish "tool_calls") or, if the held text holds none, that text. */
static void emit_watching(struct gen_seq *s, const char *finish)
{
    size_t n;
    char *now = tc_stream_feed(&s->tc, s->out, s->out_len, &n);
    s->out_len = 0;
    if (n || !s->role_sent)
        write_chunk(s, now, n, NULL, NULL);
    free(now);
    if (!finish)
        return;
    size_t content;
    json_t *calls = tc_parse(s->tc.format, s->tc.held, s->tc.len, &content);
    if (calls) {
        write_chunk(s, s->tc.held, content, NULL, calls);
        write_chunk(s, "", 0, "tool_calls", NULL);
    } else {
        write_chunk(s, s->tc.held, s->tc.len, finish, NULL);
    }
    s->tc.len = 0;
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
    if (!g->http || (!s->out_len && !role_first && !finish && !lp_ready(s)))
        return;
    if (s->tc.format != TC_NONE) {
        emit_watching(s, finish);
        return;
    }
    write_chunk(s, s->out, s->out_len, finish, NULL);
    s->out_len = 0;
}

void gen_seq_text_free(struct gen_seq *s)
{
    tc_stream_free(&s->tc);
    tok_stream_free(s->ts);
    s->ts = NULL;
    stopstr_free(&s->stop);
    tok_buf_free(&s->piece);
    free(s->out);
    s->out = NULL;
    for (int i = 0; i < s->n_lp; i++)
        lp_entry_free(&s->lp[i]);
    free(s->lp);
    s->lp = NULL;
    s->n_lp = 0;
    json_decref(s->lp_all);
    s->lp_all = NULL;
}
