/* apierr.c — OpenAI-shaped error bodies (see apierr.h). */
#include "frontend/apierr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* A string cut to fit its buffer may end inside a UTF-8 character (a client's field name, say): drop
 * that partial character, so the body stays valid JSON text. */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (i - 1 + need > len)
        s[i - 1] = 0;
}

int apierr_set(struct apierr *e, int status, const char *param, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->status = status;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    trim_partial_utf8(e->param);
    trim_partial_utf8(e->message);
    return -1;
}

const char *apierr_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *apierr_json(const struct apierr *e)
{
    json_t *inner = json_pack("{s:s, s:s, s:o, s:o}", "message", e->message, "type", apierr_type(e->status),
                              "param", e->param[0] ? json_string(e->param) : json_null(),
                              "code", e->code[0] ? json_string(e->code) : json_null());
    if (!inner)
        return NULL;
    json_t *root = json_pack("{s:o}", "error", inner);
    if (!root)
        return NULL;
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

char *apierr_json_simple(int status, const char *code, const char *message)
{
    struct apierr e;
    apierr_set(&e, status, NULL, code, "%s", message);
    return apierr_json(&e);
}
