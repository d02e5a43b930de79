/* prompt.h — from a validated request to token ids: the chat template for messages, the tokenizer for
 * text, checks of given token ids against the vocabulary, and the context-length rule (prompt plus
 * max_tokens must fit the model; max_tokens defaults to what is left). */
#ifndef PD_PROMPT_H
#define PD_PROMPT_H

#include <stdint.h>

#include "frontend/api_req.h"
#include "frontend/fe.h"

struct prompt_set {
    int n;
    int32_t **ids; /* n arrays */
    int *n_ids;
    char **text;   /* the prompt as text (decoded when given as ids); for echo */
};

/* Tokenizes every prompt of r (chat: renders messages first). Fills r->sp.max_tokens when not given.
 * Returns 0, or -1 with e filled (400 for a prompt too long or a bad message, 500 for a fault). */
int prompt_prepare(struct fe *fe, struct api_request *r, struct prompt_set *ps, struct apierr *e);
void prompt_set_free(struct prompt_set *ps);

/* Renders a chat conversation to text with the model's template. */
int prompt_render_chat(struct fe *fe, json_t *messages, bool add_generation_prompt, json_t *extra, char **out,
                       struct apierr *e);

#endif
