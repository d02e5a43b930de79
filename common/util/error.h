/* error.h — errors as values. A function that can fail returns 0 on success or -1 after filling a
 * caller-owned `struct error` with a message meant for an operator: what failed, on which input, and
 * what to do. Callers may prefix context with error_wrap(). */
#ifndef PD_ERROR_H
#define PD_ERROR_H

#include <stddef.h>

#define ERROR_MSG_MAX 512

struct error {
    char msg[ERROR_MSG_MAX];
};

/* Sets e->msg from a printf format (e may be NULL) and returns -1, so `return error_set(e, ...)`. */
int error_set(struct error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the message already in e with "prefix: " and returns -1. */
int error_wrap(struct error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
