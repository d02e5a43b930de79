/* log.c — the process-wide logger declared in log.h. One event is one line: control bytes in a
 * message (a newline or terminal escape inside a name a peer or client sent) are written as '?',
 * so nobody outside can forge log lines. */
#include "common/util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_tag = "pdserve";
static int log_level = -1;

static int level_from_env(void)
{
    const char *s = getenv("PDSERVE_LOG");
    if (!s)
        return LOG_INFO;
    if (!strcmp(s, "debug"))
        return LOG_DEBUG;
    if (!strcmp(s, "warn"))
        return LOG_WARN;
    if (!strcmp(s, "error"))
        return LOG_ERROR;
    return LOG_INFO;
}

void log_init(const char *tag)
{
    log_tag = tag;
}

void log_set_level(enum log_level level)
{
    log_level = (int)level;
}

int log_enabled(enum log_level level)
{
    if (log_level < 0)
        log_level = level_from_env();
    return (int)level >= log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (!log_enabled(level))
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], log_tag);
    int start = n;
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = start; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
