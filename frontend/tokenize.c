/* tokenize.c — vLLM's /tokenize and /detokenize. Like a generation request's prompt, the work runs on
 * libuv's thread pool (a megabyte of text takes a fraction of a second to tokenize), on a copy of the
 * body; the answer, built there as JSON, is sent from the loop unless the client has gone. */
#include <stdlib.h>
#include <string.h>

#include "frontend/fe.h"
#include "frontend/prompt.h"

struct tok_job {
    uv_work_t work;
    struct fe *fe;
    struct http_request *req; /* NULL once the client has gone */
    bool detokenize;
    char *body;
    size_t body_len;
    char *answer; /* the JSON to send, or NULL and err */
    struct apierr err;
};

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* {"prompt"} or {"messages"} in; {"count","max_model_len","tokens"} out. */
static char *tokenize_body(struct fe *fe, const char *body, size_t len, struct apierr *e)
{
    json_t *b = json_loadb(body, len, 0, NULL);
    json_t *prompt = json_object_get(b, "prompt"), *messages = json_object_get(b, "messages");
    json_t *add = json_object_get(b, "add_special_tokens");
    char *text = NULL;
    int32_t *ids = NULL;
    int n = 0;
    struct error err;
    if (!json_is_object(b))
        apierr_set(e, 400, NULL, "invalid_json", "the request body must be a JSON object");
    else if (json_is_string(prompt))
        text = strdup(json_string_value(prompt));
    else if (json_is_array(messages))
        prompt_render_chat(fe, messages, !json_is_false(json_object_get(b, "add_generation_prompt")), NULL, &text, e);
    else
        apierr_set(e, 400, "prompt", "invalid_value", "give 'prompt' (a string) or 'messages' (a list)");
    bool special = add ? json_is_true(add) : !json_is_array(messages);
    json_decref(b);
    if (text && tok_encode(fe->tok, text, strlen(text), special, true, &ids, &n, &err))
        apierr_set(e, 500, NULL, "tokenizer_error", "%s", err.msg), free(text), text = NULL;
    if (!text)
        return NULL;
    free(text);
    json_t *toks = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(toks, json_integer(ids[i]));
    free(ids);
    return dump(json_pack("{s:i, s:i, s:o}", "count", n, "max_model_len", fe_max_model_len(fe), "tokens", toks));
}

/* {"tokens":[...]} in; {"prompt": text} out. */
static char *detokenize_body(struct fe *fe, const char *body, size_t len, struct apierr *e)
{
    json_t *b = json_loadb(body, len, 0, NULL);
    json_t *toks = json_object_get(b, "tokens");
    size_t n = json_array_size(toks);
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    int vocab = fe_vocab_size(fe);
    bool ok = json_is_array(toks) && ids;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *t = json_array_get(toks, i);
        ok = json_is_integer(t) && json_integer_value(t) >= 0 && json_integer_value(t) < vocab;
        if (ok)
            ids[i] = (int32_t)json_integer_value(t);
    }
    json_decref(b);
    char *text = NULL;
    size_t text_len;
    struct error err;
    if (!ok)
        apierr_set(e, 400, "tokens", "invalid_value", "'tokens' must be a list of token ids from 0 to %d (the model's vocabulary)", vocab - 1);
    else if (tok_decode(fe->tok, ids, (int)n, false, &text, &text_len, &err))
        apierr_set(e, 500, NULL, "tokenizer_error", "%s", err.msg);
    free(ids);
    if (!text)
        return NULL;
    char *answer = dump(json_pack("{s:s%}", "prompt", text, text_len));
    free(text);
    return answer;
}

static void job_run(uv_work_t *w)
{
    struct tok_job *j = w->data;
    j->answer = j->detokenize ? detokenize_body(j->fe, j->body, j->body_len, &j->err)
                              : tokenize_body(j->fe, j->body, j->body_len, &j->err);
}

static void job_done(uv_work_t *w, int status)
{
    struct tok_job *j = w->data;
    j->fe->n_preparing--;
    if (status < 0) /* the job never ran: uv_queue_work refused it */
        apierr_set(&j->err, 500, NULL, "internal_error", "tokenizing: %s", uv_strerror(status));
    if (j->req) {
        j->req->on_abort = NULL;
        j->req->user = NULL;
        if (j->answer)
            fe_respond_json(j->fe, j->req, 200, j->answer);
        else
            fe_respond_error(j->fe, j->req, &j->err);
    }
    free(j->answer);
    free(j->body);
    fe_memory_body_done(j->fe, j->body_len);
    free(j);
}

static void on_client_gone(struct http_request *req, void *user)
{
    (void)req;
    struct tok_job *j = user;
    j->req = NULL; /* job_done frees the job */
}

static void start(struct fe *fe, struct http_request *req, bool detokenize)
{
    struct tok_job *j = calloc(1, sizeof *j);
    char *body = http_request_take_body(req);
    if (!j || !body) {
        free(j), free(body);
        struct apierr e;
        apierr_set(&e, 500, NULL, "internal_error", "out of memory");
        fe_respond_error(fe, req, &e);
        return;
    }
    *j = (struct tok_job){.fe = fe, .req = req, .detokenize = detokenize, .body = body, .body_len = req->body_len};
    j->work.data = j;
    apierr_set(&j->err, 500, NULL, "internal_error", "out of memory"); /* until the job says otherwise */
    req->user = j;
    req->on_abort = on_client_gone;
    fe->n_preparing++;
    int rc = uv_queue_work(fe->loop, &j->work, job_run, job_done);
    if (rc < 0)
        job_done(&j->work, rc);
}

void fe_tokenize(struct fe *fe, struct http_request *req) { start(fe, req, false); }
void fe_detokenize(struct fe *fe, struct http_request *req) { start(fe, req, true); }
