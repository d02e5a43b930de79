/* finish.c — the names of enum finish. */
#include "common/engine/finish.h"

const char *finish_name(enum finish f)
{
    static const char *const names[FINISH_COUNT] = {"none", "stop", "length", "abort", "error"};
    return (unsigned)f < FINISH_COUNT ? names[f] : 0;
}
