/* routes.c — which path does what: the endpoint table (404 for unknown paths, 405 with Allow for a
 * known path and the wrong method), API-key checks, and the small endpoints (/health, /metrics,
 * /v1/models). Generation is in gen.c, /tokenize and /detokenize in tokenize.c. */
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include <llhttp.h>

#include "frontend/fe.h"
#include "common/util/log.h"


void fe_respond_json(struct fe *fe, struct http_request *req, int status, const char *json)
{
    metrics_count_status(&fe->metrics, status);
    http_respond(req, status, "application/json", json, strlen(json), NULL);
}

void fe_respond_error(struct fe *fe, struct http_request *req, const struct apierr *e)
{
    char *body = apierr_json(e);
    const char *extra = e->status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL;
    metrics_count_status(&fe->metrics, e->status);
    http_respond(req, e->status, "application/json", body ? body : "{}", body ? strlen(body) : 2, extra);
    free(body);
}

static void health(struct fe *fe, struct http_request *req)
{
    if (cluster_ready(fe->cluster)) {
        metrics_count_status(&fe->metrics, 200);
        http_respond(req, 200, "text/plain", "", 0, NULL);
        return;
    }
    struct apierr e;
    apierr_set(&e, 503, NULL, "no_workers", "not ready: waiting for a prefill and a decode worker, or a colocated one");
    fe_respond_error(fe, req, &e);
}

static void metrics(struct fe *fe, struct http_request *req)
{
    size_t len = 0;
    char *text = metrics_render(&fe->metrics, fe->cluster, fe->rebalancer, fe->n_inflight, fe->served_name, &len);
    metrics_count_status(&fe->metrics, 200);
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len, NULL);
    free(text);
}

static json_t *model_object(struct fe *fe, int max_len)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:n, s:i}", "id", fe->served_name, "object", "model", "created",
                     (json_int_t)fe->created, "owned_by", "pdserve", "root", fe->cfg.model_dir, "parent",
                     "max_model_len", max_len);
}

