/* failalloc.c — the allocation wrappers failalloc.h describes. The real functions are reached as
 * __real_NAME, which the linker's --wrap provides. */
#include "tests/helpers/failalloc.h"

#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static _Thread_local struct {
    bool armed, fired, paused;
    long target, count;
} fa;

void failalloc_arm(long n)
{
    fa.armed = true;
    fa.fired = false;
    fa.target = n;
    fa.count = 0;
}

bool failalloc_disarm(void)
{
    fa.armed = false;
    return fa.fired;
}

long failalloc_count(void)
{
    return fa.count;
}

void failalloc_pause(bool paused)
{
    fa.paused = paused;
}

/* True when this allocation is the one to fail. */
static bool fail_now(void)
{
    if (!fa.armed || fa.paused)
        return false;
    if (++fa.count != fa.target)
        return false;
    fa.fired = true;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}
