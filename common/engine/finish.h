/* finish.h — why a sequence stopped: one enum from the engine's sampler through the wire (TOKENS
 * carries it as a u8, so the values below are fixed) to the API's finish_reason and the metrics. */
#ifndef PD_FINISH_H
#define PD_FINISH_H

enum finish {
    FINISH_NONE = 0,   /* still running: more tokens follow */
    FINISH_STOP = 1,   /* EOS, a stop token or a stop string */
    FINISH_LENGTH = 2, /* max_tokens, or the model's context */
    FINISH_ABORT = 3,  /* the client went away, or the request was cancelled */
    FINISH_ERROR = 4,  /* it could not be completed; an ERROR says why */
    FINISH_COUNT
};

/* "stop", "length", "abort", "error" as OpenAI spells them; "none" for FINISH_NONE, NULL when out of
 * range. */
const char *finish_name(enum finish f);

#endif
