/* stopstr.c — stop-string matching with hold-back of partial matches (see stopstr.h). The held text
 * is never longer than the longest stop string minus one byte plus the newest piece, so the search
 * stays cheap however long the generation runs. */
#include "frontend/stopstr.h"
#include "common/util/strbuf.h"

#include <stdlib.h>
#include <string.h>

void stopstr_init(struct stopstr *s, const char *const *stops, int n_stops)
{
    memset(s, 0, sizeof *s);
    s->stops = stops;
    s->n_stops = n_stops;
}

void stopstr_free(struct stopstr *s)
{
    free(s->held);
    memset(s, 0, sizeof *s);
}

/* Length of the longest suffix of text[0..len) that is a proper prefix of some stop string. */
static size_t partial_suffix(const struct stopstr *s, const char *text, size_t len)
{
    size_t best = 0;
    for (int i = 0; i < s->n_stops; i++) {
        size_t sl = strlen(s->stops[i]);
        size_t k = sl - 1 < len ? sl - 1 : len;
        for (; k > best; k--)
            if (memcmp(text + len - k, s->stops[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Earliest position of any stop string in text, or -1. */
static long first_match(const struct stopstr *s, const char *text, size_t len)
{
    long best = -1;
    for (int i = 0; i < s->n_stops; i++) {
        const char *m = memmem(text, len, s->stops[i], strlen(s->stops[i]));
        if (m && (best < 0 || m - text < best))
            best = m - text;
    }
    return best;
}

int stopstr_feed(struct stopstr *s, const char *text, size_t len, char **out, size_t *out_len, size_t *out_cap)
{
    if (s->matched)
        return 1;
    if (strbuf_append(&s->held, &s->held_len, &s->held_cap, text, len))
        return -1;
    long m = first_match(s, s->held, s->held_len);
    if (m >= 0) {
        s->matched = true;
        int rc = strbuf_append(out, out_len, out_cap, s->held, (size_t)m);
        s->held_len = 0;
        return rc ? -1 : 1;
    }
    size_t keep = partial_suffix(s, s->held, s->held_len);
    size_t release = s->held_len - keep;
    if (strbuf_append(out, out_len, out_cap, s->held, release))
        return -1;
    memmove(s->held, s->held + release, keep);
    s->held_len = keep;
    s->held[keep] = 0;
    return 0;
}

int stopstr_flush(struct stopstr *s, char **out, size_t *out_len, size_t *out_cap)
{
    if (s->matched || s->held_len == 0)
        return strbuf_append(out, out_len, out_cap, "", 0);
    int rc = strbuf_append(out, out_len, out_cap, s->held, s->held_len);
    s->held_len = 0;
    return rc;
}
