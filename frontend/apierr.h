/* apierr.h — the error body every failure the frontend reports carries, shaped like OpenAI's:
 *   {"error":{"message":"...","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}
 * One place decides the `type` for a status so the HTTP layer, the request validator and the cluster
 * all answer alike. */
#ifndef PD_APIERR_H
#define PD_APIERR_H

#include <stddef.h>

/* A failure to report: HTTP status, message for the user, the offending request field (or NULL), and a
 * short machine code (or NULL). Strings are copied in. */
struct apierr {
    int status;
    char message[400];
    char param[64];
    char code[48];
};

/* Fills e and returns -1, so `return apierr_set(e, 400, "temperature", "invalid_value", "...")`. */
int apierr_set(struct apierr *e, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* OpenAI's error type for a status: "invalid_request_error", "authentication_error", ... */
const char *apierr_type(int status);

/* The JSON body for e; caller frees. NULL only when out of memory. */
char *apierr_json(const struct apierr *e);

/* Shortcut for callers without a struct: body for (status, message), no param, code NULL. */
char *apierr_json_simple(int status, const char *code, const char *message);

#endif