/* Built again only when the deployment's max_model_len changed (it is what load balancers poll). */
static void models(struct fe *fe, struct http_request *req)
{
    int max_len = fe_max_model_len(fe);
    if (fe->models_json && fe->models_len != max_len) {
        free(fe->models_json);
        fe->models_json = NULL;
    }
    if (!fe->models_json) {
        fe->models_len = max_len;
        json_t *o = json_pack("{s:s, s:[o]}", "object", "list", "data", model_object(fe, max_len));
        fe->models_json = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    fe_respond_json(fe, req, 200, fe->models_json ? fe->models_json : "{}");
}

/* Percent-decodes src (a path segment) into dst; -1 on a bad escape or a NUL. */
static int url_decode(const char *src, char *dst, size_t cap)
{
    size_t n = 0;
    for (; *src && n + 1 < cap; src++) {
        unsigned v;
        if (*src == '%') {
            if (!isxdigit((unsigned char)src[1]) || !isxdigit((unsigned char)src[2]) ||
                sscanf(src + 1, "%2x", &v) != 1 || v == 0)
                return -1;
            dst[n++] = (char)v;
            src += 2;
        } else {
            dst[n++] = *src;
        }
    }
    dst[n] = 0;
    return *src ? -1 : 0;
}

/* GET /v1/models/{model}: the served model, or OpenAI's 404 (ids may hold '/', as Hugging Face's do). */
static void model_one(struct fe *fe, struct http_request *req)
{
    char id[256];
    struct apierr e;
    bool malformed = url_decode(req->path + strlen("/v1/models/"), id, sizeof id) != 0;
    if (malformed || strcmp(id, fe->served_name)) {
        apierr_set(&e, 404, "model", "model_not_found", "The model '%s' does not exist; this server serves '%s'",
                   malformed ? "(malformed)" : id, fe->served_name);
        fe_respond_error(fe, req, &e);
        return;
    }
    json_t *m = model_object(fe, fe_max_model_len(fe));
    char *body = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    fe_respond_json(fe, req, 200, body ? body : "{}");
    free(body);
}

static void generate(struct fe *fe, struct http_request *req, enum api_kind kind)
{
    if (fe->draining) {
        struct apierr e;
        apierr_set(&e, 503, NULL, "shutting_down", "the server is shutting down; retry on another instance");
        fe_respond_error(fe, req, &e);
        return;
    }
    gen_start(fe, req, kind);
}

static void completions(struct fe *fe, struct http_request *req) { generate(fe, req, API_COMPLETION); }
static void chat(struct fe *fe, struct http_request *req) { generate(fe, req, API_CHAT); }

struct route {
    const char *path; /* the whole path, or with `prefix` its start */
    const char *log_as; /* the path in the access log: the route, never what a client put in it */
    int method;
    bool auth;
    void (*fn)(struct fe *, struct http_request *);
    bool prefix;
};

static const struct route routes[] = {
    {"/v1/completions", "/v1/completions", HTTP_POST, true, completions, false},
    {"/v1/chat/completions", "/v1/chat/completions", HTTP_POST, true, chat, false},
    {"/v1/models", "/v1/models", HTTP_GET, true, models, false},
    {"/v1/models/", "/v1/models/{model}", HTTP_GET, true, model_one, true},
    {"/tokenize", "/tokenize", HTTP_POST, true, fe_tokenize, false},
    {"/detokenize", "/detokenize", HTTP_POST, true, fe_detokenize, false},
    {"/health", "/health", HTTP_GET, false, health, false},
    {"/metrics", "/metrics", HTTP_GET, false, metrics, false},
};

static bool authorized(struct fe *fe, struct http_request *req)
{
    if (fe->cfg.n_keys == 0)
        return true;
    const char *h = http_header(req, "authorization");
    return h && strncasecmp(h, "Bearer ", 7) == 0 && fe_config_key_ok(&fe->cfg, h + 7);
}

/* A browser's CORS preflight, with --cors-origin: allowed, with what it may send. */
static bool preflight(struct fe *fe, struct http_request *req)
{
    if (!fe->cfg.cors_origin || req->method != HTTP_OPTIONS)
        return false;
    http_respond(req, 204, "text/plain", "", 0,
                 "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: Authorization, Content-Type, X-Request-Id\r\n"
                 "Access-Control-Max-Age: 600\r\n");
    return true;
}

void routes_handle(struct http_request *req, void *ctx)
{
    struct fe *fe = ctx;
    struct apierr e;
    const struct route *known = NULL;
    oplog_request_id(req);
    req->route = "(no such path)";
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (routes[i].prefix ? !strncmp(req->path, routes[i].path, strlen(routes[i].path))
                             : !strcmp(req->path, routes[i].path))
            req->route = routes[i].log_as;
    if (preflight(fe, req))
        return;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const struct route *r = &routes[i];
        if (r->prefix ? strncmp(req->path, r->path, strlen(r->path)) != 0 : strcmp(req->path, r->path) != 0)
            continue;
        known = r;
        if (req->method != r->method && !(r->method == HTTP_GET && req->method == HTTP_HEAD))
            continue;
        if (r->auth && !authorized(fe, req)) {
            apierr_set(&e, 401, NULL, "invalid_api_key", "Incorrect or missing API key; send 'Authorization: Bearer <key>'");
            fe_respond_error(fe, req, &e);
            return;
        }
        r->fn(fe, req);
        return;
    }
    if (known) {
        const char *allow = llhttp_method_name((llhttp_method_t)known->method);
        apierr_set(&e, 405, NULL, "method_not_allowed", "%s is not allowed on %s; use %s", req->method_name, req->path,
                   allow);
        char *body = apierr_json(&e), extra[64];
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        metrics_count_status(&fe->metrics, 405);
        http_respond(req, 405, "application/json", body ? body : "{}", body ? strlen(body) : 2, extra);
        free(body);
        return;
    }
    apierr_set(&e, 404, NULL, "not_found", "no such endpoint: %s %s", req->method_name, req->path);
    fe_respond_error(fe, req, &e);
}
