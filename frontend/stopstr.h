/* stopstr.h — stop strings over streamed text. Text arrives in pieces (whole UTF-8 characters, from the
 * incremental detokenizer); what may be shown is everything before the first stop string, and while a
 * suffix of the text so far could still grow into a stop string, that suffix is held back rather than
 * shown and then taken back. The stop string itself is never shown, as in OpenAI's API. */
#ifndef PD_STOPSTR_H
#define PD_STOPSTR_H

#include <stdbool.h>
#include <stddef.h>

struct stopstr {
    const char *const *stops; /* borrowed; n_stops strings, each non-empty */
    int n_stops;
    char *held;               /* text received but not yet released */
    size_t held_len, held_cap;
    bool matched;             /* a stop string was found: nothing more is released */
};

void stopstr_init(struct stopstr *s, const char *const *stops, int n_stops);
void stopstr_free(struct stopstr *s);

/* Adds text; appends what may now be shown to *out (a malloc'd buffer the caller owns and grows with
 * out_len/out_cap). Returns 1 when a stop string was matched (the caller ends generation), 0 otherwise,
 * -1 out of memory. After a match further input is ignored. */
int stopstr_feed(struct stopstr *s, const char *text, size_t len, char **out, size_t *out_len, size_t *out_cap);

/* End of generation without a match: releases what was held back. */
int stopstr_flush(struct stopstr *s, char **out, size_t *out_len, size_t *out_cap);

#endif
