/* sse.c — Server-Sent Events framing (the WHATWG EventSource format) for streamed responses:
 * lines end in LF, CRLF or CR; "data:" lines accumulate; a blank line dispatches the event;
 * comments (":") and other fields are skipped. Bytes may arrive split anywhere. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

/* A line this long is not a token chunk: the server is broken, stop rather than grow forever. */
#define SSE_MAX_LINE (8u << 20)

void sse_init(struct sse_parser *p)
{
    memset(p, 0, sizeof *p);
}

void sse_free(struct sse_parser *p)
{
    free(p->line);
    free(p->data);
    sse_init(p);
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap : 256;
        while (want < *len + n + 1)
            want *= 2;
        if (want > SSE_MAX_LINE)
            return -1;
        char *b = realloc(*buf, want);
        if (!b)
            return -1;
        *buf = b;
        *cap = want;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* One complete line (without its terminator). */
static int take_line(struct sse_parser *p, const char *line, size_t n, sse_event_fn fn, void *ud)
{
    if (n == 0) {
        int rc = 0;
        if (p->has_data)
            rc = fn(ud, p->data ? p->data : "", p->data_len) ? 1 : 0;
        p->data_len = 0;
        p->has_data = 0;
        return rc;
    }
    if (n < 5 || memcmp(line, "data:", 5))
        return 0;
    line += 5;
    n -= 5;
    if (n && *line == ' ')
        line++, n--;
    if (p->has_data && append(&p->data, &p->data_len, &p->data_cap, "\n", 1) < 0)
        return -1;
    p->has_data = 1;
    return append(&p->data, &p->data_len, &p->data_cap, line, n) < 0 ? -1 : 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ud)
{
    size_t i = 0;
    while (i < n) {
        if (p->after_cr && buf[i] == '\n') {
            p->after_cr = 0;
            i++;
            continue;
        }
        p->after_cr = 0;
        size_t end = i;
        while (end < n && buf[end] != '\n' && buf[end] != '\r')
            end++;
        if (end == n)
            return append(&p->line, &p->line_len, &p->line_cap, buf + i, n - i) < 0 ? -1 : 0;
        p->after_cr = buf[end] == '\r';
        int rc;
        if (p->line_len) {
            if (append(&p->line, &p->line_len, &p->line_cap, buf + i, end - i) < 0)
                return -1;
            size_t len = p->line_len;
            p->line_len = 0; /* reset first: the callback may stop parsing here */
            rc = take_line(p, p->line, len, fn, ud);
        } else
            rc = take_line(p, buf + i, end - i, fn, ud);
        if (rc)
            return rc;
        i = end + 1;
    }
    return 0;
}
