/* strbuf.h — appending to a NUL-terminated, heap-grown byte string held as (buf, len, cap), so the
 * owner keeps its fields wherever it likes. */
#ifndef PD_STRBUF_H
#define PD_STRBUF_H

#include <stddef.h>

/* Appends n bytes (which may contain NULs) and keeps a NUL after them; *buf may start NULL with
 * *len == *cap == 0. Returns 0, or -1 on out of memory (the string is then unchanged). */
int strbuf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n);

#endif
